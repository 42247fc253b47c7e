"""``distill_static``: the steps of ``xlingual distill-static``, in order.

Read the pairs (cleaned, ``--exclude`` filtered) → the teacher (the one the source student names, or
``--teacher``) and its cached vectors of the English side → the vocabulary (training sentences + ``--corpus``)
→ piece vectors from the transformer student → train the table → write the folder. Everything is checked
before the output folder is touched, and the folder appears whole or not at all.

Example: ``distill_static(StaticConfig(source="runs/tanaka/model", out=Path("runs/static"))).model_dir``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlingual.config import DistillConfig, StaticConfig
from xlingual.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)


@dataclass
class StaticResult:
    """What ``distill_static`` built: where, how big, how long, and the loss per epoch."""

    model_dir: Path
    pieces: int
    dim: int
    train_pairs: int
    seconds: float
    losses: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` summary (seconds rounded to 0.01)."""
        return {
            "model_dir": str(self.model_dir),
            "pieces": self.pieces,
            "dim": self.dim,
            "train_pairs": self.train_pairs,
            "seconds": round(self.seconds, 2),
            "losses": self.losses,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        return (
            f"model:  {self.model_dir}\n"
            f"table:  {self.pieces:,} pieces × {self.dim} dimensions\n"
            f"pairs:  {self.train_pairs:,}; loss by epoch {', '.join(f'{x:.4f}' for x in self.losses)}\n"
            f"time:   {self.seconds:.0f} s"
        )


def _source_dir(spec: str) -> Path:
    from xlingual.models.specs import resolve_model_path

    path = resolve_model_path(spec)
    if path is None:
        raise ModelError(f"--from {spec}: no local model folder; pass a distill run's model folder")
    return path


def _teacher_spec(source: Path, config: StaticConfig) -> tuple[str, str | None]:
    """The teacher (and its ``--teacher-prompt`` name) whose vectors train the table: given, or the source's own."""
    if config.teacher:
        return config.teacher, None
    record = source / "xlingual_distill.json"
    if record.is_file():
        meta = json.loads(record.read_text(encoding="utf-8"))
        teacher, prompt_name = meta.get("teacher"), meta.get("teacher_prompt_name")
        if isinstance(teacher, str) and teacher:
            return teacher, prompt_name if isinstance(prompt_name, str) else None
    raise ConfigError(
        f"{source} does not say which teacher it was distilled from (no xlingual_distill.json); name it: --teacher SPEC"
    )


def _corpus_texts(config: StaticConfig) -> list[str]:
    from xlingual.data.documents import read_documents

    return [doc.text for spec in config.corpus for doc in read_documents(spec)]


def _check_out(out: Path, overwrite: bool) -> None:
    occupied = any(out.iterdir()) if out.is_dir() else out.exists()
    if occupied:
        if not (out / "xlingual_distill.json").is_file():
            raise ConfigError(f"{out} exists and is not a static student folder; choose another --out")
        if not overwrite:
            raise ConfigError(f"{out} already holds a model; pass --overwrite to replace it, or choose another --out")


def distill_static(config: StaticConfig) -> StaticResult:
    """Build a static student in the teacher's space from ``config.source`` (see the module docstring)."""
    from tokenizers import Tokenizer

    from xlingual.distillation.inputs import load_teacher, load_training_data, match_teacher, teacher_vectors
    from xlingual.models.specs import encode, load_model
    from xlingual.static.folder import write_static_folder
    from xlingual.static.pieces import piece_vectors, static_vocab, transformer_tokenizer
    from xlingual.static.train import train_table

    started = time.perf_counter()
    out = Path(config.out)
    _check_out(out, config.overwrite)
    source = _source_dir(config.source)
    teacher_spec, prompt_name = _teacher_spec(source, config)
    inputs = DistillConfig(
        teacher=teacher_spec, teacher_prompt=prompt_name, student=config.source, train=config.train, dev=None,
        exclude=config.exclude, detokenize=config.detokenize, quiet=config.quiet, missing_teacher="drop",
    )  # fmt: skip
    data = load_training_data(inputs)
    teacher = load_teacher(inputs, config.device)
    data = match_teacher(inputs, data, teacher)
    targets = teacher_vectors(teacher, data, quiet=config.quiet).train
    corpus_texts = _corpus_texts(config)
    vocab = static_vocab(transformer_tokenizer(source), [*data.train.en, *data.train.ja, *corpus_texts])
    student = load_model(config.source, device=config.device)
    init = piece_vectors(student, vocab.tokenizer, show_progress=not config.quiet)
    if init.shape[1] != targets.shape[1]:
        raise ModelError(
            f"--from {config.source} embeds in {init.shape[1]} dimensions, its teacher {teacher_spec} in "
            f"{targets.shape[1]}: start from a student distilled from that teacher (xlingual distill)"
        )
    tokenizer = Tokenizer.from_str(json.dumps(vocab.tokenizer))
    corpus = corpus_texts[: config.corpus_max_train]
    corpus_targets = encode(student, corpus, show_progress=not config.quiet, desc="corpus targets")
    table, losses = train_table(
        init, tokenizer, (data.train.en, data.train.ja), targets, config, (corpus, corpus_targets)
    )
    meta: dict[str, Any] = {
        "teacher": teacher_spec,
        "teacher_fingerprint": teacher.fingerprint,
        "teacher_prompt": teacher.prompt,
        "teacher_prompt_name": prompt_name,
        "source": config.source,
        "train": config.train,
        "corpus": config.corpus,
        "vocabulary": vocab.counts,
        "settings": {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
                     "contrastive_weight": config.contrastive_weight, "negatives": config.negatives},
    }  # fmt: skip
    write_static_folder(out, table, vocab.tokenizer, meta)
    return StaticResult(out, int(table.shape[0]), int(table.shape[1]), len(data.train), time.perf_counter() - started,
                        losses)  # fmt: skip
