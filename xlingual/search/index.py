"""Semantic search over a document corpus: :class:`Index` — build, add, save, load, search.

An index is a folder::

    idx/
      manifest.json             what is inside: model (spec, fingerprint, teacher), dimension, normalisation,
                                index type and parameters, counts, sources, dates, versions, and the
                                size and sha256 of every file below — the commit point of every write
      config.json               the IndexConfig that built it
      index-000000.faiss        the FAISS index (inner product over L2-normalised vectors; id = passage row)
      passages-00000.parquet    passage rows: passage_id, doc_id, passage, start, end, text, metadata (JSON)
      passages-00001.parquet    … one more part per `add`

**Storage.** Passages live in Parquet (zstd): columnar and compressed, readable by pandas, DuckDB or
Polars, and appendable without rewriting earlier parts. Metadata is a JSON string per row, so
documents with different fields share one schema.

**Atomic writes.** ``build`` writes a temporary sibling folder and swaps it into place in one rename, so
an existing index is never missing, even for a moment; the folders of killed builds are swept by the next.
``add`` writes new files under new names (each through a temporary file and ``os.replace``), then replaces
``manifest.json`` — the one file readers trust — and only then deletes files the new manifest no longer
lists. A crash or a full disk (:class:`~xlingual.errors.DiskFullError`) at any point leaves the previous
index intact. Two ``add`` calls on one folder are serialised by a file lock. ``load`` checks every file's
size and sha256 against the manifest; a missing, truncated or altered file raises
:class:`~xlingual.errors.SearchIndexError` naming the path and the fix.

**Query models.** Queries are embedded by the index's model, or by another model that shares its
vector space (see :func:`check_compatible`): the headline use is Japanese queries embedded by a student
distilled from the teacher that built an English index.

Example::

    idx = Index.build("docs.jsonl", "idx", config=IndexConfig(model="builtin:me5-small"))
    hits = Index.load("idx").search("東京の天気", k=5)     # [Hit(rank=1, score=0.83, doc_id=..., text=...)]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib.metadata as md
import json
import logging
import os
import shutil
import struct
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from xlingual import __version__
from xlingual._io import disk_full_message, fsync_dir, is_disk_full, replace_dir, sweep_stale, temp_sibling
from xlingual.config import IndexConfig, SearchConfig
from xlingual.data.documents import Document, Passage, ReadStats, read_documents, to_passages, tokenizer_counter
from xlingual.errors import DataError, DiskFullError, SearchIndexError
from xlingual.search import faiss_ops
from xlingual.search.faiss_ops import IndexSpec, IndexType

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.json"
FORMAT_NAME = "xlingual-index"
FORMAT_VERSION = 1
#: Passages embedded per progress-bar step (and per call of the encoder).
ENCODE_CHUNK = 2048
#: Special tokens a BERT-style encoder adds around every input ([CLS] … [SEP], <s> … </s>).
_SPECIAL_TOKENS = 2

Corpus = str | os.PathLike[str] | Iterable[Document | Mapping[str, Any] | str]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Hit:
    """One search result: a passage of a document, with its score (cosine similarity, higher is closer)."""

    rank: int
    score: float
    doc_id: str
    #: Position of the passage within its document (0, 1, …).
    passage: int
    text: str
    metadata: dict[str, Any]
    #: Row of the passage in the index (the FAISS id).
    passage_id: int
    #: Character span of the passage in its (NFC-normalised) document.
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the score rounded to 6 decimals."""
        out = asdict(self)
        out["score"] = round(self.score, 6)
        return out


# --------------------------------------------------------------------------- models and compatibility


