"""Encoding with a static model in NumPy: the tokenizer, a row lookup and a mean — no PyTorch, no per-batch overhead.

A static folder (``xlingual distill-static``, or any model2vec / ``StaticEmbedding`` folder whose modules are
``StaticEmbedding`` and at most a ``Normalize``) embeds a sentence as the mean of its pieces' rows, exactly
what sentence-transformers' ``StaticEmbedding`` computes with ``EmbeddingBag``. Through sentence-transformers
each batch also pays for feature dicts, tensor conversion and module dispatch, which at 32 sentences a batch
costs more than the arithmetic; this encoder does the same sums with one ``np.add.reduceat`` per batch.
:func:`xlingual.models.specs.load_model` returns it for such folders, so ``embed``, ``index``, ``search -Q``,
``serve``, ``evaluate`` and ``classify`` use it. Example::

    encoder = StaticEncoder("runs/static")
    emb = encoder.encode(["東京の天気", "weather in Tokyo"])   # (2, 384) float32, L2-normalised
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.errors import ModelError
from xlingual.models.encoder import normalize_rows

__all__ = ["StaticEncoder", "is_static_folder"]

_STATIC = "StaticEmbedding"
_NORMALIZE = "Normalize"


def _modules(folder: Path) -> list[dict[str, Any]]:
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [m for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []


def is_static_folder(folder: str | os.PathLike[str]) -> bool:
    """True for a folder :class:`StaticEncoder` reproduces: ``StaticEmbedding`` at its root, then at most ``Normalize``.

    Example: ``is_static_folder("runs/static")``.
    """
    path = Path(folder)
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in _modules(path)]
    if not kinds or kinds[0] != _STATIC or any(kind != _NORMALIZE for kind in kinds[1:]):
        return False
    return (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


class StaticEncoder:
    """Embeds sentences with a static folder, like ``SentenceTransformer(path).encode`` (same vectors).

    ``path``: the folder. Sentences without a single piece get a zero vector (``EmbeddingBag`` does too).
    Example: ``StaticEncoder("runs/static").encode(["こんにちは"]).shape == (1, 384)``.
    """

    #: A static model has no token limit: passages are split by characters (like sentence-transformers').
    max_seq_length = None

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.path = Path(path).expanduser()
        if not is_static_folder(self.path):
            raise ModelError(
                f"{self.path} is not a static model folder (modules.json: StaticEmbedding, then at most Normalize; "
                "model.safetensors and tokenizer.json); build one with: xlingual distill-static --from STUDENT -o DIR"
            )
        try:
            weights = load_file(str(self.path / "model.safetensors"))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise ModelError(f"{self.path}/model.safetensors cannot be read ({exc}); build the model again") from exc
        key = "embeddings" if "embeddings" in weights else "embedding.weight"
        if key not in weights or weights[key].ndim != 2:
            raise ModelError(f"{self.path}/model.safetensors holds no 2-d 'embeddings' table; build the model again")
        self._table = np.ascontiguousarray(weights[key], dtype=np.float32)
        self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.no_padding()  # its truncation, if any, stays: sentence-transformers keeps it too
        if self._tokenizer.get_vocab_size() > len(self._table):
            raise ModelError(
                f"{self.path}: tokenizer.json has {self._tokenizer.get_vocab_size()} pieces but the table "
                f"{len(self._table)} rows; the folder is inconsistent, build it again"
            )
        self.normalized = any(str(m.get("type", "")).endswith(_NORMALIZE) for m in _modules(self.path))
        self.prompts: dict[str, str] = {}
        self.default_prompt_name: str | None = None

    def __repr__(self) -> str:
        return f"StaticEncoder({str(self.path)!r}, pieces={len(self._table)}, dim={self._table.shape[1]})"

    def get_embedding_dimension(self) -> int:
        """Return the dimension of the vectors, e.g. ``384``."""
        return int(self._table.shape[1])

    get_sentence_embedding_dimension = get_embedding_dimension

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 1024,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> np.ndarray:
        """Embed ``sentences`` → ``(n, dim)`` float32 (``(dim,)`` for one string).

        The arguments of ``SentenceTransformer.encode``; a static model has no prompts, so ``prompt_name``
        must be None, and ``prompt`` is prepended as given.
        """
        del show_progress_bar, convert_to_numpy
        if prompt_name is not None:
            raise ModelError(f"Prompt name {prompt_name!r}: a static model has no prompts")
        if batch_size < 1:
            raise ModelError(f"batch_size is {batch_size}; it must be at least 1")
        single = isinstance(sentences, str)
        texts = [sentences] if isinstance(sentences, str) else [str(text) for text in sentences]
        if prompt:
            texts = [prompt + text for text in texts]
        out = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            out[start : start + batch_size] = self._mean_rows(texts[start : start + batch_size])
        if self.normalized or normalize_embeddings:
            normalize_rows(out)
        return out[0] if single else out

    def _mean_rows(self, texts: list[str]) -> np.ndarray:
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]
        counts = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        out = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        filled = counts > 0
        if not filled.any():
            return out
        flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(counts.sum()))
        starts = np.concatenate(([0], np.cumsum(counts[filled])[:-1]))
        sums = np.add.reduceat(self._table[flat], starts, axis=0)
        out[filled] = sums / counts[filled, None].astype(np.float32)
        return out
