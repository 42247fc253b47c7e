"""Nearest-neighbour search over L2-normalised vectors with FAISS: exact, HNSW and IVF-PQ.

Every similarity scan in xlingual goes through this module. The core is small on purpose:

- :func:`as_vectors` checks and converts an array once (2-D, non-empty, finite, unit or zero rows);
- :func:`build_flat_index` + :func:`search` — exact inner-product k-NN (``faiss.IndexFlatIP``),
  queried in blocks; :func:`search` takes any FAISS index (and its search parameters);
- :func:`knn` — the two together, for one-off searches;
- :func:`score_blocks` / :func:`count_at_least` — every score of a block of queries, for scans that
  need more than the top k (exact ranks, margin fallbacks), never more than one block in memory;
- :func:`choose_index` / :func:`build_index` / :func:`calibrate` — the approximate indexes behind
  :class:`xlingual.search.index.Index`: the type and parameters picked by corpus size following FAISS's
  guidelines, training, and the search-time knob (efSearch, nprobe) tuned to a target recall.

Inner product equals cosine similarity on L2-normalised vectors, so scores lie in ``[-1, 1]``.

**Ties.** Result rows are sorted by decreasing score and, among equal scores, by increasing database
id. When equal scores straddle the k-th place, the lowest ids are kept (FAISS scans the database in
id order and replaces a heap entry only on a strictly better score). Scores are compared exactly as
float32 numbers: two vectors whose scores differ only by rounding are not a tie.

Example::

    scores, ids = knn(ja_emb, en_emb, k=10)   # (n, 10) float32, (n, 10) int64
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

import faiss
import numpy as np

from xlingual.config import IndexConfig
from xlingual.errors import SearchIndexError

logger = logging.getLogger(__name__)

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


def _ensure_threads() -> None:
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
    _ensure_threads()
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


# --------------------------------------------------------------------------- approximate indexes


#: FAISS, untyped: its bundled stubs lack the search-parameter classes and index subclasses used below.
_faiss: Any = faiss


class IndexType(StrEnum):
    """The FAISS index kinds a search index can use (``--index-type``)."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVF_PQ = "ivf-pq"


#: The fewest vectors IVF-PQ is trained on: 4-bit PQ has 16 centroids per sub-quantizer and FAISS's
#: k-means asks for 39 training points per centroid (it warns below that) — rounded up.
IVF_MIN_TRAIN = 1024
#: FAISS's k-means wants at least this many training points per centroid.
KMEANS_MIN_POINTS = 39
#: Training vectors per IVF list (FAISS: 30·K to 256·K, "the more the better"; its k-means samples
#: down to 256·K anyway). 64·K keeps the build of a 1M-vector index to a few minutes on 2 cores.
IVF_TRAIN_PER_LIST = 64
#: efSearch values tried by :func:`calibrate`, smallest first.
EF_SEARCH_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
#: The recall cut-off the calibration measures (recall@10, as the benchmark reports).
CALIBRATION_K = 10


