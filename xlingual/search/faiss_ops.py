"""Exact nearest-neighbour search over L2-normalised vectors with FAISS, in blocks.

Every similarity scan in xlingual goes through this module. The core is small on purpose:

- :func:`as_vectors` checks and converts an array once (2-D, non-empty, finite, unit or zero rows);
- :func:`build_flat_index` + :func:`search` — exact inner-product k-NN (``faiss.IndexFlatIP``),
  queried in blocks; :func:`search` takes any FAISS index (and its search parameters);
- :func:`knn` — the two together, for one-off searches;
- :func:`score_blocks` / :func:`count_at_least` — every score of a block of queries, for scans that
  need more than the top k (exact ranks, margin fallbacks), never more than one block in memory;
- :func:`set_num_threads` — FAISS's OpenMP threads, sized to the CPUs this process may use.

The approximate indexes (HNSW, IVF-PQ) live in :mod:`xlingual.search.ann` and
:mod:`xlingual.search.calibration`; they search through :func:`search` too.

Inner product equals cosine similarity on L2-normalised vectors, so scores lie in ``[-1, 1]``.

**Ties.** Result rows are sorted by decreasing score and, among equal scores, by increasing database
id. When equal scores straddle the k-th place, the lowest ids are kept (FAISS scans the database in
id order and replaces a heap entry only on a strictly better score). Scores are compared exactly as
float32 numbers: two vectors whose scores differ only by rounding are not a tie.

Example::

    scores, ids = knn(ja_emb, en_emb, k=10)   # (n, 10) float32, (n, 10) int64
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import faiss
import numpy as np

from xlingual.errors import SearchIndexError

#: Scores held in memory at once by the block scans (bytes); sets the automatic block size.
BLOCK_BYTES = 64 * 2**20
#: Queries per FAISS call when no block size is given; FAISS tiles the database itself.
SEARCH_BLOCK = 4096
#: How far a row's norm may stray from 1 (float32 rounding and half-precision encoders).
NORM_TOLERANCE = 1e-3

_threads_configured = False


def set_num_threads(n: int | None = None) -> int:
    """Set FAISS's OpenMP threads to ``n``, or to the CPUs this process may run on; return the count.

    ``None`` respects ``OMP_NUM_THREADS`` when set, else uses ``os.sched_getaffinity`` (containers and
    ``taskset`` limit it; ``os.cpu_count`` would oversubscribe them).
    """
    global _threads_configured
    if n is not None and n < 1:
        raise SearchIndexError(f"Thread count {n} is not positive; pass 1 or more (or None for automatic).")
    if n is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        if env.isdigit() and int(env) > 0:
            n = int(env)
        elif hasattr(os, "sched_getaffinity"):
            n = len(os.sched_getaffinity(0))
        else:  # pragma: no cover - macOS / Windows
            n = os.cpu_count() or 1
    faiss.omp_set_num_threads(n)
    _threads_configured = True
    return n


def ensure_threads() -> None:
    """Size FAISS's thread pool once (:func:`set_num_threads`), unless the caller already has."""
    if not _threads_configured:
        set_num_threads(None)


