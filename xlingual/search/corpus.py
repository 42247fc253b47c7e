"""From a corpus to what an index stores: documents → passages (split to the model's limit) → vectors.

A corpus is a document file (text, JSONL or Parquet; see :mod:`xlingual.data.documents`) or, from
Python, an iterable of :class:`~xlingual.data.documents.Document`, dicts with ``id``/``text`` or plain
strings. Passages are at most ``max_tokens`` model tokens (the model's own limit, less its special tokens
and prompt, caps it), or ``max_chars`` characters for a model without a tokenizer.

Example::

    splitting = Splitting.for_model(encoder, IndexConfig())
    passages, added = read_passages("docs.jsonl", IndexConfig(), splitting)
    vectors = embed_passages(encoder, [p.text for p in passages], IndexConfig())   # (n, dim) float32
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.config import IndexConfig
from xlingual.data.documents import (
    Document,
    Passage,
    ReadStats,
    TokenCounter,
    normalize_document,
    read_documents,
    to_passages,
    tokenizer_counter,
)
from xlingual.errors import DataError, SearchIndexError
from xlingual.models.encoder import Encoder, prompt_text
from xlingual.search import faiss_ops
from xlingual.search.manifest import Addition

#: A document file, or documents given from Python.
Corpus = str | os.PathLike[str] | Iterable[Document | Mapping[str, Any] | str]
#: Passages embedded per progress-bar step (and per call of the encoder).
ENCODE_CHUNK = 2048
#: Special tokens a BERT-style encoder adds around every input ([CLS] … [SEP], <s> … </s>).
_SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class Splitting:
    """How documents are cut into passages: by ``counter`` tokens up to ``max_tokens``, else by characters."""

    max_tokens: int | None
    max_chars: int
    counter: TokenCounter | None = None

    @classmethod
    def for_model(cls, model: Any, config: IndexConfig) -> Splitting:
        """New index: ``config.max_tokens`` capped by the model's limit; characters without a tokenizer."""
        counter = tokenizer_counter(model)
        if counter is None:
            return cls(None, config.max_chars)
        limit = config.max_tokens
        max_seq = getattr(model, "max_seq_length", None)
        if isinstance(max_seq, int) and max_seq > 0:
            prompt = prompt_text(model) or ""
            prompt_tokens = counter([prompt])[0] if prompt else 0
            limit = min(limit, max_seq - _SPECIAL_TOKENS - prompt_tokens)
        if limit < 1:
            raise SearchIndexError(
                f"The passage limit works out at {limit} tokens; raise max_tokens (now {config.max_tokens})."
            )
        return cls(limit, config.max_chars, counter)

    @classmethod
    def from_manifest(cls, block: Mapping[str, Any], model: Any, config: IndexConfig) -> Splitting:
        """An existing index's splitting (its manifest's ``splitting`` block), for passages added to it."""
        max_tokens = block.get("max_tokens")
        counter = tokenizer_counter(model) if max_tokens else None
        return cls(max_tokens, int(block.get("max_chars") or config.max_chars), counter)


def source_name(corpus: Corpus) -> str:
    """How the manifest names a corpus: its path, or ``<python>`` for documents given from Python."""
    return str(corpus) if isinstance(corpus, (str, os.PathLike)) else "<python>"


def check_corpus_file(corpus: Corpus) -> None:
    """Refuse a corpus path that is not a file (before any model is loaded)."""
    if isinstance(corpus, (str, os.PathLike)) and not Path(corpus).is_file():
        what = "is a folder" if Path(corpus).is_dir() else "does not exist"
        raise DataError(f"{corpus} {what}; pass a text, JSONL or Parquet file of documents.")


def _to_document(item: Any, number: int, config: IndexConfig) -> Document:
    if isinstance(item, Document):
        return Document(item.id, normalize_document(item.text), dict(item.metadata))
    if isinstance(item, str):
        return Document(str(number), normalize_document(item))
    if isinstance(item, Mapping):
        if not isinstance(item.get(config.text_key), str):
            raise DataError(f"document {number}: no string {config.text_key!r} field; pass {{'text': ...}}.")
        doc_id = str(item.get(config.id_key, number))
        metadata = {str(k): v for k, v in item.items() if k not in (config.id_key, config.text_key)}
        return Document(doc_id, normalize_document(item[config.text_key]), metadata)
    raise DataError(f"document {number} is a {type(item).__name__}; pass Documents, dicts or strings.")


def documents(corpus: Corpus, config: IndexConfig, stats: ReadStats, first_number: int) -> Iterator[Document]:
    """The non-blank documents of ``corpus``, counted in ``stats``; plain strings are numbered from ``first_number``."""
    if isinstance(corpus, (str, os.PathLike)):
        yield from read_documents(corpus, id_key=config.id_key, text_key=config.text_key, stats=stats)
        return
    seen: set[str] = set()
    for number, item in enumerate(corpus, start=first_number):
        doc = _to_document(item, number, config)
        if not doc.text:
            stats.skipped_blank += 1
            continue
        if doc.id in seen:
            raise DataError(f"document id {doc.id!r} appears twice in the corpus; ids must be unique.")
        seen.add(doc.id)
        stats.documents += 1
        yield doc


def read_passages(
    corpus: Corpus, config: IndexConfig, splitting: Splitting, first_number: int = 0
) -> tuple[list[Passage], Addition]:
    """Every passage of ``corpus`` in document order, and what was read (source, counts)."""
    stats = ReadStats()
    passages = list(
        to_passages(
            documents(corpus, config, stats, first_number),
            max_tokens=splitting.max_tokens,
            count_tokens=splitting.counter,
            max_chars=splitting.max_chars,
        )
    )
    return passages, Addition(source_name(corpus), stats.documents, len(passages), stats.skipped_blank)


def embed_passages(encoder: Encoder, texts: Sequence[str], config: IndexConfig) -> np.ndarray:
    """``(n, dim)`` float32, L2-normalised, computed in chunks under one progress bar (stderr)."""
    from tqdm.auto import tqdm

    from xlingual.models.specs import encode

    parts: list[np.ndarray] = []
    with tqdm(
        total=len(texts), desc="embedding passages", unit="passage", disable=not config.show_progress, file=sys.stderr
    ) as bar:
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[start : start + ENCODE_CHUNK]
            parts.append(encode(encoder, chunk, batch_size=config.batch_size))
            bar.update(len(chunk))
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return faiss_ops.as_vectors("passage embeddings", vectors)
