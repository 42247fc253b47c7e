"""What a run trains on: the cleaned training pairs, the dev pairs, the teacher and its vectors of both.

The teacher runs once per corpus: its vectors are cached on disk (:mod:`xlingual.cache`), keyed by the
teacher folder's fingerprint and the texts, so a second run (or ``xlingual evaluate`` with that teacher)
reads them back instead of encoding again.
Example: ``data = load_training_data(config); teacher = load_teacher(config, "cpu")``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual.config import DataConfig, DistillConfig
from xlingual.errors import XlingualError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xlingual.data.clean import CleanStats
    from xlingual.data.readers import ParallelCorpus
    from xlingual.models.onnx_encoder import OnnxEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """The cleaned training pairs (dev and ``--exclude`` sentences removed) and the dev pairs used for curves."""

    train: ParallelCorpus
    clean_stats: CleanStats
    #: The first ``dev_max_pairs`` dev pairs; ``None`` without ``--dev``.
    dev: ParallelCorpus | None
    #: ``(spec, pairs)`` of every further ``--dev``, cut the same way.
    extra_dev: tuple[tuple[str, ParallelCorpus], ...] = ()


@dataclass(frozen=True)
class Teacher:
    """The loaded teacher and the identity of its weights (the cache key's model id)."""

    model: SentenceTransformer | OnnxEncoder
    #: Content fingerprint of the teacher's folder, or its spec when it has no local folder.
    fingerprint: str
    max_seq_length: int


@dataclass(frozen=True)
class TeacherVectors:
    """The teacher's embeddings of the English side: ``(n, d_t)`` float32, L2-normalised."""

    train: np.ndarray
    #: Of the dev pairs; ``None`` without dev pairs.
    dev: np.ndarray | None
    #: Of each extra dev set, in ``TrainingData.extra_dev`` order.
    extra_dev: tuple[np.ndarray, ...] = ()


def _data_config(config: DistillConfig, **more: Any) -> DataConfig:
    """How the run reads its pairs: ``--detokenize``, ``--en-key``, ``--ja-key``."""
    return DataConfig(detokenize=config.detokenize, en_key=config.en_key, ja_key=config.ja_key, **more)


def load_training_data(config: DistillConfig) -> TrainingData:
    """Read and clean ``config.train`` against the dev and ``--exclude`` corpora; read the dev pairs."""
    from xlingual import data

    excluded = [*([config.dev] if config.dev else []), *config.extra_dev, *config.exclude]
    train, clean_stats = data.load_pairs(config.train, _data_config(config, exclude=excluded))
    if len(train) == 0:
        raise XlingualError(f"no training pairs left after cleaning {config.train}: {clean_stats.as_dict()}")
    if clean_stats.leaked:
        logger.warning(
            "the dev set overlaps the training data: %d training pairs shared a sentence with %s and were removed",
            clean_stats.leaked,
            " or ".join(excluded),
        )
    dev = _read_dev(config.dev, config) if config.dev else None
    return TrainingData(train, clean_stats, dev, tuple((spec, _read_dev(spec, config)) for spec in config.extra_dev))


def _read_dev(spec: str, config: DistillConfig) -> ParallelCorpus:
    """The first ``--dev-max-pairs`` pairs of a dev corpus."""
    from xlingual import data

    full = data.read_corpus(spec, _data_config(config))
    return full.select(range(min(len(full), config.dev_max_pairs)))


def load_teacher(config: DistillConfig, device: str) -> Teacher:
    """Load the teacher on ``device`` and fingerprint its folder."""
    from xlingual.models import specs as models

    logger.info("loading teacher %s and student %s on %s", config.teacher, config.student, device)
    model = models.load_model(config.teacher, device=device)
    path = models.resolve_model_path(config.teacher)
    fingerprint = models.fingerprint(path) if path else config.teacher
    return Teacher(model, fingerprint, int(getattr(model, "max_seq_length", 0) or 0))


def embed_with_teacher(teacher: Teacher, texts: Sequence[str], *, quiet: bool) -> np.ndarray:
    """Teacher embeddings of ``texts`` → ``(n, dim)`` float32, L2-normalised, from the on-disk cache."""
    from xlingual.cache import EmbeddingCache, cache_key
    from xlingual.models.specs import encode

    key = cache_key(teacher.fingerprint, texts, max_seq_length=teacher.max_seq_length)

    def compute(chunk: Sequence[str]) -> np.ndarray:
        return encode(teacher.model, chunk, batch_size=128)

    def progress(done: int, total: int) -> None:
        if not quiet:
            logger.info("teacher: %d/%d sentences embedded", done, total)

    return EmbeddingCache().get_or_compute(key, texts, compute, progress=progress, meta={"model": teacher.fingerprint})


def teacher_vectors(teacher: Teacher, data: TrainingData, *, quiet: bool) -> TeacherVectors:
    """The teacher's vectors of the English training and dev sentences (cached)."""
    train = embed_with_teacher(teacher, list(data.train.en), quiet=quiet)
    dev = embed_with_teacher(teacher, list(data.dev.en), quiet=True) if data.dev else None
    extra = tuple(embed_with_teacher(teacher, list(corpus.en), quiet=True) for _, corpus in data.extra_dev)
    return TeacherVectors(train, dev, extra)
