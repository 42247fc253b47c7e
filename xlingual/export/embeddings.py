"""Embeddings files for downstream apps: a text, JSONL or Parquet file in, vectors out, streamed.

Input: any document file :func:`xlingual.data.documents.read_documents` reads (text: one row per line, id
``FILE:LINE``; JSONL / Parquet: ``id`` and ``text`` fields; gzip allowed; blank texts are skipped and
counted). Output, chosen by the extension of ``out``:

- ``emb.npy`` — a ``(n, dim)`` NumPy array (``(n, ceil(dim / 8))`` uint8 for ``binary``), plus
  ``emb.npy.ids.txt`` (one id per line, row order) and ``emb.npy.meta.json`` (the metadata below);
- ``emb.parquet`` — columns ``id`` (string), ``text`` (string), ``embedding`` (fixed-size list of
  float32 / float16 / int8 / uint8); the metadata is the JSON under the schema metadata key ``xlingual``;
- ``emb.jsonl`` — one ``{"id", "text", "embedding": [...]}`` object per line, plus ``emb.jsonl.meta.json``
  (a sidecar rather than a header line, so that every line of the file is a row).

The metadata names the model (spec and content fingerprint), dimension, dtype, count, whether vectors
are L2-normalised, the prompt used, and for lossy dtypes how to read the values back:

- ``int8``: per-dimension ranges ``lo``/``hi`` calibrated on the first chunk; ``x ≈ lo + (q + 128) · (hi − lo) / 255``
  (values beyond a range are clipped, and counted in ``clipped_values``);
- ``binary``: bit ``j`` is ``x_j > threshold`` (threshold 0), packed with ``numpy.packbits`` (big bit order).

**Checksums.** The metadata of ``.npy`` and ``.jsonl`` files holds ``checksums``: size and sha256 of the data
file (``data``) and of the ids file (``ids``); a Parquet file cannot hold its own checksum, so its metadata
holds ``content_sha256``, the sha256 of each column's values (see :class:`_ContentDigest`).
:func:`read_embeddings` checks them and names the file, expected and found values, and the command to rerun.

**Streaming and resume.** Rows are embedded ``chunk_size`` at a time and appended to partial files
beside ``out`` (``emb.npy.partial`` …); after each chunk the partial files are flushed and
``emb.npy.progress.json`` records how far they are valid. Memory holds one chunk, whatever the input
size. After a crash, ``resume=True`` truncates the partial files to the recorded sizes and carries on
from the next row; the final files are renamed into place (``os.replace``) only when every row is done,
after the progress file has recorded the renames, so ``resume=True`` also finishes a publish that a crash
cut short. A previous output stays whole until then, and a full disk (:class:`~xlingual.errors.DiskFullError`)
leaves it whole too, with the rows committed so far kept for ``resume``.

Example::

    embed_file("docs.jsonl", "emb.parquet", EmbedConfig(model="runs/ja/model", dtype="int8"))
    ids, vectors, texts, meta = read_embeddings("emb.parquet")
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, cast

import numpy as np

from xlingual import __version__
from xlingual._io import check_files, disk_full_message, file_entry, fsync_dir, is_disk_full
from xlingual.config import EmbedConfig
from xlingual.data.documents import Document, ReadStats, read_documents
from xlingual.errors import ConfigError, DataError, DiskFullError

logger = logging.getLogger(__name__)

#: Version of the progress file and metadata layout.
EMBED_FORMAT_VERSION = 1
#: Bytes reserved for the ``.npy`` header, so the final shape can be written over the placeholder in place.
NPY_HEADER_BYTES = 128
#: Settings that must match for ``resume`` to continue a run.
_RESUME_KEYS = (
    "input",
    "input_bytes",
    "input_mtime_ns",
    "model",
    "model_fingerprint",
    "dtype",
    "normalize",
    "prompt_name",
    "id_key",
    "text_key",
    "format",
)


class EmbedDtype(StrEnum):
    """How vectors are stored."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT8 = "int8"
    BINARY = "binary"


class OutputFormat(StrEnum):
    """Embeddings file formats, by extension."""

    NPY = "npy"
    PARQUET = "parquet"
    JSONL = "jsonl"


class SentenceEncoder(Protocol):
    """What ``embed_file`` needs of a model: ``SentenceTransformer`` and ``OnnxEncoder`` both fit."""

    def encode(self, sentences: Any, *args: Any, **kwargs: Any) -> Any:
        """Return ``(n, dim)`` embeddings."""
        ...


def output_format(path: str | os.PathLike[str]) -> OutputFormat:
    """The format an output name implies: ``emb.npy`` → NPY; other extensions raise :class:`ConfigError`."""
    suffix = Path(path).suffix.lower().lstrip(".")
    aliases = {"npy": OutputFormat.NPY, "parquet": OutputFormat.PARQUET, "pq": OutputFormat.PARQUET}
    aliases |= {"jsonl": OutputFormat.JSONL, "ndjson": OutputFormat.JSONL}
    if suffix not in aliases:
        raise ConfigError(f"Output {path}: unknown extension {suffix!r}; use .npy, .parquet or .jsonl")
    return aliases[suffix]


