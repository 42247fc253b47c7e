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
    """What ``xlingual export`` writes and how the ONNX and OpenVINO models are checked and quantised.

    Example: ``ExportConfig(formats=["onnx", "openvino"], quantize="int8")``.
    """

    #: ``st`` (a sentence-transformers folder with a model card), ``onnx`` and/or ``openvino`` (needs the
    #: ``openvino`` extra).
    formats: list[ExportFormat] | list[str] = field(default_factory=lambda: [ExportFormat.ST, ExportFormat.ONNX])
    #: ``int8`` adds a quantised model of each graph format: ``onnx-int8/`` (dynamic: onnxruntime) and
    #: ``openvino-int8/`` (static: NNCF, calibrated on ``calibration``); ``None``: float32 only.
    quantize: Quantization | str | None = None
    #: Texts that calibrate the OpenVINO int8 model's activation ranges: ``.txt`` files (one per line), JSONL/Parquet
    #: documents or parallel-data specs (both sides). Empty: the bundled training pairs, English and Japanese.
    calibration: list[str] = field(default_factory=list)
    #: How many calibration texts (a seeded sample when there are more).
    calibration_size: int = 300
    #: Pairs on which each int8 model's retrieval accuracy is compared with its float32 model's (mean of en→ja
    #: and ja→en top-1); the bundled dev pairs, never the calibration texts.
    int8_check_pairs: str = "builtin:dev"
    #: Export fails when an int8 model's mean accuracy on ``int8_check_pairs`` is this many points below float32's
    #: (``None``: report only). Catches a quantisation that broke the model; the loss measured is in metrics.json.
    int8_max_accuracy_drop: float | None = 2.0
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
            raise ConfigError("No export format; pass --format st, onnx and/or openvino")
        if self.quantize is not None:
            message = "--quantize {value!r} is not supported; the only choice is {choices}"
            self.quantize = parse_choice(Quantization, self.quantize, message)
        graphs = {ExportFormat.ONNX, ExportFormat.OPENVINO} & set(self.formats)
        if self.quantize and not graphs:
            raise ConfigError("--quantize int8 quantises the ONNX or OpenVINO model; add --format onnx or openvino")
        if self.calibration and not (self.quantize and ExportFormat.OPENVINO in self.formats):
            raise ConfigError(
                "--calibration calibrates the OpenVINO int8 model; add --format openvino --quantize int8, "
                "or drop --calibration"
            )
        if self.calibration_size < 1:
            raise ConfigError(f"--calibration-size is {self.calibration_size}; it must be at least 1")
        if self.int8_max_accuracy_drop is not None and self.int8_max_accuracy_drop < 0:
            raise ConfigError(f"int8_max_accuracy_drop is {self.int8_max_accuracy_drop}; it must be ≥ 0 (points)")
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
