"""One dataclass per stage. Every default is defined here, once; the CLI reads these."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xlingual.choices import (
    AUTO_INDEX,
    Device,
    EmbedDtype,
    ExportFormat,
    IndexType,
    InitMethod,
    LogLevel,
    MineMode,
    Quantization,
    check_origins,
    parse_choice,
    parse_index_type,
)
from xlingual.errors import ConfigError, SearchIndexError

#: The English teacher used when no ``--teacher`` is given.
DEFAULT_TEACHER = "builtin:minilm-en"
#: The multilingual student used when no ``--student`` is given.
DEFAULT_STUDENT = "builtin:me5-small"


def xlingual_home() -> Path:
    """Return the directory for converted models and caches (``$XLINGUAL_HOME``, default ``~/.cache/xlingual``)."""
    env = os.environ.get("XLINGUAL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xlingual"


@dataclass
class DataConfig:
    """How parallel pairs are read and cleaned.

    Example: ``DataConfig(detokenize=True, max_chars=300)``.
    """

    #: Undo word tokenisation (Japanese: drop spaces; English: rejoin clitics and punctuation).
    detokenize: bool = False
    #: Drop exact duplicate pairs (keeps the first occurrence).
    dedupe: bool = True
    #: Pairs whose either side is shorter than this (in characters, after normalisation) are dropped.
    min_chars: int = 1
    #: Pairs whose either side is longer than this (in characters, after normalisation) are dropped.
    max_chars: int = 1000
    #: Reject a corpus whose "Japanese" side mostly has no Japanese script (swapped columns).
    check_scripts: bool = True
    #: Column names / JSON keys for the English and Japanese sides (JSONL and HF datasets).
    en_key: str = "en"
    ja_key: str = "ja"
    #: Fraction of pairs held out for dev by :func:`xlingual.data.clean.split` (deterministic by ``seed``).
    dev_fraction: float = 0.05
    seed: int = 42
    #: Evaluation files whose sentences must not occur in training data (leakage filter).
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_chars < 0 or self.max_chars < self.min_chars:
            raise ConfigError(
                f"min_chars={self.min_chars}, max_chars={self.max_chars}: "
                "need 0 <= min_chars <= max_chars, e.g. min_chars=1, max_chars=1000"
            )


#: Field metadata of the settings ``--resume`` compares with config.json (others, e.g. --device, may change).
RESUME_COMPARED: dict[str, Any] = {"resume": "compare"}


@dataclass
class DistillConfig:
    """Everything a distillation run needs; saved as the run's ``config.json``.

    Example: ``DistillConfig(train=["pairs.tsv"], out=Path("runs/ja"), epochs=2)``.
    """

    teacher: str = field(default=DEFAULT_TEACHER, metadata=RESUME_COMPARED)
    student: str = field(default=DEFAULT_STUDENT, metadata=RESUME_COMPARED)
    #: Training corpora (any data spec); the bundled pairs by default.
    train: list[str] = field(default_factory=lambda: ["builtin:train"], metadata=RESUME_COMPARED)
    #: Dev corpus for the curves in metrics.jsonl; its sentences are also removed from training (leakage).
    dev: str | None = field(default="builtin:dev", metadata=RESUME_COMPARED)
    #: More dev corpora (``--dev`` repeated), never trained on; metrics named after them (``long_dev_…``).
    extra_dev: list[str] = field(default_factory=list, metadata=RESUME_COMPARED)
    #: More evaluation corpora whose sentences must not occur in training (pairs sharing one are dropped).
    exclude: list[str] = field(default_factory=list, metadata=RESUME_COMPARED)
    out: Path = Path("runs/distill")
    epochs: int = field(default=1, metadata=RESUME_COMPARED)
    #: Train for exactly this many optimiser steps, whatever --epochs says (as in Hugging Face's Trainer).
    max_steps: int | None = field(default=None, metadata=RESUME_COMPARED)
    #: Pairs per optimiser step and process (each pair contributes an English and a Japanese sentence).
    batch_size: int = field(default=32, metadata=RESUME_COMPARED)
    lr: float = field(default=5e-5, metadata=RESUME_COMPARED)
    #: Weight of the contrastive term beside MSE (student-ja picks its teacher-en among the batch's). 0: MSE only.
    contrastive_weight: float = field(default=0.1, metadata=RESUME_COMPARED)
    temperature: float = field(default=0.05, metadata=RESUME_COMPARED)
    #: Contrastive negatives from the teacher's cache: random per step, and each pair's nearest (``.negatives``).
    negatives: int = field(default=0, metadata=RESUME_COMPARED)
    hard_negatives: int = field(default=0, metadata=RESUME_COMPARED)
    warmup_ratio: float = field(default=0.1, metadata=RESUME_COMPARED)
    weight_decay: float = field(default=0.01, metadata=RESUME_COMPARED)
    max_grad_norm: float = field(default=1.0, metadata=RESUME_COMPARED)
    #: Student token limit; the teacher keeps its own.
    max_seq_length: int = field(default=128, metadata=RESUME_COMPARED)
    seed: int = field(default=42, metadata=RESUME_COMPARED)
    #: Evaluate on dev every N steps (0: only before training and at the end).
    eval_every: int = 0
    #: Checkpoint every N steps (0: only at the end of each epoch).
    save_every: int = 200
    #: Checkpoints kept on disk (oldest removed first).
    keep_checkpoints: int = 2
    #: Dev pairs used for the curves (the first N after cleaning), to keep evaluation cheap.
    dev_max_pairs: int = 500
    #: Batch pairs of similar length (within windows of 64 batches, batch order shuffled) to cut padding.
    group_by_length: bool = field(default=True, metadata=RESUME_COMPARED)
    #: Keep the word-embedding matrix fixed (most of a multilingual student's parameters): faster steps.
    freeze_embeddings: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Also keep the lowest N transformer layers fixed: backward stops above them (``eval/PERFORMANCE.md``).
    freeze_layers: int = field(default=0, metadata=RESUME_COMPARED)
    #: Trim the student's vocabulary to the pieces of the training and dev sentences (:mod:`xlingual.models.trim`).
    trim_vocab: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Closed-form start of the alignment head (an :class:`InitMethod`): "procrustes", "lstsq" or "none".
    init: str = field(default=InitMethod.PROCRUSTES.value, metadata=RESUME_COMPARED)
    #: Pairs encoded by the student to fit the closed-form head (the first N training pairs).
    init_max_pairs: int = field(default=20000, metadata=RESUME_COMPARED)
    resume: bool = False
    #: Replace a run directory that already holds a run (instead of refusing).
    overwrite: bool = False
    #: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N" (see :class:`Device`).
    device: str = Device.AUTO.value
    #: Undo word tokenisation of the corpora (e.g. the Tanaka corpus).
    detokenize: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Column names / JSON keys of the English and Japanese sides of the pairs (JSONL and HF datasets).
    en_key: str = field(default=DataConfig.en_key, metadata=RESUME_COMPARED)
    ja_key: str = field(default=DataConfig.ja_key, metadata=RESUME_COMPARED)
    quiet: bool = False

    def __post_init__(self) -> None:
        """Refuse a bad setting (``ConfigError`` naming the option, the value and the fix); ``init`` → enum."""
        for ok, message in self._checks():
            if not ok:
                raise ConfigError(message)
        self.init = InitMethod(self.init)

    @classmethod
    def resume_compared(cls) -> tuple[str, ...]:
        """Names of the settings ``--resume`` compares with the run's config.json (their field metadata)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("resume") == "compare")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.epochs >= 1, f"--epochs {self.epochs}: must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps {self.max_steps}: must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: must be at least 1"),
            (0 < self.lr < 1, f"--lr {self.lr}: must be in (0, 1), e.g. 5e-5"),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio {self.warmup_ratio}: must be in [0, 1)"),
            (8 <= self.max_seq_length <= 8192, f"--max-seq-length {self.max_seq_length}: must be in [8, 8192]"),
            (self.eval_every >= 0, f"--eval-every {self.eval_every}: must be 0 (end only) or positive"),
            (self.save_every >= 0, f"--save-every {self.save_every}: must be 0 (epoch ends) or positive"),
            (self.keep_checkpoints >= 1, f"--keep-checkpoints {self.keep_checkpoints}: must be at least 1"),
            (
                self.device in set(Device) or self.device.startswith("cuda:"),
                f"--device {self.device!r}: choose auto, cpu or cuda",
            ),
            (bool(self.train), "no training data: pass at least one --train"),
            (not self.extra_dev or self.dev is not None, "--dev none cannot come with more --dev sets; drop 'none'"),
            (self.init in set(InitMethod), f"--init {str(self.init)!r}: choose one of {', '.join(InitMethod)}"),
            (self.init_max_pairs >= 1, f"--init-max-pairs {self.init_max_pairs}: must be at least 1"),
            (
                self.contrastive_weight >= 0,
                f"--contrastive-weight {self.contrastive_weight}: must be 0 (MSE only) or positive",
            ),
            (0 < self.temperature <= 10, f"--temperature {self.temperature}: must be in (0, 10], e.g. 0.05"),
            (min(self.negatives, self.hard_negatives) >= 0, "--negatives/--hard-negatives: must be 0 or positive"),
            (self.freeze_layers >= 0, f"--freeze-layers {self.freeze_layers}: must be 0 (train all) or positive"),
            (not (self.resume and self.overwrite), "--resume and --overwrite contradict each other: pick one"),
        ]


