"""``xlingual demo``: the main job end to end on the built-in models and the bundled data."""

from __future__ import annotations

import click

from xlingual.cli.base import CONTEXT_SETTINGS, setup_logging
from xlingual.cli.options import quiet_option


@click.command(context_settings=CONTEXT_SETTINGS)
@quiet_option("Only the final summary.")
def demo(quiet: bool) -> None:
    """Run the main job end to end on the built-in models and the bundled data.

    \b
    Example:
        xlingual demo
    """
    from xlingual.demo import run_demo

    setup_logging(quiet)
    click.echo(run_demo(log=lambda msg: None if quiet else click.echo(msg, err=True), quiet=quiet))
