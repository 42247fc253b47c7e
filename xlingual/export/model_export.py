"""Model export for downstream apps: a sentence-transformers folder, ONNX and OpenVINO (each optionally int8).

``export_model("runs/ja/model", "exported", ExportConfig(formats=["st", "onnx"], quantize="int8"))`` writes::

    exported/
      config.json      what produced the export: source spec and fingerprint, formats, settings, versions
      manifest.json    size and sha256 of every other file (checked when a folder of it is loaded)
      metrics.json     parity of each ONNX variant with PyTorch (cosine on English and Japanese sentences)
      st/              sentence-transformers folder + README.md model card (teacher, student, data, metrics)
      onnx/            model.onnx (float32), tokenizer.json, xlingual_onnx.json   → model spec onnx:exported/onnx
      onnx-int8/       the same with a dynamically int8-quantised model.onnx      → onnx:exported/onnx-int8
      openvino/        the ONNX graph in OpenVINO's format (``-f openvino``)       → openvino:exported/openvino
      openvino-int8/   statically int8-quantised by NNCF, calibrated on sentences → openvino:exported/openvino-int8

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
or the export stops with the numbers and nothing is written. Each int8 model is also compared with its float32
model on the bundled dev pairs (mean en↔ja top-1) and refused when it loses more than
``int8_max_accuracy_drop`` points (:func:`xlingual.export.openvino_export.int8_accuracy`). Folders are built
in a temporary sibling and swapped into place in one rename, so a crash or a full disk leaves any previous
export whole.

**Integrity.** ``manifest.json`` at the top records the size and sha256 of every file; loading ``onnx:DIR``
or ``openvino:DIR`` checks the files of that folder against it
(:func:`xlingual.models.onnx_encoder.check_export_files`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from xlingual import __version__, _io
from xlingual.choices import ExportFormat, Quantization
from xlingual.config import ExportConfig
from xlingual.errors import ConfigError, DiskFullError, ModelError, XlingualError
from xlingual.export.model_card import DISTILL_META, model_card, read_distill_meta, run_metrics
from xlingual.export.onnx_export import (
    PARITY_SENTENCES,
    export_onnx_fp32,
    export_versions,
    onnx_info,
    quantize_int8,
)
from xlingual.export.openvino_export import (
    calibration_texts,
    check_openvino_installed,
    convert_to_openvino,
    int8_accuracy,
    quantize_openvino_int8,
)
from xlingual.models.onnx_encoder import EXPORT_MANIFEST, ONNX_FOLDER, ONNX_PREFIX, FolderKind, OnnxEncoder
from xlingual.models.openvino_encoder import OPENVINO_FOLDER, OPENVINO_PREFIX, OpenVinoEncoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["EXPORT_MARKER", "PARITY_SENTENCES", "ExportResult", "export_model"]

logger = logging.getLogger(__name__)

#: Marks a folder written by :func:`export_model` (only such a folder is replaced by ``overwrite``).
EXPORT_MARKER = "xlingual_export"


@dataclass
class ExportResult:
    """What :func:`export_model` wrote: each folder, the parity of each graph, the accuracy of each int8 model."""

    out: Path
    folders: dict[str, Path] = field(default_factory=dict)
    parity: dict[str, dict[str, float]] = field(default_factory=dict)
    accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "out": str(self.out),
            "folders": {name: str(path) for name, path in self.folders.items()},
            "parity": self.parity,
            "int8_accuracy": self.accuracy,
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> str:
        """Human-readable lines: one per folder, with the parity of ONNX variants."""
        lines = [f"exported to {self.out} in {self.seconds:.0f} s"]
        for name, path in self.folders.items():
            line = f"  {name:<13} {path}"
            if name in self.parity:
                p = self.parity[name]
                line += f"   parity: min cosine {p['min_cosine']:.5f}, mean {p['mean_cosine']:.5f}"
            if name.startswith(("onnx", "openvino")):
                line += f"   (model spec {name.split('-')[0]}:{path})"
            if name in self.accuracy:
                a = self.accuracy[name]
                line += f"   accuracy on {a['spec']}: {a['float32']:.1f} → {a['int8']:.1f}"
            lines.append(line)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Source:
    """The model being exported, loaded once, and what is known about where it came from."""

    spec: str
    model: SentenceTransformer
    model_dir: Path | None
    fingerprint: str | None
    distill: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The ``source`` block of ``config.json`` and ``xlingual_onnx.json``."""
        return {
            "spec": self.spec,
            "path": str(self.model_dir) if self.model_dir else None,
            "fingerprint": self.fingerprint,
            "teacher": self.distill.get("teacher"),
            "teacher_fingerprint": self.distill.get("teacher_fingerprint"),
        }

    def copy_distill_meta(self, folder: Path) -> None:
        """Put the model's ``xlingual_distill.json`` in ``folder`` too (search reads the teacher from it)."""
        if self.model_dir is not None and (self.model_dir / DISTILL_META).is_file():
            shutil.copy2(self.model_dir / DISTILL_META, folder / DISTILL_META)


# --------------------------------------------------------------------------- helpers


def _write_json(path: Path, payload: Any) -> None:
    _io.atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


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


