"""The training stage: an English teacher supervises a multilingual student.

For every parallel pair (en, ja) the student's embeddings of *both* sentences regress, with mean squared
error, onto the teacher's embedding of the English sentence (Reimers & Gurevych, EMNLP 2020)::

    loss = MSE(student(en), teacher(en)) + MSE(student(ja), teacher(en))  [+ w · InfoNCE(student(ja), teacher(en))]

The optional in-batch contrastive term (``contrastive_weight``, on by default: see ``eval/ABLATION.md``)
optimises the cross-model ranking directly. :func:`distill` reads top to bottom: load the pairs and the
teacher (checked before anything is written) → prepare the run directory → the teacher's vectors (cached,
:mod:`.inputs`) → the student and its closed-form head (:mod:`.student`, :mod:`.head`) → the optimisation
loop with checkpoints and dev evaluation (:mod:`.loop`, :mod:`.checkpoint`, :mod:`.dev`) → publish
``RUN/model`` (:mod:`.publish`) and the report (:mod:`.report`).
DDP when launched with ``torchrun`` (:mod:`.distributed`).

Example::

    from xlingual.distillation.run import distill
    from xlingual.config import DistillConfig
    result = distill(DistillConfig(max_steps=20, out=Path("runs/try")))
    print(result.model_dir, result.after)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xlingual import __version__
from xlingual._io import disk_full_message, is_disk_full
from xlingual.config import DistillConfig
from xlingual.distillation import run_dir as rundir
from xlingual.distillation.batching import pair_lengths
from xlingual.distillation.checkpoint import Checkpointer, Position, intact_checkpoint, read_head, seed_everything
from xlingual.distillation.dev import DEV_METRICS, DevSet, dev_set_name, evaluate_dev
from xlingual.distillation.distributed import DistInfo, barrier, place
from xlingual.distillation.head import build_head
from xlingual.distillation.inputs import (
    TeacherVectors,
    TrainingData,
    load_teacher,
    load_training_data,
    match_teacher,
    teacher_vectors,
)
from xlingual.distillation.loop import LoopParts, LoopResult, make_optimizer, plan_schedule, train_loop, wrap_for_ddp
from xlingual.distillation.negatives import hard_neighbours
from xlingual.distillation.publish import publish_model
from xlingual.distillation.student import load_student
from xlingual.errors import ConfigError, DiskFullError, XlingualError
from xlingual.models.vectors import VectorTeacher

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xlingual.distillation.inputs import Teacher

logger = logging.getLogger(__name__)

__all__ = ["DEV_METRICS", "RunResult", "distill"]


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    model_dir: Path
    steps: int
    pairs_seen: int
    seconds: float
    pairs_per_second: float
    #: Dev metrics of the student as loaded (no head, no training); cross metrics only when dims match.
    untouched: dict[str, float] = field(default_factory=dict)
    #: Dev metrics after the closed-form head, before the first gradient step.
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A one-screen plain-text summary of the run."""
        lines = [
            f"run:    {self.run_dir}",
            f"model:  {self.model_dir}",
            f"steps:  {self.steps} ({self.pairs_seen} pairs seen)",
            f"time:   {self.seconds:.0f} s of training, {self.pairs_per_second:.1f} pairs/s",
        ]
        if self.before and self.after:
            lines.append(f"{'dev metric':<26} {'untouched':>10} {'head only':>10} {'distilled':>10}")
            extra = [key for key in self.after if key not in DEV_METRICS]  # the extra dev sets' metrics
            for key in [*DEV_METRICS, *extra]:
                if key in self.before and key in self.after:
                    first = f"{self.untouched[key]:>10.3f}" if key in self.untouched else f"{'-':>10}"
                    lines.append(f"{key:<26} {first} {self.before[key]:>10.3f} {self.after[key]:>10.3f}")
            lines.append("(accuracies are fractions of the dev pairs; dev_mse is ×100)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Student:
    """The student ready to train: head in place, on its device."""

    model: SentenceTransformer
    #: The prompt the student prepends at encode time; training must see the same input.
    prompt: str | None
    #: What was done for the alignment head (config.json's ``head``).
    head: str
    #: Dev metrics before the head (fresh runs on rank 0; ``{}`` otherwise).
    untouched: dict[str, float]
    #: The checkpoint the run resumes from; ``None`` for a fresh start.
    resume_from: Path | None


@dataclass(frozen=True)
class Start:
    """Where the loop starts, and the step-0 dev metrics (measured now, or read back on resume)."""

    position: Position
    untouched: dict[str, float]
    before: dict[str, float]


def distill(config: DistillConfig) -> RunResult:
    """Run (or resume) a distillation and return where its model and metrics are.

    Example: ``distill(DistillConfig(max_steps=10, out=Path("runs/quick"))).model_dir``.
    """
    try:
        return _distill(config)
    except XlingualError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        intact = f"the checkpoints in {Path(config.out) / 'checkpoints'} are intact"
        where = getattr(exc, "filename", None) or config.out
        raise DiskFullError(f"{disk_full_message(where, intact, 'continue with --resume')} ({exc})") from exc


def _distill(config: DistillConfig) -> RunResult:
    """The stage, one step per line; rank 0 writes every file."""
    device, dist = place(config.device)
    run_dir = Path(config.out)
    data = load_training_data(config)  # inputs are read and checked before the run directory is touched
    teacher = load_teacher(config, device)
    data = match_teacher(config, data, teacher)
    rundir.prepare_run_dir(run_dir, config, dist, teacher.fingerprint)
    seed_everything(config.seed)
    resume_from = intact_checkpoint(run_dir, dist) if config.resume else None
    student_model = load_student(config, data, resume_from, device, dist)
    vectors = teacher_vectors(teacher, data, quiet=config.quiet)
    dev = _dev_set(data, vectors)
    student = _with_head(config, student_model, data, vectors, dev, resume_from, dist)
    student.model.to(device)
    parts = _loop_parts(config, student, data, vectors, dev, device, dist)
    start = _start(parts, student, teacher, data)
    loop = train_loop(parts, start.position)
    after = evaluate_dev(student.model, dev) if dist.main else {}
    if dist.main:
        rundir.append_metrics(run_dir, {"step": loop.end.step, "final": 1.0, **after})
        publish_model(run_dir, student.model, _model_meta(config, teacher))
    barrier(dist)
    result = _result(run_dir, loop, start, after)
    if dist.main:
        from xlingual.distillation.report import write_run_report

        write_run_report(run_dir, result, contrastive_weight=config.contrastive_weight)
    return result


def _dev_set(data: TrainingData, vectors: TeacherVectors) -> DevSet | None:
    """The primary dev set, carrying the extra ones, each named after its spec (metric prefix)."""
    if data.dev is None or vectors.dev is None:
        return None
    taken = {"dev"}  # an extra set called dev would clash with the first set's dev_mse
    extra = []
    for (spec, corpus), teacher_en in zip(data.extra_dev, vectors.extra_dev, strict=True):
        name = dev_set_name(spec, taken)
        taken.add(name)
        extra.append((name, DevSet(list(corpus.en), list(corpus.ja), teacher_en)))
    return DevSet(list(data.dev.en), list(data.dev.ja), vectors.dev, tuple(extra))


def _with_head(
    config: DistillConfig,
    model: SentenceTransformer,
    data: TrainingData,
    vectors: TeacherVectors,
    dev: DevSet | None,
    resume_from: Path | None,
    dist: DistInfo,
) -> Student:
    """Measure the untouched student, then give it its head (a resumed student has it: read what it was)."""
    from xlingual.models.encoder import prompt_text

    prompt = prompt_text(model)
    if resume_from is not None:
        return Student(model, prompt, read_head(resume_from), {}, resume_from)
    untouched = evaluate_dev(model, dev) if dist.main else {}
    n = min(len(data.train), config.init_max_pairs)
    show_progress = not config.quiet and dist.main
    head = build_head(
        model, data.train.en[:n], data.train.ja[:n], vectors.train[:n], config.init, show_progress=show_progress
    )
    return Student(model, prompt, head, untouched, None)


def _loop_parts(
    config: DistillConfig,
    student: Student,
    data: TrainingData,
    vectors: TeacherVectors,
    dev: DevSet | None,
    device: str,
    dist: DistInfo,
) -> LoopParts:
    """The optimiser, schedule, batching and checkpointing the loop needs."""
    n_pairs = len(data.train)
    if n_pairs < dist.world:
        raise ConfigError(f"{n_pairs} training pairs cannot be shared by {dist.world} processes")
    lengths = None
    if config.group_by_length:
        lengths = pair_lengths(student.model.tokenizer, data.train.en, data.train.ja, student.prompt)
    schedule = plan_schedule(n_pairs, config, dist)
    model = wrap_for_ddp(student.model, dist, device)
    optimizer, scheduler = make_optimizer(student.model, config, schedule)
    return LoopParts(
        config=config,
        run_dir=Path(config.out),
        dist=dist,
        device=device,
        student=student.model,
        model=model,
        prompt=student.prompt,
        train=data.train,
        teacher_train=vectors.train,
        dev=dev,
        lengths=lengths,
        neighbours=hard_neighbours(vectors.train, config.hard_negatives) if config.contrastive_weight > 0 else None,
        schedule=schedule,
        optimizer=optimizer,
        scheduler=scheduler,
        checkpointer=Checkpointer(Path(config.out), dist, config.keep_checkpoints, student.head),
    )


def _start(parts: LoopParts, student: Student, teacher: Teacher, data: TrainingData) -> Start:
    """Restore the checkpoint's state, or record a fresh run (config.json, step-0 dev metrics)."""
    run_dir, dist = parts.run_dir, parts.dist
    if student.resume_from is not None:
        position = parts.checkpointer.restore(student.resume_from, parts.optimizer, parts.scheduler, parts.device)
        if not dist.main:
            return Start(position, {}, {})
        rundir.truncate_metrics(run_dir, position.step)
        untouched, before = rundir.first_metrics(run_dir)
        return Start(position, untouched, before)
    if not dist.main:
        return Start(Position(), student.untouched, {})
    rundir.write_config(run_dir, parts.config, _run_details(parts, student, teacher, data))
    rundir.restart_metrics(run_dir)  # records of a run killed before its first checkpoint
    before = evaluate_dev(parts.student, parts.dev)
    if student.untouched:
        rundir.append_metrics(run_dir, {"step": 0, "untouched": 1.0, **student.untouched})
    rundir.append_metrics(run_dir, {"step": 0, **before})
    return Start(Position(), student.untouched, before)


def _run_details(parts: LoopParts, student: Student, teacher: Teacher, data: TrainingData) -> dict[str, object]:
    """What config.json records beside the settings: what the run found and decided."""
    return {
        "teacher_fingerprint": teacher.fingerprint,
        "teacher_prompt": teacher.prompt,
        **({"teacher_vectors": teacher.model.describe()} if isinstance(teacher.model, VectorTeacher) else {}),
        "total_steps": parts.schedule.total_steps,
        "warmup_steps": parts.schedule.warmup_steps,
        "world_size": parts.dist.world,
        "device": parts.device,
        "train_pairs": len(parts.train),
        "cleaning": data.clean_stats.as_dict(),
        "dev_pairs": len(parts.dev.en) if parts.dev is not None else 0,
        "student_prompt": student.prompt,
        "head": student.head,
    }


def _model_meta(config: DistillConfig, teacher: Teacher) -> dict[str, object]:
    """Provenance of the published model (``xlingual_distill.json``)."""
    return {
        "xlingual_version": __version__,
        "teacher": config.teacher,
        "teacher_fingerprint": teacher.fingerprint,
        "teacher_prompt": teacher.prompt,
        "teacher_prompt_name": teacher.prompt_name,
        "student": config.student,
        "train": config.train,
        "max_seq_length": config.max_seq_length,
    }


def _result(run_dir: Path, loop: LoopResult, start: Start, after: dict[str, float]) -> RunResult:
    train_seconds = loop.seconds - loop.overhead_seconds  # without checkpoint writes and dev evaluations
    pairs_done = loop.end.pairs_seen - start.position.pairs_seen
    return RunResult(
        run_dir=run_dir,
        model_dir=run_dir / "model",
        steps=loop.end.step,
        pairs_seen=loop.end.pairs_seen,
        seconds=loop.seconds,
        pairs_per_second=pairs_done / train_seconds if train_seconds > 0 else 0.0,
        untouched=start.untouched,
        before=start.before,
        after=after,
    )
