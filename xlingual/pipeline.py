"""The main job behind ``xlingual demo``: a short end-to-end path on the built-ins and bundled data."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from xlingual.config import DEFAULT_STUDENT, DEFAULT_TEACHER, DataConfig


def run_demo(log: Callable[[str], None] = lambda msg: None) -> str:
    """Run the demo and return its plain-text summary (progress goes to ``log``).

    Example: ``print(run_demo(log=print))``.
    """
    from xlingual import data, models

    started = time.perf_counter()
    lines: list[str] = []
    log("1/3 reading the bundled parallel data")
    train, stats = data.load_pairs(["builtin:train"], DataConfig())
    dev = data.read_corpus("builtin:dev")
    lines.append(f"data: {len(train)} training pairs ({stats.duplicates} duplicates dropped), {len(dev)} dev pairs")

    log(f"2/3 loading the teacher ({DEFAULT_TEACHER}) and the student ({DEFAULT_STUDENT})")
    teacher = models.load_model(DEFAULT_TEACHER, device="cpu")
    student = models.load_model(DEFAULT_STUDENT, device="cpu")

    log("3/3 embedding the dev pairs")
    sample = min(len(dev), 200)
    en, ja = dev.en[:sample], dev.ja[:sample]
    teacher_en = models.encode(teacher, en)
    student_ja = models.encode(student, ja)
    student_en = models.encode(student, en)
    acc = float(np.mean(np.argmax(student_ja @ student_en.T, axis=1) == np.arange(sample)))
    cross = float(np.mean(np.argmax(student_ja @ teacher_en.T, axis=1) == np.arange(sample)))
    lines.append(f"student ja→en retrieval on {sample} dev pairs: {acc:.1%}")
    lines.append(f"student(ja) → teacher(en) retrieval before distillation: {cross:.1%} (distillation aligns these)")
    lines.append(f"done in {time.perf_counter() - started:.0f} s")
    return "\n".join(lines)
