"""``xlingual distill-static``: a static student (one vector per word piece) in the teacher's space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, echo_json, setup_logging
from xlingual.cli.options import build, json_option, quiet_option
from xlingual.config import StaticConfig

_S = StaticConfig


@click.command("distill-static", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "source", required=True, help="The transformer student to start from (a distill run's model).")
@click.option("-t", "--teacher", default=None, help="Teacher spec (default: the one the student was distilled from).")
@click.option("--train", multiple=True, help="Training pairs (any data spec; repeatable). Default: builtin:train.")
@click.option("--exclude", multiple=True, help="Evaluation pairs whose sentences must not be trained on; repeatable.")
@click.option(
    "--corpus",
    multiple=True,
    help="Monolingual text to be searched (text, JSONL, Parquet; repeatable): its pieces join the vocabulary and "
    "its first --corpus-max-train texts are trained on the transformer student's vectors of them.",
)
@click.option("--corpus-max-train", type=click.IntRange(min=0), default=_S.corpus_max_train, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=_S.out, show_default=True, help="Model folder.")
@click.option("--epochs", type=click.IntRange(min=1), default=_S.epochs, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=2), default=_S.batch_size, show_default=True)
@click.option("--lr", type=float, default=_S.lr, show_default=True, help="Adam learning rate of the table.")
@click.option("--contrastive-weight", type=float, default=_S.contrastive_weight, show_default=True)
@click.option("--negatives", type=click.IntRange(min=0), default=_S.negatives, show_default=True)
@click.option("--detokenize", is_flag=True, help="Undo word tokenisation of the pairs (e.g. the Tanaka corpus).")
@click.option("--overwrite", is_flag=True, help="Replace the model already in --out.")
@quiet_option("No progress bars; only the summary.")
@json_option()
def distill_static(as_json: bool, **params: Any) -> None:
    """Build a static student: word-piece vectors from a distilled student, trained on the teacher's vectors.

    \b
    Example:
        xlingual distill-static --from runs/distill/model -o runs/static
        xlingual distill-static --from runs/tanaka/model --train corpus/train --detokenize --corpus ja-docs.txt \\
            -o runs/static-tanaka

    The folder loads with SentenceTransformer(path) and model2vec's StaticModel, and every xlingual command
    accepts it (embed, index build, search -Q, serve, evaluate): it shares the teacher's space.
    """
    from xlingual.static import distill_static as build_static

    setup_logging(params["quiet"] or as_json)
    settings = {**params, "train": list(params["train"]) or _S().train, "exclude": list(params["exclude"])}
    settings["corpus"] = list(params["corpus"])
    result = build_static(build(StaticConfig, settings, quiet=params["quiet"] or as_json))
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(result.summary())
