"""``xlingual distill``: distil the English teacher into the multilingual student."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from xlingual.choices import MissingTeacher
from xlingual.cli.base import CONTEXT_SETTINGS, echo_json, setup_logging
from xlingual.cli.options import (
    INIT_METHODS,
    build,
    data_options,
    distill_device_option,
    json_option,
    quiet_option,
    stack,
    student_option,
    teacher_option,
    typed_options,
)
from xlingual.config import DistillConfig

_D = DistillConfig

#: Options that are not settings of the run (``out`` is where it lives, ``resume`` how it starts).
_NOT_SETTINGS = ("out", "resume", "as_json")

_training_options = stack(
    click.option("--epochs", type=int, default=_D.epochs, show_default=True),
    click.option("--max-steps", type=int, default=None, help="Train exactly this many steps (overrides --epochs)."),
    click.option("-b", "--batch-size", type=int, default=_D.batch_size, show_default=True, help="Pairs per step."),
    click.option("--lr", type=float, default=_D.lr, show_default=True, help="Peak learning rate (AdamW)."),
    click.option(
        "--head-lr", type=float, default=None, help="Peak learning rate of the alignment head [default: --lr]."
    ),
    click.option(
        "--contrastive-weight",
        type=float,
        default=_D.contrastive_weight,
        show_default=True,
        help="Add an in-batch contrastive term (student-ja vs teacher-en) with this weight to the MSE loss.",
    ),
    click.option(
        "--temperature", type=float, default=_D.temperature, show_default=True, help="Of the contrastive term."
    ),
    click.option(
        "--negatives",
        type=int,
        default=_D.negatives,
        show_default=True,
        help="Also rank each student-ja against this many random teacher-en vectors of the training data per step.",
    ),
    click.option(
        "--hard-negatives",
        type=int,
        default=_D.hard_negatives,
        show_default=True,
        help="Also against each pair's N nearest training sentences in the teacher's space (mined once).",
    ),
    click.option("--warmup-ratio", type=float, default=_D.warmup_ratio, show_default=True),
    click.option("--max-seq-length", type=int, default=_D.max_seq_length, show_default=True, help="Student tokens."),
    click.option("--seed", type=int, default=_D.seed, show_default=True),
    click.option(
        "--eval-every", type=int, default=_D.eval_every, show_default=True, help="Dev evaluation every N steps."
    ),
    click.option("--save-every", type=int, default=_D.save_every, show_default=True, help="Checkpoint every N steps."),
    click.option("--keep-checkpoints", type=int, default=_D.keep_checkpoints, show_default=True),
)

_student_options = stack(
    click.option(
        "--init",
        type=INIT_METHODS,
        default=_D.init,
        show_default=True,
        help="Closed-form start of the alignment head before fine-tuning.",
    ),
    click.option(
        "--init-max-pairs",
        type=int,
        default=_D.init_max_pairs,
        show_default=True,
        help="Fit that head on the first N training pairs (the student encodes them once).",
    ),
    click.option(
        "--group-by-length/--no-group-by-length",
        default=_D.group_by_length,
        show_default=True,
        help="Batch pairs of similar length (less padding).",
    ),
    click.option("--freeze-embeddings", is_flag=True, help="Keep the word-embedding matrix fixed (faster steps)."),
    click.option(
        "--freeze-layers",
        type=int,
        default=_D.freeze_layers,
        show_default=True,
        help="Keep the lowest N transformer layers (and the embeddings) fixed: cheaper steps.",
    ),
    click.option(
        "--trim-vocab",
        is_flag=True,
        help="Trim the student's vocabulary to the pieces of the train/dev sentences first.",
    ),
)

_data_options = stack(
    click.option(
        "--train",
        multiple=True,
        help="Training pairs (any data spec; repeatable). Default: the bundled pairs (builtin:train).",
    ),
    click.option(
        "--dev",
        multiple=True,
        default=[_D.dev],
        show_default=True,
        help="Dev pairs for the curves; 'none' to skip. Repeatable: more sets (e.g. builtin:long-dev) are "
        "evaluated beside the first, their metrics named after them.",
    ),
    click.option(
        "--exclude",
        multiple=True,
        help="Evaluation pairs (data spec) whose sentences must not be trained on; repeatable. The dev set always is.",
    ),
)


@click.command(context_settings=CONTEXT_SETTINGS)
@teacher_option(
    "English teacher: a model spec, or vectors:FILE (its vectors of the training English, e.g. from xlingual embed).",
    default=_D.teacher,
    show_default=True,
)
@click.option("--teacher-prompt", help="The teacher's prompt name (E5/BGE-style query/passage); default: its own.")
@click.option(
    "--missing-teacher",
    type=click.Choice([m.value for m in MissingTeacher]),
    default=_D.missing_teacher,
    show_default=True,
    help="With a vectors: teacher, pairs whose English has no vector: refuse the run, or drop them with a warning.",
)
@student_option("Multilingual student model spec.", default=_D.student, show_default=True)
@_data_options
@click.option("-o", "--out", type=click.Path(path_type=Path), default=_D.out, show_default=True, help="Run directory.")
@_training_options
@_student_options
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@distill_device_option()
@data_options("Undo word tokenisation of the corpora (e.g. the Tanaka corpus).")
@quiet_option("No progress bar; only the summary.")
@json_option()
@click.pass_context
def distill(ctx: click.Context, as_json: bool, **params: Any) -> None:
    """Distil the teacher into the student on parallel English–Japanese pairs.

    \b
    Example:
        xlingual distill --max-steps 20 --out runs/quick
        xlingual distill --train ../corpus/train --detokenize --dev ../corpus/dev --epochs 2 -o runs/tanaka
        xlingual distill -o runs/tanaka --resume        # after a crash or Ctrl-C
        xlingual distill --teacher vectors:en.parquet --train pairs.tsv --dev none -o runs/v   # teacher as vectors

    Every option has a default: with none, the built-in teacher and student train on the bundled pairs.
    --resume needs nothing but --out: the settings come from the run's config.json, and a setting given
    again with a different value is refused.
    The run directory gets config.json, metrics.jsonl, checkpoints/, model/, curves.png and report.md.
    Multi-process: torchrun --nproc_per_node=2 -m xlingual distill ...
    """
    from xlingual.distillation import run as distill_lib

    setup_logging(params["quiet"] or as_json)
    result = distill_lib.distill(_config(ctx, {**params, "quiet": params["quiet"] or as_json}))
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        echo_json(_result_json(result))
    else:
        click.echo(result.summary())


def _config(ctx: click.Context, params: dict[str, Any]) -> DistillConfig:
    """The run's config: from the options, or with ``--resume`` from the run's config.json plus the typed options."""
    settings = {
        **params,
        "train": list(params["train"]) or DistillConfig().train,
        "exclude": list(params["exclude"]),
        "dev": None if params["dev"][0].lower() == "none" else params["dev"][0],
        "extra_dev": list(params["dev"][1:]),
    }
    if not params["resume"]:
        return build(DistillConfig, settings)
    from xlingual.distillation.run_dir import resume_config

    # --quiet/--json are about this invocation's output, never the saved run's; --dev gives both dev fields.
    typed = typed_options(ctx) | {"quiet"}
    if "dev" in typed:
        typed.add("extra_dev")
    names = {f.name for f in dataclasses.fields(DistillConfig)} - set(_NOT_SETTINGS)
    return resume_config(params["out"], {name: settings[name] for name in typed & names})


def _result_json(result: Any) -> dict[str, Any]:
    """The ``--json`` summary of a finished run (times rounded to 0.01)."""
    return {
        "run_dir": str(result.run_dir),
        "model_dir": str(result.model_dir),
        "steps": result.steps,
        "pairs_seen": result.pairs_seen,
        "seconds": round(result.seconds, 2),
        "pairs_per_second": round(result.pairs_per_second, 2),
        "untouched": result.untouched,
        "before": result.before,
        "after": result.after,
    }
