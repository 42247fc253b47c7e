"""Sentence embeddings from an exported OpenVINO folder, with the OpenVINO runtime and tokenizers only (no PyTorch).

An OpenVINO folder (``xlingual export MODEL --format openvino [--quantize int8]``) is the ONNX folder's twin:

- ``openvino_model.xml`` + ``openvino_model.bin`` — the same whole-pipeline graph as ``model.onnx`` (transformer,
  pooling, every module after it) in OpenVINO's format; in ``openvino-int8/`` statically quantised by NNCF
  (weights and activations int8, scales calibrated on real sentences);
- ``tokenizer.json`` and the tokenizer's config files;
- ``xlingual_openvino.json`` — the ``xlingual_onnx.json`` fields (prompt, token limit, padding token, pipeline,
  source, parity) plus ``inference_precision``: the precision OpenVINO computes the float parts in. It is
  ``f32`` on purpose: on CPUs with bf16 units OpenVINO would otherwise compute in bf16, faster but no longer
  the model that passed the parity check.

Needs the ``openvino`` extra (``pip install 'xlingual[openvino]'``); the folder is named ``openvino:DIR``
wherever a model is. Example::

    encoder = OpenVinoEncoder("exported/openvino-int8", threads=2)
    emb = encoder.encode(["東京の天気", "weather in Tokyo"])   # (2, 384) float32
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xlingual.errors import ModelError
from xlingual.models.onnx_encoder import FolderKind, OnnxEncoder

__all__ = ["OPENVINO_FOLDER", "OPENVINO_INFO_FILE", "OPENVINO_PREFIX", "OpenVinoEncoder", "import_openvino"]

#: The description file of an exported OpenVINO folder.
OPENVINO_INFO_FILE = "xlingual_openvino.json"
#: The model-spec prefix that names an OpenVINO folder: ``openvino:exported/openvino-int8``.
OPENVINO_PREFIX = "openvino:"
#: An OpenVINO folder (``xlingual export -f openvino``), run by the OpenVINO runtime.
OPENVINO_FOLDER = FolderKind(OPENVINO_INFO_FILE, "xlingual-openvino", OPENVINO_PREFIX, "openvino", "OpenVINO")
#: What to install when OpenVINO is missing.
OPENVINO_FIX = "pip install 'xlingual[openvino]'"


def import_openvino(why: str) -> Any:
    """Import and return the ``openvino`` module, or raise :class:`ModelError` with the install command.

    Example: ``ov = import_openvino("openvino:exported/openvino needs it")``.
    """
    try:
        import openvino
    except ImportError as exc:
        raise ModelError(f"{why}, but OpenVINO is not installed ({exc}). Fix: {OPENVINO_FIX}") from None
    return openvino


class OpenVinoEncoder(OnnxEncoder):
    """Embeds sentences with an exported OpenVINO folder, like ``SentenceTransformer.encode``.

    ``path``: the OpenVINO folder (or an export folder with an ``openvino/`` child). ``threads``: OpenVINO
    inference threads (default: its choice, one per physical core). ``providers`` is accepted for the
    signature's sake and must be empty: OpenVINO runs on the CPU here.

    Example: ``OpenVinoEncoder("exported/openvino-int8").encode(["こんにちは"]).shape == (1, 384)``.
    """

    kind: ClassVar[FolderKind] = OPENVINO_FOLDER

    def _open(
        self, model_file: Path, threads: int | None, providers: Sequence[str] | None
    ) -> tuple[_CompiledGraph, list[str]]:
        ov = import_openvino(f"{self.path} is an OpenVINO folder")
        if providers:
            raise ModelError(f"providers {list(providers)!r} are onnxruntime's; OpenVINO folders run on its CPU device")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": str(self.info.get("inference_precision") or "f32")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(model_file)), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{model_file} cannot be loaded by OpenVINO ({first}); export the model again") from exc
        return _CompiledGraph(compiled, self._output), [port.get_any_name() for port in compiled.inputs]

    def _run(self, texts: list[str]) -> np.ndarray:
        return self._session.infer(self._features(texts))


class _CompiledGraph:
    """A compiled OpenVINO model and one infer request per thread (a request is not thread-safe)."""

    def __init__(self, compiled: Any, output: str) -> None:
        self._compiled = compiled
        self._output = compiled.output(output)
        self._local = threading.local()

    def infer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph on one batch of token ids → ``(batch, dim)`` float32."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._compiled.create_infer_request()
            self._local.request = request
        return np.array(request.infer(feed)[self._output], dtype=np.float32)