@dataclass
class EvalConfig:
    """How ``xlingual evaluate`` embeds the pairs and scores retrieval.

    Example: ``EvalConfig(batch_size=128, margin_k=4)``.
    """

    #: Sentences per encoder forward pass.
    batch_size: int = 64
    #: Torch device for the models (``None``: sentence-transformers picks one).
    device: str | None = None
    #: Neighbours each side in the ratio margin of Artetxe & Schwenk (2019).
    margin_k: int = 4
    #: Margin rescoring starts from this many nearest candidates by cosine; a bound check proves
    #: the best-margin candidate is among them, and queries where it cannot are rescored exhaustively.
    margin_candidates: int = 16
    #: Queries scored per block; ``None`` picks it so that one block holds about 64 MiB of scores.
    block_size: int | None = None
    #: Show encoding progress bars (on stderr).
    show_progress: bool = False
    #: Reuse embeddings from the on-disk cache (``$XLINGUAL_HOME/embeddings``) for models given as specs;
    #: a cached model is not even loaded.
    cache: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "margin_k", "margin_candidates"):
            if (value := getattr(self, name)) < 1:
                raise ConfigError(f"EvalConfig.{name}={value} is not positive; pass 1 or more.")
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"EvalConfig.block_size={self.block_size} is not positive; pass 1 or more, or None.")


