"""A teacher given as vectors: ``vectors:FILE`` — the English texts and the vectors an index already holds.

Teams often have English vectors from a model they cannot run here (a hosted API, a large in-house model,
vectors computed long ago). :class:`VectorTeacher` stands in for that model: a fixed, checked table from
(normalised) text to vector, any dimension. It "encodes" only the texts it holds; distillation matches the
training pairs' English against it (``--missing-teacher drop|error``), and its identity is the checksum of
the file, so a student distilled from it may query an index built from the same file (``index build --vectors``).

Files:

- an embeddings file ``xlingual embed`` wrote (Parquet, JSONL; checked against its own checksums);
- any Parquet or JSONL with a text column and a vector column (list of numbers): ``text`` and the first of
  ``embedding``, ``vector``, ``embeddings`` by default, or named in the spec:
  ``vectors:FILE?text=title&vector=emb`` (``&id=COLUMN``: the ids an index built from it shows; default ``id``);
- a ``.npy`` matrix with its texts, one per line in row order, in ``FILE.texts.txt`` (or ``?texts=PATH``).

Example::

    teacher = VectorTeacher("vectors:index/en.parquet")
    teacher.encode(["A cat sat on the mat."]).shape   # (1, 1536)
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xlingual.data.text import normalize_text
from xlingual.errors import DataError, ModelError

__all__ = [
    "VECTORS_PREFIX",
    "VectorRows",
    "VectorTeacher",
    "VectorsSpec",
    "check_matrix",
    "file_fingerprint",
    "is_vectors_spec",
    "read_vectors",
]

VECTORS_PREFIX = "vectors:"
#: Vector columns tried, in order, when the spec names none.
VECTOR_KEYS = ("embedding", "vector", "embeddings")
#: Two rows with the same text may repeat a vector, within this cosine.
SAME_VECTOR_COSINE = 0.999
_SPEC_KEYS = ("text", "vector", "texts", "id")


def is_vectors_spec(spec: object) -> bool:
    """Whether a model spec names a vectors file (``vectors:FILE``)."""
    return isinstance(spec, str) and spec.startswith(VECTORS_PREFIX)


@dataclass(frozen=True)
class VectorsSpec:
    """``vectors:FILE[?text=COL&vector=COL&texts=PATH]`` parsed."""

    path: Path
    text_key: str = "text"
    vector_key: str | None = None
    texts_path: Path | None = None
    id_key: str = "id"

    @classmethod
    def parse(cls, spec: str) -> VectorsSpec:
        """Parse a spec; unknown keys and an empty path raise :class:`ModelError` with the syntax."""
        body = spec.removeprefix(VECTORS_PREFIX)
        path, _, query = body.partition("?")
        if not path.strip():
            raise ModelError(f"{spec!r} names no file; write vectors:FILE, e.g. vectors:index/en.parquet")
        options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else {}
        unknown = sorted(set(options) - set(_SPEC_KEYS))
        if unknown:
            raise ModelError(
                f"{spec!r}: unknown option {', '.join(unknown)}; use vectors:FILE?text=COLUMN&vector=COLUMN "
                "(or ?texts=PATH for a .npy)"
            )
        texts = options.get("texts")
        return cls(
            Path(path).expanduser(),
            options.get("text") or "text",
            options.get("vector") or None,
            Path(texts).expanduser() if texts else None,
            options.get("id") or "id",
        )


class VectorRows(NamedTuple):
    """A vectors file's rows as stored: texts, ``(n, dim)`` float32 vectors, ids (``None``: the file has none)."""

    texts: list[str]
    vectors: np.ndarray
    ids: list[str] | None


def read_vectors(spec: VectorsSpec) -> VectorRows:
    """The file's texts, ``(n, dim)`` float32 vectors and ids, as stored (not yet checked or normalised)."""
    file = spec.path
    if not file.is_file():
        raise DataError(f"vectors file {file} does not exist; pass the file your index's vectors are in")
    suffixes = [s.lower() for s in file.suffixes]
    if suffixes[-1:] == [".npy"]:
        return _read_npy(file, spec.texts_path or file.with_name(f"{file.name}.texts.txt"))
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return _read_parquet(file, spec)
    if suffixes[-1:] in ([".jsonl"], [".ndjson"]):
        return _read_jsonl(file, spec)
    raise DataError(
        f"vectors file {file}: unknown extension {file.suffix!r}; use .parquet, .jsonl or .npy (texts in "
        f"{file.name}.texts.txt)"
    )


def _written_by_xlingual(file: Path) -> bool:
    from xlingual.export.writers import meta_path

    if file.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return b"xlingual" in (pq.read_schema(file).metadata or {})
        except Exception:  # an unreadable file is reported by the generic reader
            return False
    return meta_path(file).is_file()


