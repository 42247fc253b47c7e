"""OpenVINO export: the ONNX folder's graph converted to OpenVINO's format, and static int8 quantisation with NNCF.

The float32 folder is the exported ONNX graph converted by ``openvino.convert_model`` (weights kept float32),
so it embeds like the ONNX folder and like PyTorch (the parity check of the ONNX export applies). The int8
folder is NNCF's post-training *static* quantisation of it (``nncf.quantize`` with the transformer model type:
SmoothQuant, then int8 weights and activations with ranges measured on calibration sentences, then bias
correction): the same algorithm optimum-intel runs for ``OVQuantizationConfig``, called directly because
optimum-intel pins transformers and huggingface-hub below the versions xlingual runs with. Calibration
sentences come from the user's files or the bundled training pairs, never from a hub. Example::

    info = convert_to_openvino(Path("tmp/onnx"), Path("tmp/openvino"), onnx_info)
    quantization = quantize_openvino_int8(OpenVinoEncoder("tmp/openvino"), Path("tmp/openvino-int8"), texts, specs)
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import _io
from xlingual.config import ExportConfig
from xlingual.errors import ConfigError, DataError, ModelError
from xlingual.models.onnx_encoder import ONNX_INFO_FILE, OnnxEncoder
from xlingual.models.openvino_encoder import OPENVINO_FIX, OPENVINO_INFO_FILE, OpenVinoEncoder, import_openvino

__all__ = [
    "DEFAULT_CALIBRATION",
    "OPENVINO_MODEL_FILE",
    "calibration_texts",
    "check_openvino_installed",
    "convert_to_openvino",
    "int8_accuracy",
    "quantize_openvino_int8",
]

logger = logging.getLogger(__name__)

#: The graph file of an OpenVINO folder (weights in ``openvino_model.bin`` beside it).
OPENVINO_MODEL_FILE = "openvino_model.xml"
#: Calibration texts when the user gives none: the bundled training pairs, both languages.
DEFAULT_CALIBRATION = "builtin:train"
#: Seed of the calibration sample, so that an export is repeatable.
CALIBRATION_SEED = 13


def check_openvino_installed(quantize: bool) -> None:
    """Raise :class:`ConfigError` with the install command unless OpenVINO (and NNCF for int8) can be imported."""
    import importlib

    missing = []
    for name in ("openvino", "nncf")[: 2 if quantize else 1]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"--format openvino needs {' and '.join(missing)}, not installed here. Fix: {OPENVINO_FIX}")


def _copy_beside(src: Path, dst: Path, skip: Sequence[str]) -> None:
    for item in src.iterdir():
        if item.is_file() and item.name not in skip:
            shutil.copy2(item, dst / item.name)


def convert_to_openvino(onnx_dir: Path, ov_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Write ``ov_dir`` (graph, tokenizer, provenance) from the float32 ONNX folder; return its description.

    ``info``: the ONNX folder's ``xlingual_onnx.json`` content; the OpenVINO description is the same plus
    ``inference_precision`` (``f32``) and the converter's version.
    """
    ov = import_openvino("--format openvino converts the ONNX graph")
    ov_dir.mkdir(parents=True)
    model = ov.convert_model(str(onnx_dir / "model.onnx"))
    ov.save_model(model, str(ov_dir / OPENVINO_MODEL_FILE), compress_to_fp16=False)
    _copy_beside(onnx_dir, ov_dir, ("model.onnx", ONNX_INFO_FILE))
    described = {key: value for key, value in info.items() if key not in ("parity", "quantization")}
    described.update(
        {
            "format": "xlingual-openvino",
            "model_file": OPENVINO_MODEL_FILE,
            "weights_file": "openvino_model.bin",
            # bf16-capable CPUs would otherwise compute in bf16: faster, but not the model checked for parity
            "inference_precision": "f32",
            "how_to_use": str(info.get("how_to_use", "")).replace("model.onnx", OPENVINO_MODEL_FILE),
            "export": {
                **dict(info.get("export") or {}),
                "converter": "openvino.convert_model (from the exported model.onnx)",
                **_io.package_versions(("openvino", "nncf"), python=False),
            },
        }
    )
    return described


def calibration_texts(config: ExportConfig) -> tuple[list[str], list[str]]:
    """The calibration sentences (a seeded sample of ``calibration_size``) and the specs they came from."""
    from xlingual.models.trim import corpus_texts

    specs = list(config.calibration) or [DEFAULT_CALIBRATION]
    try:
        texts = corpus_texts(specs)
    except DataError as exc:
        raise DataError(f"--calibration: {exc}".replace("; trimming needs the texts to keep", "")) from None
    if len(texts) > config.calibration_size:
        texts = random.Random(CALIBRATION_SEED).sample(texts, config.calibration_size)
    return texts, specs