@dataclass
class IndexSpec:
    """The FAISS index chosen for a corpus and its parameters; stored in the index manifest.

    Example: ``choose_index(250_000, 384, IndexConfig())`` → HNSW, M=32.
    """

    type: IndexType
    dim: int
    #: Why this type was chosen (e.g. "auto: 250,000 vectors > flat_max 100,000").
    reason: str = ""
    hnsw_m: int | None = None
    ef_construction: int | None = None
    #: HNSW search beam (the speed/recall knob), calibrated by :func:`calibrate`.
    ef_search: int | None = None
    nlist: int | None = None
    #: PQ sub-quantizers of 4 bits each (``PQ{pq_m}x4fs``: fast-scan, ``pq_m / 2`` bytes per vector).
    pq_m: int | None = None
    #: IVF lists visited per query (the speed/recall knob), calibrated by :func:`calibrate`.
    nprobe: int | None = None
    #: Candidates re-ranked exactly per wanted result (``RFlat``'s k_factor).
    refine_factor: int | None = None
    train_size: int | None = None
    #: recall@10 against exact search measured by :func:`calibrate` (1.0 for flat).
    calibrated_recall: float | None = None

    def factory_string(self) -> str:
        """The ``faiss.index_factory`` string of this index, e.g. ``"IVF4000,PQ192x4fs,RFlat"``."""
        if self.type is IndexType.FLAT:
            return "Flat"
        if self.type is IndexType.HNSW:
            return f"HNSW{self.hnsw_m},Flat"
        return f"IVF{self.nlist},PQ{self.pq_m}x4fs,RFlat"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the type as its string value), plus the factory string."""
        out = asdict(self)
        out["type"] = self.type.value
        out["factory"] = self.factory_string()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        """Inverse of :meth:`as_dict` (unknown keys, such as ``factory``, are ignored)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["type"] = parse_index_type(str(fields.get("type", "")))
        return cls(**fields)


def parse_index_type(value: str) -> IndexType:
    """``"hnsw"`` → :attr:`IndexType.HNSW`; a :class:`SearchIndexError` naming the choices otherwise."""
    try:
        return IndexType(value)
    except ValueError:
        choices = ", ".join(t.value for t in IndexType)
        raise SearchIndexError(f"Unknown index type {value!r}; choose auto, {choices}.") from None