@dataclass
class MineConfig:
    """How ``xlingual mine`` finds translation pairs between two unaligned files.

    Example: ``MineConfig(threshold=1.04, mode="intersect")``.
    """

    #: Keep pairs whose ratio margin is at least this. 1.06 is the CCMatrix value (Schwenk et al.,
    #: 2021; WikiMatrix used 1.04); tune it on gold pairs with ``--gold ... --tune``.
    threshold: float = 1.06
    #: Neighbours each side in the ratio margin (LASER's ``-k``).
    k: int = 4
    #: Best-margin search starts from this many nearest candidates by cosine (exact: see EvalConfig).
    candidates: int = 16
    #: ``forward`` (best target per source), ``backward``, ``intersect`` (mutual best) or ``max``
    #: (both directions, greedy one-to-one by score, as LASER's ``--retrieval max``). A plain string is
    #: accepted and converted: after construction ``mode`` is always a :class:`MineMode`. The class default
    #: is the plain value, so command-line option defaults read it as a string.
    mode: MineMode | str = MineMode.MAX.value
    batch_size: int = 64
    device: str | None = None
    block_size: int | None = None
    show_progress: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "candidates", "batch_size"):
            if (value := getattr(self, name)) < 1:
                raise ConfigError(f"MineConfig.{name}={value} is not positive; pass 1 or more.")
        self.mode = parse_choice(MineMode, self.mode, "Mining mode {value!r} is unknown; choose one of: {choices}.")


@dataclass
class CacheConfig:
    """Where and how teacher embeddings are cached on disk (:mod:`xlingual.cache`).

    Example: ``CacheConfig(chunk_size=4096, verify=False)``.
    """

    #: Cache folder; ``None`` means ``xlingual_home() / "embeddings"``.
    root: str | None = None
    #: Sentences per teacher call; progress is saved after each chunk, so a crash loses at most one.
    chunk_size: int = 8192
    #: Check an entry's sha256 whenever it is read (1–1.3 s per GB); its size is always checked.
    verify: bool = True


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

    def __post_init__(self) -> None:
        check_origins(self.cors_origins)
        self.log_level = parse_choice(LogLevel, self.log_level, "log_level={value!r} is not one of {choices}")


