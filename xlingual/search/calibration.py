"""Tuning an approximate index's search knob (HNSW efSearch, IVF nprobe) to a target recall.

Recall is measured against exact search (the flat vectors inside the index), with ties tolerated, on
queries the index has not seen: vectors held out of the build (:func:`build_calibrated`, what
``xlingual index build`` does), the new passages of an ``add``, or synthetic probes near the corpus
(:func:`probe_queries`) when there are none.

Example::

    built, spec = build_calibrated(vectors, choose_index(len(vectors), dim), target_recall=0.95)
    spec.ef_search, spec.calibrated_recall        # e.g. 48, 0.957
"""

from __future__ import annotations

import logging
from dataclasses import replace

import faiss
import numpy as np

from xlingual.choices import IndexType
from xlingual.config import IndexConfig
from xlingual.errors import SearchIndexError
from xlingual.search.ann import (
    IVF_MIN_TRAIN,
    IndexSpec,
    add_to_index,
    apply_defaults,
    build_index,
    exact_view,
    search_params,
)
from xlingual.search.faiss_ops import as_vectors, search

logger = logging.getLogger(__name__)

#: efSearch values tried by :func:`calibrate`, smallest first.
EF_SEARCH_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
#: The recall cut-off the calibration measures (recall@10, as the benchmark reports).
CALIBRATION_K = 10
#: Neighbours of a probe's seed vector whose differences give the directions a probe query moves in.
PROBE_NEIGHBOURS = 16
#: Fewest held-out vectors worth calibrating on (fewer leave the stored knobs as they are).
MIN_CALIBRATION_QUERIES = 32


def recall_at_k(
    exact_scores: np.ndarray, approx_scores: np.ndarray, approx_ids: np.ndarray, *, atol: float = 1e-5
) -> float:
    """Mean recall@k of approximate results against exact ones, ties tolerated (faiss contrib style).

    An approximate hit counts when it is valid (id ≥ 0) and its (exact) score reaches the exact k-th
    best score of its row; all arrays ``(n, k)``. Every index type here scores hits exactly (HNSW on the
    stored vectors, IVF-PQ after re-ranking), so a tied twin of a true neighbour counts as found.
    """
    kth = exact_scores[:, -1:]
    hits = (approx_ids >= 0) & (approx_scores >= kth - atol)
    return float(hits.sum()) / float(exact_scores.size)


def probe_queries(exact: faiss.Index, n_queries: int, *, seed: int = 0) -> np.ndarray:
    """Synthetic "fresh" queries for calibration: ``(m, dim)`` float32, L2-normalised, ``m ≤ n_queries``.

    A vector ``x`` drawn from the index (seeded) is moved away from itself until its cosine with ``x``
    equals the cosine between ``x`` and its nearest other vector — as far from the corpus as a new
    point of the same distribution would be, instead of on top of an indexed vector (which graph
    indexes find trivially, overstating recall). It moves along the difference of two of ``x``'s
    neighbours, so it stays on the data's own manifold (a random direction in all ``dim`` dimensions
    would leave it, and overstate how hard real queries are).
    """
    n = int(exact.ntotal)
    rng = np.random.default_rng(seed)
    own = np.sort(rng.choice(n, size=min(n_queries, n), replace=False)).astype(np.int64)
    base = np.ascontiguousarray(exact.reconstruct_batch(own), dtype=np.float32)
    keep = np.linalg.norm(base, axis=1) > 0  # a zero vector has no direction to start from
    own, base = own[keep], base[keep]
    if base.shape[0] == 0 or n < 3:
        return base
    m = min(PROBE_NEIGHBOURS + 1, n)
    scores, ids = search(exact, base, m)
    rows = np.arange(len(own))
    others = ids != own[:, None]  # each row without the seed itself (ties may have put it anywhere)
    nearest = np.array([scores[r][others[r]][0] if others[r].any() else 0.0 for r in rows], dtype=np.float32)
    pick = np.array([rng.choice(ids[r][others[r]], size=2, replace=False) for r in rows])
    direction = exact.reconstruct_batch(pick[:, 0].copy()) - exact.reconstruct_batch(pick[:, 1].copy())
    direction = direction.astype(np.float32)
    # Every other probe moves in a random direction instead (and so does one whose neighbours are duplicates).
    flat = np.linalg.norm(direction, axis=1) < 1e-6
    flat[1::2] = True
    direction[flat] = rng.standard_normal((int(flat.sum()), base.shape[1])).astype(np.float32)
    direction -= (direction * base).sum(axis=1, keepdims=True) * base
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    cos = np.clip(nearest, -0.99, 0.99)[:, None]
    queries = cos * base + np.sqrt(1.0 - cos**2) * direction
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def knob_candidates(spec: IndexSpec, refine_base: int | None = None) -> list[IndexSpec]:
    """The settings :func:`calibrate` tries, cheapest first (``[]`` for flat).

    HNSW: every efSearch of :data:`EF_SEARCH_GRID`. IVF-PQ: nprobe doubling up to nlist, each with the
    re-ranking factor ``refine_base`` ×1, ×2 and ×4 (re-ranking a few more candidates costs far less than
    probing more lists).
    """
    if spec.type is IndexType.HNSW:
        return [replace(spec, ef_search=ef) for ef in EF_SEARCH_GRID]
    if spec.type is IndexType.IVF_PQ:
        nlist = int(spec.nlist or 1)
        factor = int(refine_base or IndexConfig.refine_factor)
        probes = sorted({min(nlist, 2**p) for p in range(nlist.bit_length() + 1)})
        return [replace(spec, nprobe=p, refine_factor=factor * m) for p in probes for m in (1, 2, 4)]
    return []


