"""One evaluator for translation retrieval, used by ``xlingual evaluate`` and by distillation's dev evaluation.

:class:`TranslationEvaluator` holds the pairs (and optionally the teacher's English vectors) and, called with
a model, returns its metrics (names and meaning in :mod:`xlingual.evaluation.metrics`), in the style of
sentence-transformers' evaluators. :func:`evaluate` runs it for several models on one corpus, with the
embedding cache, STS and the report files.

Example::

    evaluator = TranslationEvaluator(dev.en, dev.ja, teacher_en_emb=teacher_en)
    evaluator(student)["cross_ja2en_acc"]
    report = evaluate(["builtin:me5-small", "runs/student"], "builtin:dev", teacher="builtin:minilm-en")
    print(report.format_table())
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Protocol, cast

import numpy as np

from xlingual.config import DataConfig, EvalConfig
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation.metrics import (
    METRIC_KEYS,
    DirectionResult,
    Metrics,
    cross_metrics,
    retrieval_directions,
)
from xlingual.evaluation.report import EvalReport, PairSimilarities
from xlingual.evaluation.sts import StsData, read_sts, sts_spearman
from xlingual.models.encoder import Encoder

logger = logging.getLogger(__name__)

#: A model spec (``builtin:me5-small``, a folder, a hub id) or a loaded encoder.
ModelLike = str | Encoder


class Bitext(Protocol):
    """Anything with aligned ``en`` and ``ja`` sentence lists (e.g. :class:`xlingual.data.readers.ParallelCorpus`)."""

    @property
    def en(self) -> Sequence[str]:
        """English sentences; ``en[i]`` translates ``ja[i]``."""
        ...

    @property
    def ja(self) -> Sequence[str]:
        """Japanese sentences."""
        ...


# --------------------------------------------------------------------------- models


def load_encoder(model: ModelLike, device: str | None) -> Encoder:
    """``model`` itself if it is an encoder, else the model its spec names (``load_model(spec, device=device)``)."""
    if isinstance(model, str):
        from xlingual.models.specs import load_model

        return cast(Encoder, load_model(model, device=device))
    if not callable(getattr(model, "encode", None)):
        raise ConfigError(f"{type(model).__name__} has no encode() method; pass a model spec or a SentenceTransformer.")
    return model


def embed(
    model: Encoder, texts: Sequence[str], batch_size: int, show_progress: bool, prompt_name: str | None = None
) -> np.ndarray:
    """Embeddings of ``texts`` by ``model``: ``(n, dim)`` float32, L2-normalised (``prompt_name``: not the default)."""
    from xlingual.models.specs import encode

    return encode(model, texts, batch_size=batch_size, show_progress=show_progress, prompt_name=prompt_name)


def _check_pairs(en: Sequence[str], ja: Sequence[str]) -> None:
    if len(en) != len(ja):
        raise DataError(
            f"Misaligned pairs: {len(en)} English but {len(ja)} Japanese sentences; en[i] must translate ja[i]."
        )
    if not en:
        raise DataError("No pairs to evaluate; the corpus is empty.")


# --------------------------------------------------------------------------- the evaluator


@dataclass(frozen=True)
class TranslationResult:
    """One model's metrics on the evaluator's pairs, with the per-query results behind them."""

    #: Metric key → value, in :data:`~xlingual.evaluation.metrics.METRIC_KEYS` order (fractions; mse ×100).
    metrics: dict[str, float]
    en2ja: DirectionResult
    ja2en: DirectionResult


class TranslationEvaluator:
    """Translation retrieval of a model on fixed pairs and, given the teacher's vectors, its alignment with them.

    ``en[i]`` translates ``ja[i]``. ``teacher_en_emb``: the teacher's embeddings of ``en``, ``(n, dim)``
    float32, L2-normalised; with them the result adds ``cross_ja2en_acc``, ``cross_en2ja_acc``, their CSLS
    variants ``csls_cross_*``, ``mse`` and ``mse_en``. ``name`` prefixes every key (``dev`` → ``dev_mean_acc``),
    as sentence-transformers' evaluators do. ``config`` sets the margin and block settings;
    ``batch_size``/``show_progress`` override its own. Calling it returns exactly the metrics
    :func:`evaluate` reports for that model on these pairs.

    Example: ``TranslationEvaluator(dev.en, dev.ja, teacher_en_emb=teacher_en)(student)["cross_ja2en_acc"]``.
    """

    def __init__(
        self,
        en: Sequence[str],
        ja: Sequence[str],
        *,
        teacher_en_emb: np.ndarray | None = None,
        name: str = "",
        batch_size: int | None = None,
        show_progress: bool | None = None,
        config: EvalConfig | None = None,
    ) -> None:
        _check_pairs(en, ja)
        base = config or EvalConfig()
        self.en = list(en)
        self.ja = list(ja)
        self.teacher_en_emb = None if teacher_en_emb is None else np.asarray(teacher_en_emb)
        if self.teacher_en_emb is not None and self.teacher_en_emb.shape[0] != len(self.en):
            raise DataError(
                f"teacher_en_emb has {self.teacher_en_emb.shape[0]} rows for {len(self.en)} pairs; "
                f"pass the teacher's embeddings of exactly these English sentences."
            )
        self.name = name
        self.config = replace(
            base,
            batch_size=base.batch_size if batch_size is None else batch_size,
            show_progress=base.show_progress if show_progress is None else show_progress,
        )
        #: The metric to select models by: alignment with the teacher when there is one, else ``mean_acc``.
        self.primary_metric = self._key("cross_ja2en_acc" if self.teacher_en_emb is not None else "mean_acc")

    def _key(self, metric: str) -> str:
        return f"{self.name}_{metric}" if self.name else metric

    def measure(self, en_emb: np.ndarray, ja_emb: np.ndarray) -> TranslationResult:
        """Metrics of a model's embeddings of the pairs: ``en_emb``, ``ja_emb`` ``(n, dim)`` float32, L2-normalised."""
        en2ja, ja2en = retrieval_directions(en_emb, ja_emb, en_texts=self.en, ja_texts=self.ja, config=self.config)
        scores = {**en2ja.metrics("en2ja"), **ja2en.metrics("ja2en")}
        scores["mean_acc"] = (scores["en2ja_acc"] + scores["ja2en_acc"]) / 2
        if self.teacher_en_emb is not None:
            scores.update(
                cross_metrics(
                    en_emb,
                    ja_emb,
                    self.teacher_en_emb,
                    en_texts=self.en,
                    ja_texts=self.ja,
                    block_size=self.config.block_size,
                )
            )
        return TranslationResult({self._key(k): scores[k] for k in METRIC_KEYS if k in scores}, en2ja, ja2en)

    def __call__(self, model: ModelLike) -> dict[str, float]:
        """Embed both sides with ``model`` (an encoder in memory, or a spec) and return its metrics."""
        encoder = load_encoder(model, self.config.device)
        en_emb = embed(encoder, self.en, self.config.batch_size, self.config.show_progress)
        ja_emb = embed(encoder, self.ja, self.config.batch_size, self.config.show_progress)
        return self.measure(en_emb, ja_emb).metrics


