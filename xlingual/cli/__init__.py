"""The ``xlingual`` command line. The only package that imports click.

Each command parses options into a config from :mod:`xlingual.config`, calls one stage, and prints; an
:class:`~xlingual.errors.XlingualError` becomes a one-line message with exit code 1 (:class:`XlingualGroup`).
One module per stage; shared options live in :mod:`xlingual.cli.options`.
"""

from __future__ import annotations

import click

from xlingual import __version__
from xlingual.cli.base import CONTEXT_SETTINGS, XlingualGroup, setup_logging
from xlingual.cli.classify import classify
from xlingual.cli.data import data
from xlingual.cli.demo import demo
from xlingual.cli.distill import distill
from xlingual.cli.evaluate import evaluate, mine
from xlingual.cli.export import embed, export_command, trim_command
from xlingual.cli.models import models
from xlingual.cli.search import index_group, search, serve
from xlingual.cli.static import distill_static

__all__ = ["XlingualGroup", "cli", "main", "setup_logging"]


@click.group(cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="xlingual")
def cli() -> None:
    """Make an English sentence-embedding model speak Japanese, then evaluate, search and export it.

    \b
    Start with:
        xlingual models            # the built-in offline models
        xlingual demo              # a short end-to-end run on the built-ins
        xlingual COMMAND -h        # help for one command
    """


for _command in (models, data, distill, evaluate, mine, index_group, search, serve, embed, export_command):
    cli.add_command(_command)
for _command in (trim_command, classify, distill_static, demo):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``xlingual`` console script."""
    cli(prog_name="xlingual")