def ids_path(out: str | os.PathLike[str]) -> Path:
    """``emb.npy`` → ``emb.npy.ids.txt`` (the ids of a ``.npy`` file, one per line)."""
    path = Path(out)
    return path.with_name(f"{path.name}.ids.txt")


def meta_path(out: str | os.PathLike[str]) -> Path:
    """``emb.npy`` → ``emb.npy.meta.json`` (the metadata of ``.npy`` and ``.jsonl`` files)."""
    path = Path(out)
    return path.with_name(f"{path.name}.meta.json")


def progress_path(out: str | os.PathLike[str]) -> Path:
    """``emb.npy`` → ``emb.npy.progress.json``: present only while a run is unfinished."""
    path = Path(out)
    return path.with_name(f"{path.name}.progress.json")


def _partial(path: Path) -> Path:
    return path.with_name(f"{path.name}.partial")


# --------------------------------------------------------------------------- quantisation


@dataclass
class Int8Calibration:
    """Per-dimension ranges mapping floats onto int8: ``q = round((x − lo) / step) − 128``, ``step = (hi − lo) / 255``.

    Example: ``cal = Int8Calibration.fit(emb); q, clipped = cal.quantize(emb); approx = cal.dequantize(q)``.
    """

    lo: np.ndarray  # (dim,) float32
    hi: np.ndarray  # (dim,) float32
    rows: int

    @classmethod
    def fit(cls, emb: np.ndarray) -> Int8Calibration:
        """Ranges of ``emb`` ``(n, dim)``, per dimension."""
        return cls(emb.min(axis=0).astype(np.float32), emb.max(axis=0).astype(np.float32), int(emb.shape[0]))

    @property
    def step(self) -> np.ndarray:
        """``(dim,)`` float32 width of one int8 level (a constant dimension gets a tiny positive step)."""
        return np.maximum((self.hi - self.lo) / np.float32(255.0), np.float32(1e-12)).astype(np.float32)

    def quantize(self, emb: np.ndarray) -> tuple[np.ndarray, int]:
        """``(n, dim)`` float → ``(n, dim)`` int8, and how many values fell outside the ranges (clipped)."""
        levels = np.rint((emb - self.lo) / self.step) - 128.0
        clipped = int(np.count_nonzero((levels < -128) | (levels > 127)))
        return np.clip(levels, -128, 127).astype(np.int8), clipped

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """``(n, dim)`` int8 → ``(n, dim)`` float32 (each value within half a step of the original, if not clipped)."""
        return (self.lo + (q.astype(np.float32) + 128.0) * self.step).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        """The metadata block that lets any reader dequantise."""
        return {
            "scheme": "per-dimension affine: x ≈ lo + (q + 128) * (hi - lo) / 255",
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
            "calibration_rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Int8Calibration:
        """Inverse of :meth:`as_dict`."""
        return cls(
            np.asarray(data["lo"], dtype=np.float32),
            np.asarray(data["hi"], dtype=np.float32),
            int(data.get("calibration_rows", 0)),
        )


#: Bit ``j`` of a binary vector is ``x_j > BINARY_THRESHOLD``.
BINARY_THRESHOLD = 0.0


def binarize(emb: np.ndarray) -> np.ndarray:
    """``(n, dim)`` float → ``(n, ceil(dim / 8))`` uint8: bits ``x > 0``, packed big-endian along each row."""
    return np.packbits(emb > BINARY_THRESHOLD, axis=1)


def unpack_binary(packed: np.ndarray, dim: int) -> np.ndarray:
    """``(n, ceil(dim / 8))`` uint8 → ``(n, dim)`` uint8 of 0/1 bits."""
    return np.unpackbits(packed, axis=1, count=dim)


def to_float32(vectors: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Stored vectors → ``(n, dim)`` float32: float16 widened, int8 dequantised, binary as ±1."""
    dtype = EmbedDtype(meta["dtype"])
    if dtype is EmbedDtype.INT8:
        return Int8Calibration.from_dict(meta["int8"]).dequantize(np.asarray(vectors))
    if dtype is EmbedDtype.BINARY:
        return unpack_binary(np.asarray(vectors), int(meta["dim"])).astype(np.float32) * 2.0 - 1.0
    return np.asarray(vectors, dtype=np.float32)


def _store(emb: np.ndarray, dtype: EmbedDtype, calibration: Int8Calibration | None) -> tuple[np.ndarray, int]:
    if dtype is EmbedDtype.FLOAT16:
        return emb.astype(np.float16), 0
    if dtype is EmbedDtype.INT8:
        if calibration is None:  # pragma: no cover - fitted on the first chunk before this is called
            raise ConfigError("int8 needs a calibration")
        return calibration.quantize(emb)
    if dtype is EmbedDtype.BINARY:
        return binarize(emb), 0
    return emb.astype(np.float32, copy=False), 0


def _numpy_dtype(dtype: EmbedDtype) -> np.dtype[Any]:
    return np.dtype({"float32": "<f4", "float16": "<f2", "int8": "i1", "binary": "u1"}[dtype.value])


def _width(dtype: EmbedDtype, dim: int) -> int:
    return (dim + 7) // 8 if dtype is EmbedDtype.BINARY else dim


# --------------------------------------------------------------------------- writers


def _fsync(stream: IO[Any]) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            _fsync(fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _npy_header(descr: str, shape: tuple[int, int]) -> bytes:
    body = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    length = NPY_HEADER_BYTES - 10
    if len(body) + 1 > length:  # pragma: no cover - needs more than 10^40 rows
        raise ConfigError(f"shape {shape} does not fit the .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", length) + (body.ljust(length - 1) + "\n").encode("latin1")


class _Writer(Protocol):
    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None: ...

    def state(self) -> dict[str, int]: ...

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        """Complete and close the partial files, add their checksums to ``meta``; return the renames to publish."""
        ...

    def close(self) -> None: ...


class _NpyWriter:
    """``emb.npy.partial`` (header placeholder + raw rows) and ``emb.npy.ids.txt.partial``; header fixed at the end."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        self.out, self.dtype, self.width = out, dtype, width
        self.data_path, self.ids_partial = _partial(out), _partial(ids_path(out))
        if state is None:
            self.data = open(self.data_path, "w+b")  # noqa: SIM115 - closed in finish/close
            self.data.write(_npy_header(_numpy_dtype(dtype).str, (0, width)))
            self.ids = open(self.ids_partial, "w+b")  # noqa: SIM115
            self.rows = 0
        else:
            self.data = open(self.data_path, "r+b")  # noqa: SIM115
            self.data.truncate(state["data_bytes"])
            self.data.seek(state["data_bytes"])
            self.ids = open(self.ids_partial, "r+b")  # noqa: SIM115
            self.ids.truncate(state["ids_bytes"])
            self.ids.seek(state["ids_bytes"])
            self.rows = state["rows"]

    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None:
        for doc_id in ids:
            if "\n" in doc_id or "\r" in doc_id:
                raise DataError(
                    f"id {doc_id!r} contains a line break, but {ids_path(self.out).name} holds one id per line; "
                    "write .parquet or .jsonl instead"
                )
        self.data.write(np.ascontiguousarray(stored, dtype=_numpy_dtype(self.dtype)).tobytes())
        self.ids.write("".join(f"{doc_id}\n" for doc_id in ids).encode("utf-8"))
        _fsync(self.data)
        _fsync(self.ids)
        self.rows += len(ids)

    def state(self) -> dict[str, int]:
        return {"data_bytes": self.data.tell(), "ids_bytes": self.ids.tell(), "rows": self.rows}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        self.data.seek(0)
        self.data.write(_npy_header(_numpy_dtype(self.dtype).str, (self.rows, self.width)))
        _fsync(self.data)
        self.close()
        meta["checksums"] = {"data": file_entry(self.data_path), "ids": file_entry(self.ids_partial)}
        return [(self.ids_partial, ids_path(self.out)), (self.data_path, self.out)]

    def close(self) -> None:
        self.data.close()
        self.ids.close()


class _JsonlWriter:
    """``emb.jsonl.partial``, one object per row, appended; ``emb.jsonl.meta.json`` at the end."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        self.out = out
        self.path = _partial(out)
        if state is None:
            self.stream = open(self.path, "w+b")  # noqa: SIM115
        else:
            self.stream = open(self.path, "r+b")  # noqa: SIM115
            self.stream.truncate(state["bytes"])
            self.stream.seek(state["bytes"])

    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None:
        rows = stored.tolist()  # exact: float32/float16 values become the float64 numbers they equal
        lines = (
            json.dumps({"id": doc_id, "text": text, "embedding": row}, ensure_ascii=False) + "\n"
            for doc_id, text, row in zip(ids, texts, rows, strict=True)
        )
        self.stream.write("".join(lines).encode("utf-8"))
        _fsync(self.stream)

    def state(self) -> dict[str, int]:
        return {"bytes": self.stream.tell()}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        self.close()
        meta["checksums"] = {"data": file_entry(self.path)}
        return [(self.path, self.out)]

    def close(self) -> None:
        self.stream.close()


class _ParquetWriter:
    """One Parquet part per chunk in ``emb.parquet.partial/``, merged (one row group each) into the final file."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        import pyarrow as pa

        self.out, self.width = out, width
        self.folder = _partial(out)
        value_type = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}
        self.value_type = value_type[dtype.value]
        self.schema = pa.schema(
            [("id", pa.string()), ("text", pa.string()), ("embedding", pa.list_(self.value_type, width))]
        )
        if state is None:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            self.parts = 0
        else:
            self.parts = state["parts"]
            for stale in self.folder.iterdir():  # parts written after the last recorded chunk
                if not stale.name.startswith("part-") or int(stale.stem.split("-")[1]) >= self.parts:
                    stale.unlink()

    def _part(self, number: int) -> Path:
        return self.folder / f"part-{number:06d}.parquet"

    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = pa.array(np.ascontiguousarray(stored).reshape(-1), type=self.value_type)
        table = pa.Table.from_arrays(
            [
                pa.array(list(ids), pa.string()),
                pa.array(list(texts), pa.string()),
                pa.FixedSizeListArray.from_arrays(flat, self.width),
            ],
            schema=self.schema,
        )
        part = self._part(self.parts)
        tmp = part.with_name(f"tmp-{part.name}")
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, part)
        self.parts += 1

    def state(self) -> dict[str, int]:
        return {"parts": self.parts}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        import pyarrow.parquet as pq

        # The metadata lives inside the file, so it cannot hold the file's own checksum: it holds the
        # sha256 of the decoded columns instead, which a reader recomputes (see parquet_content_sha256).
        digest = _ContentDigest()
        for number in range(self.parts):
            digest.update(pq.read_table(self._part(number)))
        meta["content_sha256"] = digest.hexdigests()
        schema = self.schema.with_metadata({"xlingual": json.dumps(meta, ensure_ascii=False)})
        merged = self.folder / "merged.parquet"  # inside the partial folder: discarded with it
        with pq.ParquetWriter(merged, schema) as writer:
            for number in range(self.parts):
                writer.write_table(pq.read_table(self._part(number)).replace_schema_metadata(schema.metadata))
        with open(merged, "rb") as fh:
            os.fsync(fh.fileno())
        return [(merged, self.out)]

    def close(self) -> None:
        return None


