"""Model export for downstream apps: a clean sentence-transformers folder and ONNX (optionally int8).

``export_model("runs/ja/model", "exported", ExportConfig(formats=["st", "onnx"], quantize="int8"))`` writes::

    exported/
      config.json      what produced the export: source spec and fingerprint, formats, settings, versions
      manifest.json    size and sha256 of every other file (checked when a folder of it is loaded)
      metrics.json     parity of each ONNX variant with PyTorch (cosine on English and Japanese sentences)
      st/              sentence-transformers folder + README.md model card (teacher, student, data, metrics)
      onnx/            model.onnx (float32), tokenizer.json, xlingual_onnx.json   → model spec onnx:exported/onnx
      onnx-int8/       the same with a dynamically int8-quantised model.onnx      → onnx:exported/onnx-int8

**What is in the ONNX graph.** Everything after tokenisation: the transformer, the pooling over the
attention mask and every module after it (a distilled student's ``Normalize → Dense → Normalize``), so
the graph's ``sentence_embedding`` output equals ``SentenceTransformer.encode``. What a graph cannot hold
is described in ``xlingual_onnx.json``: the prompt prepended to each text, the token limit and the padding
token (:class:`xlingual.models.onnx_encoder.OnnxEncoder` applies them). The exporter is PyTorch's TorchScript-based
one (``dynamo=False``): it needs no packages beyond ``onnx``, and its BERT graph is the pattern
onnxruntime fuses into its own ``Attention`` / ``SkipLayerNormalization`` kernels at load time.

**Parity.** After export, PyTorch and onnxruntime embed the same English and Japanese sentences
(short, long enough to be truncated, batched with padding); float32 must reach cosine ≥ 0.999 on every
one, int8 ≥ 0.9 (it is a lossy format; its retrieval accuracy is measured by ``eval/bench_encode.py``),
or the export stops with the numbers and nothing is written. Folders are built in a temporary sibling
and swapped into place in one rename, so a crash or a full disk leaves any previous export whole.

**Integrity.** ``manifest.json`` at the top records the size and sha256 of every file; loading ``onnx:DIR``
checks the files of that folder against it (:func:`xlingual.models.onnx_encoder.check_export_files`).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual import __version__
from xlingual._io import (
    disk_full_message,
    folder_checksums,
    is_disk_full,
    prepare_out,
    replace_dir,
    sweep_stale,
    temp_sibling,
)
from xlingual.config import ExportConfig
from xlingual.errors import ConfigError, DiskFullError, ModelError, XlingualError
from xlingual.models.onnx_encoder import EXPORT_MANIFEST, ONNX_FORMAT_VERSION, ONNX_INFO_FILE, ONNX_PREFIX, OnnxEncoder

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: Marks a folder written by :func:`export_model` (only such a folder is replaced by ``overwrite``).
EXPORT_MARKER = "xlingual_export"
DISTILL_META = "xlingual_distill.json"

#: Sentences embedded by both PyTorch and onnxruntime at export. A mix of languages and lengths, one of them
#: longer than any model's token limit (truncation), batched together (padding).
PARITY_SENTENCES: tuple[str, ...] = (
    "The weather in Tokyo is nice today.",
    "Where is the nearest station?",
    "I have been learning Japanese for three years, and I still find kanji difficult.",
    "Please send me the report by Friday.",
    "A cat is sleeping on the sofa.",
    "He said he would call me back, but he never did.",
    "Hi",
    "東京の今日の天気は良いです。",
    "一番近い駅はどこですか。",
    "私は三年間日本語を勉強していますが、漢字はまだ難しいです。",
    "金曜日までに報告書を送ってください。",
    "猫がソファーの上で寝ている。",
    "彼は折り返し電話すると言ったが、結局しなかった。",
    "はい",
    " ".join(["This sentence repeats until it is longer than the token limit of any sentence encoder."] * 40),
    "とても長い文章です。" * 120,
)


class ExportFormat(StrEnum):
    """What ``xlingual export`` can write."""

    ST = "st"
    ONNX = "onnx"


@dataclass
class ExportResult:
    """What :func:`export_model` wrote: the folder of each format and the parity of each ONNX variant."""

    out: Path
    folders: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "out": str(self.out),
            "folders": {name: str(path) for name, path in self.folders.items()},
            "parity": self.parity,
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> str:
        """Human-readable lines: one per folder, with the parity of ONNX variants."""
        lines = [f"exported to {self.out} in {self.seconds:.0f} s"]
        for name, path in self.folders.items():
            line = f"  {name:<10} {path}"
            if name in self.parity:
                p = self.parity[name]
                line += f"   parity: min cosine {p['min_cosine']:.5f}, mean {p['mean_cosine']:.5f}"
            if name.startswith("onnx"):
                line += f"   (model spec onnx:{path})"
            lines.append(line)
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"xlingual": __version__}
    for package in ("torch", "sentence-transformers", "transformers", "onnx", "onnxruntime", "tokenizers"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _cosines(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    ref_norm = np.linalg.norm(reference, axis=1)
    other_norm = np.linalg.norm(other, axis=1)
    return (reference * other).sum(axis=1) / np.maximum(ref_norm * other_norm, 1e-12)


def _parity(reference: np.ndarray, encoder: OnnxEncoder, sentences: Sequence[str]) -> dict[str, float]:
    onnx_emb = encoder.encode(list(sentences), batch_size=8)
    cos = _cosines(reference, onnx_emb)
    worst = int(np.argmin(cos))
    return {
        "sentences": len(sentences),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "worst_sentence": worst,
        "max_abs_diff": float(np.abs(reference - onnx_emb).max()),
    }


def _check_parity(name: str, parity: dict[str, float], threshold: float, sentences: Sequence[str]) -> None:
    if parity["min_cosine"] < threshold:
        worst = sentences[int(parity["worst_sentence"])]
        raise ModelError(
            f"ONNX parity check failed for {name}: cosine {parity['min_cosine']:.5f} < {threshold} between PyTorch "
            f"and onnxruntime on {worst[:60]!r} (mean {parity['mean_cosine']:.5f} over {len(sentences)} sentences). "
            "Nothing was written. The model has a module the exporter does not reproduce; export it with "
            "--format st only, or report the model's modules.json"
        )


def _distill_meta(model_dir: Path | None) -> dict[str, Any]:
    if model_dir is None or not (model_dir / DISTILL_META).is_file():
        return {}
    try:
        meta = json.loads((model_dir / DISTILL_META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{model_dir / DISTILL_META} cannot be read ({exc}); re-save the distilled model") from exc
    return meta if isinstance(meta, dict) else {}


def _run_metrics(model_dir: Path | None) -> dict[str, Any]:
    """The last dev metrics of the run a model folder came from (``run_dir/model`` ← ``run_dir/metrics.jsonl``)."""
    if model_dir is None:
        return {}
    from xlingual.distillation.report import read_metrics

    records = read_metrics(model_dir.parent)
    evaluated = [r for r in records if any(k.endswith("_acc") or k == "dev_mse" for k in r)]
    untouched = next((r for r in evaluated if r.get("untouched")), None)
    trained = [r for r in evaluated if not r.get("untouched")]
    if not trained:
        return {}
    first, last = trained[0], trained[-1]
    keys = [k for k in last if k.endswith("_acc") or k == "dev_mse"]
    return {
        "step": last.get("step"),
        "after": {k: last[k] for k in keys},
        "before": {k: first[k] for k in keys if k in first and first is not last},
        "untouched": {k: untouched[k] for k in keys if untouched and k in untouched},
    }


# --------------------------------------------------------------------------- the model card


def model_card(
    spec: str, model: SentenceTransformer, distill: dict[str, Any], metrics: dict[str, Any], source_fp: str | None
) -> str:
    """The README.md of an exported sentence-transformers folder (YAML front matter + Markdown)."""
    dim = model.get_embedding_dimension()
    prompt_name = getattr(model, "default_prompt_name", None)
    prompt = (getattr(model, "prompts", None) or {}).get(prompt_name) if prompt_name else None
    modules = " → ".join(type(module).__name__ for module in model)
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "language: [en, ja]" if distill else "tags: [sentence-transformers]",
    ]
    if distill:
        lines.append("tags: [sentence-transformers, knowledge-distillation, xlingual]")
    lines += ["---", ""]
    if distill:
        lines += [
            "# Japanese–English sentence encoder (distilled with xlingual)",
            "",
            f"A multilingual student distilled from an English teacher (Reimers & Gurevych, 2020): the student's "
            f"embeddings of English sentences and of their Japanese translations are trained onto the teacher's "
            f"embedding of the English sentence, so Japanese and English text share the teacher's {dim}-d space.",
            "",
            "| | |",
            "|---|---|",
            f"| teacher | `{distill.get('teacher')}` (fingerprint `{str(distill.get('teacher_fingerprint'))[:12]}`) |",
            f"| student | `{distill.get('student')}` |",
            f"| training data | {', '.join(f'`{t}`' for t in distill.get('train') or []) or 'unknown'} |",
            f"| max sequence length | {distill.get('max_seq_length', model.max_seq_length)} tokens |",
        ]
    else:
        lines += [
            f"# Sentence encoder exported from `{spec}`",
            "",
            "| | |",
            "|---|---|",
            f"| source | `{spec}` |",
            f"| max sequence length | {model.max_seq_length} tokens |",
        ]
    lines += [
        f"| dimension | {dim} (cosine similarity) |",
        f"| modules | {modules} |",
        f"| default prompt | {repr(prompt) if prompt else 'none'} (prepended to every text by `encode`) |",
    ]
    if source_fp:
        lines.append(f"| source fingerprint | `{source_fp[:12]}` |")
    lines.append("")
    if metrics.get("after"):
        lines += [
            "## Dev metrics of the run",
            "",
            "| metric | untouched | before fine-tuning | after |",
            "|---|---:|---:|---:|",
        ]
        for key, value in metrics["after"].items():
            untouched = metrics.get("untouched", {}).get(key)
            before = metrics.get("before", {}).get(key)
            lines.append(
                f"| {key} | {'' if untouched is None else f'{untouched:.4f}'} | "
                f"{'' if before is None else f'{before:.4f}'} | {value:.4f} |"
            )
        lines += ["", "Accuracies are fractions of the dev pairs (translation retrieval); dev_mse is ×100.", ""]
    lines += [
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/folder")',
        'embeddings = model.encode(["東京の天気はどうですか", "How is the weather in Tokyo?"])',
        "print(model.similarity(embeddings[:1], embeddings[1:]))",
        "```",
        "",
        "With xlingual: `xlingual evaluate -m path/to/this/folder -p pairs.tsv`, "
        "`xlingual index build docs.jsonl -m path/to/this/folder -o idx`, "
        "`xlingual export path/to/this/folder -f onnx -o exported` (PyTorch-free inference).",
        "",
        f"Exported by xlingual {__version__}.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- ONNX


class _SentencePipeline:
    """Builds the torch module whose forward is the whole sentence-transformers pipeline after tokenisation."""

    @staticmethod
    def build(model: SentenceTransformer, input_names: Sequence[str]) -> torch.nn.Module:
        import torch

        class Pipeline(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                features = dict(zip(input_names, tensors, strict=True))
                return self.model(features)["sentence_embedding"]

        return Pipeline().eval()


def _describe_modules(model: SentenceTransformer) -> list[dict[str, Any]]:
    described: list[dict[str, Any]] = []
    for module in model:
        entry: dict[str, Any] = {"module": type(module).__name__, "in_graph": True}
        if type(module).__name__ == "Transformer":
            auto = getattr(module, "auto_model", None)
            entry["architecture"] = type(auto).__name__ if auto is not None else None
        else:
            get_config = getattr(module, "get_config_dict", None)
            config = get_config() if callable(get_config) else {}
            entry.update({str(k): v for k, v in config.items()})
            if type(module).__name__ == "Dense":
                entry["activation_function"] = type(module.activation_function).__name__
        described.append(entry)
    return described


def _check_exportable(model: SentenceTransformer, spec: str) -> Any:
    """Return the Transformer module; refuse pipelines the ONNX folder could not reproduce."""
    first = model[0]
    if type(first).__name__ != "Transformer" or getattr(first, "tokenizer", None) is None:
        raise ModelError(
            f"{spec}: the first module is {type(first).__name__}, not a Hugging Face Transformer with a tokenizer; "
            "only transformer-based sentence encoders export to ONNX (use --format st)"
        )
    if not getattr(first.tokenizer, "is_fast", False):
        raise ModelError(f"{spec}: its tokenizer has no fast (tokenizer.json) version, which the ONNX folder needs")
    prompt_name = getattr(model, "default_prompt_name", None)
    prompt = (getattr(model, "prompts", None) or {}).get(prompt_name) if prompt_name else None
    for module in model:
        if prompt and getattr(module, "include_prompt", True) is False:
            raise ModelError(
                f"{spec}: its Pooling excludes the prompt {prompt!r} (include_prompt=false), which the ONNX "
                "graph cannot know; export it with --format st"
            )
    return first


def _export_onnx_fp32(model: SentenceTransformer, spec: str, folder: Path, opset: int) -> list[str]:
    """Write ``folder/model.onnx`` (the whole pipeline) and the tokenizer files; return the graph's input names."""
    import torch

    transformer = _check_exportable(model, spec)
    tokenizer = transformer.tokenizer
    input_names = [
        name for name in ("input_ids", "attention_mask", "token_type_ids") if name in tokenizer.model_input_names
    ]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise ModelError(f"{spec}: its tokenizer does not produce input_ids and attention_mask; cannot export to ONNX")
    auto_model = transformer.auto_model
    # Eager attention traces to plain MatMul/Softmax, the pattern onnxruntime fuses into its Attention kernel;
    # SDPA would trace to a different pattern that stays unfused.
    if hasattr(auto_model, "set_attn_implementation"):
        try:
            auto_model.set_attn_implementation("eager")
        except (ValueError, AttributeError, NotImplementedError):
            logger.info("%s: keeping the model's attention implementation for export", spec)
    sample = tokenizer(list(PARITY_SENTENCES[:2]), padding=True, truncation=True, return_tensors="pt")
    args = tuple(sample[name] for name in input_names)
    pipeline = _SentencePipeline.build(model, input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["sentence_embedding"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            pipeline,
            args,
            str(folder / "model.onnx"),
            input_names=input_names,
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    tokenizer.save_pretrained(str(folder))
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{spec}: saving its tokenizer wrote no tokenizer.json; the ONNX folder needs one")
    return input_names


def _onnx_info(
    model: SentenceTransformer,
    input_names: list[str],
    precision: str,
    source: dict[str, Any],
    opset: int,
) -> dict[str, Any]:
    tokenizer: Any = model[0].tokenizer
    modules = _describe_modules(model)
    return {
        "format": "xlingual-onnx",
        "format_version": ONNX_FORMAT_VERSION,
        "model_file": "model.onnx",
        "precision": precision,
        "tokenizer_file": "tokenizer.json",
        "inputs": input_names,
        "output": "sentence_embedding",
        "dim": int(model.get_embedding_dimension() or 0),
        "max_seq_length": int(model.max_seq_length or 0),
        "pad_token": tokenizer.pad_token,
        "pad_id": tokenizer.pad_token_id,
        "prompts": dict(getattr(model, "prompts", None) or {}),
        "default_prompt_name": getattr(model, "default_prompt_name", None),
        "pipeline": modules,
        "output_normalized": bool(modules) and modules[-1]["module"] == "Normalize",
        "how_to_use": (
            "text = prompts[default_prompt_name] + text; tokenize with tokenizer.json, truncating to max_seq_length "
            "tokens and padding with pad_id to the longest text of the batch; run model.onnx with the int64 "
            "(batch, sequence) inputs; the output sentence_embedding (batch, dim) float32 is the sentence embedding "
            "(every pipeline module, pooling included, is in the graph)"
        ),
        "source": source,
        "export": {"exporter": "torch.onnx.export (TorchScript, dynamo=False)", "opset": opset, **_versions()},
    }


def activation_outliers(onnx_dir: Path, sentences: Sequence[str]) -> dict[str, float]:
    """For each MatMul with constant weights: max |x| / rms(x) of its input ``x`` over the tokens of ``sentences``.

    Dynamic quantisation gives an activation tensor one scale: 256 levels from −max to max. A tensor whose
    few outliers are a hundred times its typical value (the "massive activations" of some FFN outputs)
    keeps almost no resolution for the rest, so such MatMuls are better left in float32.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_dir / "model.onnx"))
    weights = {init.name for init in model.graph.initializer}
    targets = {
        node.name: node.input[0] for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights
    }
    present = {out.name for out in model.graph.output}
    for tensor in dict.fromkeys(targets.values()):
        if tensor not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor observable
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del model
    feed = OnnxEncoder(onnx_dir).tokenize(list(sentences))
    tokens = feed["attention_mask"].astype(bool)
    names = [out.name for out in session.get_outputs()]
    values = dict(zip(names, session.run(None, feed), strict=True))
    ratios: dict[str, float] = {}
    for node, tensor in targets.items():
        x = np.asarray(values[tensor], dtype=np.float32)
        x = x[tokens] if x.ndim == 3 and x.shape[:2] == tokens.shape else x
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        ratios[node] = float(np.abs(x).max() / rms) if rms > 0 else 0.0
    return ratios


def _quantize_int8(fp32_dir: Path, int8_dir: Path, config: ExportConfig) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_dir.mkdir(parents=True)
    ratios = activation_outliers(fp32_dir, PARITY_SENTENCES) if config.int8_outlier_ratio else {}
    kept_float = {node: round(r, 1) for node, r in ratios.items() if r >= (config.int8_outlier_ratio or 0)}
    if kept_float:
        logger.info("keeping %d MatMul(s) with outlier activations in float32: %s", len(kept_float), kept_float)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs every tensor on the root logger
    try:
        quantize_dynamic(
            fp32_dir / "model.onnx",
            int8_dir / "model.onnx",
            weight_type=QuantType.QInt8,
            per_channel=config.int8_per_channel,
            reduce_range=config.int8_reduce_range,
            op_types_to_quantize=list(config.int8_op_types),
            nodes_to_exclude=list(kept_float),
        )
    finally:
        root.setLevel(level)
    for item in fp32_dir.iterdir():
        if item.name not in ("model.onnx", ONNX_INFO_FILE) and item.is_file():
            shutil.copy2(item, int8_dir / item.name)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic (weights int8 offline, activations uint8 per batch)",
        "weight_type": "QInt8",
        "per_channel": config.int8_per_channel,
        # u8×s8 products can saturate in AVX2 / AVX-512 kernels without VNNI; 7-bit weights avoid it.
        "reduce_range": config.int8_reduce_range,
        "op_types": list(config.int8_op_types),
        "outlier_ratio_threshold": config.int8_outlier_ratio,
        # MatMuls left in float32 and their input's max|x| / rms(x) on the parity sentences
        "float32_matmuls": kept_float,
    }


# --------------------------------------------------------------------------- export


def _check_config(config: ExportConfig) -> list[ExportFormat]:
    try:
        formats = [ExportFormat(f) for f in config.formats]
    except ValueError as exc:
        raise ConfigError(f"{exc}; formats are: {', '.join(f.value for f in ExportFormat)}") from None
    if not formats:
        raise ConfigError("No export format; pass --format st and/or --format onnx")
    if config.quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {config.quantize!r} is not supported; the only choice is int8")
    if config.quantize and ExportFormat.ONNX not in formats:
        raise ConfigError("--quantize int8 quantises the ONNX model; add --format onnx")
    if not 0 < config.parity_min_cosine <= 1:
        raise ConfigError(f"parity_min_cosine is {config.parity_min_cosine}; it must be in (0, 1]")
    return list(dict.fromkeys(formats))


def _verify_onnx(
    folder: Path, info: dict[str, Any], reference: np.ndarray, precision: str, min_cosine: float
) -> dict[str, Any]:
    """Write ``info`` into ``folder``, embed the parity sentences with it and compare with ``reference``.

    ``reference``: ``(n, dim)`` float32 PyTorch embeddings of :data:`PARITY_SENTENCES`. Raises
    :class:`ModelError` (via ``_check_parity``) below ``min_cosine``; otherwise records the parity in the
    folder's info file and returns it.
    """
    _write_json(folder / ONNX_INFO_FILE, info)
    parity = _parity(reference, OnnxEncoder(folder), PARITY_SENTENCES)
    _check_parity(precision, parity, min_cosine, PARITY_SENTENCES)
    info["parity"] = parity
    _write_json(folder / ONNX_INFO_FILE, info)
    return parity


def _is_export(folder: Path) -> bool:
    try:
        return EXPORT_MARKER in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def export_model(spec: str, out: str | os.PathLike[str], config: ExportConfig | None = None) -> ExportResult:
    """Export the model ``spec`` names into ``out`` (see the module docstring for the layout).

    Raises :class:`ModelError` when the ONNX parity check fails (nothing is written then) and
    :class:`ConfigError` for bad options or an occupied ``out``.
    Example: ``export_model("runs/ja/model", "exported", ExportConfig(formats=["onnx"], quantize="int8"))``.
    """
    from sentence_transformers import SentenceTransformer

    from xlingual.models.specs import fingerprint, load_model, resolve_model_path

    config = config or ExportConfig()
    formats = _check_config(config)
    out_dir = Path(out).expanduser()
    if spec.startswith(ONNX_PREFIX):
        raise ConfigError(f"{spec} is already an ONNX export; export the PyTorch model it came from")
    prepare_out(
        out_dir,
        config.overwrite,
        what="the export",
        is_ours=_is_export,
        ours="an xlingual export folder (no config.json from `xlingual export`)",
    )
    started = time.perf_counter()
    model_dir = resolve_model_path(spec)
    model = load_model(spec, device="cpu")
    if not isinstance(model, SentenceTransformer):  # pragma: no cover - onnx: specs are refused above
        raise ConfigError(f"{spec} is not a PyTorch sentence-transformers model")
    model.eval()
    source_fp = fingerprint(model_dir) if model_dir is not None else None
    distill = _distill_meta(model_dir)
    source = {
        "spec": spec,
        "path": str(model_dir) if model_dir else None,
        "fingerprint": source_fp,
        "teacher": distill.get("teacher"),
        "teacher_fingerprint": distill.get("teacher_fingerprint"),
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(out_dir)  # temporary folders of exports that were killed
    tmp = temp_sibling(out_dir, "tmp")
    tmp.mkdir()
    result = ExportResult(out=out_dir)
    try:
        if ExportFormat.ST in formats:
            st_dir = tmp / "st"
            model.save(str(st_dir))
            if model_dir is not None and (model_dir / DISTILL_META).is_file():
                shutil.copy2(model_dir / DISTILL_META, st_dir / DISTILL_META)
            card = model_card(spec, model, distill, _run_metrics(model_dir), source_fp)
            (st_dir / "README.md").write_text(card, encoding="utf-8")
            result.folders["st"] = out_dir / "st"
        if ExportFormat.ONNX in formats:
            logger.info("embedding %d parity sentences with PyTorch", len(PARITY_SENTENCES))
            reference = np.asarray(
                model.encode(list(PARITY_SENTENCES), batch_size=8, show_progress_bar=False), dtype=np.float32
            )
            onnx_dir = tmp / "onnx"
            onnx_dir.mkdir()
            logger.info("exporting %s to ONNX (opset %d)", spec, config.opset)
            input_names = _export_onnx_fp32(model, spec, onnx_dir, config.opset)
            info = _onnx_info(model, input_names, "float32", source, config.opset)
            if distill:
                shutil.copy2(model_dir / DISTILL_META, onnx_dir / DISTILL_META)  # type: ignore[operator]
            parity = _verify_onnx(onnx_dir, info, reference, "float32", config.parity_min_cosine)
            result.folders["onnx"] = out_dir / "onnx"
            result.parity["onnx"] = parity
            if config.quantize == "int8":
                logger.info("quantising the ONNX model to int8")
                int8_dir = tmp / "onnx-int8"
                quantization = _quantize_int8(onnx_dir, int8_dir, config)
                int8_info = {**info, "precision": "int8", "quantization": quantization}
                int8_info.pop("parity", None)
                int8_parity = _verify_onnx(int8_dir, int8_info, reference, "int8", config.int8_min_cosine)
                result.folders["onnx-int8"] = out_dir / "onnx-int8"
                result.parity["onnx-int8"] = int8_parity
        result.seconds = time.perf_counter() - started
        settings = {k: v for k, v in asdict(config).items() if k != "overwrite"}
        _write_json(
            tmp / "config.json",
            {EXPORT_MARKER: __version__, "source": source, "settings": settings, "versions": _versions()},
        )
        _write_json(tmp / "metrics.json", {"parity": result.parity, "parity_sentences": len(PARITY_SENTENCES)})
        checksums = folder_checksums(tmp)
        _write_json(tmp / EXPORT_MANIFEST, {"format": "xlingual-export", "files": checksums})
        replace_dir(tmp, out_dir)  # one swap: a previous export stays whole until the new one is complete
    except Exception as exc:
        if isinstance(exc, XlingualError) or not is_disk_full(exc):
            raise
        intact = f"the previous export at {out_dir} is intact" if out_dir.exists() else f"{out_dir} was not written"
        message = disk_full_message(
            getattr(exc, "filename", None) or out_dir, intact, "run the same xlingual export again"
        )
        raise DiskFullError(f"{message} ({exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return result