def as_vectors(name: str, array: object, *, dim: int | None = None) -> np.ndarray:
    """Check ``array`` and return it as C-contiguous float32 ``(n, dim)`` (no copy when it already is).

    Rows must be L2-normalised (norm 1 within :data:`NORM_TOLERANCE`) or all zero, as
    :func:`xlingual.models.specs.encode` returns them. ``name`` is used in error messages.
    """
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise SearchIndexError(
            f"{name} must be a 2-D array (n, dim), got shape {arr.shape}; reshape a single vector with vec[None, :]."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise SearchIndexError(f"{name} is empty (shape {arr.shape}); pass at least one vector of dim ≥ 1.")
    if not np.issubdtype(arr.dtype, np.floating):
        raise SearchIndexError(f"{name} has dtype {arr.dtype}; pass float embeddings (float32).")
    if dim is not None and arr.shape[1] != dim:
        raise SearchIndexError(
            f"{name} has dimension {arr.shape[1]} but the database has dimension {dim}; "
            f"embed both sides with models that share one vector space."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1)
    bad = ~(np.isfinite(norms) & ((np.abs(norms - 1.0) <= NORM_TOLERANCE) | (norms == 0.0)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SearchIndexError(
            f"{name} row {row} has norm {norms[row]:.4g} ({int(bad.sum())} bad rows in all); "
            f"L2-normalise the embeddings first (faiss.normalize_L2 or xlingual.models.specs.encode)."
        )
    return arr


def _check_k(k: int, n_database: int) -> None:
    if k < 1:
        raise SearchIndexError(f"k={k} is not positive; ask for at least 1 neighbour.")
    if k > n_database:
        raise SearchIndexError(
            f"k={k} exceeds the database size {n_database}; use k ≤ {n_database} (e.g. min(k, len(database)))."
        )


def _check_block(block_size: int | None) -> None:
    if block_size is not None and block_size < 1:
        raise SearchIndexError(f"block_size={block_size} is not positive; pass 1 or more, or None for automatic.")


def sort_ties(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by decreasing score, then increasing id (the documented tie policy).

    ``scores``: ``(n, k)`` float32; ``ids``: ``(n, k)`` int64; returns both reordered.
    """
    order = np.lexsort((ids, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def build_flat_index(database: np.ndarray) -> faiss.IndexFlatIP:
    """Exact inner-product index over ``database``: ``(n, dim)`` float32, L2-normalised."""
    vectors = as_vectors("database", database)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def search(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    *,
    block_size: int | None = None,
    params: faiss.SearchParameters | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``index`` for each query, ``block_size`` queries per FAISS call.

    ``queries``: ``(n, dim)`` float32, L2-normalised. Returns ``scores`` ``(n, k)`` float32 (inner
    products, decreasing) and ``ids`` ``(n, k)`` int64, ties ordered by id (see the module docstring).
    ``params`` (from :func:`search_params`) tune an approximate index per call, so concurrent callers
    never change shared state; such an index may return fewer than ``k`` hits: the rest have id -1.
    """
    ensure_threads()
    _check_block(block_size)
    vectors = as_vectors("queries", queries, dim=index.d)
    _check_k(k, index.ntotal)
    block = block_size or SEARCH_BLOCK
    n = vectors.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        if params is None:
            block_scores, block_ids = index.search(vectors[start:stop], k)
        else:
            block_scores, block_ids = index.search(vectors[start:stop], k, params=params)
        scores[start:stop], ids[start:stop] = sort_ties(block_scores, block_ids)
    return scores, ids


def knn(
    queries: np.ndarray, database: np.ndarray, k: int, *, block_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by inner product.

    ``queries``: ``(n, dim)``, ``database``: ``(m, dim)``, both float32, L2-normalised; ``1 ≤ k ≤ m``.
    Returns ``scores`` ``(n, k)`` float32 and ``ids`` ``(n, k)`` int64 (rows of ``database``),
    best first, ties by id. Example: ``scores, ids = knn(ja_emb, en_emb, 10)``.
    """
    db = as_vectors("database", database)
    q = as_vectors("queries", queries, dim=db.shape[1])
    _check_k(k, db.shape[0])
    return search(build_flat_index(db), q, k, block_size=block_size)


def auto_block(n_database: int, block_size: int | None = None) -> int:
    """Queries per block for full-row scans: ``block_size`` if given, else ~:data:`BLOCK_BYTES` of scores."""
    _check_block(block_size)
    if block_size is not None:
        return block_size
    return max(1, BLOCK_BYTES // (4 * max(1, n_database)))


def score_blocks(
    queries: np.ndarray, database: np.ndarray, *, block_size: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, scores)`` with ``scores = queries[start:start+b] @ database.T`` — ``(b, m)`` float32.

    Inputs as in :func:`knn`. Only one block exists at a time (``b`` from :func:`auto_block`).
    """
    db = as_vectors("database", database)
    q = as_vectors("queries", queries, dim=db.shape[1])
    block = auto_block(db.shape[0], block_size)
    for start in range(0, q.shape[0], block):
        yield start, q[start : start + block] @ db.T


def count_at_least(
    queries: np.ndarray, database: np.ndarray, thresholds: np.ndarray, *, block_size: int | None = None
) -> np.ndarray:
    """For each query, how many database vectors score ``>= thresholds[i]``: ``(n,)`` int64.

    ``thresholds``: ``(n,)``, one per query (e.g. the score of its true partner). Scans every score,
    one block at a time.
    """
    limits = np.asarray(thresholds, dtype=np.float32).reshape(-1)
    if limits.shape[0] != np.asarray(queries).shape[0]:
        raise SearchIndexError(
            f"{limits.shape[0]} thresholds for {np.asarray(queries).shape[0]} queries; pass one per query."
        )
    counts = np.zeros(limits.shape[0], dtype=np.int64)
    for start, block_scores in score_blocks(queries, database, block_size=block_size):
        stop = start + block_scores.shape[0]
        counts[start:stop] = np.count_nonzero(block_scores >= limits[start:stop, None], axis=1)
    return counts