def _from_embeddings_file(file: Path) -> VectorRows:
    from xlingual.export.dtypes import to_float32
    from xlingual.export.read import read_embeddings

    embeddings = read_embeddings(file, verify=True)  # a damaged file fails its checksum here
    return VectorRows(list(embeddings.texts or []), to_float32(embeddings.vectors, embeddings.meta), embeddings.ids)


def _read_npy(file: Path, texts_file: Path) -> VectorRows:
    ids = None
    if _written_by_xlingual(file):
        _, vectors, ids = _from_embeddings_file(file)
    else:
        try:
            vectors = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"vectors file {file} is not a readable .npy array ({exc}); use np.save") from None
    if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
        raise DataError(f"vectors file {file} holds a {vectors.dtype} array of shape {vectors.shape}; need (rows, dim)")
    if not texts_file.is_file():
        raise DataError(
            f"vectors file {file} holds no texts: put them, one per line in row order, in {texts_file} "
            "(or name the file: vectors:FILE?texts=PATH), or use Parquet/JSONL with a text column"
        )
    texts = texts_file.read_text(encoding="utf-8").split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    if len(texts) != len(vectors):
        raise DataError(f"{texts_file} has {len(texts)} lines for the {len(vectors)} rows of {file}; one text per row")
    return VectorRows(texts, np.asarray(vectors, dtype=np.float32), ids)


def _read_parquet(file: Path, spec: VectorsSpec) -> VectorRows:
    if _written_by_xlingual(file):
        return _from_embeddings_file(file)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"vectors file {file} is not a readable Parquet file ({' '.join(str(exc).split())})") from None
    vector_key = _vector_column(file, spec, table.column_names)
    if spec.text_key not in table.column_names:
        raise DataError(
            f"vectors file {file} has no column {spec.text_key!r} (columns: {', '.join(table.column_names)}); "
            "name the text column: vectors:FILE?text=COLUMN"
        )
    texts = table.column(spec.text_key).to_pylist()
    rows = table.column(vector_key).to_pylist()
    ids = [str(i) for i in table.column(spec.id_key).to_pylist()] if spec.id_key in table.column_names else None
    return VectorRows(_checked_texts(file, texts), _stack_rows(file, rows, vector_key), ids)


def _vector_column(file: Path, spec: VectorsSpec, columns: Sequence[str]) -> str:
    if spec.vector_key is not None:
        if spec.vector_key not in columns:
            raise DataError(f"vectors file {file} has no column {spec.vector_key!r} (columns: {', '.join(columns)})")
        return spec.vector_key
    for key in VECTOR_KEYS:
        if key in columns:
            return key
    raise DataError(
        f"vectors file {file} has none of the vector columns {', '.join(VECTOR_KEYS)} (columns: {', '.join(columns)}); "
        "name it: vectors:FILE?vector=COLUMN"
    )


def _read_jsonl(file: Path, spec: VectorsSpec) -> VectorRows:
    if _written_by_xlingual(file):
        return _from_embeddings_file(file)
    texts: list[Any] = []
    rows: list[Any] = []
    ids: list[str] = []
    vector_key = spec.vector_key
    with open(file, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (ValueError, RecursionError):
                raise DataError(f"vectors file {file} line {lineno} is not valid JSON; fix or drop it") from None
            if not isinstance(row, dict):
                raise DataError(f"vectors file {file} line {lineno} is not a JSON object with text and vector keys")
            if vector_key is None:
                vector_key = _vector_column(file, spec, list(row))
            if spec.text_key not in row or vector_key not in row:
                raise DataError(
                    f"vectors file {file} line {lineno} has no {spec.text_key!r} or {vector_key!r} key "
                    f"(keys: {', '.join(row)}); name them: vectors:FILE?text=KEY&vector=KEY"
                )
            texts.append(row[spec.text_key])
            rows.append(row[vector_key])
            ids.append(str(row.get(spec.id_key, len(ids))))
    return VectorRows(_checked_texts(file, texts), _stack_rows(file, rows, vector_key or VECTOR_KEYS[0]), ids)


def _checked_texts(file: Path, texts: Sequence[Any]) -> list[str]:
    for row, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise DataError(f"vectors file {file} row {row}: the text is {type(text).__name__}, not a string")
    return list(texts)


def _stack_rows(file: Path, rows: Sequence[Any], key: str) -> np.ndarray:
    if not rows:
        raise DataError(f"vectors file {file} holds no rows")
    dim: int | None = None
    for number, values in enumerate(rows, start=1):
        if not isinstance(values, list | tuple) or not values:
            raise DataError(f"vectors file {file} row {number}: {key!r} is not a list of numbers")
        if dim is None:
            dim = len(values)
        elif len(values) != dim:
            raise DataError(
                f"vectors file {file} row {number}: {len(values)} values where the rows before have {dim}; "
                "every vector must have the same dimension (one model's vectors per file)"
            )
    try:
        return np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"vectors file {file}: column {key!r} holds values that are not numbers") from None