def ivf_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: ``4·sqrt(n)``, at most 65,536, at most ``n / 39``.

    FAISS's guidance: K = 4·sqrt(N) to 16·sqrt(N) below 1M vectors, 65,536 from 1M to 10M; its k-means
    wants :data:`KMEANS_MIN_POINTS` training points per list, so small corpora get fewer lists.
    """
    nlist = min(65_536, round(4 * math.sqrt(n)))
    return max(1, min(nlist, n // KMEANS_MIN_POINTS))


def choose_index(n: int, dim: int, config: IndexConfig | None = None) -> IndexSpec:
    """Pick the index type and its build parameters for ``n`` vectors of dimension ``dim``.

    ``config.index_type="auto"`` picks by size: flat up to ``flat_max`` vectors, ``auto_approximate``
    (IVF-PQ) above. Search-time knobs start at a safe default; :func:`calibrate` tunes them.
    """
    config = config or IndexConfig()
    if n < 1 or dim < 1:
        raise SearchIndexError(f"Cannot index {n} vectors of dimension {dim}; pass at least one vector.")
    if config.index_type == "auto":
        if n <= config.flat_max:
            kind, reason = IndexType.FLAT, f"auto: {n:,} vectors ≤ flat_max {config.flat_max:,} (exact search)"
        else:
            kind = parse_index_type(config.auto_approximate)
            if kind is IndexType.FLAT:
                raise SearchIndexError("auto_approximate must be hnsw or ivf-pq, not flat; raise flat_max instead.")
            reason = f"auto: {n:,} vectors > flat_max {config.flat_max:,} (approximate search)"
    else:
        kind, reason = parse_index_type(config.index_type), f"asked for {config.index_type}"
    if kind is IndexType.FLAT:
        return IndexSpec(kind, dim, reason, calibrated_recall=1.0)
    if kind is IndexType.HNSW:
        if not 2 <= config.hnsw_m <= 256:
            raise SearchIndexError(f"hnsw_m={config.hnsw_m} is out of range; FAISS recommends 4 to 64.")
        return IndexSpec(
            kind,
            dim,
            reason,
            hnsw_m=config.hnsw_m,
            ef_construction=config.hnsw_ef_construction,
            ef_search=64,
        )
    if n < IVF_MIN_TRAIN:
        raise SearchIndexError(
            f"ivf-pq needs at least {IVF_MIN_TRAIN:,} vectors to train its quantizers, got {n:,}; "
            f"use --index-type flat (exact, and fast at this size)."
        )
    nlist = ivf_nlist(n)
    return IndexSpec(
        kind,
        dim,
        reason,
        nlist=nlist,
        # Two dimensions per 4-bit sub-quantizer: FAISS's "PQ{d/2}x4fs" for when memory is no concern.
        pq_m=dim // 2 if dim % 2 == 0 else dim,
        nprobe=min(nlist, 16),
        refine_factor=max(1, config.refine_factor),
        train_size=min(n, max(IVF_MIN_TRAIN, IVF_TRAIN_PER_LIST * nlist)),
    )


def build_index(vectors: np.ndarray, spec: IndexSpec, *, seed: int = 0) -> faiss.Index:
    """Create, train (IVF-PQ, on a seeded sample of ``spec.train_size`` rows) and fill the index ``spec`` describes.

    ``vectors``: ``(n, dim)`` float32, L2-normalised; row ``i`` gets id ``i``.
    """
    _ensure_threads()
    data = as_vectors("vectors", vectors, dim=spec.dim)
    if spec.type is IndexType.FLAT:
        return build_flat_index(data)
    if spec.type is IndexType.HNSW:
        graph: Any = _faiss.IndexHNSWFlat(spec.dim, int(spec.hnsw_m or 32), faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = int(spec.ef_construction or 40)
        graph.hnsw.efSearch = int(spec.ef_search or 64)
        graph.add(data)
        return graph
    index: Any = faiss.index_factory(spec.dim, spec.factory_string(), faiss.METRIC_INNER_PRODUCT)
    n_train = min(data.shape[0], int(spec.train_size or data.shape[0]))
    if n_train < IVF_MIN_TRAIN:
        raise SearchIndexError(f"ivf-pq needs at least {IVF_MIN_TRAIN:,} training vectors, got {n_train:,}.")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(data.shape[0], size=n_train, replace=False))
    index.train(data[sample])
    index.add(data)
    _apply_defaults(index, spec)
    return index


def _apply_defaults(index: faiss.Index, spec: IndexSpec) -> None:
    """Store the calibrated knobs in the FAISS object too, so a plain ``faiss.read_index`` searches alike."""
    if spec.type is IndexType.HNSW and spec.ef_search:
        _faiss.downcast_index(index).hnsw.efSearch = int(spec.ef_search)
    elif spec.type is IndexType.IVF_PQ:
        if spec.nprobe:
            _faiss.extract_index_ivf(index).nprobe = int(spec.nprobe)
        if spec.refine_factor:
            _faiss.downcast_index(index).k_factor = float(spec.refine_factor)


def add_to_index(index: faiss.Index, vectors: np.ndarray, spec: IndexSpec) -> None:
    """Append ``vectors`` (``(n, dim)`` float32, L2-normalised) with ids ``ntotal …``; no retraining."""
    _ensure_threads()
    index.add(as_vectors("vectors", vectors, dim=spec.dim))


def search_params(
    spec: IndexSpec, *, ef_search: int | None = None, nprobe: int | None = None
) -> faiss.SearchParameters | None:
    """Per-call FAISS search parameters for ``spec`` (``None`` for flat); overrides win over the stored knobs."""
    if spec.type is IndexType.HNSW:
        value = ef_search or spec.ef_search or 64
        if value < 1:
            raise SearchIndexError(f"ef_search={value} is not positive; pass 1 or more.")
        return _faiss.SearchParametersHNSW(efSearch=int(value))
    if spec.type is IndexType.IVF_PQ:
        probes = nprobe or spec.nprobe or 1
        if probes < 1:
            raise SearchIndexError(f"nprobe={probes} is not positive; pass 1 to {spec.nlist}.")
        ivf = _faiss.SearchParametersIVF(nprobe=int(min(probes, spec.nlist or probes)))
        params = _faiss.IndexRefineSearchParameters(k_factor=float(spec.refine_factor or 1), base_index_params=ivf)
        params.referenced_objects = [ivf]  # the C++ object holds a raw pointer: keep the Python one alive
        return params
    return None


def exact_view(index: faiss.Index, spec: IndexSpec) -> faiss.Index:
    """The exact (flat) index inside ``index``: HNSW's storage, IVF-PQ's refinement vectors, or itself."""
    inner: Any = _faiss.downcast_index(index)
    if spec.type is IndexType.HNSW:
        return _faiss.downcast_index(inner.storage)
    if spec.type is IndexType.IVF_PQ:
        return _faiss.downcast_index(inner.refine_index)
    return inner


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


#: Neighbours of a probe's seed vector whose differences give the directions a probe query moves in.
PROBE_NEIGHBOURS = 16


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

    HNSW: the smallest efSearch of :data:`EF_SEARCH_GRID`. IVF-PQ: the smallest nprobe (doubling), each
    tried with the re-ranking factor ``refine_base`` ×1, ×2 and ×4 (re-ranking a few more candidates
    costs far less than probing more lists). ``queries``: vectors of the corpus's own distribution that
    are *not* in the index (held out; at most ``n_queries`` are used) — the faithful measure; without
    them, :func:`probe_queries` makes some. When nothing reaches the target, the most accurate setting is
    kept and a warning logged. Flat is exact: returned unchanged.
    """
    if spec.type is IndexType.FLAT:
        return replace(spec, calibrated_recall=1.0)
    if not 0.0 < target_recall <= 1.0:
        raise SearchIndexError(f"target_recall={target_recall} is not in (0, 1]; e.g. 0.95.")
    n = int(index.ntotal)
    k = min(CALIBRATION_K, n)
    exact = exact_view(index, spec)
    if queries is None:
        queries = probe_queries(exact, n_queries, seed=seed)
    else:
        queries = as_vectors("calibration queries", queries, dim=spec.dim)
        if queries.shape[0] > n_queries:
            pick = np.random.default_rng(seed).choice(queries.shape[0], size=n_queries, replace=False)
            queries = queries[np.sort(pick)]
    if queries.shape[0] == 0 or k < 1:
        return spec
    exact_scores, _ = search(exact, queries, k)
    candidates: list[IndexSpec]
    if spec.type is IndexType.HNSW:
        candidates = [replace(spec, ef_search=ef) for ef in EF_SEARCH_GRID]
    else:
        nlist = int(spec.nlist or 1)
        factor = int(refine_base or IndexConfig.refine_factor)
        probes = sorted({min(nlist, 2**p) for p in range(nlist.bit_length() + 1)})
        candidates = [replace(spec, nprobe=p, refine_factor=factor * m) for p in probes for m in (1, 2, 4)]
    recall, chosen = 0.0, candidates[-1]
    for candidate in candidates:
        scores, ids = search(index, queries, k, params=search_params(candidate))
        recall = recall_at_k(exact_scores, scores, ids)
        if recall >= target_recall:
            chosen = candidate
            break
    else:
        logger.warning(
            "%s: recall@%d is %.3f with the most accurate setting tried, below the target %.2f",
            spec.type.value,
            k,
            recall,
            target_recall,
        )
    calibrated = replace(chosen, calibrated_recall=round(recall, 4))
    _apply_defaults(index, calibrated)
    return calibrated


#: Fewest held-out vectors worth calibrating on (fewer leave the stored knobs as they are).
MIN_CALIBRATION_QUERIES = 32


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
    if held == 0:
        built = build_index(vectors, spec, seed=seed)
        calibrated = calibrate(
            built, spec, target_recall=target_recall, n_queries=n_queries, refine_base=refine_base, seed=seed
        )
        return built, calibrated
    built = build_index(vectors[: n - held], spec, seed=seed)
    calibrated = calibrate(
        built,
        spec,
        queries=vectors[n - held :],
        target_recall=target_recall,
        n_queries=n_queries,
        refine_base=refine_base,
        seed=seed,
    )
    add_to_index(built, vectors[n - held :], calibrated)
    return built, calibrated
