"""The static student's vocabulary and its starting vectors, both taken from a transformer student.

Vocabulary: the word pieces the training sentences and the ``--corpus`` use, plus special tokens and every
single Japanese and ASCII character (SentencePiece Unigram tokenizers are trimmed to those, the rest keep
their whole vocabulary). Start: each piece's text embedded alone by the transformer student — a vector in the
teacher's space, which the training then adjusts so that averages of pieces land on sentences.

Example: ``vocab = static_vocab(Path("runs/t/model"), texts); init = piece_vectors(student, vocab.tokenizer)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.errors import ModelError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaticVocab:
    """The static model's tokenizer (``tokenizer.json`` parsed) and how many pieces came from where."""

    tokenizer: dict[str, Any]
    counts: dict[str, int]


def transformer_tokenizer(model_dir: Path) -> dict[str, Any]:
    """The ``tokenizer.json`` of the model's Transformer module, parsed; a model without one raises."""
    folder = model_dir
    modules_file = model_dir / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Transformer"):
                folder = model_dir / str(module.get("path", ""))
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelError(
            f"{model_dir} has no tokenizer.json (a fast tokenizer) beside its Transformer module; a static student "
            "takes its word pieces from one: re-save the model with a fast tokenizer"
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


def static_vocab(spec: dict[str, Any], texts: Sequence[str]) -> StaticVocab:
    """Trim a Unigram tokenizer to the pieces ``texts`` use (plus specials and single characters); others as is."""
    from tokenizers import Tokenizer

    from xlingual.models.vocab import pieces_in, remap_tokenizer, select_pieces

    if spec.get("model", {}).get("type") != "Unigram":
        size = Tokenizer.from_str(json.dumps(spec)).get_vocab_size()
        logger.info("keeping the whole %d-piece vocabulary (only Unigram tokenizers are trimmed)", size)
        return StaticVocab(spec, {"whole vocabulary": int(size)})
    used = pieces_in(texts, Tokenizer.from_str(json.dumps(spec)))
    kept, counts = select_pieces(spec, used, keep_top=0)
    logger.info("static vocabulary: %d pieces (%s)", len(kept), ", ".join(f"{k} {v}" for k, v in counts.items()))
    return StaticVocab(remap_tokenizer(spec, kept), counts)


def piece_texts(spec: dict[str, Any]) -> list[str]:
    """The text of every piece, in id order (``▁東京`` → ``東京``, ``##ing`` → ``ing``)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(json.dumps(spec))
    return [tokenizer.decode([i]).strip() for i in range(tokenizer.get_vocab_size())]


def piece_vectors(
    student: Any, spec: dict[str, Any], *, batch_size: int = 256, show_progress: bool = False
) -> np.ndarray:
    """``(vocab, dim)`` float32: each piece's text embedded alone by ``student``; empty pieces get the mean."""
    from xlingual.models.specs import encode

    texts = piece_texts(spec)
    present = [i for i, text in enumerate(texts) if text]
    emb = encode(student, [texts[i] for i in present], batch_size=batch_size, show_progress=show_progress,
                 desc="piece vectors")  # fmt: skip
    table = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
    table[present] = emb
    if len(present) < len(texts):
        table[[i for i, text in enumerate(texts) if not text]] = emb.mean(axis=0)
    return table