def _check_parity(
    name: str, parity: dict[str, float], threshold: float, sentences: Sequence[str], runtime: str = "onnxruntime"
) -> None:
    if parity["min_cosine"] < threshold:
        worst = sentences[int(parity["worst_sentence"])]
        raise ModelError(
            f"Parity check failed for {name}: cosine {parity['min_cosine']:.5f} < {threshold} between PyTorch "
            f"and {runtime} on {worst[:60]!r} (mean {parity['mean_cosine']:.5f} over {len(sentences)} sentences). "
            "Nothing was written. The model has a module the exporter does not reproduce; export it with "
            "--format st only, or report the model's modules.json"
        )


def _verify(
    folder: Path,
    info: dict[str, Any],
    reference: np.ndarray,
    min_cosine: float,
    kind: FolderKind = ONNX_FOLDER,
) -> tuple[dict[str, Any], OnnxEncoder]:
    """Write ``info`` into ``folder``, embed the parity sentences with it and compare with ``reference``.

    ``reference``: ``(n, dim)`` float32 PyTorch embeddings of :data:`PARITY_SENTENCES`. Raises
    :class:`ModelError` (via ``_check_parity``) below ``min_cosine``; otherwise records the parity in the
    folder's description file and returns it with the folder's encoder.
    """
    _write_json(folder / kind.info_file, info)
    encoder = (OpenVinoEncoder if kind is OPENVINO_FOLDER else OnnxEncoder)(folder)
    parity = _parity(reference, encoder, PARITY_SENTENCES)
    _check_parity(f"{folder.name} ({info['precision']})", parity, min_cosine, PARITY_SENTENCES, kind.runtime)
    info["parity"] = parity
    _write_json(folder / kind.info_file, info)
    return parity, encoder


def _is_export(folder: Path) -> bool:
    try:
        return EXPORT_MARKER in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


# --------------------------------------------------------------------------- export


def _load_source(spec: str) -> _Source:
    from sentence_transformers import SentenceTransformer

    from xlingual.models.specs import fingerprint, load_model, resolve_model_path

    model_dir = resolve_model_path(spec)
    model = load_model(spec, device="cpu", pytorch=True)
    if not isinstance(model, SentenceTransformer):  # pragma: no cover - onnx: specs are refused before
        raise ConfigError(f"{spec} is not a PyTorch sentence-transformers model")
    model.eval()
    source_fp = fingerprint(model_dir) if model_dir is not None else None
    return _Source(spec, model, model_dir, source_fp, read_distill_meta(model_dir))


def _write_st(tmp: Path, source: _Source) -> Path:
    """``tmp/st``: the sentence-transformers folder with its model card."""
    st_dir = tmp / "st"
    source.model.save(str(st_dir))
    source.copy_distill_meta(st_dir)
    run_dir = source.model_dir.parent if source.model_dir is not None else None
    card = model_card(source.spec, source.model, source.distill, run_metrics(run_dir), source.fingerprint)
    _io.atomic_write_text(st_dir / "README.md", card)
    return st_dir


def _write_graphs(tmp: Path, source: _Source, config: ExportConfig, result: ExportResult) -> None:
    """``tmp/onnx`` (and ``onnx-int8``, ``openvino``, ``openvino-int8``), each checked against PyTorch.

    The OpenVINO folders are converted from the float32 ONNX graph, which is removed again when ``onnx`` was
    not asked for. Parity and int8 accuracy go into ``result``.
    """
    logger.info("embedding %d parity sentences with PyTorch", len(PARITY_SENTENCES))
    reference = np.asarray(
        source.model.encode(list(PARITY_SENTENCES), batch_size=8, show_progress_bar=False), dtype=np.float32
    )
    onnx_dir = tmp / "onnx"
    onnx_dir.mkdir()
    logger.info("exporting %s to ONNX (opset %d)", source.spec, config.opset)
    input_names = export_onnx_fp32(source.model, source.spec, onnx_dir, config.opset)
    info = onnx_info(source.model, input_names, "float32", source.as_dict(), config.opset)
    if source.distill:
        source.copy_distill_meta(onnx_dir)
    parity, fp32 = _verify(onnx_dir, info, reference, config.parity_min_cosine)
    if ExportFormat.ONNX in config.formats:
        result.parity["onnx"] = parity
        result.folders["onnx"] = result.out / "onnx"
        if config.quantize == Quantization.INT8:
            logger.info("quantising the ONNX model to int8")
            int8_dir = tmp / "onnx-int8"
            quantization = quantize_int8(onnx_dir, int8_dir, config)
            int8_info = {**info, "precision": "int8", "quantization": quantization}
            int8_info.pop("parity", None)
            result.parity["onnx-int8"], int8 = _verify(int8_dir, int8_info, reference, config.int8_min_cosine)
            _record_accuracy("onnx-int8", fp32, int8, int8_info, config, result)
    if ExportFormat.OPENVINO in config.formats:
        _write_openvino(tmp, info, reference, config, result)
    if ExportFormat.ONNX not in config.formats:
        shutil.rmtree(onnx_dir)


