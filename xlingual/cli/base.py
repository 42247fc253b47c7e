"""What every command shares: the group class that maps library errors to one-line messages, logging, JSON output."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click

from xlingual.errors import XlingualError

#: ``-h`` works everywhere; help is wrapped at 100 columns.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Libraries whose INFO chatter (weight-loading bars, load reports, prompt notices) is not for the user.
_QUIET_LOGGERS = ("transformers", "sentence_transformers", "datasets", "huggingface_hub", "accelerate")
#: FAISS logs every SIMD variant it tries ("Could not load library with AVX512 support ...") at INFO.
_WARNING_LOGGERS = ("faiss",)


def _quiet_third_party() -> None:
    """Keep library chatter (weight-loading bars, load reports, FAISS's loader) off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in _WARNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def setup_logging(quiet: bool) -> None:
    """Send our log messages to stderr (INFO, or WARNING when ``quiet``) and silence third-party chatter."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    _quiet_third_party()


def echo_json(obj: Any) -> None:
    """Print ``obj`` as one line of JSON on stdout (non-ASCII kept as is)."""
    click.echo(json.dumps(obj, ensure_ascii=False))


class XlingualGroup(click.Group):
    """A click group that reports library errors as clean messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; an :class:`XlingualError` becomes ``Error: <message>`` and exit code 1."""
        try:
            return super().invoke(ctx)
        except XlingualError as exc:
            raise click.ClickException(str(exc)) from exc
