"""An index from vectors computed elsewhere: ``xlingual index build --vectors FILE``, no model needed.

The rows of a vectors file (:mod:`xlingual.models.vectors`: an embeddings file ``xlingual embed`` wrote, or any
Parquet/JSONL/``.npy`` with texts and vectors) become one passage each, with their ids and texts. The index's
model is the file itself (``vectors:FILE``, identified by its checksum): it cannot embed a query, so the index is
searched with ``--query-model STUDENT``, a student distilled from the same file (``xlingual distill --teacher
vectors:FILE``), which the compatibility rule accepts; with ``query_model`` set here the passages' hubness is
stored for CSLS, as for any index.

Example::

    index = build_from_vectors("vectors:en.parquet", "idx", IndexConfig(query_model="runs/v/model"))
    index.search("雨の日に読む本", query_model="runs/v/model")
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from xlingual.config import IndexConfig
from xlingual.data.documents import Passage
from xlingual.errors import DataError, SearchIndexError
from xlingual.models.vectors import VECTORS_PREFIX, VectorsSpec, check_matrix, file_fingerprint, read_vectors
from xlingual.search import building, hubness
from xlingual.search.compat import ModelInfo
from xlingual.search.manifest import Addition, new_manifest, splitting_block
from xlingual.search.passages import PassageStore

if TYPE_CHECKING:
    from xlingual.search.index import Index

logger = logging.getLogger(__name__)

__all__ = ["build_from_vectors", "vectors_spec"]


def vectors_spec(file: str | os.PathLike[str]) -> str:
    """``en.parquet`` → ``vectors:en.parquet`` (a spec is passed through unchanged)."""
    text = str(file)
    return text if text.startswith(VECTORS_PREFIX) else VECTORS_PREFIX + text


def build_from_vectors(vectors: str | os.PathLike[str], out: str | os.PathLike[str], config: IndexConfig) -> Index:
    """Build an index at ``out`` from the rows of a vectors file (a path or ``vectors:FILE?…`` spec).

    Every row is checked first (finite, non-zero, one dimension, unique ids): a bad one raises
    :class:`DataError` naming the file and row, and nothing is written. ``config.model`` is ignored (the
    file is the model); ``config.query_model`` (a student of the file) adds the CSLS block.
    """
    from xlingual.search.index import Index, _load_model

    spec = vectors_spec(vectors)
    source = VectorsSpec.parse(spec)
    target = Path(out)
    config = replace(config, model=spec)
    building.check_target(target, config)
    texts, raw, ids = read_vectors(source)
    emb = check_matrix(source.path, texts, raw)
    passages = _passages(source.path, texts, ids)
    info = ModelInfo(spec, file_fingerprint(source))
    query_info = building.query_model_info(info, config)
    added = Addition(str(source.path), len(passages), len(passages), 0)
    logger.info("%d vectors of dimension %d from %s", len(passages), emb.shape[1], source.path)
    faiss_index, index_spec, passages, emb = building.build_faiss(passages, emb, config)
    hub = None
    if query_info is not None:
        query_encoder = _load_model(query_info.spec, config.device)
        hub = hubness.build_hubness(query_encoder, query_info, passages, emb, config)
    model = {**asdict(info), "max_seq_length": None, "prompt": None}
    splitting = {**splitting_block(None, config.max_chars), "unit": "precomputed vectors (one passage per row)"}
    manifest = new_manifest(model, int(emb.shape[1]), index_spec.as_dict(), splitting, added)
    table = PassageStore.to_table(passages, 0)
    manifest = building.write_build(target, manifest, faiss_index, table, config, hub)
    return Index(target, manifest, faiss_index, PassageStore([table]), hubness_r=None if hub is None else hub.r)


def _passages(file: Path, texts: list[str], ids: list[str] | None) -> list[Passage]:
    """One passage per row; ids from the file (else the row number), each unique."""
    names = ids if ids is not None else [str(row) for row in range(len(texts))]
    seen: dict[str, int] = {}
    for row, name in enumerate(names):
        first = seen.setdefault(name, row)
        if first != row:
            raise DataError(
                f"vectors file {file} rows {first + 1} and {row + 1} have the same id {name!r}; ids must be unique"
            )
    return [Passage(name, 0, text, 0, len(text)) for name, text in zip(names, texts, strict=True)]


def refuse_to_embed(spec: str) -> SearchIndexError:
    """The error for embedding text with a vectors file (the index's model when it was built from one)."""
    return SearchIndexError(
        f"{spec} is a vectors file, not a model: it cannot embed a query or a new document. Search with "
        f"--query-model STUDENT, a student distilled from it (xlingual distill --teacher {spec}); to add "
        "documents, rebuild the index with index build --vectors"
    )