def _write_openvino(
    tmp: Path, onnx_info_: dict[str, Any], reference: np.ndarray, config: ExportConfig, result: ExportResult
) -> None:
    """``tmp/openvino`` from the float32 ONNX graph, and ``tmp/openvino-int8`` (NNCF) with ``--quantize int8``."""
    logger.info("converting the ONNX graph to OpenVINO")
    ov_dir = tmp / "openvino"
    info = convert_to_openvino(tmp / "onnx", ov_dir, onnx_info_)
    result.parity["openvino"], fp32 = _verify(ov_dir, info, reference, config.parity_min_cosine, OPENVINO_FOLDER)
    result.folders["openvino"] = result.out / "openvino"
    if config.quantize != Quantization.INT8:
        return
    texts, specs = calibration_texts(config)
    logger.info("quantising the OpenVINO model to int8 (NNCF, %d calibration sentences)", len(texts))
    int8_dir = tmp / "openvino-int8"
    quantization = quantize_openvino_int8(cast(OpenVinoEncoder, fp32), int8_dir, texts, specs)
    int8_info = {**info, "precision": "int8", "quantization": quantization}
    int8_info.pop("parity", None)
    result.parity["openvino-int8"], int8 = _verify(
        int8_dir, int8_info, reference, config.int8_min_cosine, OPENVINO_FOLDER
    )
    _record_accuracy("openvino-int8", fp32, int8, int8_info, config, result, OPENVINO_FOLDER)


def _record_accuracy(
    name: str,
    fp32: OnnxEncoder,
    int8: OnnxEncoder,
    info: dict[str, Any],
    config: ExportConfig,
    result: ExportResult,
    kind: FolderKind = ONNX_FOLDER,
) -> None:
    """Compare the int8 model with float32 on the check pairs (refusing a large drop); record it in both places."""
    accuracy = int8_accuracy(fp32, int8, config, name)
    info["quantization"]["accuracy"] = accuracy
    _write_json(int8.path / kind.info_file, info)
    result.accuracy[name] = accuracy
    result.folders[name] = result.out / name


def _write_provenance(tmp: Path, source: _Source, config: ExportConfig, result: ExportResult) -> None:
    """``config.json``, ``metrics.json`` and, last, ``manifest.json`` with the checksum of every other file."""
    settings = {k: v for k, v in asdict(config).items() if k != "overwrite"}
    config_json = {EXPORT_MARKER: __version__, "source": source.as_dict(), "settings": settings}
    _write_json(tmp / "config.json", {**config_json, "versions": export_versions()})
    metrics = {"parity": result.parity, "parity_sentences": len(PARITY_SENTENCES), "int8_accuracy": result.accuracy}
    _write_json(tmp / "metrics.json", metrics)
    checksums = _io.folder_checksums(tmp)
    _write_json(tmp / EXPORT_MANIFEST, {"format": "xlingual-export", "files": checksums})


def export_model(spec: str, out: str | os.PathLike[str], config: ExportConfig | None = None) -> ExportResult:
    """Export the model ``spec`` names into ``out`` (see the module docstring for the layout).

    Raises :class:`ModelError` when the ONNX parity check fails (nothing is written then) and
    :class:`ConfigError` for bad options or an occupied ``out``.
    Example: ``export_model("runs/ja/model", "exported", ExportConfig(formats=["onnx"], quantize="int8"))``.
    """
    config = config or ExportConfig()
    formats = list(dict.fromkeys(ExportFormat(f) for f in config.formats))
    out_dir = Path(out).expanduser()
    if spec.startswith((ONNX_PREFIX, OPENVINO_PREFIX)):
        raise ConfigError(f"{spec} is already an exported graph; export the PyTorch model it came from")
    if ExportFormat.OPENVINO in formats:
        check_openvino_installed(config.quantize == Quantization.INT8)
    _io.prepare_out(
        out_dir,
        config.overwrite,
        what="the export",
        is_ours=_is_export,
        ours="an xlingual export folder (no config.json from `xlingual export`)",
    )
    started = time.perf_counter()
    source = _load_source(spec)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _io.sweep_stale(out_dir)  # temporary folders of exports that were killed
    tmp = _io.temp_sibling(out_dir, "tmp")
    tmp.mkdir()
    result = ExportResult(out=out_dir)
    try:
        if ExportFormat.ST in formats:
            _write_st(tmp, source)
            result.folders["st"] = out_dir / "st"
        if {ExportFormat.ONNX, ExportFormat.OPENVINO} & set(formats):
            _write_graphs(tmp, source, config, result)
        result.seconds = time.perf_counter() - started
        _write_provenance(tmp, source, config, result)
        _io.replace_dir(tmp, out_dir)  # one swap: a previous export stays whole until the new one is complete
    except Exception as exc:
        if isinstance(exc, XlingualError) or not _io.is_disk_full(exc):
            raise
        intact = f"the previous export at {out_dir} is intact" if out_dir.exists() else f"{out_dir} was not written"
        message = _io.disk_full_message(
            getattr(exc, "filename", None) or out_dir, intact, "run the same xlingual export again"
        )
        raise DiskFullError(f"{message} ({exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return result
