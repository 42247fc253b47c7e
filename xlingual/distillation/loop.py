"""The optimisation loop: steps, learning-rate schedule, periodic dev evaluation and checkpoints.

AdamW with linear warm-up and decay and gradient clipping; one ``metrics.jsonl`` record per step.

Our own loop around sentence-transformers model classes (see ``eval/PERFORMANCE.md`` for why), so that a
checkpoint carries everything — optimiser, scheduler, RNG state, the position in the seeded data order —
and ``--resume`` after a ``kill -9`` reaches the same weights as an uninterrupted run.

Example::

    schedule = plan_schedule(len(train), config, dist)
    optimizer, scheduler = make_optimizer(student, config, schedule)
    result = train_loop(LoopParts(...), start=Position())
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual.config import DistillConfig
from xlingual.distillation.batching import batches_per_epoch, epoch_batches
from xlingual.distillation.checkpoint import Checkpointer, Position
from xlingual.distillation.dev import DevSet, evaluate_dev
from xlingual.distillation.distributed import DistInfo
from xlingual.distillation.loss import distillation_loss
from xlingual.distillation.negatives import negative_rows
from xlingual.distillation.run_dir import append_metrics
from xlingual.errors import XlingualError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from xlingual.data.readers import ParallelCorpus

#: Parameters exempt from weight decay (biases and normalisation weights, as in BERT's recipe).
NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "norm.weight", "norm.bias")


@dataclass(frozen=True)
class Schedule:
    """How long the run trains: optimiser steps in all, warm-up steps, and steps per epoch."""

    total_steps: int
    warmup_steps: int
    batches_per_epoch: int

    @property
    def epochs_needed(self) -> int:
        """Epochs the loop enters to reach ``total_steps`` (the last one possibly cut short)."""
        return math.ceil(self.total_steps / self.batches_per_epoch)


def plan_schedule(n_pairs: int, config: DistillConfig, dist: DistInfo) -> Schedule:
    """``--max-steps`` if given, else ``--epochs`` over ``n_pairs``; warm-up is ``--warmup-ratio`` of it."""
    per_epoch = batches_per_epoch(n_pairs, config.batch_size, dist)
    total = config.max_steps if config.max_steps else per_epoch * config.epochs
    return Schedule(total, int(total * config.warmup_ratio), per_epoch)


def lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of a step: linear warm-up to 1, then linear decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        remaining = max(1, total_steps - warmup_steps)
        return max(0.0, (total_steps - step) / remaining)

    return factor


def make_optimizer(student: SentenceTransformer, config: DistillConfig, schedule: Schedule) -> tuple[Any, Any]:
    """AdamW over the trainable parameters (no decay on biases and norms) and its ``LambdaLR`` schedule.

    With ``--head-lr`` the alignment head (the Dense layers after pooling) gets its own peak rate; the
    schedule scales both alike.
    """
    import torch

    groups = parameter_groups(student, config)
    try:  # the fused kernel is about 3× faster than the default on CPU for a 100M-parameter model
        optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(schedule.total_steps, schedule.warmup_steps))
    return optimizer, scheduler


def parameter_groups(student: SentenceTransformer, config: DistillConfig) -> list[dict[str, Any]]:
    """The optimiser's groups: decayed or not, and, with ``--head-lr``, the head's apart from the encoder's.

    Without ``--head-lr`` there are two groups (the layout of every checkpoint written before it existed).
    """
    params = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    parts = [(params, config.lr)]
    if config.head_lr is not None:
        from sentence_transformers.sentence_transformer.modules import Dense

        head = {id(p) for module in student if isinstance(module, Dense) for p in module.parameters()}
        parts = [([x for x in params if id(x[1]) not in head], config.lr)]
        parts.append(([x for x in params if id(x[1]) in head], config.head_lr))
    groups = []
    for part, lr in parts:
        decayed = [p for n, p in part if not n.endswith(NO_DECAY)]
        groups.append({"params": decayed, "weight_decay": config.weight_decay, "lr": lr})
        groups.append({"params": [p for n, p in part if n.endswith(NO_DECAY)], "weight_decay": 0.0, "lr": lr})
    return groups


def wrap_for_ddp(student: SentenceTransformer, dist: DistInfo, device: str) -> torch.nn.Module:
    """The module the loop calls: the student itself, or a ``DistributedDataParallel`` around it."""
    import torch

    if dist.world <= 1:
        return student
    return torch.nn.parallel.DistributedDataParallel(
        student, device_ids=[dist.local_rank] if device.startswith("cuda") else None
    )


@dataclass(frozen=True)
class LoopParts:
    """Everything the loop works with, built before it starts."""

    config: DistillConfig
    run_dir: Path
    dist: DistInfo
    device: str
    student: SentenceTransformer
    #: What the forward pass calls: ``student`` or a DDP wrapper of it.
    model: torch.nn.Module
    prompt: str | None
    train: ParallelCorpus
    #: ``(n_train, d_t)`` float32, L2-normalised: the teacher's vector of each training pair's English side.
    teacher_train: np.ndarray
    dev: DevSet | None
    #: Student tokens per training pair, for ``--group-by-length`` (``None``: no grouping).
    lengths: np.ndarray | None
    #: ``(n_train, hard_negatives)`` nearest training rows in the teacher's space (``None``: no hard negatives).
    neighbours: np.ndarray | None
    schedule: Schedule
    optimizer: Any
    scheduler: Any
    checkpointer: Checkpointer


@dataclass(frozen=True)
class LoopResult:
    """Where the loop stopped, and how long it took."""

    end: Position
    seconds: float
    #: Of ``seconds``, the time spent writing checkpoints and evaluating on dev.
    overhead_seconds: float


def train_loop(parts: LoopParts, start: Position) -> LoopResult:
    """Train from ``start`` to ``schedule.total_steps``; an out-of-memory error says what to lower."""
    import torch
    from tqdm.auto import tqdm

    config, world = parts.config, parts.dist.world
    amp = parts.device.startswith("cuda") and torch.cuda.is_bf16_supported()
    bar = tqdm(
        total=parts.schedule.total_steps * config.batch_size * world,
        initial=start.step * config.batch_size * world,
        unit="pair",
        desc="distill",
        disable=config.quiet or not parts.dist.main,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    parts.model.train()
    try:
        end, overhead = _run_epochs(parts, start, bar, amp)
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        raise XlingualError(
            f"out of memory at batch size {config.batch_size} and max sequence length {config.max_seq_length}: "
            "lower --batch-size or --max-seq-length, then continue with --resume"
        ) from exc
    bar.close()
    return LoopResult(end, time.perf_counter() - started, overhead)


def _run_epochs(parts: LoopParts, start: Position, bar: Any, amp: bool) -> tuple[Position, float]:
    """The epochs from ``start`` on; returns the position reached and the overhead seconds."""
    config, total, world = parts.config, parts.schedule.total_steps, parts.dist.world
    step, pairs_seen, overhead = start.step, start.pairs_seen, 0.0
    for epoch in range(start.epoch, parts.schedule.epochs_needed):
        batches = epoch_batches(len(parts.train), config.batch_size, config.seed, epoch, parts.dist, parts.lengths)
        first = start.batch_in_epoch if epoch == start.epoch else 0
        for b in range(first, len(batches)):
            if step >= total:
                break
            loss = _train_step(parts, batches[b], amp, step)
            step += 1
            pairs_seen += len(batches[b]) * world
            bar.update(len(batches[b]) * world)
            bar.set_postfix(loss=f"{loss:.5f}", step=step, refresh=False)
            after = Position(step, *((epoch + 1, 0) if b == len(batches) - 1 else (epoch, b + 1)), pairs_seen)
            overhead += _after_step(parts, after, loss, epoch)
        if step >= total:
            break
    return Position(step=step, pairs_seen=pairs_seen), overhead


def _train_step(parts: LoopParts, idx: np.ndarray, amp: bool, step: int) -> float:
    """One optimiser step (number ``step``, from 0) on the pairs ``idx``; returns the loss."""
    import torch

    en = [parts.train.en[i] for i in idx]
    ja = [parts.train.ja[i] for i in idx]
    target = torch.from_numpy(np.asarray(parts.teacher_train[idx], dtype=np.float32)).to(parts.device)
    features = parts.student.preprocess(en + ja, prompt=parts.prompt)
    features = {k: v.to(parts.device) if hasattr(v, "to") else v for k, v in features.items()}
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
        out = parts.model(features)["sentence_embedding"].float()
    student_en, student_ja = out[: len(idx)], out[len(idx) :]
    config = parts.config
    loss = distillation_loss(
        student_en, student_ja, target, config.contrastive_weight, config.temperature, _negatives(parts, idx, step)
    )
    parts.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parts.student.parameters(), config.max_grad_norm)
    parts.optimizer.step()
    parts.scheduler.step()
    return float(loss.detach())


def _negatives(parts: LoopParts, idx: np.ndarray, step: int) -> torch.Tensor | None:
    """The teacher vectors of this step's extra negatives (``--negatives``, ``--hard-negatives``), or None."""
    import torch

    config = parts.config
    if config.contrastive_weight <= 0 or not (config.negatives or parts.neighbours is not None):
        return None
    rows = negative_rows(
        len(parts.train), idx, step, seed=config.seed, bank=config.negatives, neighbours=parts.neighbours
    )
    return torch.from_numpy(np.asarray(parts.teacher_train[rows], dtype=np.float32)).to(parts.device)


def _after_step(parts: LoopParts, after: Position, loss: float, epoch: int) -> float:
    """Log the step, evaluate and checkpoint when due; returns the seconds that took (evaluation, checkpoint)."""
    config, step = parts.config, after.step
    record: dict[str, float] = {"step": step, "epoch": epoch, "loss": loss, "lr": parts.scheduler.get_last_lr()[0]}
    is_last = step >= parts.schedule.total_steps
    overhead = 0.0
    if parts.dist.main and config.eval_every and step % config.eval_every == 0 and not is_last:
        began = time.perf_counter()
        record.update(evaluate_dev(parts.student, parts.dev))
        parts.model.train()
        overhead += time.perf_counter() - began
    if parts.dist.main:
        append_metrics(parts.run_dir, record)
    end_of_epoch = after.epoch > epoch
    if (config.save_every and step % config.save_every == 0) or end_of_epoch or is_last:
        began = time.perf_counter()
        parts.checkpointer.save(after, parts.student, parts.optimizer, parts.scheduler)
        overhead += time.perf_counter() - began
    return overhead
