"""Semantic search over a document corpus: :class:`Index` — build, load, add, search, info.

An index is a folder::

    idx/
      manifest.json             what is inside: model (spec, fingerprint, teacher), dimension, normalisation,
                                index type and parameters, counts, sources, dates, versions, and the
                                size and sha256 of every file below — the commit point of every write
      config.json               the IndexConfig that built it
      index-000000.faiss        the FAISS index (inner product over L2-normalised vectors; id = passage row)
      passages-00000.parquet    passage rows: passage_id, doc_id, passage, start, end, text, metadata (JSON)
      passages-00001.parquet    … one more part per `add`
      hubness-queries.npy       with a query model (`--query-model`): its reference queries, and r(d) per
      hubness-00000.npy         passage, one file per passage part, for CSLS ranking (:mod:`~xlingual.search.hubness`)

The parts, each in its own module: reading and splitting the corpus (:mod:`~xlingual.search.corpus`),
choosing and calibrating the FAISS index (:mod:`~xlingual.search.ann`, :mod:`~xlingual.search.calibration`),
the manifest (:mod:`~xlingual.search.manifest`), atomic writes and checked reads of the folder
(:mod:`~xlingual.search.storage`; a crash or a full disk, :class:`~xlingual.errors.DiskFullError`, leaves
the previous index intact), the passage rows (:mod:`~xlingual.search.passages`) and which models may embed
queries (:mod:`~xlingual.search.compat`). Two ``add`` calls on one folder are serialised by a file lock.

Example::

    idx = Index.build("docs.jsonl", "idx", config=IndexConfig(model="builtin:me5-small"))
    hits = Index.load("idx").search("東京の天気", k=5)     # [Hit(rank=1, score=0.83, doc_id=..., text=...)]
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from xlingual import _io
from xlingual.choices import IndexType
from xlingual.config import IndexConfig, SearchConfig
from xlingual.data.documents import Passage
from xlingual.errors import DiskFullError, SearchIndexError
from xlingual.models.encoder import Encoder, prompt_text
from xlingual.models.vectors import is_vectors_spec
from xlingual.search import ann, building, calibration, faiss_ops, hubness, storage
from xlingual.search.ann import IndexSpec
from xlingual.search.compat import ModelInfo, check_compatible, model_dim, same_model
from xlingual.search.corpus import Corpus, Splitting, check_corpus_file, embed_passages, read_passages
from xlingual.search.manifest import (
    MANIFEST_NAME,
    Addition,
    added_manifest,
    hubness_part_name,
    new_manifest,
    next_file_names,
    read_manifest,
    rebuild_hint,
    splitting_block,
)
from xlingual.search.passages import Hit, PassageStore

__all__ = ["Corpus", "Hit", "Index"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _State:
    """What an index holds at one generation; an add replaces it whole."""

    manifest: dict[str, Any]
    faiss_index: Any
    passages: PassageStore
    spec: IndexSpec
    #: r(d) per passage, ``(n,)`` float32, when the index has a hubness block (else ``None``).
    hubness: np.ndarray | None


def _load_model(spec: str, device: str | None) -> Any:
    from xlingual.models import specs as models

    if is_vectors_spec(spec):
        from xlingual.search.from_vectors import refuse_to_embed

        raise refuse_to_embed(spec)
    return models.load_model(spec, device=device)


class Index:
    """A searchable corpus: FAISS index + passages + manifest, in one folder.

    Example::

        idx = Index.build("docs.jsonl", "idx")                  # embeds with IndexConfig().model
        idx.add("more.jsonl")                                   # appends, ids stay unique
        for hit in Index.load("idx").search("京都の寺", k=3):
            print(hit.rank, round(hit.score, 3), hit.doc_id, hit.text)
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        faiss_index: Any,
        passages: PassageStore,
        *,
        config: SearchConfig | None = None,
        encoder: Encoder | None = None,
        hubness_r: np.ndarray | None = None,
    ) -> None:
        spec = IndexSpec.from_dict(manifest["index"])
        self.path = path
        self.config = config or SearchConfig()
        self.model = ModelInfo.from_dict(manifest["model"])
        # The current state, replaced whole by an add: a deque of one, whose append swaps it atomically, so a
        # search running while an add commits sees the old state or the new one, never a mix.
        self._state: deque[_State] = deque([_State(manifest, faiss_index, passages, spec, hubness_r)], maxlen=1)
        self._encoders: dict[str, Any] = {} if encoder is None else {self.model.spec: encoder}
        #: Who each loaded query model is (spec → ModelInfo), to tell whether the stored hubness fits it.
        self._query_infos: dict[str, ModelInfo] = {}
        self._encode_lock = threading.Lock()

    # ................................................................. what it holds

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest of the generation in memory (what ``manifest.json`` said when it was loaded or written)."""
        return self._state[-1].manifest

    @property
    def faiss_index(self) -> Any:
        """The FAISS index: inner product over ``(n, dim)`` float32, L2-normalised vectors; id = passage row."""
        return self._state[-1].faiss_index

    @property
    def passages(self) -> PassageStore:
        """The passage rows (row ``i`` is FAISS id ``i``)."""
        return self._state[-1].passages

    @property
    def spec(self) -> IndexSpec:
        """The FAISS index type and its (calibrated) parameters."""
        return self._state[-1].spec

    @property
    def hubness(self) -> np.ndarray | None:
        """r(d) per passage, ``(n,)`` float32 (row ``i`` for passage ``i``); ``None`` without a query model."""
        return self._state[-1].hubness

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.manifest["dim"])

    def __len__(self) -> int:
        """Number of passages."""
        return int(self.faiss_index.ntotal)

    def __repr__(self) -> str:
        counts = self.manifest["counts"]
        return (
            f"Index({str(self.path)!r}, model={self.model.spec!r}, type={self.spec.type.value}, "
            f"documents={counts['documents']}, passages={counts['passages']})"
        )

    def info(self) -> dict[str, Any]:
        """The manifest plus the folder's size on disk (``size_bytes``) and its path."""
        return {**self.manifest, "path": str(self.path), "size_bytes": storage.folder_size(self.path)}

    # ................................................................. build and load

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        out: str | os.PathLike[str],
        *,
        config: IndexConfig | None = None,
        encoder: Encoder | None = None,
        query_encoder: Encoder | None = None,
    ) -> Index:
        """Read ``corpus``, split it into passages, embed them with ``config.model`` and write the index to ``out``.

        ``corpus``: a document file (see :mod:`xlingual.data.documents`) or an iterable of
        :class:`~xlingual.data.documents.Document`, dicts with ``id``/``text`` or plain strings. ``encoder``:
        an already loaded model for ``config.model`` (skips loading); ``query_encoder`` likewise for
        ``config.query_model``, whose reference queries give each passage its hubness r(d) for CSLS. ``out``
        must not hold an index unless ``config.overwrite``.
        Example: ``Index.build("docs.txt", "idx", config=IndexConfig(model=teacher, query_model=student))``.
        """
        config = config or IndexConfig()
        target = Path(out)
        building.check_target(target, config)
        check_corpus_file(corpus)
        model_info = ModelInfo.from_spec(config.model)
        query_info = building.query_model_info(model_info, config)
        encoder = encoder if encoder is not None else _load_model(config.model, config.device)
        if query_info is not None and query_encoder is None:
            same = query_info.spec == config.model
            query_encoder = encoder if same else _load_model(query_info.spec, config.device)
        splitting = Splitting.for_model(encoder, config)
        passages, added = read_passages(corpus, config, splitting)
        building.require_text(passages, added, "nothing to index")
        logger.info("%d documents → %d passages", added.documents, len(passages))
        vectors = embed_passages(encoder, [p.text for p in passages], config)
        reported = model_dim(encoder)
        if reported is not None and reported != vectors.shape[1]:
            raise SearchIndexError(f"{config.model} reports dimension {reported} but embeds {vectors.shape[1]}.")
        faiss_index, spec, passages, vectors = building.build_faiss(passages, vectors, config)
        hub = None
        if query_info is not None and query_encoder is not None:
            hub = hubness.build_hubness(query_encoder, query_info, passages, vectors, config)
        model = {
            **asdict(model_info),
            "max_seq_length": getattr(encoder, "max_seq_length", None),
            "prompt": prompt_text(encoder) or None,
        }
        splits = splitting_block(splitting.max_tokens, config.max_chars)
        manifest = new_manifest(model, int(vectors.shape[1]), spec.as_dict(), splits, added)
        table = PassageStore.to_table(passages, 0)
        manifest = building.write_build(target, manifest, faiss_index, table, config, hub)
        return cls(
            target,
            manifest,
            faiss_index,
            PassageStore([table]),
            encoder=encoder,
            hubness_r=None if hub is None else hub.r,
        )

    @classmethod
    def from_vectors(
        cls, vectors: str | os.PathLike[str], out: str | os.PathLike[str], *, config: IndexConfig | None = None
    ) -> Index:
        """Build an index from precomputed vectors and their texts (:mod:`xlingual.search.from_vectors`).

        Example: ``Index.from_vectors("en.parquet", "idx", config=IndexConfig(query_model="runs/v/model"))``.
        """
        from xlingual.search.from_vectors import build_from_vectors

        return build_from_vectors(vectors, out, config or IndexConfig())

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, config: SearchConfig | None = None, encoder: Encoder | None = None
    ) -> Index:
        """Open an index folder, checking every file against the manifest (sizes always, sha256 if ``verify``).

        The model is loaded on the first text search, not here. ``encoder``: an already loaded model
        for the index's own model spec. Example: ``Index.load("idx").search("雨の日")``.
        """
        config = config or SearchConfig()
        folder = Path(path)
        manifest = read_manifest(folder)
        faiss_index, store = storage.load_files(folder, manifest, verify=config.verify)
        hubness_r = hubness.load_r(folder, manifest, verify=config.verify)
        try:
            index = cls(folder, manifest, faiss_index, store, config=config, encoder=encoder, hubness_r=hubness_r)
        except (KeyError, TypeError, ValueError, SearchIndexError) as exc:
            raise SearchIndexError(
                f"{folder / MANIFEST_NAME} has a bad model or index block ({exc}); {rebuild_hint(folder, manifest)}"
            ) from exc
        problems = storage.spec_problems(index.spec, faiss_index, manifest["dim"])
        if problems:
            raise SearchIndexError(
                f"{folder / MANIFEST_NAME} has a bad index block: {'; '.join(problems)}; "
                f"{rebuild_hint(folder, manifest)}"
            )
        return index

    # ................................................................. add

    def add(self, corpus: Corpus, *, config: IndexConfig | None = None) -> int:
        """Append the documents of ``corpus`` without rebuilding; return the number of passages added.

        The index's model embeds them and its splitting settings apply (``config`` supplies the reader
        keys, batch size and progress bar only). A document id already in the index is refused. HNSW and
        IVF-PQ keep their graph / trained quantizers; with 32 or more new passages the search knobs are
        calibrated again, on those passages before they are added (unseen queries). With a hubness block, r(d)
        of the new passages is computed against the stored reference queries (earlier values stay valid).
        Example: ``Index.load("idx").add("more.jsonl")``.
        """
        config = config or IndexConfig()
        encoder = self._encoder(None)
        counts = self.manifest["counts"]
        splitting = Splitting.from_manifest(self.manifest["splitting"], encoder, config)
        # Plain strings are numbered on from every document seen so far (blank ones included).
        passages, added = read_passages(corpus, config, splitting, counts["documents"] + counts["skipped_blank"])
        building.require_text(passages, added, "nothing added")
        self._check_new_ids(passages, added.source)
        vectors = embed_passages(encoder, [p.text for p in passages], config)
        vectors = faiss_ops.as_vectors("passage embeddings", vectors, dim=self.dim)
        new_r = None
        if self.hubness is not None:
            reference = hubness.read_reference(self.path, self.manifest)
            new_r = hubness.doc_hubness(vectors, reference, int(self.manifest["hubness"]["k"]))
        with _io.file_lock(self.path / ".lock"):
            if read_manifest(self.path).get("generation") != self.manifest.get("generation"):
                raise SearchIndexError(
                    f"{self.path} was changed by another process since it was loaded; load it again and retry."
                )
            state = self._append(passages, vectors, added, config, new_r)
        self._state.append(state)
        logger.info("added %d documents → %d passages", added.documents, len(passages))
        return len(passages)

    def _check_new_ids(self, passages: list[Passage], source: str) -> None:
        clashes = sorted({p.doc_id for p in passages} & self.passages.doc_ids())
        if clashes:
            shown = ", ".join(repr(c) for c in clashes[:5]) + (" …" if len(clashes) > 5 else "")
            raise SearchIndexError(
                f"{len(clashes)} document ids of {source} are already in {self.path}: {shown}. "
                f"Ids must stay unique: give the new documents other ids (text files are numbered FILE:LINE)."
            )

    def _append(
        self,
        passages: list[Passage],
        vectors: np.ndarray,
        added: Addition,
        config: IndexConfig,
        new_r: np.ndarray | None,
    ) -> _State:
        """Add the vectors, write the new files and commit the manifest (under the lock); return the new state.

        ``new_r``: r(d) of the new passages, ``(n_new,)`` float32, for an index with a hubness block.

        On any failure the files of the uncommitted add are deleted and the in-memory state goes back to
        what is on disk (the FAISS index may already hold the new vectors).
        """
        state = self._state[-1]
        try:
            spec = state.spec
            if len(vectors) >= calibration.MIN_CALIBRATION_QUERIES:
                # The new passages are unseen by the index: the faithful calibration queries.
                spec = calibration.calibrate(
                    state.faiss_index,
                    state.spec,
                    queries=vectors,
                    target_recall=config.target_recall,
                    n_queries=config.calibration_queries,
                    refine_base=config.refine_factor,
                    seed=config.seed,
                )
            table = PassageStore.to_table(passages, len(self))
            ann.add_to_index(state.faiss_index, vectors, spec)
            checksums = storage.write_addition(self.path, state.manifest, state.faiss_index, table)
            if new_r is not None:
                checksums.update(hubness.write_part(self.path, state.manifest, new_r))
            manifest = added_manifest(state.manifest, spec.as_dict(), added, checksums)
            storage.commit_manifest(self.path, manifest, state.manifest["files"]["index"])
        except BaseException as exc:
            hubness_name = hubness_part_name(len(state.manifest["files"]["passages"]))
            storage.discard_uncommitted(self.path, (*next_file_names(state.manifest), hubness_name))
            self._state.append(Index.load(self.path, config=self.config)._state[-1])
            if isinstance(exc, Exception) and _io.is_disk_full(exc):
                intact = f"the index at {self.path} is intact, without the new documents"
                then = "run the same xlingual index add command again"
                where = getattr(exc, "filename", None) or self.path
                raise DiskFullError(_io.disk_full_message(where, intact, then)) from exc
            raise
        r = None if state.hubness is None or new_r is None else np.concatenate([state.hubness, new_r])
        return _State(manifest, state.faiss_index, PassageStore([state.passages.table, table]), spec, r)

    # ................................................................. search

    def _encoder(self, spec: str | None) -> Any:
        """The model for ``spec`` (None: the index's own), loaded once, checked against the manifest."""
        key = spec or self.model.spec
        if key in self._encoders:
            return self._encoders[key]
        if is_vectors_spec(key):  # refused before ModelInfo.from_spec would hash the (possibly large) file
            from xlingual.search.from_vectors import refuse_to_embed

            raise refuse_to_embed(key)
        if spec is None or spec == self.model.spec:
            info, current = self.model, ModelInfo.from_spec(self.model.spec)
            if self.model.fingerprint and current.fingerprint != self.model.fingerprint:
                raise SearchIndexError(
                    f"The model {self.model.spec} has changed since {self.path} was built (fingerprint "
                    f"{(current.fingerprint or 'none')[:12]}, the index has {self.model.fingerprint[:12]}); its "
                    f"vectors would not match. {rebuild_hint(self.path, self.manifest).capitalize()}, or pass "
                    f"a compatible --query-model."
                )
        else:
            info = ModelInfo.from_spec(spec)
            logger.info("query model %s accepted: %s", spec, check_compatible(self.model, info))
        encoder = _load_model(key, self.config.device)
        dim = model_dim(encoder)
        if dim is not None and dim != self.dim:
            raise SearchIndexError(f"{key} embeds in dimension {dim} but {self.path} has dimension {self.dim}.")
        self._query_infos.setdefault(key, info)
        return self._encoders.setdefault(key, encoder)

    def uses_csls(self, query_model: str | None = None) -> bool:
        """Whether searches by ``query_model`` (None: the configured one, else the index's) rank by CSLS.

        They do when ``config.csls`` is on and the index stores hubness for that very model (equal fingerprints):
        r(d) measures how near each passage lies to *that* model's queries.
        """
        block = self.manifest.get("hubness")
        if not self.config.csls or block is None:
            return False
        key = query_model or self.config.query_model or self.model.spec
        info = self._query_infos.get(key) or (self.model if key == self.model.spec else ModelInfo.from_spec(key))
        return same_model(ModelInfo.from_dict(block["query_model"]), info)

    def prepare(self, query_model: str | None = None) -> None:
        """Load (and check) the query model now instead of on the first search (servers call this)."""
        self._encoder(query_model or self.config.query_model)

    def embed_queries(self, queries: Sequence[str], *, query_model: str | None = None) -> np.ndarray:
        """``(n, dim)`` float32, L2-normalised query vectors, by the query model (or the index's)."""
        from xlingual.models.specs import encode

        for number, query in enumerate(queries):
            if not isinstance(query, str) or not query.strip():
                raise SearchIndexError(f"Query {number} is empty; pass some text to search for.")
        encoder = self._encoder(query_model or self.config.query_model)
        with self._encode_lock:  # one forward pass at a time: torch already uses every core
            vectors = encode(encoder, list(queries), batch_size=self.config.batch_size)
        return faiss_ops.as_vectors("query embeddings", vectors, dim=self.dim)

    @overload
    def search(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]: str goes first
        self, queries: str, k: int | None = None, *, query_model: str | None = None
    ) -> list[Hit]: ...

    @overload
    def search(
        self, queries: Sequence[str], k: int | None = None, *, query_model: str | None = None
    ) -> list[list[Hit]]: ...

    def search(
        self, queries: str | Sequence[str], k: int | None = None, *, query_model: str | None = None
    ) -> list[Hit] | list[list[Hit]]:
        """The ``k`` best passages for a query (a list of :class:`Hit`), or for each of a list of queries.

        ``k`` defaults to ``config.k`` and is capped at the number of passages. ``query_model`` embeds the
        queries instead of the index's model; it must share its vector space (:func:`check_compatible`).
        Hits are ranked by CSLS when :meth:`uses_csls` says so for the query model, by cosine otherwise.
        """
        single = isinstance(queries, str)
        texts = [queries] if isinstance(queries, str) else list(queries)
        if not texts:
            return []
        vectors = self.embed_queries(texts, query_model=query_model)
        results = self.search_vectors(vectors, k, csls=self.uses_csls(query_model))
        return results[0] if single else results

    def search_vectors(self, vectors: np.ndarray, k: int | None = None, *, csls: bool = False) -> list[list[Hit]]:
        """Search with query embeddings ``(n, dim)`` float32, L2-normalised; one list of hits per row.

        ``csls``: rank by CSLS, ``2·cos − r(d)`` (:mod:`~xlingual.search.hubness`); only right for vectors of
        the query model the index was built with (:meth:`uses_csls`). Hits keep ``score`` = cosine.
        """
        k = self.config.k if k is None else k
        if k < 1:
            raise SearchIndexError(f"k={k} is not positive; ask for at least 1 result.")
        state = self._state[-1]
        k = min(k, int(state.faiss_index.ntotal))
        params = ann.search_params(state.spec, ef_search=self.config.ef_search, nprobe=self.config.nprobe)

        def search(queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
            return faiss_ops.search(state.faiss_index, queries, depth, params=params)

        csls_scores = None
        if not csls:
            scores, ids = search(vectors, k)
        elif state.hubness is None:
            raise SearchIndexError(f"{self.path} stores no hubness for CSLS; build it with --query-model.")
        else:
            queries = faiss_ops.as_vectors("queries", vectors, dim=self.dim)
            exact = state.spec.type is IndexType.FLAT
            candidates = self.config.csls_candidates
            scores, csls_scores, ids = hubness.csls_search(
                search, queries, k, state.hubness, candidates=candidates, exact=exact
            )
        try:
            return state.passages.hits(scores, ids, csls_scores)
        except ValueError as exc:  # text that is not UTF-8 or metadata that is not JSON: a damaged passage file
            raise SearchIndexError(
                f"{self.path}: a passage row cannot be read ({exc}); {rebuild_hint(self.path, self.manifest)}"
            ) from exc