def _queries(exact: faiss.Index, spec: IndexSpec, queries: np.ndarray | None, n_queries: int, seed: int) -> np.ndarray:
    """The calibration queries: at most ``n_queries`` of the held-out ones (seeded), or probes without them."""
    if queries is None:
        return probe_queries(exact, n_queries, seed=seed)
    checked = as_vectors("calibration queries", queries, dim=spec.dim)
    if checked.shape[0] > n_queries:
        pick = np.random.default_rng(seed).choice(checked.shape[0], size=n_queries, replace=False)
        checked = checked[np.sort(pick)]
    return checked


def _cheapest(
    index: faiss.Index, queries: np.ndarray, exact_scores: np.ndarray, candidates: list[IndexSpec], target: float
) -> tuple[IndexSpec, float]:
    """The first candidate whose recall reaches ``target``, else the last (most accurate) one; with its recall."""
    k = exact_scores.shape[1]
    recall = 0.0
    for candidate in candidates:
        scores, ids = search(index, queries, k, params=search_params(candidate))
        recall = recall_at_k(exact_scores, scores, ids)
        if recall >= target:
            return candidate, recall
    logger.warning(
        "%s: recall@%d is %.3f with the most accurate setting tried, below the target %.2f",
        candidates[-1].type.value,
        k,
        recall,
        target,
    )
    return candidates[-1], recall


def calibrate(
    index: faiss.Index,
    spec: IndexSpec,
    *,
    queries: np.ndarray | None = None,
    target_recall: float = 0.95,
    n_queries: int = 256,
    refine_base: int | None = None,
    seed: int = 0,
) -> IndexSpec:
    """Return ``spec`` with the cheapest search knobs reaching ``target_recall`` (recall@10, exact as truth).

    The settings tried are :func:`knob_candidates`. ``queries``: vectors of the corpus's own distribution
    that are *not* in the index (held out; at most ``n_queries`` are used) — the faithful measure; without
    them, :func:`probe_queries` makes some. When nothing reaches the target, the most accurate setting is
    kept and a warning logged. Flat is exact: returned unchanged.
    """
    if spec.type is IndexType.FLAT:
        return replace(spec, calibrated_recall=1.0)
    if not 0.0 < target_recall <= 1.0:
        raise SearchIndexError(f"target_recall={target_recall} is not in (0, 1]; e.g. 0.95.")
    k = min(CALIBRATION_K, int(index.ntotal))
    exact = exact_view(index, spec)
    calibration_queries = _queries(exact, spec, queries, n_queries, seed)
    if calibration_queries.shape[0] == 0 or k < 1:
        return spec
    exact_scores, _ = search(exact, calibration_queries, k)
    candidates = knob_candidates(spec, refine_base)
    chosen, recall = _cheapest(index, calibration_queries, exact_scores, candidates, target_recall)
    calibrated = replace(chosen, calibrated_recall=round(recall, 4))
    apply_defaults(index, calibrated)
    return calibrated


def holdout_size(n: int, spec: IndexSpec, n_queries: int = 256) -> int:
    """How many of ``n`` vectors :func:`build_calibrated` holds out as calibration queries (0: none).

    At most ``n_queries`` and a tenth of the corpus; IVF-PQ keeps :data:`IVF_MIN_TRAIN` vectors to train on.
    """
    if spec.type is IndexType.FLAT:
        return 0
    size = min(n_queries, n // 10)
    if spec.type is IndexType.IVF_PQ:
        size = min(size, n - IVF_MIN_TRAIN)
    return size if size >= MIN_CALIBRATION_QUERIES else 0


def holdout_order(n: int, held: int, seed: int) -> np.ndarray:
    """A row order of ``n`` rows that puts a seeded random sample of ``held`` rows last, the rest in order.

    ``(n,)`` int64. :func:`build_calibrated` holds the last rows out as fresh queries; a random sample
    (rather than the corpus's tail) is a fair one.
    """
    rng = np.random.default_rng(seed)
    last = np.zeros(n, dtype=bool)
    last[rng.choice(n, size=held, replace=False)] = True
    return np.concatenate([np.flatnonzero(~last), np.flatnonzero(last)])


def build_calibrated(
    vectors: np.ndarray,
    spec: IndexSpec,
    *,
    target_recall: float = 0.95,
    n_queries: int = 256,
    refine_base: int | None = None,
    seed: int = 0,
) -> tuple[faiss.Index, IndexSpec]:
    """Build the index over every row, its search knobs calibrated on genuinely unseen queries.

    The last :func:`holdout_size` rows of ``vectors`` (``(n, dim)`` float32, L2-normalised; callers put a
    random sample there) are left out while the index is built, serve as calibration queries — fresh
    points of the corpus's own distribution, as real queries are — and are added afterwards, so every
    row ``i`` still gets id ``i``. Returns the index and the calibrated spec.
    """
    n = int(np.asarray(vectors).shape[0])
    held = holdout_size(n, spec, n_queries)
    built = build_index(vectors[: n - held] if held else vectors, spec, seed=seed)
    calibrated = calibrate(
        built,
        spec,
        queries=vectors[n - held :] if held else None,
        target_recall=target_recall,
        n_queries=n_queries,
        refine_base=refine_base,
        seed=seed,
    )
    if held:
        add_to_index(built, vectors[n - held :], calibrated)
    return built, calibrated
