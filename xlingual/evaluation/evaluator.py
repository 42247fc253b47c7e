"""Evaluation: translation retrieval, cross-model alignment, MSE, STS and margin-based bitext mining.

The metric functions work on embedding arrays (``(n, dim)`` float32, L2-normalised, row ``i`` of the
English array translating row ``i`` of the Japanese one), so they are testable without models;
:func:`evaluate` and :func:`mine` add the models, files and reports. Every nearest-neighbour search
goes through :mod:`xlingual.search.faiss_ops` (exact FAISS search, in blocks: no ``n × n`` matrix is built).

Metric keys (fixed: other tools read them from ``--json`` and ``metrics.json``). Accuracies, recalls
and MRR are **fractions in [0, 1]**; tables show them ×100 (percent, as published Tatoeba numbers).

- ``en2ja_acc``, ``ja2en_acc``, ``mean_acc`` — top-1 translation retrieval: each English sentence
  queries all Japanese sentences (and vice versa); ``mean_acc`` is their mean (the primary metric).
- ``en2ja_recall@5`` … ``ja2en_recall@10`` — the true partner is among the first 5 / 10.
- ``en2ja_mrr``, ``ja2en_mrr`` — mean of ``1 / rank`` of the true partner, with exact ranks.
- ``margin_en2ja_acc``, ``margin_ja2en_acc`` — top-1 retrieval by the ratio margin of Artetxe &
  Schwenk (2019), ``cos(x, y) / ((mean cos of x's k NN + mean cos of y's k NN) / 2)``, k=4.
- ``cross_ja2en_acc`` (student Japanese queries → teacher English), ``cross_en2ja_acc`` (teacher English
  queries → student Japanese), ``mse`` (student(ja) vs teacher(en)), ``mse_en`` (student(en) vs
  teacher(en)) — only with a teacher. MSE is ``mean((student - teacher)²) × 100`` over all elements, as
  sentence-transformers' ``MSEEvaluator`` reports it, here on the L2-normalised embeddings.
- ``sts_spearman`` — Spearman correlation of cosine similarity with gold scores (only with ``sts=``).
- ``n_pairs``, ``model``, ``seconds`` (loading, embedding and scoring this model; the teacher's
  English embeddings are computed once and not counted).

**Rank and tie policy.** The rank of the true partner is ``1 + #{wrong candidates scoring ≥ the
partner's score − 1e-6}``: a wrong sentence that ties with the partner is ranked ahead of it, so a
collapsed encoder (all vectors equal) scores 0, not 100%. Accuracy is ``rank == 1``, recall@k is
``rank ≤ k``, MRR the mean of ``1 / rank``. Ranks come from the top candidates when the partner
provably sits among them, else from an exact blockwise count over all candidates (no sort).

**Duplicate sentences.** A candidate whose text equals the true partner's text is not a wrong
candidate (the twin of a repeated Japanese sentence is as correct as the partner itself), as in
sentence-transformers' ``TranslationEvaluator``.

**Margin candidates.** The best-margin sentence is searched among the ``margin_candidates`` (16)
nearest by cosine, then a bound — no sentence outside them can beat the best found, because its
cosine is at most the 16th and its neighbourhood mean at least the smallest one — is checked per query;
queries where the bound does not prove it are rescored against every sentence. The result is exact.

Example::

    report = evaluate(["builtin:me5-small", "runs/student"], "builtin:dev", teacher="builtin:minilm-en")
    print(report.format_table())
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

import numpy as np

from xlingual.config import DataConfig, EvalConfig, MineConfig
from xlingual.data.lines import text_lines
from xlingual.errors import ConfigError, DataError
from xlingual.models.specs import Encoder
from xlingual.search import faiss_ops as index

logger = logging.getLogger(__name__)

#: Cut-offs of the recall metrics (their names are fixed: ``en2ja_recall@5`` …).
RECALL_AT = (5, 10)
#: Scores within this of the true partner's count as ties (float32 rounding is ~1e-7).
TIE_ATOL = 1e-6
#: Allowance between FAISS's and NumPy's float32 arithmetic when deciding whether a shortcut is safe.
_ROUNDING = 1e-5

#: Every key :func:`evaluate` may report, in report order, with what it holds.
METRIC_DOCS: dict[str, str] = {
    "model": "model spec or name",
    "n_pairs": "number of evaluated pairs",
    "en2ja_acc": "top-1 accuracy, English queries over Japanese (fraction)",
    "ja2en_acc": "top-1 accuracy, Japanese queries over English (fraction)",
    "mean_acc": "mean of en2ja_acc and ja2en_acc (primary metric)",
    "en2ja_recall@5": "partner among the first 5, English queries",
    "en2ja_recall@10": "partner among the first 10, English queries",
    "ja2en_recall@5": "partner among the first 5, Japanese queries",
    "ja2en_recall@10": "partner among the first 10, Japanese queries",
    "en2ja_mrr": "mean reciprocal rank of the partner, English queries",
    "ja2en_mrr": "mean reciprocal rank of the partner, Japanese queries",
    "margin_en2ja_acc": "top-1 accuracy by ratio margin (k=4), English queries",
    "margin_ja2en_acc": "top-1 accuracy by ratio margin (k=4), Japanese queries",
    "cross_ja2en_acc": "student Japanese queries over teacher English embeddings",
    "cross_en2ja_acc": "teacher English queries over student Japanese embeddings",
    "mse": "MSE×100, student(ja) vs teacher(en)",
    "mse_en": "MSE×100, student(en) vs teacher(en)",
    "sts_spearman": "Spearman correlation of cosine with gold STS scores",
    "seconds": "seconds to load, embed and score this model",
}
METRIC_KEYS: tuple[str, ...] = tuple(METRIC_DOCS)
_PERCENT_KEYS = frozenset(k for k in METRIC_KEYS if k.endswith(("_acc", "_mrr", "_spearman")) or "_recall@" in k)

Metrics = dict[str, float | int | str | None]
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


# --------------------------------------------------------------------------- checks and groups


def _check_eval_config(config: EvalConfig) -> None:
    for name in ("batch_size", "margin_k", "margin_candidates"):
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f"EvalConfig.{name}={value} is not positive; pass 1 or more.")
    if config.block_size is not None and config.block_size < 1:
        raise ConfigError(f"EvalConfig.block_size={config.block_size} is not positive; pass 1 or more, or None.")


def _check_aligned(en_emb: np.ndarray, ja_emb: np.ndarray, what: str = "embeddings") -> None:
    if en_emb.shape[0] != ja_emb.shape[0]:
        raise DataError(
            f"Misaligned pairs: {en_emb.shape[0]} English but {ja_emb.shape[0]} Japanese {what}; "
            f"row i of one side must translate row i of the other."
        )
    if en_emb.shape[0] == 0:
        raise DataError(f"No pairs to evaluate (0 {what}); pass at least one en/ja pair.")


class _Groups:
    """Sentences grouped by identical text: ``ids[i] == ids[j]`` iff ``texts[i] == texts[j]``."""

    def __init__(self, texts: Sequence[str] | None, n: int) -> None:
        if texts is None:
            self.ids = np.arange(n, dtype=np.int64)
        else:
            if len(texts) != n:
                raise DataError(f"{len(texts)} texts for {n} embeddings; pass one text per row.")
            seen: dict[str, int] = {}
            self.ids = np.fromiter((seen.setdefault(t, len(seen)) for t in texts), dtype=np.int64, count=n)
        counts = np.bincount(self.ids)
        shared = np.flatnonzero(counts[self.ids] > 1)
        order = shared[np.argsort(self.ids[shared], kind="stable")]
        self.members: dict[int, np.ndarray] = {}
        if order.size:
            cuts = np.flatnonzero(np.diff(self.ids[order])) + 1
            for members in np.split(order, cuts):
                self.members[int(self.ids[members[0]])] = members

    def of(self, row: int) -> np.ndarray:
        """Rows sharing row ``row``'s text (``row`` included)."""
        return self.members.get(int(self.ids[row]), np.array([row], dtype=np.int64))


