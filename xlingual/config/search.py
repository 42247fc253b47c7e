"""Settings of the search stage: building an index, querying it, serving it."""

from __future__ import annotations

from dataclasses import dataclass

from xlingual.choices import AUTO_INDEX, IndexType, LogLevel, check_origins, parse_choice, parse_index_type
from xlingual.config.training import DEFAULT_STUDENT
from xlingual.errors import SearchIndexError


@dataclass
class IndexConfig:
    """How ``xlingual index build`` / ``add`` split documents, embed passages and choose the FAISS index.

    Example: ``IndexConfig(model="runs/distill/model", index_type="hnsw", max_tokens=128)``.
    """

    #: Model spec that embeds the passages; queries use it too unless a compatible query model is given.
    model: str = DEFAULT_STUDENT
    #: ``auto`` (by corpus size, below), ``flat`` (exact), ``hnsw`` or ``ivf-pq`` (approximate).
    index_type: str = "auto"
    #: ``auto`` uses exact search up to this many passages (a scan takes milliseconds: no trained index pays).
    flat_max: int = 100_000
    #: What ``auto`` uses above ``flat_max``: of FAISS's two picks (``HNSWM``, ``IVFK,PQNx4fs,RFlat``) IVF-PQ built
    #: 1.6–3.7× faster and answered 2–5.5× more queries/s at similar recall (eval/bench_search.py, 100k and 1M).
    auto_approximate: str = "ivf-pq"
    #: HNSW links per vector (FAISS: 4 to 64; more is more accurate and uses 8·M bytes more per vector).
    hnsw_m: int = 32
    #: HNSW build-time beam width (FAISS's default is 40; wider gives a better graph for a slower build).
    hnsw_ef_construction: int = 80
    #: IVF-PQ re-ranks this many candidates per wanted result with the exact vectors (``RFlat``'s k_factor).
    refine_factor: int = 4
    #: HNSW efSearch / IVF nprobe are calibrated at build time to the least value reaching this recall@10.
    target_recall: float = 0.95
    #: Vectors of the index used as calibration queries (each one's own id excluded from its results).
    calibration_queries: int = 256
    #: Longest passage in model tokens (the model's own limit, less specials and prompt, caps it).
    max_tokens: int = 200
    #: Longest passage in characters, used when the model has no tokenizer.
    max_chars: int = 400
    #: Passages per encoder forward pass.
    batch_size: int = 64
    device: str | None = None
    #: JSONL / Parquet field holding the document id (missing: ``FILE:LINE``) and the text.
    id_key: str = "id"
    text_key: str = "text"
    #: Replace an existing index folder at ``--out`` (instead of refusing).
    overwrite: bool = False
    show_progress: bool = True  # a progress bar on stderr while embedding
    #: Seed of the training, calibration and hubness reference samples.
    seed: int = 0
    #: Query model (a student of ``model``): each passage's mean cosine with its ``hubness_k`` nearest reference
    #: queries (≤ ``hubness_sample`` passages or the lines of ``hubness_queries``, embedded by it) is kept for CSLS.
    query_model: str | None = None
    hubness_k: int = 4
    hubness_sample: int = 10_000
    hubness_queries: str | None = None

    def __post_init__(self) -> None:
        for name in ("hubness_k", "hubness_sample"):
            if (value := getattr(self, name)) < 1:
                raise SearchIndexError(f"{name}={value} is not positive; pass 1 or more.")
        if self.index_type != AUTO_INDEX:
            parse_index_type(self.index_type)
        if parse_index_type(self.auto_approximate) is IndexType.FLAT:
            raise SearchIndexError("auto_approximate must be hnsw or ivf-pq, not flat; raise flat_max instead.")
        if not 2 <= self.hnsw_m <= 256:
            raise SearchIndexError(f"hnsw_m={self.hnsw_m} is out of range; FAISS recommends 4 to 64.")
        if not 0.0 < self.target_recall <= 1.0:
            raise SearchIndexError(f"target_recall={self.target_recall} is not in (0, 1]; e.g. 0.95.")


@dataclass
class SearchConfig:
    """How an index is loaded and queried (``xlingual search``, :class:`xlingual.Index`).

    Example: ``SearchConfig(k=5, query_model="runs/distill/model")``.
    """

    #: Results per query.
    k: int = 10
    #: Embed queries with this model instead of the index's own; it must share the index's vector space.
    query_model: str | None = None
    #: Check every file's sha256 against the manifest on load (sizes are always checked).
    verify: bool = True
    #: Override the calibrated HNSW efSearch / IVF nprobe (``None``: the value stored with the index).
    ef_search: int | None = None
    nprobe: int | None = None
    #: Queries per encoder forward pass.
    batch_size: int = 64
    device: str | None = None
    #: CSLS (2·cos − r(d)) when the index has hubness for the query model; ANN re-ranks k × csls_candidates.
    csls: bool = True
    csls_candidates: int = 10

    def __post_init__(self) -> None:
        for name in ("k", "csls_candidates"):
            if (value := getattr(self, name)) < 1:
                raise SearchIndexError(f"{name}={value} is not positive; ask for at least 1.")


@dataclass
class ServeConfig:
    """The HTTP search service (``xlingual serve``): address, request limits, CORS and logging.

    Example: ``ServeConfig(port=8080, max_k=50, cors_origins=("http://localhost:3000",))``.
    """

    #: Loopback by default: the service has no authentication.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Largest ``k`` a request may ask for (422 above).
    max_k: int = 100
    #: Most queries in one request (413 above).
    max_batch: int = 32
    #: Longest query in characters (413 above).
    max_query_chars: int = 1000
    #: Largest request body in bytes (413 above).
    max_body_bytes: int = 1_000_000
    #: Seconds a request may take, body upload included (408 for a late body, 503 for a late search).
    request_timeout_s: float = 30.0
    #: Threads that run searches (FAISS side by side, the encoder one batch at a time). A search past its time
    #: limit keeps its thread until it ends, so a hung model holds at most this many.
    search_threads: int = 16
    #: Origins (``scheme://host[:port]``) whose web pages may call the service; empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    #: Put the query texts in the per-request log lines (off: only their number and ``k``).
    log_queries: bool = False
    #: Show full filesystem paths in ``/info`` (off: folder and file names only).
    show_paths: bool = False
    #: uvicorn's log level, one of :class:`LogLevel`.
    log_level: str = LogLevel.INFO
    #: A classifier folder (``xlingual classify fit``) whose head shares the query model's space: ``POST /classify``.
    classifier: str | None = None

    def __post_init__(self) -> None:
        check_origins(self.cors_origins)
        self.log_level = parse_choice(LogLevel, self.log_level, "log_level={value!r} is not one of {choices}")