def check_matrix(file: Path, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """Finite, non-zero rows → L2-normalised float32 copy; a bad row raises naming it."""
    vectors = np.array(vectors, dtype=np.float32)
    if len(vectors) == 0:
        raise DataError(f"vectors file {file} holds no rows")
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise DataError(
            f"vectors file {file} row {row + 1} ({_short(texts[row])}): the vector holds NaN or infinity; "
            "recompute that row or remove it"
        )
    norms = np.linalg.norm(vectors, axis=1)
    if not (norms > 0).all():
        row = int(np.argmin(norms > 0))
        raise DataError(
            f"vectors file {file} row {row + 1} ({_short(texts[row])}): a zero vector has no direction; "
            "recompute that row or remove it"
        )
    vectors /= norms[:, None]
    return vectors


def _index_texts(file: Path, texts: Sequence[str], vectors: np.ndarray) -> dict[str, int]:
    """Normalised text → its first row; the same text twice must carry the same vector."""
    rows: dict[str, int] = {}
    for row, text in enumerate(texts):
        key = normalize_text(text)
        if not key:
            raise DataError(f"vectors file {file} row {row + 1}: the text is empty; remove that row")
        first = rows.setdefault(key, row)
        if first != row:
            cosine = float(vectors[first] @ vectors[row])
            if cosine < SAME_VECTOR_COSINE:
                raise DataError(
                    f"vectors file {file} rows {first + 1} and {row + 1} hold the same text {_short(text)} with "
                    f"different vectors (cosine {cosine:.3f}); keep one of them"
                )
    return rows


def _short(text: str, limit: int = 50) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def file_fingerprint(spec: VectorsSpec) -> str:
    """Identity of a vectors teacher: sha256 over the file (and a ``.npy``'s texts) and the columns read."""
    from xlingual._io import sha256_file

    digest = hashlib.sha256()
    digest.update(sha256_file(spec.path).encode())
    if spec.path.suffix.lower() == ".npy":
        texts = spec.texts_path or spec.path.with_name(f"{spec.path.name}.texts.txt")
        if texts.is_file():
            digest.update(sha256_file(texts).encode())
    digest.update(f"text={spec.text_key};vector={spec.vector_key or ''}".encode())
    return "vectors-" + digest.hexdigest()


class VectorTeacher:
    """A fixed table of (normalised) English text → vector that stands in for a teacher model.

    Loading checks every row (finite, non-zero, one dimension, repeated texts agree) and raises
    :class:`DataError` naming the file, the row and the fix. ``encode`` returns the stored vectors,
    L2-normalised, and raises :class:`ModelError` for texts the file does not hold.
    Example: ``VectorTeacher("vectors:en.parquet").missing(["a text"])`` → ``[0]`` when it is not in the file.
    """

    #: Vectors are fixed: no prompt, no token limit.
    prompts: dict[str, str] = {}  # noqa: RUF012 - read-only, like SentenceTransformer.prompts
    default_prompt_name: str | None = None
    max_seq_length = 0

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.source = VectorsSpec.parse(spec)
        texts, raw, _ = read_vectors(self.source)
        self.vectors = check_matrix(self.source.path, texts, raw)
        self.rows = _index_texts(self.source.path, texts, self.vectors)
        self.fingerprint = file_fingerprint(self.source)

    def __len__(self) -> int:
        return len(self.rows)

    def get_embedding_dimension(self) -> int:
        """The vectors' dimension."""
        return int(self.vectors.shape[1])

    def missing(self, texts: Sequence[str]) -> list[int]:
        """Positions of the texts the file holds no vector for."""
        return [i for i, text in enumerate(texts) if normalize_text(text) not in self.rows]

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``texts`` ``(n, dim)`` float32, L2-normalised; unknown texts raise."""
        rows = [self.rows.get(normalize_text(text), -1) for text in texts]  # each text normalised once
        absent = [i for i, row in enumerate(rows) if row < 0]
        if absent:
            first = ", ".join(_short(texts[i], 40) for i in absent[:3])
            raise ModelError(
                f"{self.spec} holds no vector for {len(absent)} of {len(texts)} texts (first: {first}); a vectors "
                "teacher only knows the texts in its file: add their vectors to it (or drop them)"
            )
        if not len(texts):
            return np.zeros((0, self.get_embedding_dimension()), dtype=np.float32)
        return self.vectors[rows]

    def encode(self, sentences: Any, /, *args: Any, **kwargs: Any) -> np.ndarray:
        """Like ``SentenceTransformer.encode`` for the texts the file holds (options are ignored)."""
        single = isinstance(sentences, str)
        emb = self.lookup([sentences] if single else list(sentences))
        return emb[0] if single else emb

    def describe(self) -> dict[str, Any]:
        """What config.json records of the teacher: file, rows, dimension, checksum."""
        return {
            "file": str(self.source.path),
            "rows": len(self.vectors),
            "texts": len(self.rows),
            "dim": self.get_embedding_dimension(),
            "fingerprint": self.fingerprint,
        }
