"""Retrieval, cross-model and MSE metrics on embedding arrays; no models, no files.

Every array is ``(n, dim)`` float32, L2-normalised, row ``i`` of the English array translating row ``i``
of the Japanese one. Every nearest-neighbour search goes through :mod:`xlingual.search.faiss_ops` (exact
FAISS search, in blocks: no ``n × n`` matrix is built).

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
- ``sts_spearman`` — Spearman correlation of cosine similarity with gold scores (see :mod:`.sts`).
- ``n_pairs``, ``model``, ``seconds`` — added by :func:`xlingual.evaluation.evaluator.evaluate`.

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

    metrics = retrieval_metrics(en_emb, ja_emb)
    metrics["mean_acc"]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xlingual.config import EvalConfig
from xlingual.errors import ConfigError, DataError
from xlingual.search import faiss_ops

logger = logging.getLogger(__name__)

#: Cut-offs of the recall metrics (their names are fixed: ``en2ja_recall@5`` …).
RECALL_AT = (5, 10)
#: Neighbours in the hubness term of CSLS (Conneau et al., 2018, "Word translation without parallel data").
CSLS_K = 10
#: Scores within this of the true partner's count as ties (float32 rounding is ~1e-7).
TIE_ATOL = 1e-6
#: Allowance between FAISS's and NumPy's float32 arithmetic when deciding whether a shortcut is safe.
_ROUNDING = 1e-5

#: Every key :func:`~xlingual.evaluation.evaluator.evaluate` may report, in report order, with what it holds.
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
    "csls_cross_ja2en_acc": "cross_ja2en_acc ranked by CSLS (k=10): each document's hubness taken off",
    "csls_cross_en2ja_acc": "cross_en2ja_acc ranked by CSLS (k=10): each document's hubness taken off",
    "mse": "MSE×100, student(ja) vs teacher(en)",
    "mse_en": "MSE×100, student(en) vs teacher(en)",
    "sts_spearman": "Spearman correlation of cosine with gold STS scores",
    "seconds": "seconds to load, embed and score this model",
}
METRIC_KEYS: tuple[str, ...] = tuple(METRIC_DOCS)

#: One model's row of an evaluation: metric key → value (fractions; see the module docstring).
Metrics = dict[str, float | int | str | None]


# --------------------------------------------------------------------------- checks and groups


def _check_aligned(en_emb: np.ndarray, ja_emb: np.ndarray, what: str = "embeddings") -> None:
    if en_emb.shape[0] != ja_emb.shape[0]:
        raise DataError(
            f"Misaligned pairs: {en_emb.shape[0]} English but {ja_emb.shape[0]} Japanese {what}; "
            f"row i of one side must translate row i of the other."
        )
    if en_emb.shape[0] == 0:
        raise DataError(f"No pairs to evaluate (0 {what}); pass at least one en/ja pair.")


class TextGroups:
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


def partner_scores(query_emb: np.ndarray, doc_emb: np.ndarray, doc_groups: TextGroups | None = None) -> np.ndarray:
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
    doc_groups: TextGroups,
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
        counts = faiss_ops.count_at_least(query_emb[todo], doc_emb, limit[todo], block_size=block_size)
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
        for start, block_scores in faiss_ops.score_blocks(query_emb[todo], doc_emb, block_size=block_size):
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
    doc_groups: TextGroups,
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
    _check_aligned(np.asarray(en_emb), np.asarray(ja_emb))
    en_emb = faiss_ops.as_vectors("en_emb", en_emb)
    ja_emb = faiss_ops.as_vectors("ja_emb", ja_emb, dim=en_emb.shape[1])
    n = en_emb.shape[0]
    width = min(n, max(*RECALL_AT, config.margin_k, config.margin_candidates))
    en2ja = faiss_ops.knn(en_emb, ja_emb, width, block_size=config.block_size)
    ja2en = faiss_ops.knn(ja_emb, en_emb, width, block_size=config.block_size)
    k = min(config.margin_k, n)
    # LASER's neighbourhood means: each sentence's mean cosine with its k nearest in the other language.
    en_mean = en2ja[0][:, :k].mean(axis=1, dtype=np.float64)
    ja_mean = ja2en[0][:, :k].mean(axis=1, dtype=np.float64)
    en_groups, ja_groups = TextGroups(en_texts, n), TextGroups(ja_texts, n)
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
    doc_emb = faiss_ops.as_vectors("doc_emb", doc_emb)
    query_emb = faiss_ops.as_vectors("query_emb", query_emb, dim=doc_emb.shape[1])
    n = doc_emb.shape[0]
    cand_scores, cand_ids = faiss_ops.knn(query_emb, doc_emb, min(n, max(RECALL_AT)), block_size=block_size)
    groups = TextGroups(doc_texts, n)
    ranks, _ = partner_ranks(query_emb, doc_emb, cand_scores, cand_ids, groups, max_rank=1, block_size=block_size)
    return float(np.mean(ranks == 1))


def csls_top1_accuracy(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    *,
    k: int = CSLS_K,
    doc_texts: Sequence[str] | None = None,
    block_size: int | None = None,
) -> float:
    """Fraction of queries whose true partner ranks first by CSLS instead of cosine (tie and twin policy as above).

    ``CSLS(q, d) = 2·cos(q, d) − r_Q(d) − r_D(q)``, ``r_Q(d)`` the mean cosine of document ``d`` with its ``k``
    nearest queries: a *hub* — a document near everything — pays for it. ``r_D(q)`` is the same for every
    document of a query, so it cannot change the ranking and is left out. The queries here are the evaluated
    ones, so this is what a query-time correction could recover at best. ``query_emb``, ``doc_emb``:
    ``(n, dim)`` float32, L2-normalised, row ``i`` a pair. Example: ``csls_top1_accuracy(ja_emb, teacher_en)``.
    """
    _check_aligned(np.asarray(query_emb), np.asarray(doc_emb))
    doc_emb = faiss_ops.as_vectors("doc_emb", doc_emb)
    query_emb = faiss_ops.as_vectors("query_emb", query_emb, dim=doc_emb.shape[1])
    near_queries, _ = faiss_ops.knn(doc_emb, query_emb, min(k, query_emb.shape[0]), block_size=block_size)
    hubness = near_queries.mean(axis=1, dtype=np.float64).astype(np.float32)
    groups = TextGroups(doc_texts, doc_emb.shape[0])
    correct = 0
    for start, scores in faiss_ops.score_blocks(query_emb, doc_emb, block_size=block_size):
        csls = 2 * scores - hubness[None, :]
        own = groups.ids[start : start + scores.shape[0], None] == groups.ids[None, :]
        partner = np.where(own, csls, -np.inf).max(axis=1)
        beaten = (~own & (csls >= partner[:, None] - np.float32(TIE_ATOL))).any(axis=1)
        correct += int(np.count_nonzero(~beaten))
    return correct / query_emb.shape[0]


def cross_metrics(
    student_en: np.ndarray,
    student_ja: np.ndarray,
    teacher_en: np.ndarray,
    *,
    en_texts: Sequence[str] | None = None,
    ja_texts: Sequence[str] | None = None,
    block_size: int | None = None,
) -> dict[str, float]:
    """``cross_*_acc`` (cosine and CSLS), ``mse``, ``mse_en`` — the student against the teacher's space.

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
        "csls_cross_ja2en_acc": csls_top1_accuracy(student_ja, teacher_en, doc_texts=en_texts, block_size=block_size),
        "csls_cross_en2ja_acc": csls_top1_accuracy(teacher_en, student_ja, doc_texts=ja_texts, block_size=block_size),
        "mse": mse_x100(student_ja, teacher_en),
        "mse_en": mse_x100(student_en, teacher_en),
    }


# --------------------------------------------------------------------------- Spearman


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