# --------------------------------------------------------------------------- ranks


def partner_scores(query_emb: np.ndarray, doc_emb: np.ndarray, doc_groups: _Groups | None = None) -> np.ndarray:
    """Cosine of each query with its true partner ``doc_emb[i]`` (best twin if its text repeats): ``(n,)``."""
    scores = np.einsum("ij,ij->i", query_emb, doc_emb).astype(np.float32)
    if doc_groups is not None:
        for members in doc_groups.members.values():
            for start in range(0, len(members), 1024):
                rows = members[start : start + 1024]
                scores[rows] = (query_emb[rows] @ doc_emb[members].T).max(axis=1)
    return scores


def partner_ranks(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    cand_scores: np.ndarray,
    cand_ids: np.ndarray,
    doc_groups: _Groups,
    *,
    max_rank: int | None = None,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact rank of each query's true partner (1 = first) and the partner scores: ``(n,)`` int64, float32.

    ``cand_scores``/``cand_ids``: ``(n, K)`` top-K from :func:`xlingual.search.faiss_ops.knn`. With ``max_rank``,
    ranks above it are reported as ``max_rank + 1`` (enough for accuracy, and no full count needed).
    """
    n_docs = doc_emb.shape[0]
    own = doc_groups.ids[: query_emb.shape[0]]
    ref = partner_scores(query_emb, doc_emb, doc_groups)
    limit = ref - np.float32(TIE_ATOL)
    wrong = doc_groups.ids[cand_ids] != own[:, None]
    ranks = 1 + np.count_nonzero(wrong & (cand_scores >= limit[:, None]), axis=1).astype(np.int64)
    # Everything outside the top K scores at most the K-th score: if that is safely below the limit,
    # the count inside the top K is the full count.
    resolved = (cand_ids.shape[1] >= n_docs) | (cand_scores[:, -1] < limit - _ROUNDING)
    if max_rank is not None:
        resolved |= ranks > max_rank
    todo = np.flatnonzero(~resolved)
    if todo.size:
        logger.debug("exact rank count for %d of %d queries", todo.size, len(ranks))
        counts = index.count_at_least(query_emb[todo], doc_emb, limit[todo], block_size=block_size)
        # The partner's own twins were counted too; take them off (singletons: just the partner).
        twins = np.ones(todo.size, dtype=np.int64)
        for pos in np.flatnonzero(np.isin(doc_groups.ids[todo], list(doc_groups.members))):
            row = todo[pos]
            twins[pos] = np.count_nonzero(doc_emb[doc_groups.of(row)] @ query_emb[row] >= limit[row])
        ranks[todo] = 1 + np.maximum(0, counts - twins)
    if max_rank is not None:
        ranks = np.minimum(ranks, max_rank + 1)
    return ranks, ref


# --------------------------------------------------------------------------- margin


def _ratio(cos: np.ndarray, denom: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, cos / denom, -np.inf).astype(np.float32)


def best_margin(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    cand_scores: np.ndarray,
    cand_ids: np.ndarray,
    query_mean: np.ndarray,
    doc_mean: np.ndarray,
    *,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The document with the highest ratio margin for each query, exactly: ids ``(n,)`` int64, margins ``(n,)``.

    ``margin(x, y) = cos(x, y) / ((query_mean[x] + doc_mean[y]) / 2)`` where the means are each
    side's mean cosine with its k nearest neighbours in the other language (``(n,)`` and ``(m,)``).
    ``cand_*``: ``(n, K)`` top-K by cosine, best first. Pairs with a non-positive denominator get
    margin ``-inf``. Ties go to the higher cosine, then the lower id.
    """
    rows = np.arange(cand_ids.shape[0])
    margins = _ratio(cand_scores, (query_mean[:, None] + doc_mean[cand_ids]) / 2)
    pick = np.argmax(margins, axis=1)
    best_ids = cand_ids[rows, pick].astype(np.int64)
    best = margins[rows, pick]
    if cand_ids.shape[1] >= doc_emb.shape[0]:
        return best_ids, best
    # Upper bound on any margin outside the candidates: cosine ≤ the K-th, denominator ≥ the smallest.
    top_out = cand_scores[:, -1].astype(np.float64) + _ROUNDING
    low = (query_mean + doc_mean.min()) / 2.0
    high = (query_mean + doc_mean.max()) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(
            top_out >= 0,
            np.where(low > 0, top_out / low, np.inf),
            np.where(high > 0, top_out / high, -np.inf),
        )
    todo = np.flatnonzero(~(best > bound))
    if todo.size:
        logger.info("margin: %d of %d queries rescored against every candidate", todo.size, len(rows))
        for start, block_scores in index.score_blocks(query_emb[todo], doc_emb, block_size=block_size):
            sel = todo[start : start + block_scores.shape[0]]
            block_margins = _ratio(block_scores, (query_mean[sel, None] + doc_mean[None, :]) / 2)
            top = block_margins.max(axis=1)
            tied_cos = np.where(block_margins == top[:, None], block_scores, -np.inf)
            best_ids[sel] = np.argmax(tied_cos, axis=1)
            best[sel] = top
    return best_ids, best


# --------------------------------------------------------------------------- retrieval metrics


@dataclass(frozen=True)
class DirectionResult:
    """Per-query results of one retrieval direction (all arrays ``(n,)``)."""

    #: Rank of the true partner, 1 = first (int64).
    ranks: np.ndarray
    #: Cosine with the true partner (float32).
    partner_scores: np.ndarray
    #: Cosine of the best wrong candidate (float32; NaN when the top candidates are all twins).
    best_wrong_scores: np.ndarray
    #: Whether the best-margin candidate is the partner (bool).
    margin_hits: np.ndarray

    def metrics(self, prefix: str) -> dict[str, float]:
        """``{prefix}_acc``, ``{prefix}_recall@k``, ``{prefix}_mrr``, ``margin_{prefix}_acc`` as fractions."""
        out = {f"{prefix}_acc": float(np.mean(self.ranks == 1))}
        for cut in RECALL_AT:
            out[f"{prefix}_recall@{cut}"] = float(np.mean(self.ranks <= cut))
        out[f"{prefix}_mrr"] = float(np.mean(1.0 / self.ranks))
        out[f"margin_{prefix}_acc"] = float(np.mean(self.margin_hits))
        return out


def _direction(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    cand: tuple[np.ndarray, np.ndarray],
    doc_groups: _Groups,
    query_mean: np.ndarray,
    doc_mean: np.ndarray,
    config: EvalConfig,
) -> DirectionResult:
    cand_scores, cand_ids = cand
    ranks, ref = partner_ranks(query_emb, doc_emb, cand_scores, cand_ids, doc_groups, block_size=config.block_size)
    own = doc_groups.ids
    wrong = doc_groups.ids[cand_ids] != own[:, None]
    rows = np.arange(len(ranks))
    first_wrong = np.argmax(wrong, axis=1)
    best_wrong = np.where(wrong.any(axis=1), cand_scores[rows, first_wrong], np.nan).astype(np.float32)
    width = min(config.margin_candidates, cand_ids.shape[1])
    best_ids, _ = best_margin(
        query_emb,
        doc_emb,
        cand_scores[:, :width],
        cand_ids[:, :width],
        query_mean,
        doc_mean,
        block_size=config.block_size,
    )
    return DirectionResult(ranks, ref, best_wrong, doc_groups.ids[best_ids] == own)


def retrieval_directions(
    en_emb: np.ndarray,
    ja_emb: np.ndarray,
    *,
    en_texts: Sequence[str] | None = None,
    ja_texts: Sequence[str] | None = None,
    config: EvalConfig | None = None,
) -> tuple[DirectionResult, DirectionResult]:
    """Both retrieval directions, ``(en2ja, ja2en)``, from one k-NN search each way.

    ``en_emb``, ``ja_emb``: ``(n, dim)`` float32, L2-normalised, row ``i`` a translation pair. With
    texts, candidates whose text equals the partner's count as correct (see the module docstring).
    """
    config = config or EvalConfig()
    _check_eval_config(config)
    _check_aligned(np.asarray(en_emb), np.asarray(ja_emb))
    en_emb = index.as_vectors("en_emb", en_emb)
    ja_emb = index.as_vectors("ja_emb", ja_emb, dim=en_emb.shape[1])
    n = en_emb.shape[0]
    width = min(n, max(*RECALL_AT, config.margin_k, config.margin_candidates))
    en2ja = index.knn(en_emb, ja_emb, width, block_size=config.block_size)
    ja2en = index.knn(ja_emb, en_emb, width, block_size=config.block_size)
    k = min(config.margin_k, n)
    # LASER's neighbourhood means: each sentence's mean cosine with its k nearest in the other language.
    en_mean = en2ja[0][:, :k].mean(axis=1, dtype=np.float64)
    ja_mean = ja2en[0][:, :k].mean(axis=1, dtype=np.float64)
    en_groups, ja_groups = _Groups(en_texts, n), _Groups(ja_texts, n)
    return (
        _direction(en_emb, ja_emb, en2ja, ja_groups, en_mean, ja_mean, config),
        _direction(ja_emb, en_emb, ja2en, en_groups, ja_mean, en_mean, config),
    )


def retrieval_metrics(
    en_emb: np.ndarray,
    ja_emb: np.ndarray,
    *,
    en_texts: Sequence[str] | None = None,
    ja_texts: Sequence[str] | None = None,
    config: EvalConfig | None = None,
) -> dict[str, float]:
    """Accuracy, recall@5/10, MRR and margin accuracy both ways, as fractions.

    ``en_emb``, ``ja_emb``: ``(n, dim)`` float32, L2-normalised, row ``i`` a translation pair.
    Example: ``retrieval_metrics(en_emb, ja_emb)["mean_acc"]``.
    """
    en2ja, ja2en = retrieval_directions(en_emb, ja_emb, en_texts=en_texts, ja_texts=ja_texts, config=config)
    out = {**en2ja.metrics("en2ja"), **ja2en.metrics("ja2en")}
    out["mean_acc"] = (out["en2ja_acc"] + out["ja2en_acc"]) / 2
    return out


def mse_x100(student_emb: np.ndarray, teacher_emb: np.ndarray) -> float:
    """``mean((student - teacher)²) × 100`` over all elements (sentence-transformers' ``MSEEvaluator``).

    Both ``(n, dim)`` float32; summed in float64, one block at a time.
    """
    if student_emb.shape != teacher_emb.shape:
        raise ConfigError(
            f"Student embeddings {student_emb.shape} and teacher embeddings {teacher_emb.shape} differ in "
            f"shape; MSE needs the same pairs embedded in one space (same dimension)."
        )
    total = 0.0
    for start in range(0, student_emb.shape[0], 8192):
        diff = student_emb[start : start + 8192].astype(np.float64) - teacher_emb[start : start + 8192]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total / student_emb.size * 100


def top1_accuracy(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    *,
    doc_texts: Sequence[str] | None = None,
    block_size: int | None = None,
) -> float:
    """Fraction of queries whose true partner ``doc_emb[i]`` ranks first (tie and twin policy as above).

    ``query_emb``, ``doc_emb``: ``(n, dim)`` float32, L2-normalised.
    """
    _check_aligned(np.asarray(query_emb), np.asarray(doc_emb))
    doc_emb = index.as_vectors("doc_emb", doc_emb)
    query_emb = index.as_vectors("query_emb", query_emb, dim=doc_emb.shape[1])
    n = doc_emb.shape[0]
    cand_scores, cand_ids = index.knn(query_emb, doc_emb, min(n, max(RECALL_AT)), block_size=block_size)
    groups = _Groups(doc_texts, n)
    ranks, _ = partner_ranks(query_emb, doc_emb, cand_scores, cand_ids, groups, max_rank=1, block_size=block_size)
    return float(np.mean(ranks == 1))


def cross_metrics(
    student_en: np.ndarray,
    student_ja: np.ndarray,
    teacher_en: np.ndarray,
    *,
    en_texts: Sequence[str] | None = None,
    ja_texts: Sequence[str] | None = None,
    block_size: int | None = None,
) -> dict[str, float]:
    """``cross_ja2en_acc``, ``cross_en2ja_acc``, ``mse``, ``mse_en`` — the student against the teacher's space.

    All ``(n, dim)`` float32, L2-normalised, row ``i`` a pair; the student must have the teacher's dim.
    """
    if student_ja.shape[1] != teacher_en.shape[1]:
        raise ConfigError(
            f"The teacher embeds in {teacher_en.shape[1]} dimensions but the student in {student_ja.shape[1]}; "
            f"cross-model metrics compare vectors in one space. Pass the teacher the student was distilled "
            f"from, or drop the teacher."
        )
    _check_aligned(student_en, teacher_en, "student/teacher embeddings")
    _check_aligned(teacher_en, student_ja, "student/teacher embeddings")
    return {
        "cross_ja2en_acc": top1_accuracy(student_ja, teacher_en, doc_texts=en_texts, block_size=block_size),
        "cross_en2ja_acc": top1_accuracy(teacher_en, student_ja, doc_texts=ja_texts, block_size=block_size),
        "mse": mse_x100(student_ja, teacher_en),
        "mse_en": mse_x100(student_en, teacher_en),
    }


# --------------------------------------------------------------------------- STS


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their positions (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(values))
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties; NaN when either side is constant."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise DataError(f"Spearman needs two equal-length 1-D series of ≥ 2 values, got {x.shape} and {y.shape}.")
    rx, ry = _average_ranks(x) - (len(x) + 1) / 2, _average_ranks(y) - (len(y) + 1) / 2
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else math.nan


@dataclass(frozen=True)
class StsData:
    """Scored sentence pairs: ``first[i]`` and ``second[i]`` have gold similarity ``scores[i]``."""

    first: list[str]
    second: list[str]
    scores: list[float]


def _columns_problem(where: str, n_cols: int, layout: str) -> DataError:
    """``a.tsv:3: 1 column, expected 2 (src<TAB>tgt); …`` with the fix for too few or too many tabs."""
    expected = layout.count("<TAB>") + 1
    fix = (
        "separate the fields with one tab each"
        if n_cols < expected
        else f"remove tabs inside the sentences or keep only {expected} columns (e.g. cut -f1-{expected})"
    )
    return DataError(f"{where}: {n_cols} column{'s' if n_cols != 1 else ''}, expected {expected} ({layout}); {fix}")


def _tsv_rows(file: Path, layout: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank line of ``file``, which must have ``layout``'s column count."""
    expected = layout.count("<TAB>") + 1
    for line_no, line in text_lines(file):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != expected:
            raise _columns_problem(f"{file}:{line_no}", len(cols), layout)
        yield line_no, cols


def read_sts(path: str | os.PathLike[str]) -> StsData:
    """Read ``sentence1<TAB>sentence2<TAB>score`` lines (UTF-8, gzip allowed); a header row is skipped.

    Example: ``read_sts("sts.tsv").scores``.
    """
    file = Path(path)
    first: list[str] = []
    second: list[str] = []
    scores: list[float] = []
    header_allowed = True
    for line_no, cols in _tsv_rows(file, "sentence1<TAB>sentence2<TAB>score"):
        try:
            score = float(cols[2])
        except ValueError:
            if header_allowed:  # the first row names the columns
                header_allowed = False
                continue
            raise DataError(
                f"{file}:{line_no}: score {cols[2]!r} is not a number; write a number such as 3.8"
            ) from None
        header_allowed = False
        if not math.isfinite(score):
            raise DataError(f"{file}:{line_no}: score {cols[2]!r} is not a finite number; write a number such as 3.8")
        first.append(cols[0])
        second.append(cols[1])
        scores.append(score)
    if len(scores) < 2 or len(set(scores)) < 2:
        raise DataError(
            f"{file}: {len(scores)} scored pairs with {len(set(scores))} distinct scores; need ≥ 2 of each."
        )
    return StsData(first, second, scores)


def sts_spearman(first_emb: np.ndarray, second_emb: np.ndarray, gold: Sequence[float]) -> float:
    """Spearman correlation of ``cos(first_emb[i], second_emb[i])`` with ``gold[i]``; ``(n, dim)`` L2-normalised."""
    return spearman(np.einsum("ij,ij->i", first_emb, second_emb), gold)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class PairSimilarities:
    """For the histogram plot: Japanese-query cosines with the true partner and the best wrong candidate."""

    model: str
    partner_scores: np.ndarray
    best_wrong_scores: np.ndarray


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class EvalReport:
    """Metrics of one or more models on the same pairs.

    ``metrics[i]`` is one model's dict with keys from :data:`METRIC_KEYS`, in that order (fractions;
    see the module docstring). Example: ``print(report.to_json_lines())``.
    """

    metrics: list[Metrics]
    similarities: list[PairSimilarities] = field(default_factory=list, repr=False)
    primary_metric: ClassVar[str] = "mean_acc"

    def to_json_lines(self) -> str:
        """One JSON object per model, one per line (NaN becomes ``null``)."""
        return "\n".join(
            json.dumps({k: _json_safe(v) for k, v in row.items()}, ensure_ascii=False) for row in self.metrics
        )

    def format_table(self) -> str:
        """Models side by side, one metric per line; fractions shown as percent."""
        names = [str(row["model"]) for row in self.metrics]
        keys = [k for k in METRIC_KEYS if k != "model" and any(k in row for row in self.metrics)]
        key_width = max(len(k) for k in keys)
        widths = [max(len(name), 8) for name in names]
        lines = ["  ".join([f"{'metric':<{key_width}}", *(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))])]
        for key in keys:
            cells = [_format_cell(key, row.get(key)) for row in self.metrics]
            lines.append("  ".join([f"{key:<{key_width}}", *(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))]))
        lines.append("acc, recall, MRR and Spearman in %; mse = mean squared error ×100 (sentence-transformers).")
        return "\n".join(lines)

    def save(self, out_dir: str | os.PathLike[str], config: Mapping[str, Any]) -> list[Path]:
        """Write ``metrics.json``, ``config.json`` and ``similarity_histograms.png`` into ``out_dir``.

        The JSON files are replaced atomically. Returns the written paths.
        """
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "primary_metric": self.primary_metric,
            "models": [{k: _json_safe(v) for k, v in row.items()} for row in self.metrics],
        }
        written = [folder / "metrics.json", folder / "config.json"]
        _write_atomic(written[0], json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        _write_atomic(written[1], json.dumps(config, ensure_ascii=False, indent=2, default=str) + "\n")
        if self.similarities:
            written.append(_plot_histograms(self.similarities, folder / "similarity_histograms.png"))
        return written


def _format_cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if key in _PERCENT_KEYS:
        return f"{100 * float(value):.2f}"
    if key in ("mse", "mse_en"):
        return f"{float(value):.4f}"
    if key == "seconds":
        return f"{float(value):.1f}"
    return str(value)


def _plot_histograms(similarities: Sequence[PairSimilarities], path: Path) -> Path:
    # The object API with an explicit Agg canvas: no pyplot, so the caller's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(similarities), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(similarities), squeeze=False)[0]
    for ax, sims in zip(axes, similarities, strict=True):
        wrong = sims.best_wrong_scores[np.isfinite(sims.best_wrong_scores)]
        values = np.concatenate([sims.partner_scores, wrong])
        bins = np.linspace(float(values.min()), float(values.max()) + 1e-6, 51)
        ax.hist(sims.partner_scores, bins=bins, alpha=0.6, label="true pair")
        ax.hist(wrong, bins=bins, alpha=0.6, label="best wrong candidate")
        ax.set_title(sims.model, fontsize=9)
        ax.set_xlabel("cosine (Japanese query → English)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- evaluate


def _load(model: ModelLike, device: str | None) -> Encoder:
    if isinstance(model, str):
        from xlingual.models.specs import load_model

        return cast(Encoder, load_model(model, device=device))
    if not callable(getattr(model, "encode", None)):
        raise ConfigError(f"{type(model).__name__} has no encode() method; pass a model spec or a SentenceTransformer.")
    return model


def _encode(model: Encoder, texts: Sequence[str], batch_size: int, show_progress: bool) -> np.ndarray:
    from xlingual.models.specs import encode

    return encode(model, texts, batch_size=batch_size, show_progress=show_progress)


def _spec_cache_key(spec: str, texts: Sequence[str]) -> str | None:
    """Cache key of a model spec's embeddings of ``texts`` (the distillation's teacher convention), or None.

    The key is the folder's content fingerprint (weights, prompts and settings included) plus its
    ``max_seq_length``, so the teacher vectors cached by ``xlingual distill`` are found here too.
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
        return cache_key(fingerprint(path), texts, max_seq_length=1, extra="max_seq_length:from-folder")
    return cache_key(fingerprint(path), texts, max_seq_length=max_seq_length)


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
    if len(en) != len(ja):
        raise DataError(
            f"Misaligned pairs: {len(en)} English but {len(ja)} Japanese sentences; en[i] must translate ja[i]."
        )
    if not en:
        raise DataError("No pairs to evaluate; the corpus is empty.")
    return en, ja


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
    _check_eval_config(config)
    named = _named(models)
    en_texts, ja_texts = _read_pairs(pairs, data_config)
    sts_data = read_sts(sts) if sts is not None else None
    loaded: dict[str, Encoder] = {}

    def load(model: ModelLike) -> Encoder:
        if isinstance(model, str):
            if model not in loaded:
                loaded[model] = _load(model, config.device)
            return loaded[model]
        return _load(model, config.device)

    def embed(model: Encoder, texts: Sequence[str]) -> np.ndarray:
        return _encode(model, texts, config.batch_size, config.show_progress)

    def embed_spec(spec: ModelLike, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` by ``spec``, from the on-disk cache when the spec names a local model."""
        key = _spec_cache_key(spec, texts) if config.cache and isinstance(spec, str) else None
        if key is None:
            return embed(load(spec), texts)
        from xlingual.cache import EmbeddingCache

        cached = EmbeddingCache().get_or_compute(
            key, texts, lambda chunk: embed(load(spec), chunk), meta={"model": str(spec)}
        )
        return np.asarray(cached)

    teacher_en = None
    if teacher is not None:
        logger.info("embedding %d English sentences with the teacher", len(en_texts))
        teacher_en = embed_spec(teacher, en_texts)

    rows: list[Metrics] = []
    similarities: list[PairSimilarities] = []
    for name, spec in named:
        started = time.perf_counter()
        logger.info("evaluating %s on %d pairs", name, len(en_texts))
        same_as_teacher = teacher_en is not None and isinstance(spec, str) and spec == teacher
        en_emb = teacher_en if same_as_teacher and teacher_en is not None else embed_spec(spec, en_texts)
        ja_emb = embed_spec(spec, ja_texts)
        en2ja, ja2en = retrieval_directions(en_emb, ja_emb, en_texts=en_texts, ja_texts=ja_texts, config=config)
        scores = {**en2ja.metrics("en2ja"), **ja2en.metrics("ja2en")}
        scores["mean_acc"] = (scores["en2ja_acc"] + scores["ja2en_acc"]) / 2
        row: Metrics = {"model": name, "n_pairs": len(en_texts), **scores}
        if teacher_en is not None:
            row.update(
                cross_metrics(
                    en_emb, ja_emb, teacher_en, en_texts=en_texts, ja_texts=ja_texts, block_size=config.block_size
                )
            )
        if sts_data is not None:
            row["sts_spearman"] = sts_spearman(
                embed_spec(spec, sts_data.first), embed_spec(spec, sts_data.second), sts_data.scores
            )
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append({k: row[k] for k in METRIC_KEYS if k in row})
        similarities.append(PairSimilarities(name, ja2en.partner_scores, ja2en.best_wrong_scores))

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


# --------------------------------------------------------------------------- mining


class MineMode(StrEnum):
    """Which margin matches become pairs (LASER's ``--retrieval``)."""

    FORWARD = "forward"  # the best target of every source
    BACKWARD = "backward"  # the best source of every target
    INTERSECT = "intersect"  # mutual best matches only
    MAX = "max"  # both directions, greedily one-to-one by decreasing score


@dataclass(frozen=True)
class MinedPair:
    """``src[src_idx]`` and ``tgt[tgt_idx]`` look like translations with ratio margin ``score``."""

    src_idx: int
    tgt_idx: int
    score: float


@dataclass(frozen=True)
class MiningScores:
    """BUCC-style scores of mined pairs against gold pairs (fractions)."""

    precision: float
    recall: float
    f1: float
    n_mined: int
    n_gold: int
    n_correct: int

    def as_dict(self) -> dict[str, float | int]:
        """The scores as a plain dict (for JSON)."""
        return asdict(self)


def _check_mine_config(config: MineConfig) -> MineMode:
    for name in ("k", "candidates", "batch_size"):
        value = getattr(config, name)
        if value < 1:
            raise ConfigError(f"MineConfig.{name}={value} is not positive; pass 1 or more.")
    try:
        return MineMode(config.mode)
    except ValueError:
        choices = ", ".join(m.value for m in MineMode)
        raise ConfigError(f"Mining mode {config.mode!r} is unknown; choose one of: {choices}.") from None


def mine_embeddings(src_emb: np.ndarray, tgt_emb: np.ndarray, *, config: MineConfig | None = None) -> list[MinedPair]:
    """Margin-based bitext mining between two unaligned sets, best score first.

    ``src_emb``: ``(n, dim)``, ``tgt_emb``: ``(m, dim)``, float32, L2-normalised. Keeps pairs with
    ``score >= config.threshold`` (ratio margin, k neighbours each side; exact best-margin search).
    Example: ``mine_embeddings(ja_emb, en_emb, config=MineConfig(threshold=1.04))``.
    """
    config = config or MineConfig()
    mode = _check_mine_config(config)
    src = index.as_vectors("src_emb", src_emb)
    tgt = index.as_vectors("tgt_emb", tgt_emb, dim=src.shape[1])
    fwd = index.knn(src, tgt, min(tgt.shape[0], max(config.k, config.candidates)), block_size=config.block_size)
    bwd = index.knn(tgt, src, min(src.shape[0], max(config.k, config.candidates)), block_size=config.block_size)
    src_mean = fwd[0][:, : config.k].mean(axis=1, dtype=np.float64)
    tgt_mean = bwd[0][:, : config.k].mean(axis=1, dtype=np.float64)
    fwd_best, fwd_score = best_margin(
        src,
        tgt,
        fwd[0][:, : config.candidates],
        fwd[1][:, : config.candidates],
        src_mean,
        tgt_mean,
        block_size=config.block_size,
    )
    bwd_best, bwd_score = best_margin(
        tgt,
        src,
        bwd[0][:, : config.candidates],
        bwd[1][:, : config.candidates],
        tgt_mean,
        src_mean,
        block_size=config.block_size,
    )
    candidates: list[MinedPair]
    if mode is MineMode.FORWARD:
        candidates = [MinedPair(i, int(j), float(s)) for i, (j, s) in enumerate(zip(fwd_best, fwd_score, strict=True))]
    elif mode is MineMode.BACKWARD:
        candidates = [MinedPair(int(i), j, float(s)) for j, (i, s) in enumerate(zip(bwd_best, bwd_score, strict=True))]
    elif mode is MineMode.INTERSECT:
        # The ratio margin is symmetric, so a mutual best pair has one score.
        candidates = [MinedPair(i, int(j), float(fwd_score[i])) for i, j in enumerate(fwd_best) if bwd_best[j] == i]
    else:
        src_ids = np.concatenate([np.arange(src.shape[0]), bwd_best])
        tgt_ids = np.concatenate([fwd_best, np.arange(tgt.shape[0])])
        scores = np.concatenate([fwd_score, bwd_score])
        seen_src: set[int] = set()
        seen_tgt: set[int] = set()
        candidates = []
        for pos in np.argsort(-scores, kind="stable"):
            i, j = int(src_ids[pos]), int(tgt_ids[pos])
            if i not in seen_src and j not in seen_tgt:
                seen_src.add(i)
                seen_tgt.add(j)
                candidates.append(MinedPair(i, j, float(scores[pos])))
    kept = [pair for pair in candidates if pair.score >= config.threshold]
    kept.sort(key=lambda p: (-p.score, p.src_idx, p.tgt_idx))
    return kept


def mine(
    model: ModelLike,
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
    *,
    config: MineConfig | None = None,
) -> list[MinedPair]:
    """Embed two unaligned sentence lists with ``model`` and mine translation pairs (see :func:`mine_embeddings`).

    Example: ``mine("runs/student", read_lines("ja.txt"), read_lines("en.txt"))``.
    """
    config = config or MineConfig()
    _check_mine_config(config)
    if not src_texts or not tgt_texts:
        raise DataError(f"Nothing to mine: {len(src_texts)} source and {len(tgt_texts)} target sentences.")
    encoder = _load(model, config.device)
    src_emb = _encode(encoder, src_texts, config.batch_size, config.show_progress)
    tgt_emb = _encode(encoder, tgt_texts, config.batch_size, config.show_progress)
    return mine_embeddings(src_emb, tgt_emb, config=config)


def mine_scores_vs_gold(
    mined: Iterable[MinedPair],
    gold: Iterable[tuple[str, str]],
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
) -> MiningScores:
    """Precision, recall and F1 of ``mined`` against gold ``(src_text, tgt_text)`` pairs.

    Pairs are compared by text, so a repeated sentence matches whichever copy was mined; each
    distinct text pair counts once.
    """
    gold_set = set(gold)
    mined_set = {(src_texts[p.src_idx], tgt_texts[p.tgt_idx]) for p in mined}
    correct = len(mined_set & gold_set)
    precision = correct / len(mined_set) if mined_set else 0.0
    recall = correct / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return MiningScores(precision, recall, f1, len(mined_set), len(gold_set), correct)


def best_threshold(
    mined: Sequence[MinedPair],
    gold: Iterable[tuple[str, str]],
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
) -> tuple[float, MiningScores]:
    """The threshold with the best F1 on ``gold`` and the scores there (ties: the higher threshold).

    ``mined`` should come from a run with a low threshold (e.g. ``-inf``) so every cut can be tried;
    the result keeps the pairs with ``score >= threshold``.
    """
    if not mined:
        raise ConfigError("No mined pairs to tune a threshold on; mine with a lower threshold (e.g. -inf).")
    gold_set = set(gold)
    ordered = sorted(mined, key=lambda p: -p.score)
    seen: set[tuple[str, str]] = set()
    correct = 0
    cuts: list[tuple[float, MiningScores]] = []
    for pos, pair in enumerate(ordered):
        key = (src_texts[pair.src_idx], tgt_texts[pair.tgt_idx])
        if key not in seen:
            seen.add(key)
            correct += key in gold_set
        if pos + 1 < len(ordered) and ordered[pos + 1].score == pair.score:
            continue  # a threshold cannot split equal scores
        precision = correct / len(seen)
        recall = correct / len(gold_set) if gold_set else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        cuts.append((pair.score, MiningScores(precision, recall, f1, len(seen), len(gold_set), correct)))
    # max() keeps the first of equal F1s: the highest threshold.
    return max(cuts, key=lambda cut: cut[1].f1)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """Read one sentence per line (UTF-8, gzip allowed), stripped; blank lines are skipped.

    Example: ``read_lines("ja.txt")``.
    """
    file = Path(path)
    sentences = [text for _, line in text_lines(file) if (text := line.strip())]
    if not sentences:
        raise DataError(f"{file}: no sentences (the file is empty or blank); pass one sentence per line.")
    return sentences


def read_gold(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read gold pairs, one ``src<TAB>tgt`` per line (the texts, as in the mined files; UTF-8, gzip allowed).

    Example: ``read_gold("gold.tsv")[0] == ("猫が好き。", "I like cats.")``.
    """
    file = Path(path)
    pairs: list[tuple[str, str]] = []
    for _, cols in _tsv_rows(file, "src<TAB>tgt"):
        pairs.append((cols[0].strip(), cols[1].strip()))
    if not pairs:
        raise DataError(f"{file}: no gold pairs; write one src<TAB>tgt pair per line.")
    return pairs


def mined_tsv_lines(mined: Iterable[MinedPair], src_texts: Sequence[str], tgt_texts: Sequence[str]) -> Iterable[str]:
    """``score<TAB>src<TAB>tgt`` lines (LASER's order), tabs inside sentences turned into spaces."""
    for pair in mined:
        src = src_texts[pair.src_idx].replace("\t", " ")
        tgt = tgt_texts[pair.tgt_idx].replace("\t", " ")
        yield f"{pair.score:.6f}\t{src}\t{tgt}"


def write_mined(
    path: str | os.PathLike[str], mined: Iterable[MinedPair], src_texts: Sequence[str], tgt_texts: Sequence[str]
) -> Path:
    """Write :func:`mined_tsv_lines` to ``path`` atomically; returns the path."""
    file = Path(path)
    if file.parent != Path():
        file.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(file, "".join(line + "\n" for line in mined_tsv_lines(mined, src_texts, tgt_texts)))
    return file
