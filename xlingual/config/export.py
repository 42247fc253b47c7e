"""Settings of the export stage: embeddings files, model folders, vocabulary trimming."""

from __future__ import annotations

from dataclasses import dataclass, field

from xlingual.choices import EmbedDtype, ExportFormat, Quantization, parse_choice
from xlingual.config.training import DEFAULT_STUDENT, DataConfig
from xlingual.errors import ConfigError


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
