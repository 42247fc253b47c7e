"""``xlingual evaluate`` (retrieval and alignment metrics) and ``xlingual mine`` (margin-based bitext mining)."""

from __future__ import annotations

from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, echo_json, setup_logging
from xlingual.cli.options import (
    MINE_MODES,
    build,
    data_config,
    data_options,
    device_option,
    json_option,
    model_option,
    quiet_option,
    teacher_option,
)
from xlingual.config import EvalConfig, MineConfig

_QUIET_HELP = "No progress messages or bars."


@click.command(context_settings=CONTEXT_SETTINGS)
@model_option("Model spec or folder; repeat to compare models side by side.", "models", multiple=True, required=True)
@click.option(
    "-p",
    "--pairs",
    required=True,
    help="Evaluation pairs: any corpus spec `xlingual data inspect` reads (pairs.tsv, EN,JA, builtin:dev).",
)
@teacher_option(
    "Teacher spec (or vectors:FILE): adds cross_ja2en_acc, cross_en2ja_acc (cosine and CSLS), mse and mse_en."
)
@click.option("--teacher-prompt", help="The teacher's prompt name (e.g. passage); default: its own default prompt.")
@click.option(
    "--sts",
    help="Scored pairs sentence1<TAB>sentence2<TAB>score, or builtin:sts-ja: adds sts_spearman.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    help="Also write metrics.json, config.json and similarity_histograms.png into this folder.",
)
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=EvalConfig.batch_size,
    show_default=True,
    help="Sentences per encoder batch.",
)
@click.option(
    "--margin-k",
    type=click.IntRange(min=1),
    default=EvalConfig.margin_k,
    show_default=True,
    help="Neighbours each side in the ratio margin.",
)
@device_option(EvalConfig.device)
@data_options("Undo word tokenisation of the pairs (e.g. the Tanaka corpus).")
@click.option("--no-cache", is_flag=True, help="Re-embed even when the embeddings are cached on disk.")
@json_option("One JSON object per model, one per line (fractions 0-1).")
@quiet_option(_QUIET_HELP)
def evaluate(as_json: bool, quiet: bool, **params: Any) -> None:
    """Score models on translation retrieval, margin retrieval and alignment with a teacher.

    \b
    Example:
        xlingual evaluate -m builtin:me5-small -m runs/student -p builtin:dev -t builtin:minilm-en
        xlingual evaluate -m runs/v/model -p pairs.tsv -t vectors:en.parquet   # a teacher given as vectors

    Each sentence queries all sentences of the other language (exact FAISS search). The table shows
    accuracy, recall@5/10 and MRR in percent; --json and metrics.json hold them as fractions.
    """
    from xlingual.evaluation import evaluator as eval_lib

    setup_logging(quiet or as_json)
    report = eval_lib.evaluate(
        list(params["models"]),
        params["pairs"],
        params["teacher"],
        config=build(EvalConfig, params, show_progress=not quiet, cache=not params["no_cache"]),
        data_config=data_config(params),
        sts=params["sts"],
        out_dir=params["out"],
    )
    click.echo(report.to_json_lines() if as_json else report.format_table())


@click.command(context_settings=CONTEXT_SETTINGS)
@model_option("Model spec or folder (a multilingual student).", required=True)
@click.option(
    "-s",
    "--src",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Source sentences, one per line (e.g. ja.txt).",
)
@click.option(
    "-t",
    "--tgt",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Target sentences, one per line (e.g. en.txt).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write score<TAB>src<TAB>tgt lines here (default: stdout)."
)
@click.option(
    "--threshold",
    type=float,
    default=MineConfig.threshold,
    show_default=True,
    help="Keep pairs whose ratio margin is at least this.",
)
@click.option(
    "-k",
    "--neighbours",
    "k",
    type=click.IntRange(min=1),
    default=MineConfig.k,
    show_default=True,
    help="Neighbours each side in the ratio margin.",
)
@click.option(
    "--mode",
    type=MINE_MODES,
    default=MineConfig.mode,
    show_default=True,
    help="forward/backward: best match of each line; intersect: mutual best; "
    "max: both directions, one-to-one by score.",
)
@click.option(
    "-g",
    "--gold",
    type=click.Path(exists=True, dir_okay=False),
    help="Gold pairs src<TAB>tgt (texts): report precision, recall and F1.",
)
@click.option("--tune", is_flag=True, help="With --gold: use the F1-optimal threshold instead of --threshold.")
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=MineConfig.batch_size,
    show_default=True,
    help="Sentences per encoder batch.",
)
@device_option(MineConfig.device)
@json_option("Print the summary (threshold, counts, precision/recall/F1) as one JSON object; needs --output.")
@quiet_option(_QUIET_HELP)
def mine(as_json: bool, quiet: bool, **params: Any) -> None:
    """Find translation pairs between two unaligned files with margin scoring (Artetxe & Schwenk, 2019).

    \b
    Example:
        xlingual mine -m runs/student -s ja.txt -t en.txt -o mined.tsv
        xlingual mine -m runs/student -s ja.txt -t en.txt -o mined.tsv -g gold.tsv --tune

    The default threshold 1.06 is CCMatrix's; with --gold and --tune the F1-optimal one is used.
    """
    from xlingual.evaluation.mining import mine_files, mined_tsv_lines

    gold, output = params["gold"], params["output"]
    if params["tune"] and not gold:
        raise click.UsageError("--tune needs --gold: pairs to tune the threshold on.")
    if as_json and not output:
        raise click.UsageError("--json prints a summary on stdout; pass --output FILE for the mined pairs.")
    setup_logging(quiet or as_json)
    config = build(MineConfig, params, show_progress=not quiet)
    result = mine_files(
        params["model"], params["src"], params["tgt"], config=config, gold=gold, tune=params["tune"], output=output
    )
    if not output:
        for line in mined_tsv_lines(result.mined, result.src_texts, result.tgt_texts):
            click.echo(line)
    if as_json:
        echo_json(result.summary)
    elif not quiet or gold:
        click.echo(_mine_message(result.summary), err=True)


def _mine_message(summary: dict[str, Any]) -> str:
    """The one-line summary of a mining run for stderr, with precision/recall/F1 when gold pairs were given."""
    message = f"mined {summary['n_mined']} pairs (threshold {summary['threshold']:.4f})"
    if "f1" in summary:
        message += (
            f"; precision {summary['precision']:.1%}, recall {summary['recall']:.1%}, "
            f"F1 {summary['f1']:.1%} on {summary['n_gold']} gold pairs"
        )
    return message