class _ContentDigest:
    """sha256 of an embeddings table's columns, the same however its rows are split into row groups.

    ``embedding``: the stored values row after row, little-endian; ``id`` and ``text``: every value's UTF-8
    bytes, each preceded by its length as 8 little-endian bytes.
    """

    def __init__(self) -> None:
        self._hashes = {"id": hashlib.sha256(), "text": hashlib.sha256(), "embedding": hashlib.sha256()}

    def update(self, table: Any) -> None:
        values = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        self.update_columns(table.column("id").to_pylist(), table.column("text").to_pylist(), np.asarray(values))

    def update_columns(self, ids: Sequence[str], texts: Sequence[str], values: np.ndarray) -> None:
        for name, column in (("id", ids), ("text", texts)):
            digest = self._hashes[name]
            for value in column:
                data = str(value).encode("utf-8")
                digest.update(struct.pack("<Q", len(data)))
                digest.update(data)
        self._hashes["embedding"].update(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes())

    def hexdigests(self) -> dict[str, str]:
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}


_WRITERS: dict[OutputFormat, Any] = {
    OutputFormat.NPY: _NpyWriter,
    OutputFormat.JSONL: _JsonlWriter,
    OutputFormat.PARQUET: _ParquetWriter,
}


def _discard_partials(out: Path) -> None:
    stale = [*out.parent.glob(f".{glob.escape(out.name)}*.tmp")]  # temporary files of a killed run
    for path in (_partial(out), _partial(ids_path(out)), progress_path(out), *stale):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _publish(out: Path, fmt: OutputFormat, meta: dict[str, Any], renames: Sequence[Sequence[str]]) -> list[Path]:
    """Rename the sealed files into place (the metadata sidecar first); safe to repeat after a crash midway."""
    if fmt is not OutputFormat.PARQUET:
        _write_atomic(meta_path(out), json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    for source, target in renames:
        if (out.parent / source).exists():  # absent: renamed by the run that was interrupted
            os.replace(out.parent / source, out.parent / target)
    fsync_dir(out.parent)
    if fmt is OutputFormat.PARQUET:
        shutil.rmtree(_partial(out), ignore_errors=True)
        return [out]
    return [out, ids_path(out), meta_path(out)] if fmt is OutputFormat.NPY else [out, meta_path(out)]


# --------------------------------------------------------------------------- embed


@dataclass
class EmbedResult:
    """What :func:`embed_file` wrote."""

    out: Path
    files: list[Path]
    rows: int
    dim: int
    dtype: str
    skipped_blank: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "out": str(self.out),
            "files": [str(p) for p in self.files],
            "rows": self.rows,
            "dim": self.dim,
            "dtype": self.dtype,
            "skipped_blank": self.skipped_blank,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> str:
        """One line for people."""
        resumed = f", resumed after row {self.resumed_from:,}" if self.resumed_from else ""
        blank = f", {self.skipped_blank:,} blank skipped" if self.skipped_blank else ""
        return f"{self.out}: {self.rows:,} × {self.dim} {self.dtype} vectors in {self.seconds:.1f} s{resumed}{blank}"


def _check_config(config: EmbedConfig) -> EmbedDtype:
    try:
        dtype = EmbedDtype(config.dtype)
    except ValueError:
        raise ConfigError(
            f"--dtype {config.dtype!r} is not supported; choose one of: {', '.join(d.value for d in EmbedDtype)}"
        ) from None
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size is {config.batch_size}; it must be at least 1")
    if config.chunk_size < 1:
        raise ConfigError(f"--chunk-size is {config.chunk_size}; it must be at least 1")
    return dtype


def _model_identity(spec: str) -> str | None:
    from xlingual.models.specs import fingerprint, resolve_model_path

    path = resolve_model_path(spec)
    return fingerprint(path) if path is not None else None


def _prompt_of(encoder: Any, prompt_name: str | None) -> str | None:
    prompts = getattr(encoder, "prompts", None) or {}
    name = prompt_name if prompt_name is not None else getattr(encoder, "default_prompt_name", None)
    if name is None:
        return None
    if name not in prompts:
        raise ConfigError(
            f"--prompt-name {name!r} is not one of the model's prompts: {', '.join(sorted(prompts)) or 'none'}"
        )
    return str(prompts[name])


def _chunks(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    while chunk := list(itertools.islice(docs, size)):
        yield chunk


def _load_progress(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); pass --overwrite to start over") from exc
    previous = state.get("settings", {})
    differ = [key for key in _RESUME_KEYS if previous.get(key) != settings.get(key)]
    if differ:
        detail = "; ".join(f"{key}: {previous.get(key)!r} then, {settings.get(key)!r} now" for key in differ)
        raise ConfigError(
            f"Cannot resume {path.name}: the interrupted run had other settings ({detail}). Pass the same input, "
            "model and options, or --overwrite to start over"
        )
    return dict(state)


def embed_file(
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: EmbedConfig | None = None,
    *,
    encoder: SentenceEncoder | None = None,
) -> EmbedResult:
    """Embed every text of ``input_path`` into ``out`` (``.npy``, ``.parquet`` or ``.jsonl``), chunk by chunk.

    ``encoder``: an already loaded model (otherwise ``config.model`` is loaded). Raises
    :class:`ConfigError` for an existing output or an interrupted run without ``resume``/``overwrite``, and
    :class:`DataError` for unreadable input. Example: ``embed_file("docs.txt", "emb.npy")``.
    """
    config = config or EmbedConfig()
    dtype = _check_config(config)
    in_path, out_path = Path(input_path), Path(out)
    fmt = output_format(out_path)
    if not in_path.is_file():
        raise DataError(f"{in_path} is not a file; pass a text, JSONL or Parquet file of texts")
    existed = out_path.exists()
    # A run started with --overwrite and then interrupted leaves the previous output in place: --resume continues it.
    if existed and not config.overwrite and not (config.resume and progress_path(out_path).exists()):
        if config.resume:
            raise ConfigError(f"{out_path} is already complete; nothing to resume (pass --overwrite to embed again)")
        raise ConfigError(f"{out_path} already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    stat = in_path.stat()
    model_fp = _model_identity(config.model) if encoder is None else getattr(encoder, "fingerprint", None)
    settings: dict[str, Any] = {
        "input": str(in_path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "model": config.model if encoder is None else getattr(encoder, "spec", type(encoder).__name__),
        "model_fingerprint": model_fp,
        "dtype": dtype.value,
        "normalize": config.normalize,
        "prompt_name": config.prompt_name,
        "id_key": config.id_key,
        "text_key": config.text_key,
        "format": fmt.value,
    }
    progress = progress_path(out_path)
    state: dict[str, Any] | None = None
    if progress.exists():
        if config.resume:
            state = _load_progress(progress, settings)
            logger.info("resuming %s after row %d", out_path, state["rows"])
        elif config.overwrite:
            _discard_partials(out_path)
        else:
            raise ConfigError(
                f"An interrupted run left {progress}; pass --resume to continue it, or --overwrite to start over"
            )
    else:
        _discard_partials(out_path)
        if config.resume:
            logger.info("no interrupted run for %s; starting from the first row", out_path)
    if state is not None and state.get("publish"):  # every row was written; the run died renaming the files
        publish = state["publish"]
        files = _publish(out_path, fmt, publish["meta"], publish["renames"])
        progress.unlink(missing_ok=True)
        rows = int(state["rows"])
        dim = int(state["dim"])
        return EmbedResult(out_path, files, rows, dim, dtype.value, resumed_from=rows, meta=publish["meta"])

    if encoder is None:
        from xlingual.models.specs import load_model

        encoder = cast(SentenceEncoder, load_model(config.model, device=config.device))
    prompt = _prompt_of(encoder, config.prompt_name)
    dim_fn = getattr(encoder, "get_embedding_dimension", None)
    dim = int(state["dim"]) if state else int(dim_fn() or 0) if callable(dim_fn) else 0
    calibration = Int8Calibration.from_dict(state["int8"]) if state and state.get("int8") else None
    clipped = int(state.get("clipped_values", 0)) if state else 0
    resumed_from = rows = committed = int(state["rows"]) if state else 0

    writer: _Writer | None = None
    if state is not None:
        try:
            writer = _WRITERS[fmt](out_path, dtype, _width(dtype, dim), state["writer"])
        except (OSError, KeyError) as exc:
            raise ConfigError(
                f"Cannot resume {out_path}: its partial files are missing or damaged ({exc}); pass --overwrite to "
                "start over"
            ) from exc
    stats = ReadStats()
    docs = read_documents(in_path, id_key=config.id_key, text_key=config.text_key, stats=stats)
    docs = itertools.islice(docs, rows, None)  # skip the rows an interrupted run already wrote
    try:
        for chunk in _chunks(docs, config.chunk_size):
            texts = [doc.text for doc in chunk]
            emb = np.asarray(
                encoder.encode(
                    texts,
                    batch_size=config.batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=False,
                    prompt_name=config.prompt_name,
                ),
                dtype=np.float32,
            )
            if emb.ndim != 2 or emb.shape[0] != len(chunk):
                raise DataError(f"the model returned shape {emb.shape} for {len(chunk)} texts")
            if config.normalize:
                norms = np.linalg.norm(emb, axis=1, keepdims=True)
                np.divide(emb, norms, out=emb, where=norms > 0)
            if writer is None:
                dim = int(emb.shape[1])
                writer = _WRITERS[fmt](out_path, dtype, _width(dtype, dim), None)
            if dtype is EmbedDtype.INT8 and calibration is None:
                calibration = Int8Calibration.fit(emb)
            stored, chunk_clipped = _store(emb, dtype, calibration)
            writer.append([doc.id for doc in chunk], texts, stored)
            rows += len(chunk)
            clipped += chunk_clipped
            record = {
                "version": EMBED_FORMAT_VERSION,
                "settings": settings,
                "rows": rows,
                "dim": dim,
                "writer": writer.state(),
                "int8": calibration.as_dict() if calibration is not None else None,
                "clipped_values": clipped,
            }
            _write_atomic(progress, json.dumps(record) + "\n")
            committed = rows
            if config.show_progress:
                done = rows - resumed_from
                logger.info("%s: %d rows (%.0f rows/s)", out_path.name, rows, done / (time.perf_counter() - started))
        if writer is None:  # an input without a single text
            writer = _WRITERS[fmt](out_path, dtype, _width(dtype, dim), None)
        meta: dict[str, Any] = {
            "format": "xlingual-embeddings",
            "version": EMBED_FORMAT_VERSION,
            "model": settings["model"],
            "model_fingerprint": model_fp,
            "dim": dim,
            "dtype": dtype.value,
            "count": rows,
            "normalized": config.normalize,
            "prompt": prompt,
            "input": settings["input"],
            "skipped_blank": stats.skipped_blank,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "xlingual_version": __version__,
        }
        if fmt is OutputFormat.NPY:
            meta["ids_file"] = ids_path(out_path).name
        if dtype is EmbedDtype.INT8:
            meta["int8"] = {**(calibration.as_dict() if calibration else {}), "clipped_values": clipped}
        if dtype is EmbedDtype.BINARY:
            meta["binary"] = {
                "threshold": BINARY_THRESHOLD,
                "rule": "bit j is x_j > threshold",
                "packing": "numpy.packbits along each row, big bit order (first dimension = highest bit of byte 0)",
                "bytes_per_vector": _width(dtype, dim),
            }
        renames = [
            [str(source.relative_to(out_path.parent)), str(target.relative_to(out_path.parent))]
            for source, target in writer.seal(meta)
        ]
        # Recorded before the first rename, so that --resume can finish renaming after a crash midway.
        sealed = {"version": EMBED_FORMAT_VERSION, "settings": settings, "rows": rows, "dim": dim}
        _write_atomic(progress, json.dumps({**sealed, "publish": {"meta": meta, "renames": renames}}) + "\n")
        # os.replace swaps each new file in: an old one is never missing meanwhile
        files = _publish(out_path, fmt, meta, renames)
    except OSError as exc:
        if writer is not None:
            writer.close()
        if is_disk_full(exc):
            intact = f"the previous {out_path.name} is intact" if existed else f"nothing was written at {out_path}"
            if committed:
                intact += f", and the first {committed:,} rows are kept for --resume"
            message = disk_full_message(exc.filename or out_path, intact, "run the same command again with --resume")
            raise DiskFullError(message) from exc
        raise
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    progress.unlink(missing_ok=True)
    return EmbedResult(
        out=out_path,
        files=files,
        rows=rows,
        dim=dim,
        dtype=dtype.value,
        skipped_blank=stats.skipped_blank,
        resumed_from=resumed_from,
        seconds=time.perf_counter() - started,
        meta=meta,
    )


# --------------------------------------------------------------------------- reading back


class EmbeddingsFile(NamedTuple):
    """An embeddings file read back: ids, stored vectors (as written), texts (None for ``.npy``), metadata."""

    ids: list[str]
    vectors: np.ndarray
    texts: list[str] | None
    meta: dict[str, Any]


def read_embeddings(path: str | os.PathLike[str], *, verify: bool = True) -> EmbeddingsFile:
    """Read a file written by :func:`embed_file`; ``to_float32(f.vectors, f.meta)`` gives floats back.

    Everything is checked against the metadata (dtype, dimension, count, one id per vector); a damaged
    or foreign file raises :class:`DataError` naming the file (and the line of a ``.jsonl``), never
    returns vectors that no longer line up with their ids.

    With ``verify`` (the default) the files' sha256 (``.npy``, ``.jsonl``) or the columns' (``.parquet``) must
    equal the checksums in the metadata; sizes are always compared.

    Example: ``ids, vectors, texts, meta = read_embeddings("emb.npy")``.
    """
    file = Path(path)
    fmt = output_format(file)
    if not file.is_file():
        raise DataError(f"{file} does not exist")
    if fmt is OutputFormat.PARQUET:
        ids, vectors, texts, meta = _read_parquet_embeddings(file)
        _check_content(file, meta, ids, texts, vectors, verify=verify)
    else:
        meta = _read_sidecar_meta(file)
        _check_checksums(file, meta, verify=verify)
        if fmt is OutputFormat.NPY:
            vectors, texts = _read_npy(file), None
            ids = _read_ids(ids_path(file))
        else:
            ids, vectors, texts = _read_jsonl_embeddings(file, meta)
    dtype, dim, count = EmbedDtype(meta["dtype"]), meta["dim"], meta["count"]
    width = _width(dtype, dim)
    if vectors.ndim != 2 or vectors.shape[1] != width or vectors.dtype != _numpy_dtype(dtype):
        shape = f"{vectors.dtype} of shape {vectors.shape}"
        raise _damaged(file, f"vectors are {shape}, the metadata says {dtype.value} × {width} wide")
    if not len(ids) == vectors.shape[0] == count or (texts is not None and len(texts) != count):
        listed = f"{len(ids)} ids" + (f", {len(texts)} texts" if texts is not None else "")
        raise _damaged(file, f"{vectors.shape[0]} vectors, {listed}, the metadata says {count}")
    return EmbeddingsFile(ids, vectors, texts, meta)


def _checksum_error(file: Path, meta: dict[str, Any], problems: Sequence[str]) -> DataError:
    if progress_path(file).exists():
        todo = f"an interrupted xlingual embed left {progress_path(file).name}: run it again with --resume to finish"
    else:
        model = f" -m {meta['model']}" if isinstance(meta.get("model"), str) else ""
        todo = f"embed the input again: xlingual embed {meta.get('input') or 'INPUT'}{model} -o {file} --overwrite"
    return DataError(
        f"{file} does not match the checksums in its metadata ({'; '.join(problems)}): it was damaged or changed "
        f"after xlingual embed wrote it; {todo}"
    )


def _check_checksums(file: Path, meta: dict[str, Any], *, verify: bool) -> None:
    """Sizes (and with ``verify`` sha256) of the data and ids files against the metadata's ``checksums``."""
    checksums = meta.get("checksums")
    if checksums is None:  # written before checksums were recorded
        return
    names = {"data": file.name, "ids": ids_path(file).name}  # by role, so that renamed files still check
    if not isinstance(checksums, dict) or not all(
        role in names
        and isinstance(entry, dict)
        and isinstance(entry.get("bytes"), int)
        and not isinstance(entry.get("bytes"), bool)
        and isinstance(entry.get("sha256"), str)
        for role, entry in checksums.items()
    ):
        raise _damaged(file, "'checksums' in the metadata should map 'data' (and 'ids') to size and sha256")
    problems = check_files(file.parent, {names[role]: entry for role, entry in checksums.items()}, verify=verify)
    if problems:
        raise _checksum_error(file, meta, problems)


def _check_content(
    file: Path, meta: dict[str, Any], ids: list[str], texts: list[str], vectors: np.ndarray, *, verify: bool
) -> None:
    """The columns of a Parquet file against the sha256 its metadata records (``content_sha256``)."""
    expected = meta.get("content_sha256")
    if expected is None or not verify:
        return
    digest = _ContentDigest()
    digest.update_columns(ids, texts, vectors)
    actual = digest.hexdigests()
    problems = [
        f"column {name!r}: sha256 {actual[name][:16]}…, expected {str(expected.get(name))[:16]}…"
        for name in actual
        if not isinstance(expected, dict) or expected.get(name) != actual[name]
    ]
    if problems:
        raise _checksum_error(file, meta, problems)


def _damaged(file: Path | str, problem: str) -> DataError:
    return DataError(
        f"{file}: {problem}; the file is damaged or was not written by xlingual embed — "
        "embed the input again (xlingual embed INPUT -o OUT --overwrite)"
    )


def _parse_meta(file: Path, raw: str | bytes) -> dict[str, Any]:
    """The metadata of an embeddings file, checked: dtype, dim, count and (int8) the calibration."""
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _damaged(file, f"the metadata is not valid JSON ({str(exc).split(';')[0]})") from None
    if not isinstance(meta, dict):
        raise _damaged(file, f"the metadata is a JSON {type(meta).__name__}, expected an object")
    if meta.get("dtype") not in [d.value for d in EmbedDtype]:  # a list: the value may be unhashable
        raise _damaged(file, f"dtype={meta.get('dtype')!r}, expected one of {', '.join(EmbedDtype)}")
    dtype = EmbedDtype(meta["dtype"])
    for name in ("dim", "count"):
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _damaged(file, f"{name}={value!r} in the metadata, expected an integer ≥ 0")
    if dtype is EmbedDtype.INT8:
        block = meta.get("int8")
        ranges = [block.get(k) for k in ("lo", "hi")] if isinstance(block, dict) else [None, None]
        if not all(
            isinstance(r, list)
            and len(r) == meta["dim"]
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in ranges
        ):
            raise _damaged(file, f"the int8 block needs 'lo' and 'hi' lists of {meta['dim']} numbers to dequantise")
    return meta


def _read_sidecar_meta(file: Path) -> dict[str, Any]:
    sidecar = meta_path(file)
    try:
        raw = sidecar.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{sidecar} is missing: {file.name} cannot be read without it; copy it along with {file.name}, "
            "or embed the input again"
        ) from None
    except OSError as exc:
        raise DataError(f"{sidecar}: cannot be read ({exc.strerror or exc})") from None
    return _parse_meta(sidecar, raw)


def _read_npy(file: Path) -> np.ndarray:
    # Check the header against the file size before np.load, which would allocate whatever shape it says.
    try:
        with open(file, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            data_start = fh.tell()
        if dtype.hasobject:
            raise ValueError("it holds Python objects")
        expected = data_start + math.prod(shape) * dtype.itemsize
        size = file.stat().st_size
        if size != expected:
            raise ValueError(f"{size} bytes, but its header {shape} {dtype} needs {expected}")
        return np.asarray(np.load(file, allow_pickle=False))
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise _damaged(file, f"not a readable .npy file ({exc})") from None


def _read_ids(file: Path) -> list[str]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{file} is missing: the ids of the vectors, one per line; embed the input again") from None
    except (OSError, ValueError) as exc:
        raise _damaged(file, f"cannot be read as UTF-8 text ({exc})") from None
    ids = text.split("\n")
    if ids[-1] == "":
        ids.pop()  # the newline that ends the last id
    return [doc_id.removesuffix("\r") for doc_id in ids]  # a copy edited on Windows


def _read_jsonl_embeddings(file: Path, meta: dict[str, Any]) -> tuple[list[str], np.ndarray, list[str]]:
    dtype = EmbedDtype(meta["dtype"])
    store = _numpy_dtype(dtype)
    width = _width(dtype, meta["dim"])
    ids: list[str] = []
    texts: list[str] = []
    rows: list[np.ndarray] = []
    try:
        with open(file, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                where = f"{file}:{lineno}"
                try:
                    row = json.loads(raw)
                except (ValueError, RecursionError) as exc:
                    raise _damaged(where, f"not valid JSON ({str(exc).split(';')[0]})") from None
                if not (isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("text"), str)):
                    raise _damaged(where, "expected an object with string 'id' and 'text' and an 'embedding' list")
                values = row.get("embedding")
                if not isinstance(values, list) or len(values) != width:
                    length = len(values) if isinstance(values, list) else type(values).__name__
                    raise _damaged(where, f"'embedding' has {length} values, expected {width}")
                try:
                    vector = np.asarray(values, dtype=np.float64)
                except (ValueError, TypeError):
                    raise _damaged(where, "'embedding' holds values that are not numbers") from None
                if store.kind in "iu":
                    info = np.iinfo(store)
                    whole = np.array_equal(vector, np.round(vector))
                    if not whole or vector.min(initial=0) < info.min or vector.max(initial=0) > info.max:
                        raise _damaged(where, f"'embedding' holds values that are not {store} integers")
                ids.append(row["id"])
                texts.append(row["text"])
                rows.append(vector.astype(store))
    except OSError as exc:
        raise DataError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    vectors = np.stack(rows) if rows else np.zeros((0, width), dtype=store)
    return ids, vectors, texts


def _read_parquet_embeddings(file: Path) -> tuple[list[str], np.ndarray, list[str], dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
        table.validate(full=True)  # Arrow does not check UTF-8 on read; to_pylist would fail on a damaged string
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise _damaged(file, f"not a readable Parquet file ({' '.join(str(exc).split())})") from None
    raw = (table.schema.metadata or {}).get(b"xlingual")
    if raw is None:
        raise DataError(f"{file} has no 'xlingual' schema metadata; it was not written by xlingual embed")
    meta = _parse_meta(file, raw)
    dtype = EmbedDtype(meta["dtype"])
    value_type = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}
    missing = [name for name in ("id", "text", "embedding") if name not in table.column_names]
    if missing:
        raise _damaged(file, f"no column {', '.join(map(repr, missing))} (columns: {', '.join(table.column_names)})")
    column = table.column("embedding")
    if not pa.types.is_fixed_size_list(column.type) or column.type.value_type != value_type[dtype.value]:
        raise _damaged(file, f"column 'embedding' is {column.type}, expected fixed-size lists of {dtype.value}")
    for name in ("id", "text"):
        if not pa.types.is_string(table.column(name).type):
            raise _damaged(file, f"column {name!r} is {table.column(name).type}, expected strings")
    column = column.combine_chunks()
    values = column.flatten()
    columns = {"id": table.column("id"), "text": table.column("text"), "embedding": column}
    nulls = [name for name, values_of in columns.items() if values_of.null_count]
    if nulls or values.null_count:
        raise _damaged(file, f"null values in column {', '.join(nulls) or 'embedding'}")
    width = column.type.list_size
    flat = values.to_numpy(zero_copy_only=False)
    vectors = np.asarray(flat).reshape(-1, width) if width else np.zeros((len(table), 0), flat.dtype)
    return table.column("id").to_pylist(), vectors, table.column("text").to_pylist(), meta
