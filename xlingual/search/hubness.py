"""Hubness correction for cross-model search: each passage's r(d), stored at build, and CSLS ranking.

Out of domain, a few documents are *hubs*: near many queries of another model (a student's Japanese queries
over its English teacher's index). CSLS (Conneau et al., 2018) ranks by ``2·cos(q, d) − r(d)``, ``r(d)`` the
mean cosine of document ``d`` with its ``k`` nearest *reference queries*; the query's own term is the same
for every document and drops out. The references are the query model's embeddings of a seeded sample of the
passages (or of a file of typical queries), stored in the index, so ``index add`` computes r(d) of new
passages against the same set and earlier values stay valid.

Files (listed and checksummed in the manifest, written through :mod:`xlingual._io`)::

    hubness-queries.npy     (m, dim) float32, L2-normalised: the reference queries
    hubness-00000.npy       (n_part,) float32: r(d) of the rows of passages-00000.parquet, one file per part

Example::

    hub = build_hubness(student, student_info, passages, teacher_vectors, IndexConfig(query_model="student"))
    cos, csls, ids = csls_search(search, query_vectors, 10, hub.r, candidates=10, exact=True)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import _io
from xlingual.config import IndexConfig
from xlingual.data.documents import Passage
from xlingual.errors import DataError, SearchIndexError
from xlingual.models.encoder import Encoder
from xlingual.search import faiss_ops
from xlingual.search.compat import ModelInfo
from xlingual.search.manifest import HUBNESS_QUERIES, hubness_part_name, rebuild_hint
from xlingual.search.storage import read_checked

#: ``search(query_vectors, depth) -> (cosines, ids)``: a FAISS search, best first, ids -1 where none found.
Searcher = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
#: How far a stored cosine may stray outside [-1, 1] (float32 rounding).
_COSINE_SLACK = 1e-3


@dataclass(frozen=True)
class Hubness:
    """What a build with a query model adds: the reference queries, r(d) per passage, the manifest block.

    ``reference``: ``(m, dim)`` float32, L2-normalised; ``r``: ``(n,)`` float32, row ``i`` for passage ``i``.
    """

    reference: np.ndarray
    r: np.ndarray
    block: dict[str, Any]

    def files(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The manifest's ``files`` entries of a new index and the bytes of each file."""
        entries = {"hubness_queries": HUBNESS_QUERIES, "hubness": [hubness_part_name(0)]}
        return entries, {HUBNESS_QUERIES: npy_bytes(self.reference), hubness_part_name(0): npy_bytes(self.r)}


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as a ``.npy`` file (float32, no pickled objects)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def doc_hubness(doc_vectors: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """r(d): each document's mean cosine with its ``k`` nearest reference queries — ``(n,)`` float32.

    ``doc_vectors``: ``(n, dim)``, ``reference``: ``(m, dim)``, both float32, L2-normalised; ``k`` is capped at
    ``m``. Example: ``doc_hubness(teacher_en, student_ja, 4)``.
    """
    reference = faiss_ops.as_vectors("reference queries", reference)
    nearest, _ = faiss_ops.knn(doc_vectors, reference, min(k, reference.shape[0]))
    return nearest.mean(axis=1, dtype=np.float64).astype(np.float32)


def reference_texts(passages: Sequence[Passage], config: IndexConfig) -> tuple[list[str], dict[str, Any]]:
    """The texts the query model embeds as references, and the block's ``source`` fields saying which.

    ``config.hubness_queries``: the non-blank lines of that file; else a seeded sample of at most
    ``config.hubness_sample`` passages, in index order.
    """
    if config.hubness_queries is None:
        rng = np.random.default_rng(config.seed)
        size = min(len(passages), config.hubness_sample)
        chosen = np.sort(rng.choice(len(passages), size=size, replace=False))
        return [passages[i].text for i in chosen.tolist()], {"source": "passages", "source_sha256": None}
    from xlingual.data.lines import text_lines

    path = Path(config.hubness_queries)
    texts = [text.strip() for _, text in text_lines(path) if text.strip()]
    if not texts:
        raise DataError(f"{path} holds no queries; write one typical query per line, or leave out --hubness-queries.")
    return texts, {"source": str(config.hubness_queries), "source_sha256": _io.sha256_file(path)}


def build_hubness(
    encoder: Encoder, info: ModelInfo, passages: Sequence[Passage], vectors: np.ndarray, config: IndexConfig
) -> Hubness:
    """The hubness of a new index: ``encoder`` (the query model ``info``) embeds the references.

    ``passages`` and ``vectors`` (``(n, dim)`` float32, L2-normalised, by the index's model) in index order.
    """
    from xlingual.models.specs import encode

    texts, source = reference_texts(passages, config)
    embedded = encode(
        encoder,
        texts,
        batch_size=config.batch_size,
        show_progress=config.show_progress,
        desc="embedding reference queries",
    )
    reference = faiss_ops.as_vectors(f"{info.spec}'s reference query embeddings", embedded, dim=vectors.shape[1])
    block = {
        "method": "csls",
        "k": config.hubness_k,
        **source,
        "references": int(reference.shape[0]),
        "query_model": asdict(info),
    }
    return Hubness(reference, doc_hubness(vectors, reference, config.hubness_k), block)


# --------------------------------------------------------------------------- reading


def _parse_npy(folder: Path, name: str, manifest: Mapping[str, Any], data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 array of a hubness file, of ``shape`` (-1: any length) with finite values, or the error."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
        problem = None
        if array.dtype != np.float32 or array.ndim != len(shape):
            problem = f"it holds {array.dtype} of shape {array.shape}, expected float32 of shape {shape}"
        elif any(want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)):
            problem = f"its shape is {array.shape}, expected {shape}"
        elif not np.isfinite(array).all() or np.abs(array).max(initial=0.0) > 1 + _COSINE_SLACK:
            problem = "it holds values that are not cosines"
    except (ValueError, OSError, EOFError) as exc:
        problem = f"it is not a readable .npy file ({' '.join(str(exc).split())})"
    if problem:
        raise SearchIndexError(f"{folder / name} is damaged: {problem}; {rebuild_hint(folder, manifest)}")
    return array


def load_r(folder: Path, manifest: Mapping[str, Any], *, verify: bool) -> np.ndarray | None:
    """r(d) of every passage, ``(n,)`` float32 in row order (``None``: the index has no hubness block).

    Every r(d) part is checked against the manifest (size, and sha256 with ``verify``); the reference file's
    size is checked here too, its content when an ``add`` reads it (:func:`read_reference`).
    """
    if "hubness" not in manifest:
        return None
    files = manifest["files"]
    parts = [
        _parse_npy(folder, name, manifest, read_checked(folder, name, manifest, verify=verify), (-1,))
        for name in files["hubness"]
    ]
    r = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if r.shape[0] != manifest["counts"]["passages"]:
        raise SearchIndexError(
            f"{folder} is inconsistent: the hubness files hold {r.shape[0]} values, the manifest "
            f"{manifest['counts']['passages']} passages; {rebuild_hint(folder, manifest)}"
        )
    reference = folder / files["hubness_queries"]
    expected = manifest["checksums"][files["hubness_queries"]]["bytes"]
    if not reference.is_file() or reference.stat().st_size != expected:
        what = "is missing" if not reference.is_file() else f"has {reference.stat().st_size:,} bytes, not {expected:,}"
        raise SearchIndexError(f"{reference} {what}: the index is damaged; {rebuild_hint(folder, manifest)}")
    return r


def read_reference(folder: Path, manifest: Mapping[str, Any]) -> np.ndarray:
    """The reference queries, ``(m, dim)`` float32, L2-normalised, checked against the manifest (sha256 too)."""
    name = manifest["files"]["hubness_queries"]
    shape = (manifest["hubness"]["references"], manifest["dim"])
    array = _parse_npy(folder, name, manifest, read_checked(folder, name, manifest, verify=True), shape)
    try:
        return faiss_ops.as_vectors(str(folder / name), array, dim=manifest["dim"])
    except SearchIndexError as exc:
        raise SearchIndexError(f"{exc} The file is damaged; {rebuild_hint(folder, manifest)}") from exc


def write_part(folder: Path, manifest: Mapping[str, Any], r: np.ndarray) -> dict[str, dict[str, Any]]:
    """Write the r(d) of an add beside its passage part (not yet listed: the manifest commits it)."""
    name = hubness_part_name(len(manifest["files"]["passages"]))
    return {name: _io.atomic_write_bytes(folder / name, npy_bytes(r))}


# --------------------------------------------------------------------------- ranking


def _rank(cos: np.ndarray, ids: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best candidates of each row by CSLS (ties: lower id first): cosines, CSLS scores, ids."""
    found = ids >= 0
    csls = np.where(found, 2 * cos - r[np.where(found, ids, 0)], -np.inf).astype(np.float32)
    order = np.lexsort((np.where(found, ids, np.iinfo(np.int64).max), -csls), axis=1)[:, :k]
    return tuple(np.take_along_axis(array, order, axis=1) for array in (cos, csls, ids))  # type: ignore[return-value]


def csls_search(
    search: Searcher, queries: np.ndarray, k: int, r: np.ndarray, *, candidates: int, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best documents of each query by CSLS ``2·cos − r(d)``: cosines, CSLS scores, ids, ``(n, k)``.

    Candidates are the ``k × candidates`` best by cosine. An approximate index re-ranks those. An ``exact``
    one returns what scoring every document would: a document outside the candidates scores at most
    ``2·cos_last − min(r)``, so a row is final once its k-th CSLS beats that bound, and the rest are searched
    again, twice as deep, until they are (at worst over all documents). ``queries``: ``(n, dim)`` float32,
    L2-normalised; ``r``: ``(n_docs,)`` float32. Ids -1 (an approximate index found fewer) come last.
    """
    n_docs, n_queries = int(r.shape[0]), queries.shape[0]
    depth = min(n_docs, k * candidates)
    best_cos, best_csls = np.empty((n_queries, k), np.float32), np.empty((n_queries, k), np.float32)
    best_ids = np.full((n_queries, k), -1, np.int64)
    pending = np.arange(n_queries)
    floor = np.float32(r.min(initial=np.inf))
    while pending.size:
        cos, ids = search(queries[pending], depth)
        top_cos, top_csls, top_ids = _rank(cos, ids, r, k)
        done = np.ones(pending.size, bool)
        if exact and depth < n_docs:
            done = top_csls[:, -1] > np.float32(2) * cos[:, -1] - floor
        rows = pending[done]
        best_cos[rows], best_csls[rows], best_ids[rows] = top_cos[done], top_csls[done], top_ids[done]
        pending, depth = pending[~done], min(n_docs, 2 * depth)
    return best_cos, best_csls, best_ids
