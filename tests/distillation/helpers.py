"""Shared data and helpers of the distillation tests (and of tests/test_crash.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xlingual.config import DistillConfig

PAIRS = [
    ("The weather is nice today.", "今日はいい天気です。"),
    ("I would like a cup of coffee.", "コーヒーを一杯ください。"),
    ("Where is the station?", "駅はどこですか。"),
    ("He reads a book every night.", "彼は毎晩本を読みます。"),
    ("The meeting starts at ten.", "会議は十時に始まります。"),
    ("Please close the window.", "窓を閉めてください。"),
    ("My sister lives in Osaka.", "姉は大阪に住んでいます。"),
    ("This computer is very fast.", "このコンピューターはとても速い。"),
    ("We went to the sea last summer.", "去年の夏、私たちは海に行きました。"),
    ("The store closes at nine.", "店は九時に閉まります。"),
    ("How much is this bag?", "このかばんはいくらですか。"),
    ("It started to rain.", "雨が降り始めた。"),
]


def write_corpus(folder: Path) -> tuple[Path, Path]:
    """train.tsv (the first 10 pairs) and dev.tsv (the last 4: two shared with train) in ``folder``."""
    train = folder / "train.tsv"
    train.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[:10]), encoding="utf-8")
    dev = folder / "dev.tsv"
    dev.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[8:]), encoding="utf-8")
    return train, dev


def distill_config(tiny_models: dict[str, str], corpus: tuple[Path, Path], out: Path, **kw: Any) -> DistillConfig:
    """A 6-step run of the tiny models on ``corpus`` (batch 4, checkpoint every 3 steps, CPU, quiet)."""
    train, dev = corpus
    base: dict[str, Any] = dict(
        teacher=tiny_models["teacher"],
        student=tiny_models["student"],
        train=[str(train)],
        dev=str(dev),
        out=out,
        batch_size=4,
        max_steps=6,
        lr=1e-3,
        warmup_ratio=0.0,
        save_every=3,
        device="cpu",
        quiet=True,
    )
    base.update(kw)
    return DistillConfig(**base)


def weights(model_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of every safetensors file under ``model_dir``, keyed ``folder/name``."""
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(Path(model_dir).rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.parent.name}/{k}"] = v
    return out