@dataclass
class EmbedConfig:
    """How ``xlingual embed`` turns a text / JSONL / Parquet file into an embeddings file.

    Example: ``EmbedConfig(model="runs/ja/model", dtype="int8", chunk_size=8192)``.
    """

    #: Model spec that embeds the texts (``onnx:DIR`` works too, without PyTorch).
    model: str = DEFAULT_STUDENT
    #: ``float32``, ``float16``, ``int8`` (per-dimension ranges calibrated on the first chunk) or ``binary``
    #: (one bit per dimension, ``value > 0``, packed 8 to a byte).
    #: A plain string is accepted and converted (``EmbedDtype(value)``) by ``__post_init__``; the class default
    #: stays a plain string because click's ``Choice`` (the CLI's ``default=EmbedConfig.dtype``) compares strings.
    dtype: EmbedDtype | str = EmbedDtype.FLOAT32.value
    #: L2-normalise each vector before it is stored (and before int8/binary quantisation).
    normalize: bool = True
    #: Texts per encoder forward pass.
    batch_size: int = 64
    #: Rows embedded and committed to disk at a time: memory holds one chunk, a crash loses at most one, and
    #: int8 ranges are calibrated on the first one.
    chunk_size: int = 4096
    #: Prompt of the model to prepend (e.g. ``passage`` for E5 documents); ``None``: the model's default.
    prompt_name: str | None = None
    #: JSONL / Parquet field holding the row id (missing: ``FILE:LINE``) and the text.
    id_key: str = "id"
    text_key: str = "text"
    #: Continue an interrupted run from its progress file (same input, model and settings).
    resume: bool = False
    #: Replace an existing output file (and any interrupted run's partial files).
    overwrite: bool = False
    #: Torch device for PyTorch models (``None``: sentence-transformers picks one).
    device: str | None = None
    #: Log progress (rows, rows/s) after each chunk.
    show_progress: bool = True

    def __post_init__(self) -> None:
        self.dtype = parse_choice(
            EmbedDtype, self.dtype, "--dtype {value!r} is not supported; choose one of: {choices}"
        )
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size is {self.batch_size}; it must be at least 1")
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size is {self.chunk_size}; it must be at least 1")


@dataclass
class ExportConfig:
    """What ``xlingual export`` writes and how the ONNX model is checked and quantised.

    Example: ``ExportConfig(formats=["onnx"], quantize="int8")``.
    """

    #: ``st`` (a sentence-transformers folder with a model card) and/or ``onnx``.
    formats: list[ExportFormat] | list[str] = field(default_factory=lambda: [ExportFormat.ST, ExportFormat.ONNX])
    #: ``int8`` adds a dynamically quantised ONNX model (``onnx-int8/``); ``None``: float32 only.
    quantize: Quantization | str | None = None
    #: ONNX opset of the exported graph (17 has LayerNormalization; onnxruntime ≥ 1.14 runs it).
    opset: int = 17
    #: Export fails unless PyTorch and ONNX float32 embeddings reach this cosine on every parity sentence.
    parity_min_cosine: float = 0.999
    #: The same floor for the int8 model, which is lossy by design; it catches a broken quantisation.
    int8_min_cosine: float = 0.9
    #: Quantise weights per output channel (one scale per row) rather than per tensor: more accurate.
    int8_per_channel: bool = True
    #: 7-bit weights: onnxruntime's u8×s8 kernels on CPUs without VNNI can saturate with full 8-bit ones.
    int8_reduce_range: bool = True
    #: Operators whose weights are quantised: MatMul (the compute) and Gather (the word-embedding table).
    int8_op_types: list[str] = field(default_factory=lambda: ["MatMul", "Gather"])
    #: MatMuls whose input has max|x| / rms(x) at least this on the parity sentences stay float32 (``None``: none).
    #: One activation scale per tensor cannot serve outliers ~100× the typical value; in multilingual-e5-small
    #: the FFN outputs of layers 0, 4 and 5 reach 175, 250 and 157 (export metrics.json) and cost 1–2 points quantised.
    int8_outlier_ratio: float | None = 100.0
    #: Replace an existing export folder at ``--out``.
    overwrite: bool = False

    def __post_init__(self) -> None:
        try:
            self.formats = [ExportFormat(f) for f in self.formats]
        except ValueError as exc:
            raise ConfigError(f"{exc}; formats are: {', '.join(f.value for f in ExportFormat)}") from None
        if not self.formats:
            raise ConfigError("No export format; pass --format st and/or --format onnx")
        if self.quantize is not None:
            message = "--quantize {value!r} is not supported; the only choice is {choices}"
            self.quantize = parse_choice(Quantization, self.quantize, message)
        if self.quantize and ExportFormat.ONNX not in self.formats:
            raise ConfigError("--quantize int8 quantises the ONNX model; add --format onnx")
        if not 0 < self.parity_min_cosine <= 1:
            raise ConfigError(f"parity_min_cosine is {self.parity_min_cosine}; it must be in (0, 1]")


@dataclass
class TrimConfig:
    """How ``xlingual trim`` chooses the pieces to keep and checks the trimmed model.

    Example: ``TrimConfig(keep_top=20000)``.
    """

    #: Also keep this many pieces with the highest tokenizer scores (0: only corpus pieces and single characters).
    keep_top: int = 0
    #: Corpus texts (a seeded sample) embedded by both models; each must reach ``min_cosine``.
    check_texts: int = 256
    #: Floor of the before/after cosine on the check texts (the same pieces give the same vectors).
    min_cosine: float = 0.9999
    #: How parallel corpora are read (``detokenize`` for pre-tokenised corpora such as Tanaka).
    data: DataConfig = field(default_factory=DataConfig)
    #: Replace an existing trimmed folder at ``--out``.
    overwrite: bool = False