def quantize_openvino_int8(
    fp32: OpenVinoEncoder, int8_dir: Path, texts: Sequence[str], specs: Sequence[str]
) -> dict[str, Any]:
    """Write NNCF's static int8 quantisation of the float32 folder ``fp32.path`` into ``int8_dir``.

    ``texts``: calibration sentences, tokenised by ``fp32`` (with the model's prompt, one sentence per
    sample, so no padding skews the ranges); ``specs``: where they came from, for the record. Returns how
    the model was quantised.
    """
    ov = import_openvino("--quantize int8 of an OpenVINO model")
    try:
        import nncf
    except ImportError as exc:
        raise ConfigError(f"--quantize int8 with --format openvino needs NNCF ({exc}). Fix: {OPENVINO_FIX}") from None
    if not texts:
        raise ConfigError(f"The calibration texts ({', '.join(specs)}) are empty; pass --calibration FILE with text")
    fp32_dir = fp32.path
    samples = [fp32.tokenize([text]) for text in texts]
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # its per-step INFO lines
    # NNCF's progress bars print to stdout, which `--json` keeps for the result: show them on stderr, or
    # nowhere when xlingual is quiet.
    bars = sys.stderr if logger.isEnabledFor(logging.INFO) else io.StringIO()
    try:
        with contextlib.redirect_stdout(bars):
            quantized = nncf.quantize(
                ov.Core().read_model(str(fp32_dir / OPENVINO_MODEL_FILE)),
                nncf.Dataset(samples),
                subset_size=len(samples),
                model_type=nncf.ModelType.TRANSFORMER,
            )
    except Exception as exc:  # NNCF raises many types; the message names the model and the way out
        raise ModelError(f"NNCF could not quantise {fp32_dir} ({exc}); export without --quantize int8") from exc
    finally:
        nncf_logger.setLevel(level)
    int8_dir.mkdir(parents=True)
    ov.save_model(quantized, str(int8_dir / OPENVINO_MODEL_FILE), compress_to_fp16=False)
    _copy_beside(fp32_dir, int8_dir, (OPENVINO_MODEL_FILE, "openvino_model.bin", OPENVINO_INFO_FILE))
    return {
        "method": "nncf.quantize (static post-training: SmoothQuant, int8 weights and activations, bias correction)",
        "model_type": "transformer",
        "calibration": {"sources": list(specs), "sentences": len(samples), "seed": CALIBRATION_SEED},
    }


def _top1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of a→b and b→a top-1 accuracy (%) for aligned, L2-normalised rows (the evaluator's tie policy)."""
    from xlingual.evaluation.metrics import top1_accuracy

    return 50 * (top1_accuracy(a, b) + top1_accuracy(b, a))


def int8_accuracy(
    fp32: OnnxEncoder, int8: OnnxEncoder, config: ExportConfig, name: str
) -> dict[str, float | int | str]:
    """Compare the int8 model ``name`` with its float32 model on ``config.int8_check_pairs``; refuse a large drop.

    Returns ``{"pairs", "spec", "float32", "int8", "drop"}`` (mean en↔ja top-1 %, drop in points). Raises
    :class:`ModelError` when the drop exceeds ``config.int8_max_accuracy_drop``.
    """
    from xlingual.data.readers import read_corpus
    from xlingual.models.specs import encode

    corpus = read_corpus(config.int8_check_pairs)
    before = _top1(encode(fp32, corpus.en), encode(fp32, corpus.ja))
    after = _top1(encode(int8, corpus.en), encode(int8, corpus.ja))
    result: dict[str, float | int | str] = {
        "spec": config.int8_check_pairs,
        "pairs": len(corpus.en),
        "float32": round(before, 2),
        "int8": round(after, 2),
        "drop": round(before - after, 2),
    }
    limit = config.int8_max_accuracy_drop
    if limit is not None and before - after > limit:
        raise ModelError(
            f"{name}: int8 accuracy on {config.int8_check_pairs} ({len(corpus.en)} pairs) is {after:.1f}% against "
            f"{before:.1f}% in float32, {before - after:.1f} points lost (limit {limit}). Nothing was written. "
            "Calibrate on sentences like yours (--calibration FILE), or export float32 only"
        )
    return result
