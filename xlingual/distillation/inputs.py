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
    from xlingual.models.vectors import VectorTeacher
    from xlingual.static.encoder import StaticEncoder

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

    model: SentenceTransformer | OnnxEncoder | VectorTeacher | StaticEncoder
    #: Content fingerprint of the teacher's folder (of a vectors file: its checksum), or its spec otherwise.
    fingerprint: str
    max_seq_length: int
    #: The prompt text the teacher prepends (``--teacher-prompt``, else its default); ``None``: none.
    prompt: str | None = None
    #: ``--teacher-prompt``: the prompt's name, passed to the teacher's ``encode``.
    prompt_name: str | None = None


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
    """Load the teacher on ``device`` (a ``vectors:`` file: read and checked) and fingerprint it."""
    from xlingual.models import specs as models
    from xlingual.models.encoder import prompt_text
    from xlingual.models.vectors import VectorTeacher

    logger.info("loading teacher %s and student %s on %s", config.teacher, config.student, device)
    model = models.load_model(config.teacher, device=device)
    if isinstance(model, VectorTeacher):
        dim = model.get_embedding_dimension()
        logger.info("teacher vectors: %d texts × %d dimensions from %s", len(model), dim, model.source.path)
        return Teacher(model, model.fingerprint, 0)
    path = models.resolve_model_path(config.teacher)
    fingerprint = models.fingerprint(path) if path else config.teacher
    prompt = prompt_text(model, config.teacher_prompt)
    return Teacher(model, fingerprint, int(getattr(model, "max_seq_length", 0) or 0), prompt, config.teacher_prompt)


def match_teacher(config: DistillConfig, data: TrainingData, teacher: Teacher) -> TrainingData:
    """With a ``vectors:`` teacher, keep the pairs whose English has a vector (``--missing-teacher``); else ``data``.

    Every set (training and each dev set) is checked before anything is written: a set with no vector at
    all, or any missing one under ``--missing-teacher error``, raises :class:`DataError` with the count,
    the first sentences and the fix.
    """
    from xlingual.models.vectors import VectorTeacher

    if not isinstance(teacher.model, VectorTeacher):
        return data
    vectors = teacher.model
    train = _with_vectors(vectors, data.train, "training pairs", config)
    dev = _with_vectors(vectors, data.dev, f"dev set {config.dev}", config) if data.dev is not None else None
    extra = tuple((spec, _with_vectors(vectors, corpus, f"dev set {spec}", config)) for spec, corpus in data.extra_dev)
    return TrainingData(train, data.clean_stats, dev, extra)


def _with_vectors(vectors: VectorTeacher, corpus: ParallelCorpus, what: str, config: DistillConfig) -> ParallelCorpus:
    from xlingual.choices import MissingTeacher
    from xlingual.errors import DataError

    absent = vectors.missing(list(corpus.en))
    if not absent:
        return corpus
    first = ", ".join(repr(corpus.en[i][:40]) for i in absent[:3])
    file = vectors.source.path
    if len(absent) == len(corpus):
        raise DataError(
            f"none of the {len(corpus)} English sentences of the {what} has a vector in {file} (first: {first}); "
            "the file must hold the vectors of exactly these English texts (xlingual embed them into it)"
            + (", or leave that --dev out" if what.startswith("dev") else "")
        )
    if config.missing_teacher == MissingTeacher.ERROR:
        raise DataError(
            f"{len(absent)} of the {len(corpus)} English sentences of the {what} have no vector in {file} "
            f"(first: {first}); add their vectors to the file, or pass --missing-teacher drop to train without them"
        )
    logger.warning(
        "%d of the %d %s have no teacher vector in %s and are dropped (first: %s)",
        *(len(absent), len(corpus), what, file, first),
    )
    keep = sorted(set(range(len(corpus))) - set(absent))
    return corpus.select(keep)


def embed_with_teacher(teacher: Teacher, texts: Sequence[str], *, quiet: bool) -> np.ndarray:
    """Teacher embeddings of ``texts`` → ``(n, dim)`` float32, L2-normalised, from the on-disk cache.

    A ``vectors:`` teacher's are read from its file (they are its cache).
    """
    from xlingual.cache import EmbeddingCache, cache_key
    from xlingual.models.specs import encode
    from xlingual.models.vectors import VectorTeacher

    if isinstance(teacher.model, VectorTeacher):
        return teacher.model.lookup(texts)
    from xlingual.evaluation.evaluator import prompt_cache_extra

    extra = prompt_cache_extra(teacher.prompt_name)  # the same key as evaluate's (a default prompt: the folder's)
    key = cache_key(teacher.fingerprint, texts, max_seq_length=teacher.max_seq_length, extra=extra)

    def compute(chunk: Sequence[str]) -> np.ndarray:
        return encode(teacher.model, chunk, batch_size=128, prompt_name=teacher.prompt_name)

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
