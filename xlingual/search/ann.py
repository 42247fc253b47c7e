"""The approximate FAISS indexes behind :class:`xlingual.search.index.Index`: which one, with what parameters.

- :class:`IndexSpec` — the chosen type and its parameters, stored in the index manifest;
- :func:`choose_index` — the type picked by corpus size and the build parameters, following FAISS's
  guidelines (flat up to ``IndexConfig.flat_max`` vectors, then IVF-PQ or HNSW);
- :func:`build_index` / :func:`add_to_index` — training and filling (row ``i`` gets id ``i``);
- :func:`search_params` — per-call search knobs (efSearch, nprobe), for :func:`xlingual.search.faiss_ops.search`;
- :func:`exact_view` — the exact vectors inside an approximate index (what calibration compares against).

The knobs are tuned to a target recall by :mod:`xlingual.search.calibration`.

Example::

    spec = choose_index(len(vectors), vectors.shape[1], IndexConfig(index_type="hnsw"))
    built = build_index(vectors, spec)
    scores, ids = faiss_ops.search(built, queries, 10, params=search_params(spec))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from xlingual.choices import AUTO_INDEX, IndexType, parse_index_type
from xlingual.config import IndexConfig
from xlingual.errors import SearchIndexError
from xlingual.search.faiss_ops import as_vectors, build_flat_index, ensure_threads

__all__ = [
    "IVF_MIN_TRAIN",
    "IndexSpec",
    "IndexType",
    "add_to_index",
    "apply_defaults",
    "build_index",
    "choose_index",
    "exact_view",
    "ivf_nlist",
    "parse_index_type",
    "search_params",
]

#: FAISS, untyped: its bundled stubs lack the search-parameter classes and index subclasses used below.
_faiss: Any = faiss

#: The fewest vectors IVF-PQ is trained on: 4-bit PQ has 16 centroids per sub-quantizer and FAISS's
#: k-means asks for 39 training points per centroid (it warns below that) — rounded up.
IVF_MIN_TRAIN = 1024
#: FAISS's k-means wants at least this many training points per centroid.
KMEANS_MIN_POINTS = 39
#: Training vectors per IVF list (FAISS: 30·K to 256·K, "the more the better"; its k-means samples
#: down to 256·K anyway). 64·K keeps the build of a 1M-vector index to a few minutes on 2 cores.
IVF_TRAIN_PER_LIST = 64
#: HNSW's efSearch before calibration, and when a spec has none.
DEFAULT_EF_SEARCH = 64


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
    #: HNSW search beam (the speed/recall knob), calibrated by :func:`xlingual.search.calibration.calibrate`.
    ef_search: int | None = None
    nlist: int | None = None
    #: PQ sub-quantizers of 4 bits each (``PQ{pq_m}x4fs``: fast-scan, ``pq_m / 2`` bytes per vector).
    pq_m: int | None = None
    #: IVF lists visited per query (the speed/recall knob), calibrated like ``ef_search``.
    nprobe: int | None = None
    #: Candidates re-ranked exactly per wanted result (``RFlat``'s k_factor).
    refine_factor: int | None = None
    train_size: int | None = None
    #: recall@10 against exact search measured by the calibration (1.0 for flat).
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


def ivf_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: ``4·sqrt(n)``, at most 65,536, at most ``n / 39``.

    FAISS's guidance: K = 4·sqrt(N) to 16·sqrt(N) below 1M vectors, 65,536 from 1M to 10M; its k-means
    wants :data:`KMEANS_MIN_POINTS` training points per list, so small corpora get fewer lists.
    """
    nlist = min(65_536, round(4 * math.sqrt(n)))
    return max(1, min(nlist, n // KMEANS_MIN_POINTS))


def _chosen_type(n: int, config: IndexConfig) -> tuple[IndexType, str]:
    """The index type for ``n`` vectors and why (``config`` already validated its choices)."""
    if config.index_type != AUTO_INDEX:
        return parse_index_type(config.index_type), f"asked for {config.index_type}"
    if n <= config.flat_max:
        return IndexType.FLAT, f"auto: {n:,} vectors ≤ flat_max {config.flat_max:,} (exact search)"
    reason = f"auto: {n:,} vectors > flat_max {config.flat_max:,} (approximate search)"
    return parse_index_type(config.auto_approximate), reason


def _ivf_pq_spec(n: int, dim: int, reason: str, config: IndexConfig) -> IndexSpec:
    if n < IVF_MIN_TRAIN:
        raise SearchIndexError(
            f"ivf-pq needs at least {IVF_MIN_TRAIN:,} vectors to train its quantizers, got {n:,}; "
            f"use --index-type flat (exact, and fast at this size)."
        )
    nlist = ivf_nlist(n)
    return IndexSpec(
        IndexType.IVF_PQ,
        dim,
        reason,
        nlist=nlist,
        # Two dimensions per 4-bit sub-quantizer: FAISS's "PQ{d/2}x4fs" for when memory is no concern.
        pq_m=dim // 2 if dim % 2 == 0 else dim,
        nprobe=min(nlist, 16),
        refine_factor=max(1, config.refine_factor),
        train_size=min(n, max(IVF_MIN_TRAIN, IVF_TRAIN_PER_LIST * nlist)),
    )


def choose_index(n: int, dim: int, config: IndexConfig | None = None) -> IndexSpec:
    """Pick the index type and its build parameters for ``n`` vectors of dimension ``dim``.

    ``config.index_type="auto"`` picks by size: flat up to ``flat_max`` vectors, ``auto_approximate``
    (IVF-PQ) above. Search-time knobs start at a safe default; the calibration tunes them.
    Example: ``choose_index(4_000_000, 384).factory_string() == "IVF8000,PQ192x4fs,RFlat"``.
    """
    config = config or IndexConfig()
    if n < 1 or dim < 1:
        raise SearchIndexError(f"Cannot index {n} vectors of dimension {dim}; pass at least one vector.")
    kind, reason = _chosen_type(n, config)
    if kind is IndexType.FLAT:
        return IndexSpec(kind, dim, reason, calibrated_recall=1.0)
    if kind is IndexType.HNSW:
        return IndexSpec(
            kind,
            dim,
            reason,
            hnsw_m=config.hnsw_m,
            ef_construction=config.hnsw_ef_construction,
            ef_search=DEFAULT_EF_SEARCH,
        )
    return _ivf_pq_spec(n, dim, reason, config)


def build_index(vectors: np.ndarray, spec: IndexSpec, *, seed: int = 0) -> faiss.Index:
    """Create, train (IVF-PQ, on a seeded sample of ``spec.train_size`` rows) and fill the index ``spec`` describes.

    ``vectors``: ``(n, dim)`` float32, L2-normalised; row ``i`` gets id ``i``.
    """
    ensure_threads()
    data = as_vectors("vectors", vectors, dim=spec.dim)
    if spec.type is IndexType.FLAT:
        return build_flat_index(data)
    if spec.type is IndexType.HNSW:
        graph: Any = _faiss.IndexHNSWFlat(spec.dim, int(spec.hnsw_m or 32), faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = int(spec.ef_construction or 40)
        graph.hnsw.efSearch = int(spec.ef_search or DEFAULT_EF_SEARCH)
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
    apply_defaults(index, spec)
    return index


def apply_defaults(index: faiss.Index, spec: IndexSpec) -> None:
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
    ensure_threads()
    index.add(as_vectors("vectors", vectors, dim=spec.dim))


def search_params(
    spec: IndexSpec, *, ef_search: int | None = None, nprobe: int | None = None
) -> faiss.SearchParameters | None:
    """Per-call FAISS search parameters for ``spec`` (``None`` for flat); overrides win over the stored knobs."""
    if spec.type is IndexType.HNSW:
        value = ef_search or spec.ef_search or DEFAULT_EF_SEARCH
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