# --------------------------------------------------------------------------- evaluate()


class SpecEmbedder:
    """Embeds texts with models given as specs or objects.

    Each spec is loaded once, and only when its embeddings are not in the on-disk cache (``config.cache``).
    """

    def __init__(self, config: EvalConfig) -> None:
        self.config = config
        self.loaded: dict[str, Encoder] = {}

    def load(self, model: ModelLike) -> Encoder:
        """The encoder ``model`` names (loaded once per spec), or ``model`` itself."""
        if isinstance(model, str):
            if model not in self.loaded:
                self.loaded[model] = load_encoder(model, self.config.device)
            return self.loaded[model]
        return load_encoder(model, self.config.device)

    def __call__(self, spec: ModelLike, texts: Sequence[str], prompt_name: str | None = None) -> np.ndarray:
        """Embeddings of ``texts`` by ``spec`` (with ``prompt_name``), from the on-disk cache for a local model."""
        cacheable = self.config.cache and isinstance(spec, str)
        key = _spec_cache_key(str(spec), texts, prompt_cache_extra(prompt_name)) if cacheable else None
        if key is None:
            return self._embed(spec, texts, prompt_name)
        from xlingual.cache import EmbeddingCache

        cached = EmbeddingCache().get_or_compute(
            key, texts, lambda chunk: self._embed(spec, chunk, prompt_name), meta={"model": str(spec)}
        )
        return np.asarray(cached)

    def _embed(self, spec: ModelLike, texts: Sequence[str], prompt_name: str | None = None) -> np.ndarray:
        return embed(self.load(spec), texts, self.config.batch_size, self.config.show_progress, prompt_name)


def prompt_cache_extra(prompt_name: str | None) -> str:
    """The cache key's ``extra`` for embeddings made with a named prompt (``""``: the model's default)."""
    return f"prompt_name:{prompt_name}" if prompt_name is not None else ""


def _spec_cache_key(spec: str, texts: Sequence[str], extra: str = "") -> str | None:
    """Cache key of a model spec's embeddings of ``texts`` (the distillation's teacher convention), or None.

    The key is the folder's content fingerprint (weights, prompts and settings included) plus its
    ``max_seq_length`` (and ``extra``: a named prompt), so the teacher vectors cached by ``xlingual distill``
    are found here too.
    """
    from xlingual.cache import cache_key
    from xlingual.models.specs import fingerprint, resolve_model_path

    path = resolve_model_path(spec)
    if path is None:
        return None
    max_seq_length = 0
    settings = path / "sentence_bert_config.json"
    if settings.is_file():
        max_seq_length = int(json.loads(settings.read_text(encoding="utf-8")).get("max_seq_length") or 0)
    if max_seq_length < 1:  # newer folders keep it elsewhere; the fingerprint covers every settings file anyway
        return cache_key(fingerprint(path), texts, max_seq_length=1, extra="max_seq_length:from-folder" + extra)
    return cache_key(fingerprint(path), texts, max_seq_length=max_seq_length, extra=extra)


