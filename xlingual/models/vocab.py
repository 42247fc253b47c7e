"""The tokenizer side of vocabulary trimming: which pieces to keep, and ``tokenizer.json``/``config.json`` remapped.

Kept: special tokens, the pieces a corpus uses, every single-character piece of the Japanese scripts and of
printable ASCII (so no such character ever becomes ``<unk>``), optionally the top-scored pieces. Kept pieces
stay in their old order, so new id ``i`` is old id ``kept[i]`` and the special tokens at the front keep their ids.
:func:`check_tokenisation` proves that the trimmed tokenizer segments every corpus text as before.

Example: ``kept, counts = select_pieces(spec, pieces_in(texts, tokenizer), keep_top=0)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from xlingual.errors import ModelError

WORD_START = "\u2581"  # SentencePiece's word-start marker ▁

#: Unicode blocks whose single-character pieces are always kept (inclusive ranges).
JAPANESE_RANGES: tuple[tuple[int, int], ...] = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。「」々〆…)
    (0x3040, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3200, 0x32FF),  # enclosed CJK letters and months
    (0x3300, 0x33FF),  # CJK compatibility (㍉ ㌔ …)
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x2FA1F),  # CJK unified ideographs extensions B–F and compatibility supplement
)


def is_japanese_char(char: str) -> bool:
    """Whether one character lies in the Japanese scripts kept by :data:`JAPANESE_RANGES`.

    Example: ``is_japanese_char("語") and not is_japanese_char("a")``.
    """
    code = ord(char)
    return any(low <= code <= high for low, high in JAPANESE_RANGES)


def _always_kept_char(piece: str) -> bool:
    """A piece of one character (``▁`` allowed in front) of the Japanese scripts or printable ASCII."""
    body = piece[1:] if piece.startswith(WORD_START) and len(piece) > 1 else piece
    if len(body) != 1:
        return False
    return is_japanese_char(body) or 0x21 <= ord(body) <= 0x7E


def pieces_in(texts: Sequence[str], tokenizer: Any, batch: int = 4096) -> set[int]:
    """Ids of every piece ``tokenizer`` (a ``tokenizers.Tokenizer``) produces on ``texts``, special tokens aside."""
    used: set[int] = set()
    for start in range(0, len(texts), batch):
        for encoding in tokenizer.encode_batch(list(texts[start : start + batch]), add_special_tokens=False):
            used.update(encoding.ids)
    return used


def select_pieces(spec: dict[str, Any], used: set[int], keep_top: int) -> tuple[np.ndarray, dict[str, int]]:
    """Old ids of the kept pieces, ascending (so special tokens at the front keep their ids)."""
    vocab = spec["model"]["vocab"]
    special = {int(tok["id"]) for tok in spec.get("added_tokens", [])}
    unk_id = spec["model"].get("unk_id")
    if unk_id is not None:
        special.add(int(unk_id))
    outside = sorted(i for i in special if not 0 <= i < len(vocab))
    if outside:
        raise ModelError(
            f"special token id(s) {outside} lie outside the {len(vocab)}-piece vocabulary of tokenizer.json; "
            "trimming keeps ids inside it only. Add those tokens to the vocabulary or trim another model"
        )
    characters = {i for i, (piece, _score) in enumerate(vocab) if _always_kept_char(piece)}
    characters.add(next((i for i, (piece, _s) in enumerate(vocab) if piece == WORD_START), -1))
    characters.discard(-1)
    top: set[int] = set()
    if keep_top:
        scores = np.array([score for _piece, score in vocab], dtype=np.float64)
        top = {int(i) for i in np.argsort(-scores, kind="stable")[:keep_top]}
    kept = sorted(special | used | characters | top)
    counts = {
        "special": len(special),
        "corpus": len(used - special),
        "characters": len(characters - special - used),
        "top": len(top - special - used - characters),
    }
    return np.asarray(kept, dtype=np.int64), counts


def remap_tokenizer(spec: dict[str, Any], kept: np.ndarray) -> dict[str, Any]:
    """A copy of ``tokenizer.json`` (parsed) holding only the ``kept`` pieces, every stored id renumbered."""
    new_id = {int(old): new for new, old in enumerate(kept)}
    vocab = spec["model"]["vocab"]
    out = json.loads(json.dumps(spec))
    out["model"]["vocab"] = [vocab[int(old)] for old in kept]
    if out["model"].get("unk_id") is not None:
        out["model"]["unk_id"] = new_id[int(spec["model"]["unk_id"])]
    for token in out.get("added_tokens", []):
        token["id"] = new_id[int(token["id"])]

    def remap_special(node: Any) -> None:
        # TemplateProcessing / RobertaProcessing keep special-token ids; walk whatever the post-processor is.
        if isinstance(node, dict):
            if "ids" in node and "tokens" in node and isinstance(node["ids"], list):
                node["ids"] = [new_id[int(i)] for i in node["ids"]]
            for key in ("sep", "cls"):
                if isinstance(node.get(key), list) and len(node[key]) == 2 and isinstance(node[key][1], int):
                    node[key][1] = new_id[int(node[key][1])]
            for value in node.values():
                remap_special(value)
        elif isinstance(node, list):
            for value in node:
                remap_special(value)

    remap_special(out.get("post_processor"))
    return out


def remap_config(config: dict[str, Any], kept: np.ndarray) -> dict[str, Any]:
    """A copy of a transformers ``config.json`` (parsed) with the new ``vocab_size`` and special-token ids."""
    new_id = {int(old): new for new, old in enumerate(kept)}
    out = dict(config)
    out["vocab_size"] = len(kept)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        if isinstance(out.get(key), int) and out[key] in new_id:
            out[key] = new_id[out[key]]
    return out


def check_tokenisation(texts: Sequence[str], before: Any, after: Any, kept: np.ndarray) -> None:
    """Raise :class:`ModelError` unless ``after`` (trimmed) segments every text into the pieces ``before`` did."""
    batch = 4096
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        old = before.encode_batch(chunk)
        new = after.encode_batch(chunk)
        for text, a, b in zip(chunk, old, new, strict=True):
            if kept[np.asarray(b.ids, dtype=np.int64)].tolist() != list(a.ids):
                raise ModelError(
                    f"the trimmed tokenizer segments {text[:60]!r} differently ({a.tokens} → {b.tokens}); "
                    "this is a bug in trimming, please report it with the text"
                )
