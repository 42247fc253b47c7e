"""The student to train: loaded (or taken from a checkpoint, or trimmed first), with its frozen parameters.

Example: ``student = load_student(config, data, None, device="cpu", dist=DistInfo())``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from xlingual.config import DistillConfig
from xlingual.distillation.distributed import DistInfo, barrier
from xlingual.distillation.inputs import TrainingData
from xlingual.distillation.run_dir import TRIMMED_STUDENT_DIR
from xlingual.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: What :func:`layer_index` returns for a parameter outside the numbered transformer layers.
NOT_A_LAYER = 1 << 30


def layer_index(parameter_name: str) -> int:
    """The transformer layer a parameter belongs to (``….layer.3.…`` → 3); :data:`NOT_A_LAYER` for others."""
    parts = parameter_name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in ("layer", "layers", "h") and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return NOT_A_LAYER


def trimmed_student(config: DistillConfig, data: TrainingData, dist: DistInfo) -> str:
    """Trim the student's vocabulary to the training and dev sentences (rank 0); return the folder."""
    from xlingual.config import TrimConfig
    from xlingual.models.trim import trim_vocab

    folder = Path(config.out) / TRIMMED_STUDENT_DIR
    if dist.main:
        texts = [*data.train.en, *data.train.ja]
        if data.dev is not None:
            texts += [*data.dev.en, *data.dev.ja]
        logger.info("trimming the student's vocabulary to the %d training and dev sentences", len(texts))
        result = trim_vocab(config.student, [], folder, TrimConfig(overwrite=True), texts=texts)
        logger.info(
            "vocabulary %d → %d pieces, parameters %.1fM → %.1fM",
            result.vocab_before,
            result.vocab_after,
            result.params_before / 1e6,
            result.params_after / 1e6,
        )
    barrier(dist)
    return str(folder)


def freeze(student: SentenceTransformer, config: DistillConfig) -> None:
    """Turn off gradients for what ``--freeze-embeddings`` / ``--freeze-layers`` keep fixed (and the unused pooler)."""
    for name, param in student.named_parameters():
        if ".pooler." in name:  # BERT's [CLS] pooler is loaded but unused by mean pooling: no grad, no DDP error
            param.requires_grad_(False)
        if config.freeze_embeddings and "word_embeddings" in name:
            param.requires_grad_(False)
        if config.freeze_layers and ".embeddings." in f".{name}":  # backward stops above them anyway
            param.requires_grad_(False)
        if layer_index(name) < config.freeze_layers:
            param.requires_grad_(False)
    names = dict(student.named_parameters())
    n_layers = 1 + max((i for i in map(layer_index, names) if i < NOT_A_LAYER), default=-1)
    if config.freeze_layers > n_layers:
        raise ConfigError(
            f"--freeze-layers {config.freeze_layers}: the student has {n_layers} transformer layers; "
            f"pass at most {n_layers}"
        )


def load_student(
    config: DistillConfig, data: TrainingData, resume_from: Path | None, device: str, dist: DistInfo
) -> SentenceTransformer:
    """The student on ``device``: the checkpoint's model when resuming, else the (trimmed) ``config.student``.

    Its ``max_seq_length`` is set and the frozen parameters are marked; the head is added later.
    """
    from sentence_transformers import SentenceTransformer

    from xlingual.models import specs as models

    if resume_from is not None:
        logger.info("resuming from %s", resume_from)
        student = SentenceTransformer(str(resume_from / "model"), device=device)
    else:
        spec = trimmed_student(config, data, dist) if config.trim_vocab else config.student
        loaded = models.load_model(spec, device=device, pytorch=True)
        if not isinstance(loaded, SentenceTransformer):
            raise ConfigError(
                f"The student {config.student} is an exported graph or a static model, which cannot be trained "
                "here; pass the PyTorch transformer model it came from"
            )
        student = loaded
    student.max_seq_length = config.max_seq_length
    freeze(student, config)
    return student