def _named(models: Sequence[ModelLike] | Mapping[str, ModelLike]) -> list[tuple[str, ModelLike]]:
    if isinstance(models, Mapping):
        named = [(str(name), model) for name, model in models.items()]
    elif isinstance(models, str):
        named = [(models, models)]
    else:
        named = []
        for model in models:
            name = model if isinstance(model, str) else type(model).__name__
            taken = sum(1 for other, _ in named if other == name or other.startswith(f"{name}#"))
            named.append((name if taken == 0 else f"{name}#{taken + 1}", model))
    if not named:
        raise ConfigError("No model to evaluate; pass at least one model spec (e.g. builtin:me5-small).")
    return named


def _read_pairs(pairs: str | os.PathLike[str] | Bitext, data_config: DataConfig | None) -> tuple[list[str], list[str]]:
    if isinstance(pairs, str | os.PathLike):
        from xlingual.data.readers import read_corpus

        corpus: Bitext = read_corpus(pairs, data_config)
    else:
        corpus = pairs
    en, ja = list(corpus.en), list(corpus.ja)
    _check_pairs(en, ja)
    return en, ja


def _evaluate_model(
    evaluator: TranslationEvaluator,
    embedder: SpecEmbedder,
    name: str,
    spec: ModelLike,
    *,
    reuse_teacher_en: bool,
    sts_data: StsData | None,
) -> tuple[Metrics, PairSimilarities]:
    """One model's report row (timed: loading, embedding, scoring) and its histogram data."""
    started = time.perf_counter()
    logger.info("evaluating %s on %d pairs", name, len(evaluator.en))
    teacher_en = evaluator.teacher_en_emb
    en_emb = teacher_en if reuse_teacher_en and teacher_en is not None else embedder(spec, evaluator.en)
    ja_emb = embedder(spec, evaluator.ja)
    result = evaluator.measure(en_emb, ja_emb)
    row: Metrics = {"model": name, "n_pairs": len(evaluator.en), **result.metrics}
    if sts_data is not None:
        row["sts_spearman"] = sts_spearman(
            embedder(spec, sts_data.first), embedder(spec, sts_data.second), sts_data.scores
        )
    row["seconds"] = round(time.perf_counter() - started, 3)
    ordered: Metrics = {k: row[k] for k in METRIC_KEYS if k in row}
    return ordered, PairSimilarities(name, result.ja2en.partner_scores, result.ja2en.best_wrong_scores)


def evaluate(
    models: Sequence[ModelLike] | Mapping[str, ModelLike],
    pairs: str | os.PathLike[str] | Bitext,
    teacher: ModelLike | None = None,
    *,
    config: EvalConfig | None = None,
    data_config: DataConfig | None = None,
    sts: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> EvalReport:
    """Evaluate each model on the same pairs; optionally against a teacher and on STS pairs.

    ``models``: specs (``builtin:me5-small``, a folder, a hub id), encoder objects, or a mapping
    name → either. ``pairs``: any corpus spec :func:`xlingual.data.readers.read_corpus` reads, or an object with
    ``en``/``ja`` lists. The teacher's English embeddings are computed once. With ``out_dir``, writes
    ``metrics.json``, ``config.json`` and ``similarity_histograms.png`` there.

    Example: ``evaluate(["builtin:me5-small"], "builtin:dev", teacher="builtin:minilm-en").format_table()``.
    """
    config = config or EvalConfig()
    named = _named(models)
    en_texts, ja_texts = _read_pairs(pairs, data_config)
    sts_data = read_sts(sts) if sts is not None else None
    embedder = SpecEmbedder(config)
    teacher_en = None
    if teacher is not None:
        logger.info("embedding %d English sentences with the teacher", len(en_texts))
        teacher_en = embedder(teacher, en_texts, prompt_name=config.teacher_prompt)
    evaluator = TranslationEvaluator(en_texts, ja_texts, teacher_en_emb=teacher_en, config=config)
    rows: list[Metrics] = []
    similarities: list[PairSimilarities] = []
    for name, spec in named:
        same_as_teacher = (
            teacher_en is not None and isinstance(spec, str) and spec == teacher and config.teacher_prompt is None
        )
        row, sims = _evaluate_model(
            evaluator, embedder, name, spec, reuse_teacher_en=same_as_teacher, sts_data=sts_data
        )
        rows.append(row)
        similarities.append(sims)
    report = EvalReport(rows, similarities)
    if out_dir is not None:
        report.save(
            out_dir,
            {
                "stage": "evaluate",
                "models": [name for name, _ in named],
                "pairs": str(pairs) if isinstance(pairs, str | os.PathLike) else f"<{type(pairs).__name__}>",
                "teacher": teacher if isinstance(teacher, str | None) else type(teacher).__name__,
                "sts": None if sts is None else str(sts),
                "eval_config": asdict(config),
                "data_config": None if data_config is None else asdict(data_config),
            },
        )
    return report
