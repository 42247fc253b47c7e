"""ONNX export of a sentence-transformers model: the whole pipeline in one graph, and int8 quantisation.

The graph holds everything after tokenisation (transformer, pooling, every module after it); what a graph
cannot hold (prompt, token limit, padding token) goes into ``xlingual_onnx.json``, which
:class:`~xlingual.models.onnx_encoder.OnnxEncoder` applies. Example::

    names = export_onnx_fp32(model, "runs/ja/model", Path("out/onnx"), opset=17)
    info = onnx_info(model, names, "float32", source, opset=17)
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual import __version__, _io
from xlingual.config import ExportConfig
from xlingual.errors import ModelError
from xlingual.models.onnx_encoder import ONNX_FORMAT_VERSION, ONNX_INFO_FILE, OnnxEncoder

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = [
    "PARITY_SENTENCES",
    "activation_outliers",
    "export_onnx_fp32",
    "export_versions",
    "onnx_info",
    "quantize_int8",
]

logger = logging.getLogger(__name__)

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


def export_versions() -> dict[str, str | None]:
    """The versions of xlingual and of the packages an export depends on, for ``config.json`` files."""
    packages = ["torch", "sentence-transformers", "transformers", "onnx", "onnxruntime", "tokenizers"]
    packages += ["openvino", "nncf"]  # None when the openvino extra is not installed
    return {"xlingual": __version__, **_io.package_versions(packages, python=False)}


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


def export_onnx_fp32(model: SentenceTransformer, spec: str, folder: Path, opset: int) -> list[str]:
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


def onnx_info(
    model: SentenceTransformer,
    input_names: list[str],
    precision: str,
    source: dict[str, Any],
    opset: int,
) -> dict[str, Any]:
    """The ``xlingual_onnx.json`` of an ONNX folder: inputs, output, prompts, pipeline modules, source, versions."""
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
        "export": {"exporter": "torch.onnx.export (TorchScript, dynamo=False)", "opset": opset, **export_versions()},
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


def quantize_int8(fp32_dir: Path, int8_dir: Path, config: ExportConfig) -> dict[str, Any]:
    """Write a dynamically int8-quantised copy of ``fp32_dir`` into ``int8_dir``; return how it was quantised."""
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