@dataclass(frozen=True)
class ModelInfo:
    """Who embeds: a model spec, its content fingerprint and, for a distilled student, its teacher's.

    ``fingerprint`` is :func:`xlingual.models.specs.fingerprint` of the model folder (``None`` for a hub id);
    ``teacher_fingerprint`` comes from the folder's ``xlingual_distill.json``; ``source_fingerprint``,
    for an ONNX export (``onnx:DIR``), is the fingerprint of the model it was exported from
    (``xlingual_onnx.json``): the export embeds like its source, checked at export time.
    """

    spec: str
    fingerprint: str | None = None
    teacher: str | None = None
    teacher_fingerprint: str | None = None
    source_fingerprint: str | None = None

    @classmethod
    def from_spec(cls, spec: str) -> ModelInfo:
        """Resolve ``spec`` (converting a built-in if needed) and read its fingerprints."""
        from xlingual.models.specs import fingerprint, resolve_model_path

        path = resolve_model_path(spec)
        if path is None:
            return cls(spec)
        distill = _read_json(path / "xlingual_distill.json")
        source = _read_json(path / "xlingual_onnx.json").get("source") or {}
        return cls(
            spec,
            fingerprint(path),
            distill.get("teacher"),
            distill.get("teacher_fingerprint"),
            source.get("fingerprint") if isinstance(source, dict) else None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Read the ``model`` block of a manifest."""
        return cls(
            str(data.get("spec", "")),
            data.get("fingerprint"),
            data.get("teacher"),
            data.get("teacher_fingerprint"),
            data.get("source_fingerprint"),
        )

    @property
    def identities(self) -> set[str]:
        """The fingerprints this model embeds like: its own and, for an export, its source's."""
        return {fp for fp in (self.fingerprint, self.source_fingerprint) if fp}

    def short(self) -> str:
        """``spec (fingerprint 1a2b3c4d5e6f)`` for messages."""
        return f"{self.spec} (fingerprint {self.fingerprint[:12]})" if self.fingerprint else self.spec


def _read_json(path: Path) -> dict[str, Any]:
    """A model folder's xlingual metadata file, or ``{}`` when there is none."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SearchIndexError(f"{path} cannot be read ({exc}); re-save or re-export the model.") from exc
    return data if isinstance(data, dict) else {}


def check_compatible(index_model: ModelInfo, query_model: ModelInfo) -> str:
    """Return why ``query_model`` may embed queries for an index built by ``index_model``, or raise.

    Two models share a vector space when they are the same model (equal fingerprints — an ONNX export
    counts as its source; for hub ids, equal specs), when one was distilled from the other (its
    ``xlingual_distill.json`` records the other's fingerprint as ``teacher_fingerprint``), or when both
    were distilled from the same teacher. Anything else raises :class:`SearchIndexError` saying why.
    """
    q, i = query_model, index_model
    if q.identities & i.identities:
        return "same model"
    if not q.identities and not i.identities and q.spec == i.spec:
        return "same model id"
    if q.teacher_fingerprint and q.teacher_fingerprint in i.identities:
        return f"{q.spec} was distilled from the index's model"
    if i.teacher_fingerprint and i.teacher_fingerprint in q.identities:
        return f"the index's model was distilled from {q.spec}"
    if q.teacher_fingerprint and q.teacher_fingerprint == i.teacher_fingerprint:
        return "both were distilled from the same teacher"
    if q.teacher_fingerprint:
        why = (
            f"{q.spec} was distilled from {q.teacher or 'a teacher'} (fingerprint {q.teacher_fingerprint[:12]}), "
            f"not from the index's model {i.short()}"
        )
    elif not q.identities or not i.identities:
        why = f"{q.spec} and the index's model {i.spec} are different models and no fingerprints link them"
    else:
        why = (
            f"{q.short()} is a different model from the index's {i.short()} and has no xlingual_distill.json "
            f"naming it as its teacher"
        )
    raise SearchIndexError(
        f"Query model {q.spec} does not share the index's vector space: {why}. A query model must be the "
        f"index's model or a student distilled from it (xlingual distill --teacher {i.spec}). Search without "
        f"--query-model, or build the index with {q.spec}."
    )


def _model_dim(model: Any) -> int | None:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        method = getattr(model, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                value = method()
                if value:
                    return int(value)
    return None


def _default_prompt(model: Any) -> str:
    name = getattr(model, "default_prompt_name", None)
    prompts = getattr(model, "prompts", None) or {}
    return str(prompts.get(name) or "") if name else ""


def _passage_limit(model: Any, config: IndexConfig) -> tuple[int | None, Any]:
    """``(max_tokens, counter)`` for the model (counter None: split by ``config.max_chars``)."""
    counter = tokenizer_counter(model)
    if counter is None:
        return None, None
    limit = config.max_tokens
    max_seq = getattr(model, "max_seq_length", None)
    if isinstance(max_seq, int) and max_seq > 0:
        prompt = _default_prompt(model)
        prompt_tokens = counter([prompt])[0] if prompt else 0
        limit = min(limit, max_seq - _SPECIAL_TOKENS - prompt_tokens)
    if limit < 1:
        raise SearchIndexError(
            f"The passage limit works out at {limit} tokens; raise max_tokens (now {config.max_tokens})."
        )
    return limit, counter


# --------------------------------------------------------------------------- files


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` to ``path`` through a temporary file + fsync + ``os.replace``; return its checksum entry."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"bytes": len(data), "sha256": _sha256(data)}


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``folder/.lock``: one writer at a time."""
    with open(folder / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _rebuild_hint(path: Path, manifest: Mapping[str, Any] | None = None) -> str:
    # The manifest may be the damaged one being reported: take only what has the expected shape.
    manifest = manifest if isinstance(manifest, Mapping) else {}
    listed = manifest.get("sources")
    sources = [s.get("path") for s in listed if isinstance(s, Mapping)] if isinstance(listed, list) else []
    block = manifest.get("model")
    model = block.get("spec") if isinstance(block, Mapping) else None
    corpus = " ".join(s for s in sources if isinstance(s, str) and s) or "CORPUS"
    model_part = f" --model {model}" if isinstance(model, str) and model else ""
    return f"rebuild it: xlingual index build {corpus}{model_part} --out {path} --overwrite"


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for package in ("faiss-cpu", "sentence-transformers", "torch", "numpy", "pyarrow"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = None
    return out


# --------------------------------------------------------------------------- passages


_PASSAGE_COLUMNS = ("passage_id", "doc_id", "passage", "start", "end", "text", "metadata")


class PassageStore:
    """The passage rows of an index: Parquet parts concatenated in memory (Arrow, no Python objects per row)."""

    def __init__(self, tables: Sequence[Any]) -> None:
        import pyarrow as pa

        self._table = pa.concat_tables(list(tables)) if tables else self.to_table([], 0)

    @staticmethod
    def to_table(passages: Sequence[Passage], first_id: int) -> Any:
        """An Arrow table of ``passages`` with ids ``first_id, first_id + 1, …``."""
        import pyarrow as pa

        return pa.table(
            {
                "passage_id": pa.array(range(first_id, first_id + len(passages)), type=pa.int64()),
                "doc_id": pa.array([p.doc_id for p in passages], type=pa.string()),
                "passage": pa.array([p.number for p in passages], type=pa.int32()),
                "start": pa.array([p.start for p in passages], type=pa.int64()),
                "end": pa.array([p.end for p in passages], type=pa.int64()),
                "text": pa.array([p.text for p in passages], type=pa.string()),
                "metadata": pa.array(
                    [json.dumps(p.metadata, ensure_ascii=False, default=str) if p.metadata else "" for p in passages],
                    type=pa.string(),
                ),
            }
        )

    @staticmethod
    def to_parquet(table: Any) -> bytes:
        """Serialise one part (zstd-compressed Parquet)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        return bytes(sink.getvalue().to_pybytes())

    @staticmethod
    def from_parquet(data: bytes, where: Path, *, validate: bool = False) -> Any:
        """Read one part; a part with other columns is corrupt.

        ``validate``: also check every value (e.g. that strings are UTF-8), for bytes no checksum vouched for.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(data))
            if validate:
                table.validate(full=True)
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a damaged column name is not UTF-8
            reason = " ".join(str(exc).split())  # Arrow's messages span lines; ours stay on one
            raise SearchIndexError(f"{where} is not a readable Parquet file ({reason})") from exc
        if tuple(table.column_names) != _PASSAGE_COLUMNS:
            raise SearchIndexError(f"{where} has columns {table.column_names}, expected {list(_PASSAGE_COLUMNS)}")
        return table

    @property
    def table(self) -> Any:
        """All rows as one ``pyarrow.Table`` (columns: passage_id, doc_id, passage, start, end, text, metadata)."""
        return self._table

    def __len__(self) -> int:
        return int(self._table.num_rows)

    def doc_ids(self) -> set[str]:
        """Every document id in the store."""
        return set(self._table.column("doc_id").unique().to_pylist())

    def rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The rows with these passage ids (= row numbers), metadata decoded."""
        import pyarrow as pa

        rows = self._table.take(pa.array(list(ids), type=pa.int64())).to_pylist()
        for row in rows:
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
        return rows

    def is_contiguous(self) -> bool:
        """Passage ids are 0, 1, …, n-1 in row order (what FAISS ids point at)."""
        ids = self._table.column("passage_id").to_numpy()
        return bool(np.array_equal(ids, np.arange(len(ids))))


# --------------------------------------------------------------------------- corpus → passages


def _documents(corpus: Corpus, config: IndexConfig, stats: ReadStats, first_number: int) -> Iterator[Document]:
    if isinstance(corpus, (str, os.PathLike)):
        yield from read_documents(corpus, id_key=config.id_key, text_key=config.text_key, stats=stats)
        return
    from xlingual.data.documents import normalize_document

    seen: set[str] = set()
    for number, item in enumerate(corpus, start=first_number):
        if isinstance(item, Document):
            doc = Document(item.id, normalize_document(item.text), dict(item.metadata))
        elif isinstance(item, str):
            doc = Document(str(number), normalize_document(item))
        elif isinstance(item, Mapping):
            if not isinstance(item.get(config.text_key), str):
                raise DataError(f"document {number}: no string {config.text_key!r} field; pass {{'text': ...}}.")
            doc_id = str(item.get(config.id_key, number))
            metadata = {str(k): v for k, v in item.items() if k not in (config.id_key, config.text_key)}
            doc = Document(doc_id, normalize_document(item[config.text_key]), metadata)
        else:
            raise DataError(f"document {number} is a {type(item).__name__}; pass Documents, dicts or strings.")
        if not doc.text:
            stats.skipped_blank += 1
            continue
        if doc.id in seen:
            raise DataError(f"document id {doc.id!r} appears twice in the corpus; ids must be unique.")
        seen.add(doc.id)
        stats.documents += 1
        yield doc


def _source_name(corpus: Corpus) -> str:
    return str(corpus) if isinstance(corpus, (str, os.PathLike)) else "<python>"


def _embed_passages(encoder: Any, texts: Sequence[str], config: IndexConfig) -> np.ndarray:
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


# --------------------------------------------------------------------------- the index


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
        encoder: Any = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.faiss_index = faiss_index
        self.passages = passages
        self.config = config or SearchConfig()
        self.spec = IndexSpec.from_dict(manifest["index"])
        self.model = ModelInfo.from_dict(manifest["model"])
        self._encoders: dict[str, Any] = {}
        if encoder is not None:
            self._encoders[self.model.spec] = encoder
        self._encode_lock = threading.Lock()

    # ................................................................. properties

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

    # ................................................................. build

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        out: str | os.PathLike[str],
        *,
        config: IndexConfig | None = None,
        encoder: Any = None,
    ) -> Index:
        """Read ``corpus``, split it into passages, embed them with ``config.model`` and write the index to ``out``.

        ``corpus``: a document file (see :mod:`xlingual.data.documents`) or an iterable of
        :class:`~xlingual.data.documents.Document`, dicts with ``id``/``text`` or plain strings. ``encoder``:
        an already loaded model for ``config.model`` (skips loading). ``out`` must not hold an index
        unless ``config.overwrite``. Example: ``Index.build("docs.txt", "idx", config=IndexConfig(model=m))``.
        """
        config = config or IndexConfig()
        target = Path(out)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            if not (target / MANIFEST_NAME).is_file():
                # Never delete a folder that is not an index, whatever --overwrite says.
                raise SearchIndexError(f"{target} exists and is not an xlingual index; choose another --out.")
            if not config.overwrite:
                raise SearchIndexError(
                    f"{target} already exists; pass --overwrite (IndexConfig.overwrite) to replace it, "
                    f"or xlingual index add {target} CORPUS to append to it."
                )
        if isinstance(corpus, (str, os.PathLike)) and not Path(corpus).is_file():
            what = "is a folder" if Path(corpus).is_dir() else "does not exist"
            raise DataError(f"{corpus} {what}; pass a text, JSONL or Parquet file of documents.")
        if not 0.0 < config.target_recall <= 1.0:
            raise SearchIndexError(f"target_recall={config.target_recall} is not in (0, 1]; e.g. 0.95.")
        model_info = ModelInfo.from_spec(config.model)
        encoder = encoder if encoder is not None else _load_model(config.model, config.device)
        stats = ReadStats()
        max_tokens, counter = _passage_limit(encoder, config)
        passages = list(
            to_passages(
                _documents(corpus, config, stats, 0),
                max_tokens=max_tokens,
                count_tokens=counter,
                max_chars=config.max_chars,
            )
        )
        if not passages:
            raise DataError(
                f"{_source_name(corpus)} holds no text ({stats.skipped_blank} blank documents); nothing to index."
            )
        logger.info("%d documents → %d passages", stats.documents, len(passages))
        vectors = _embed_passages(encoder, [p.text for p in passages], config)
        model_dim = _model_dim(encoder)
        if model_dim is not None and model_dim != vectors.shape[1]:
            raise SearchIndexError(f"{config.model} reports dimension {model_dim} but embeds {vectors.shape[1]}.")
        spec = faiss_ops.choose_index(len(passages), vectors.shape[1], config)
        logger.info("building a %s index (%s)", spec.factory_string(), spec.reason)
        # A random sample of passages goes last: build_calibrated holds the last rows out as fresh queries.
        held = faiss_ops.holdout_size(len(passages), spec, config.calibration_queries)
        if held:
            rng = np.random.default_rng(config.seed)
            last = np.zeros(len(passages), dtype=bool)
            last[rng.choice(len(passages), size=held, replace=False)] = True
            order = np.concatenate([np.flatnonzero(~last), np.flatnonzero(last)])
            passages = [passages[i] for i in order]
            vectors = vectors[order]
        faiss_index, spec = faiss_ops.build_calibrated(
            vectors,
            spec,
            target_recall=config.target_recall,
            n_queries=config.calibration_queries,
            refine_base=config.refine_factor,
            seed=config.seed,
        )
        now = _utc_now()
        manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "xlingual_version": __version__,
            "created_at": now,
            "updated_at": now,
            "generation": 0,
            "model": {
                **asdict(model_info),
                "max_seq_length": getattr(encoder, "max_seq_length", None),
                "prompt": _default_prompt(encoder) or None,
            },
            "dim": int(vectors.shape[1]),
            "normalised": True,
            "metric": "inner_product",
            "index": spec.as_dict(),
            "splitting": {
                "unit": "tokens" if max_tokens else "characters",
                "max_tokens": max_tokens,
                "max_chars": None if max_tokens else config.max_chars,
                "boundaries": "。！？．!? (outside brackets), '. ', line breaks",
            },
            "counts": {"documents": stats.documents, "passages": len(passages), "skipped_blank": stats.skipped_blank},
            "sources": [
                {
                    "path": _source_name(corpus),
                    "documents": stats.documents,
                    "passages": len(passages),
                    "added_at": now,
                }
            ],
            "versions": _versions(),
        }
        table = PassageStore.to_table(passages, 0)
        cls._write_new(target, manifest, faiss_index, table, config)
        return cls(target, manifest, faiss_index, PassageStore([table]), encoder=encoder)

    @staticmethod
    def _write_new(target: Path, manifest: dict[str, Any], faiss_index: Any, table: Any, config: IndexConfig) -> None:
        """Write a complete index into a temporary sibling folder, then rename it to ``target``."""
        import faiss

        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(target)  # temporary folders of builds that were killed
        tmp = temp_sibling(target, "tmp")
        tmp.mkdir()
        try:
            index_name, part_name = "index-000000.faiss", "passages-00000.parquet"
            checksums = {
                index_name: _write_atomic(tmp / index_name, faiss.serialize_index(faiss_index).tobytes()),
                part_name: _write_atomic(tmp / part_name, PassageStore.to_parquet(table)),
            }
            config_payload = {"xlingual_version": __version__, "config": asdict(config), "command": sys.argv}
            config_bytes = (json.dumps(config_payload, indent=2, ensure_ascii=False, default=str) + "\n").encode()
            checksums[CONFIG_NAME] = _write_atomic(tmp / CONFIG_NAME, config_bytes)
            manifest["files"] = {"index": index_name, "passages": [part_name], "config": CONFIG_NAME}
            manifest["checksums"] = checksums
            _write_atomic(tmp / MANIFEST_NAME, _manifest_bytes(manifest))
            fsync_dir(tmp)
            replace_dir(tmp, target)  # one atomic swap: the previous index stays whole until then
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            intact = f"the previous index at {target} is intact" if target.exists() else f"{target} was not written"
            then = "run the same xlingual index build command again"
            raise DiskFullError(disk_full_message(exc.filename or target, intact, then)) from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # ................................................................. load

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, config: SearchConfig | None = None, encoder: Any = None) -> Index:
        """Open an index folder, checking every file against the manifest (sizes always, sha256 if ``verify``).

        The model is loaded on the first text search, not here. ``encoder``: an already loaded model
        for the index's own model spec. Example: ``Index.load("idx").search("雨の日")``.
        """
        import faiss

        config = config or SearchConfig()
        folder = Path(path)
        manifest = read_manifest(folder)
        checksums: dict[str, Any] = manifest["checksums"]
        files = manifest["files"]
        listed = [files["index"], *files["passages"]]
        contents: dict[str, bytes] = {}
        for name in listed:
            contents[name] = _read_checked(folder, name, checksums, manifest, verify=config.verify)
        if files.get("config") in checksums:
            _read_checked(folder, files["config"], checksums, manifest, verify=config.verify)
        index_bytes = contents[files["index"]]
        try:
            problem = _flat_layout_problem(index_bytes)
            if problem:
                raise RuntimeError(problem)
            faiss_index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        except (RuntimeError, MemoryError) as exc:  # a damaged length field makes FAISS allocate what it says
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SearchIndexError(
                f"{folder / files['index']} is not a readable FAISS index ({reason}); {_rebuild_hint(folder, manifest)}"
            ) from exc
        tables = [
            PassageStore.from_parquet(contents[name], folder / name, validate=not config.verify)
            for name in files["passages"]
        ]
        store = PassageStore(tables)
        counts = manifest["counts"]
        problems = []
        if faiss_index.ntotal != counts["passages"]:
            problems.append(f"the FAISS index holds {faiss_index.ntotal} vectors, the manifest {counts['passages']}")
        if len(store) != counts["passages"]:
            problems.append(f"the passage files hold {len(store)} rows, the manifest {counts['passages']}")
        if faiss_index.d != manifest["dim"]:
            problems.append(f"the FAISS index has dimension {faiss_index.d}, the manifest {manifest['dim']}")
        if not problems and not store.is_contiguous():
            problems.append("passage ids are not 0..n-1 in order")
        if problems:
            raise SearchIndexError(
                f"{folder} is inconsistent: {'; '.join(problems)}; {_rebuild_hint(folder, manifest)}"
            )
        try:
            index = cls(folder, manifest, faiss_index, store, config=config, encoder=encoder)
        except (KeyError, TypeError, ValueError, SearchIndexError) as exc:
            raise SearchIndexError(
                f"{folder / MANIFEST_NAME} has a bad model or index block ({exc}); {_rebuild_hint(folder, manifest)}"
            ) from exc
        problems = _spec_problems(index.spec, faiss_index, manifest["dim"])
        if problems:
            raise SearchIndexError(
                f"{folder / MANIFEST_NAME} has a bad index block: {'; '.join(problems)}; "
                f"{_rebuild_hint(folder, manifest)}"
            )
        return index

    # ................................................................. add

    def add(self, corpus: Corpus, *, config: IndexConfig | None = None) -> int:
        """Append the documents of ``corpus`` without rebuilding; return the number of passages added.

        The index's model embeds them and its splitting settings apply (``config`` supplies the reader
        keys, batch size and progress bar only). A document id already in the index is refused. HNSW and
        IVF-PQ keep their graph / trained quantizers; with 32 or more new passages the search knobs are
        calibrated again, on those passages before they are added (unseen queries).
        Example: ``Index.load("idx").add("more.jsonl")``.
        """
        import faiss

        config = config or IndexConfig()
        encoder = self._encoder(None)
        splitting, counts = self.manifest["splitting"], self.manifest["counts"]
        counter = tokenizer_counter(encoder) if splitting.get("max_tokens") else None
        stats = ReadStats()
        passages = list(
            to_passages(
                # Plain strings are numbered on from every document seen so far (blank ones included).
                _documents(corpus, config, stats, counts["documents"] + counts["skipped_blank"]),
                max_tokens=splitting.get("max_tokens"),
                count_tokens=counter,
                max_chars=int(splitting.get("max_chars") or config.max_chars),
            )
        )
        if not passages:
            raise DataError(
                f"{_source_name(corpus)} holds no text ({stats.skipped_blank} blank documents); nothing added."
            )
        clashes = sorted({p.doc_id for p in passages} & self.passages.doc_ids())
        if clashes:
            shown = ", ".join(repr(c) for c in clashes[:5]) + (" …" if len(clashes) > 5 else "")
            raise SearchIndexError(
                f"{len(clashes)} document ids of {_source_name(corpus)} are already in {self.path}: {shown}. "
                f"Ids must stay unique: give the new documents other ids (text files are numbered FILE:LINE)."
            )
        vectors = _embed_passages(encoder, [p.text for p in passages], config)
        vectors = faiss_ops.as_vectors("passage embeddings", vectors, dim=self.dim)
        with _locked(self.path):
            on_disk = read_manifest(self.path)
            if on_disk.get("generation") != self.manifest.get("generation"):
                raise SearchIndexError(
                    f"{self.path} was changed by another process since it was loaded; load it again and retry."
                )
            new_files: list[str] = []
            try:
                first_id = len(self)
                spec = self.spec
                if len(vectors) >= faiss_ops.MIN_CALIBRATION_QUERIES:
                    # The new passages are unseen by the index: the faithful calibration queries.
                    spec = faiss_ops.calibrate(
                        self.faiss_index,
                        self.spec,
                        queries=vectors,
                        target_recall=config.target_recall,
                        n_queries=config.calibration_queries,
                        refine_base=config.refine_factor,
                        seed=config.seed,
                    )
                faiss_ops.add_to_index(self.faiss_index, vectors, spec)
                table = PassageStore.to_table(passages, first_id)
                generation = int(self.manifest.get("generation", 0)) + 1
                manifest = json.loads(json.dumps(self.manifest))
                files, checksums = manifest["files"], manifest["checksums"]
                old_index = files["index"]
                index_name = f"index-{generation:06d}.faiss"
                part_name = f"passages-{len(files['passages']):05d}.parquet"
                new_files = [index_name, part_name]
                checksums[index_name] = _write_atomic(
                    self.path / index_name, faiss.serialize_index(self.faiss_index).tobytes()
                )
                checksums[part_name] = _write_atomic(self.path / part_name, PassageStore.to_parquet(table))
                checksums.pop(old_index, None)
                files["index"] = index_name
                files["passages"].append(part_name)
                now = _utc_now()
                manifest["generation"] = generation
                manifest["updated_at"] = now
                manifest["index"] = spec.as_dict()
                manifest["counts"]["documents"] += stats.documents
                manifest["counts"]["passages"] += len(passages)
                manifest["counts"]["skipped_blank"] += stats.skipped_blank
                manifest["sources"].append(
                    {
                        "path": _source_name(corpus),
                        "documents": stats.documents,
                        "passages": len(passages),
                        "added_at": now,
                    }
                )
                _write_atomic(self.path / MANIFEST_NAME, _manifest_bytes(manifest))  # the commit point
                fsync_dir(self.path)
                with contextlib.suppress(OSError):
                    (self.path / old_index).unlink()
            except BaseException as exc:
                # Files written for the manifest that never was: the one on disk does not list them.
                committed = read_manifest(self.path)["checksums"]
                for name in new_files:
                    if name not in committed:
                        (self.path / name).unlink(missing_ok=True)
                # The in-memory FAISS index may already hold the new vectors: go back to what is on disk.
                self._reload()
                if isinstance(exc, Exception) and is_disk_full(exc):
                    intact = f"the index at {self.path} is intact, without the new documents"
                    then = "run the same xlingual index add command again"
                    where = getattr(exc, "filename", None) or self.path
                    raise DiskFullError(disk_full_message(where, intact, then)) from exc
                raise
        self.manifest, self.spec = manifest, spec
        self.passages = PassageStore([self.passages.table, table])
        logger.info("added %d documents → %d passages", stats.documents, len(passages))
        return len(passages)

    def _reload(self) -> None:
        fresh = Index.load(self.path, config=self.config)
        self.manifest, self.faiss_index, self.passages, self.spec = (
            fresh.manifest,
            fresh.faiss_index,
            fresh.passages,
            fresh.spec,
        )

    # ................................................................. search

    def _encoder(self, spec: str | None) -> Any:
        """The model for ``spec`` (None: the index's own), loaded once, checked against the manifest."""
        key = spec or self.model.spec
        if key in self._encoders:
            return self._encoders[key]
        if spec is None or spec == self.model.spec:
            current = ModelInfo.from_spec(self.model.spec)
            if self.model.fingerprint and current.fingerprint != self.model.fingerprint:
                raise SearchIndexError(
                    f"The model {self.model.spec} has changed since {self.path} was built (fingerprint "
                    f"{(current.fingerprint or 'none')[:12]}, the index has {self.model.fingerprint[:12]}); its "
                    f"vectors would not match. {_rebuild_hint(self.path, self.manifest).capitalize()}, or pass "
                    f"a compatible --query-model."
                )
        else:
            reason = check_compatible(self.model, ModelInfo.from_spec(spec))
            logger.info("query model %s accepted: %s", spec, reason)
        encoder = _load_model(key, self.config.device)
        dim = _model_dim(encoder)
        if dim is not None and dim != self.dim:
            raise SearchIndexError(f"{key} embeds in dimension {dim} but {self.path} has dimension {self.dim}.")
        self._encoders[key] = encoder
        return encoder

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
        """
        single = isinstance(queries, str)
        texts = [queries] if isinstance(queries, str) else list(queries)
        if not texts:
            return []
        results = self.search_vectors(self.embed_queries(texts, query_model=query_model), k)
        return results[0] if single else results

    def search_vectors(self, vectors: np.ndarray, k: int | None = None) -> list[list[Hit]]:
        """Search with query embeddings ``(n, dim)`` float32, L2-normalised; one list of hits per row."""
        k = self.config.k if k is None else k
        if k < 1:
            raise SearchIndexError(f"k={k} is not positive; ask for at least 1 result.")
        k = min(k, len(self))
        params = faiss_ops.search_params(self.spec, ef_search=self.config.ef_search, nprobe=self.config.nprobe)
        scores, ids = faiss_ops.search(self.faiss_index, vectors, k, params=params)
        valid = ids >= 0
        try:
            rows = self.passages.rows(ids[valid].tolist())
        except ValueError as exc:  # text that is not UTF-8 or metadata that is not JSON: a damaged passage file
            raise SearchIndexError(
                f"{self.path}: a passage row cannot be read ({exc}); {_rebuild_hint(self.path, self.manifest)}"
            ) from exc
        out: list[list[Hit]] = []
        cursor = 0
        for row_scores, row_valid in zip(scores, valid, strict=True):
            hits = []
            for rank, score in enumerate(row_scores[row_valid].tolist(), start=1):
                row = rows[cursor]
                cursor += 1
                hits.append(
                    Hit(
                        rank=rank,
                        score=float(score),
                        doc_id=row["doc_id"],
                        passage=int(row["passage"]),
                        text=row["text"],
                        metadata=row["metadata"],
                        passage_id=int(row["passage_id"]),
                        start=int(row["start"]),
                        end=int(row["end"]),
                    )
                )
            out.append(hits)
        return out

    # ................................................................. info

    def info(self) -> dict[str, Any]:
        """The manifest plus the folder's size on disk (``size_bytes``) and its path."""
        return {**self.manifest, "path": str(self.path), "size_bytes": folder_size(self.path)}


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _load_model(spec: str, device: str | None) -> Any:
    from xlingual.models import specs as models

    return models.load_model(spec, device=device)


def folder_size(path: Path) -> int:
    """Bytes of the files in ``path`` (recursively), hidden ones excepted."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check ``folder/manifest.json``; :class:`SearchIndexError` with the fix when it is missing or bad."""
    if not folder.exists():
        raise SearchIndexError(f"{folder} does not exist; build it with: xlingual index build CORPUS --out {folder}")
    if not folder.is_dir():
        raise SearchIndexError(f"{folder} is a file; an index is a folder made by xlingual index build.")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise SearchIndexError(
            f"{folder} is not a complete xlingual index: {MANIFEST_NAME} is missing (an interrupted build "
            f"leaves none); {_rebuild_hint(folder)}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SearchIndexError(f"{path} is corrupt ({exc}); {_rebuild_hint(folder)}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SearchIndexError(f"{path} is not an xlingual index manifest; {_rebuild_hint(folder)}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SearchIndexError(
            f"{path} has format version {manifest.get('format_version')}, this xlingual ({__version__}) reads "
            f"{FORMAT_VERSION}; {_rebuild_hint(folder, manifest)}"
        )
    required = ("model", "dim", "index", "counts", "files", "checksums", "splitting", "sources")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise SearchIndexError(f"{path} lacks {', '.join(missing)}; {_rebuild_hint(folder, manifest)}")
    problems = _manifest_problems(manifest)
    if problems:
        raise SearchIndexError(f"{path} is damaged: {'; '.join(problems)}; {_rebuild_hint(folder, manifest)}")
    return manifest


#: FAISS's tags of a flat index file: inner product, L2, other metrics.
_FLAT_FOURCCS = (b"IxFI", b"IxF2", b"IxFl")


def _flat_layout_problem(data: bytes) -> str | None:
    """Whether a flat FAISS file's vector block disagrees with its header or its length (None: fine, or not flat).

    FAISS reads a vector count and allocates that much before it notices the file is shorter, so a
    flipped bit there (bit rot, and ``verify`` off) would mean gigabytes allocated, or MemoryError.
    Layout: tag, d (int32), ntotal (int64), two int64 fields, is_trained (1 byte), metric (int32),
    a float metric argument for metrics above L2, then the float count (uint64) and the floats.
    """
    if data[:4] not in _FLAT_FOURCCS or len(data) < 45:
        return None
    dim, ntotal = struct.unpack_from("<iq", data, 4)
    (metric,) = struct.unpack_from("<i", data, 33)
    offset = 37 + (4 if metric > 1 else 0)
    if len(data) < offset + 8:
        return "the file ends inside its header"
    (count,) = struct.unpack_from("<Q", data, offset)
    held = len(data) - offset - 8
    if count != dim * ntotal or 4 * count != held:
        return f"its header says {ntotal} vectors of dimension {dim} and {count} floats, but it holds {held} bytes"
    return None


_SPEC_INTS = ("hnsw_m", "ef_construction", "ef_search", "nlist", "pq_m", "nprobe", "refine_factor", "train_size")


def _spec_problems(spec: IndexSpec, faiss_index: Any, dim: int) -> list[str]:
    """Where the manifest's index block disagrees with itself or with the FAISS file (searching would fail)."""
    import faiss

    problems = [
        f"index.{name}={getattr(spec, name)!r}, expected a positive integer or null"
        for name in _SPEC_INTS
        if getattr(spec, name) is not None and not (_is_count(getattr(spec, name)) and getattr(spec, name) > 0)
    ]
    recall = spec.calibrated_recall
    if recall is not None and (isinstance(recall, bool) or not isinstance(recall, int | float)):
        problems.append(f"index.calibrated_recall={recall!r}, expected a number or null")
    if spec.dim != dim:
        problems.append(f"index.dim={spec.dim!r}, but dim={dim}")
    expected = {IndexType.FLAT: faiss.IndexFlat, IndexType.HNSW: faiss.IndexHNSW, IndexType.IVF_PQ: faiss.IndexRefine}
    actual = faiss.downcast_index(faiss_index)
    if not isinstance(actual, expected[spec.type]):
        problems.append(f"index.type={spec.type.value!r}, but the FAISS file holds a {type(actual).__name__}")
    if faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        problems.append("the FAISS index does not use inner-product similarity")
    return problems


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_file_name(value: Any) -> bool:
    """A plain name of a file inside the index folder (never a path that could point outside it)."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and not any(char in value for char in ("/", "\\", "\x00"))
    )


def _manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What in a manifest has the wrong type or shape (each problem names the field and its value)."""
    problems = [
        f"{key!r} is {type(manifest[key]).__name__}, expected an object"
        for key in ("model", "index", "counts", "files", "checksums", "splitting")
        if not isinstance(manifest[key], dict)
    ]
    if not isinstance(manifest["sources"], list):
        problems.append(f"'sources' is {type(manifest['sources']).__name__}, expected a list")
    if not _is_count(manifest["dim"]) or manifest["dim"] < 1:
        problems.append(f"dim={manifest['dim']!r}, expected a positive integer")
    if problems:
        return problems
    model, splitting = manifest["model"], manifest["splitting"]
    counts, files, checksums = manifest["counts"], manifest["files"], manifest["checksums"]
    if not isinstance(model.get("spec"), str) or not model["spec"]:
        problems.append(f"model.spec={model.get('spec')!r}, expected the model spec")
    problems += [
        f"model.{key}={model[key]!r}, expected a string or null"
        for key in ("fingerprint", "teacher", "teacher_fingerprint", "source_fingerprint")
        if model.get(key) is not None and not isinstance(model[key], str)
    ]
    problems += [
        f"splitting.{key}={splitting[key]!r}, expected a positive integer or null"
        for key in ("max_tokens", "max_chars")
        if splitting.get(key) is not None and not (_is_count(splitting[key]) and splitting[key] > 0)
    ]
    problems += [
        f"counts.{key}={counts.get(key)!r}, expected an integer ≥ 0"
        for key in ("documents", "passages", "skipped_blank")
        if not _is_count(counts.get(key)) and not (key == "skipped_blank" and key not in counts)
    ]
    for number, source in enumerate(manifest["sources"]):
        if not (
            isinstance(source, dict)
            and isinstance(source.get("path"), str)
            and _is_count(source.get("documents"))
            and _is_count(source.get("passages"))
        ):
            problems.append(f"sources[{number}]={source!r}, expected {{'path': ..., 'documents': N, 'passages': N}}")
    parts = files.get("passages")
    if not isinstance(parts, list):
        problems.append(f"files.passages={parts!r}, expected a list of file names")
        parts = []
    names = [files.get("index"), *parts, *([files["config"]] if "config" in files else [])]
    for name in names:
        if not _is_file_name(name):
            problems.append(f"file name {name!r} is not the name of a file inside the index folder")
            continue
        entry = checksums.get(name)
        if entry is None and name == files.get("config"):
            continue  # config.json is informative: checked only when the manifest lists its checksum
        if not (isinstance(entry, dict) and _is_count(entry.get("bytes")) and isinstance(entry.get("sha256"), str)):
            problems.append(f"checksums[{name!r}]={entry!r}, expected {{'bytes': SIZE, 'sha256': HEX}}")
    return problems


def _read_checked(
    folder: Path, name: str, checksums: Mapping[str, Any], manifest: Mapping[str, Any], *, verify: bool
) -> bytes:
    """The bytes of ``folder/name`` after checking them against the manifest's size and sha256."""
    path = folder / name
    expected = checksums.get(name)
    if expected is None:
        raise SearchIndexError(
            f"{MANIFEST_NAME} of {folder} has no checksum for {name}; {_rebuild_hint(folder, manifest)}"
        )
    if not path.is_file():
        raise SearchIndexError(f"{path} is missing: the index is incomplete; {_rebuild_hint(folder, manifest)}")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise SearchIndexError(
            f"{path} has {size:,} bytes, the manifest says {expected['bytes']:,}: the file is truncated or "
            f"was replaced; {_rebuild_hint(folder, manifest)}"
        )
    data = path.read_bytes()
    if verify and _sha256(data) != expected["sha256"]:
        raise SearchIndexError(
            f"{path} is corrupt: its sha256 differs from the manifest's; {_rebuild_hint(folder, manifest)}"
        )
    return data


# --------------------------------------------------------------------------- text output


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_hits(query: str | None, hits: Sequence[Hit], *, width: int = 160) -> str:
    """Hits as text for people: ``rank  score  doc_id[§passage]  passage`` (and metadata), one per line."""
    lines = [f"query: {query}"] if query is not None else []
    if not hits:
        lines.append("  (no results)")
    for hit in hits:
        where = hit.doc_id + (f" §{hit.passage}" if hit.passage else "")
        lines.append(f"{hit.rank:>3}  {hit.score:>7.4f}  {where}  {_one_line(hit.text, width)}")
        if hit.metadata:
            lines.append(f"{'':>14}{_one_line(json.dumps(hit.metadata, ensure_ascii=False, default=str), width)}")
    return "\n".join(lines)


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024  # type: ignore[assignment]
    return f"{n_bytes} B"  # pragma: no cover


def format_info(info: Mapping[str, Any]) -> str:
    """:meth:`Index.info` as a table for people (``xlingual index info``)."""
    model, spec, counts = info["model"], IndexSpec.from_dict(info["index"]), info["counts"]
    knobs = {
        "hnsw": f"M={spec.hnsw_m}, efConstruction={spec.ef_construction}, efSearch={spec.ef_search}",
        "ivf-pq": f"nlist={spec.nlist}, nprobe={spec.nprobe}, PQ {spec.pq_m}×4 bits, re-rank ×{spec.refine_factor}, "
        f"trained on {spec.train_size:,}"
        if spec.train_size
        else "",
        "flat": "exact",
    }[spec.type.value]
    recall = f", recall@10 {spec.calibrated_recall:.3f}" if spec.calibrated_recall is not None else ""
    split = info["splitting"]
    limit = f"≤ {split['max_tokens']} tokens" if split.get("max_tokens") else f"≤ {split.get('max_chars')} characters"
    rows = [
        ("path", info.get("path", "")),
        ("model", model["spec"] + (f" (fingerprint {model['fingerprint'][:12]})" if model.get("fingerprint") else "")),
    ]
    if model.get("teacher_fingerprint"):
        rows.append(("teacher", f"{model.get('teacher')} (fingerprint {model['teacher_fingerprint'][:12]})"))
    rows += [
        ("dimension", f"{info['dim']} (L2-normalised, inner product)"),
        ("index", f"{spec.type.value}: {spec.factory_string()}, {knobs}{recall}"),
        ("chosen", spec.reason),
        (
            "documents",
            f"{counts['documents']:,}"
            + (f" ({counts['skipped_blank']:,} blank skipped)" if counts.get("skipped_blank") else ""),
        ),
        ("passages", f"{counts['passages']:,} ({limit})"),
        ("created", f"{info.get('created_at')}, updated {info.get('updated_at')}"),
        ("xlingual", str(info.get("xlingual_version"))),
        ("size", _size(int(info.get("size_bytes", 0)))),
    ]
    for source in info.get("sources", []):
        rows.append(
            (
                "source",
                f"{source['path']}: {source['documents']:,} documents, {source['passages']:,} passages "
                f"({source.get('added_at')})",
            )
        )
    return "\n".join(f"{key:<10} {value}" for key, value in rows)
