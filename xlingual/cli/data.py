"""``xlingual data inspect``: counts, lengths, duplicates, scripts and problems of parallel corpora."""

from __future__ import annotations

from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, XlingualGroup, echo_json, setup_logging
from xlingual.cli.options import data_config, data_options, json_option


@click.group(cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
def data() -> None:
    """Inspect parallel corpora (TSV, aligned files, JSONL, Hugging Face datasets)."""


@data.command("inspect", context_settings=CONTEXT_SETTINGS)
@click.argument("specs", nargs=-1, required=True)
@data_options("Undo word tokenisation (e.g. the Tanaka corpus).")
@json_option("Print the report as one JSON object.")
def data_inspect(specs: tuple[str, ...], as_json: bool, **params: Any) -> None:
    """Print counts, length statistics, duplicates, script mix and every problem found.

    \b
    Example:
        xlingual data inspect builtin:train
        xlingual data inspect pairs.tsv corpus.en,corpus.ja --json

    SPECS: a TSV file (en<TAB>ja), two aligned files as EN_FILE,JA_FILE (or a prefix P with P.en and
    P.ja), a JSONL file, a saved Hugging Face dataset folder, hf:NAME[@split], or builtin:train /
    builtin:dev. Any of them may be gzip-compressed.
    """
    from xlingual.data import inspect as data_lib

    setup_logging(quiet=True)
    report = data_lib.inspect_corpus(list(specs), data_config(params))
    if as_json:
        echo_json(report)
    else:
        click.echo(data_lib.format_inspect(report))
