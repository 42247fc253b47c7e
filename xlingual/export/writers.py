"""Embeddings file writers: partial files appended chunk by chunk, sealed, then renamed into place.

Each writer appends one chunk at a time to partial files beside ``out`` (``emb.npy.partial`` …) and reports
how far they are valid (:meth:`Writer.state`, recorded in ``emb.npy.progress.json``), so that a resumed run
can truncate them to that point. :func:`publish` renames the sealed files into place.

Example: ``writer = open_writer(OutputFormat.NPY, Path("emb.npy"), EmbedDtype.FLOAT32, 384, None)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from xlingual import _io
from xlingual.choices import EmbedDtype, OutputFormat
from xlingual.errors import ConfigError, DataError
from xlingual.export.dtypes import numpy_dtype

__all__ = [
    "NPY_HEADER_BYTES",
    "ContentDigest",
    "Writer",
    "discard_partials",
    "ids_path",
    "meta_path",
    "open_writer",
    "output_format",
    "partial_path",
    "progress_path",
    "publish",
    "sweep_temporaries",
]

#: Bytes reserved for the ``.npy`` header, so the final shape can be written over the placeholder in place.
NPY_HEADER_BYTES = 128


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


def partial_path(path: Path) -> Path:
    """``emb.npy`` → ``emb.npy.partial``: the file (a folder for Parquet) written until the run is complete."""
    return path.with_name(f"{path.name}.partial")


def _flush_to_disk(stream: IO[Any]) -> None:
    """Flush and fsync a partial file after a chunk, so the progress record never runs ahead of its bytes."""
    stream.flush()
    os.fsync(stream.fileno())


def _npy_header(descr: str, shape: tuple[int, int]) -> bytes:
    body = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    length = NPY_HEADER_BYTES - 10
    if len(body) + 1 > length:  # pragma: no cover - needs more than 10^40 rows
        raise ConfigError(f"shape {shape} does not fit the .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", length) + (body.ljust(length - 1) + "\n").encode("latin1")


class Writer(Protocol):
    """What each format's writer does: append chunks, report how far its files are valid, seal, close."""

    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None:
        """Append one chunk: ids, texts and ``(n, width)`` stored vectors; flushed to disk on return."""
        ...

    def state(self) -> dict[str, int]:
        """How far the partial files are valid (byte offsets or parts), for the progress file."""
        ...

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        """Complete and close the partial files, add their checksums to ``meta``; return the renames to publish."""
        ...

    def close(self) -> None:
        """Close the partial files (they stay on disk for --resume)."""
        ...


class _NpyWriter:
    """``emb.npy.partial`` (header placeholder + raw rows) and ``emb.npy.ids.txt.partial``; header fixed at the end."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        self.out, self.dtype, self.width = out, dtype, width
        self.data_path, self.ids_partial = partial_path(out), partial_path(ids_path(out))
        if state is None:
            self.data = open(self.data_path, "w+b")  # noqa: SIM115 - closed in finish/close
            self.data.write(_npy_header(numpy_dtype(dtype).str, (0, width)))
            self.ids = open(self.ids_partial, "w+b")  # noqa: SIM115
        else:
            self.data = open(self.data_path, "r+b")  # noqa: SIM115
            self.data.truncate(state["data_bytes"])
            self.data.seek(state["data_bytes"])
            self.ids = open(self.ids_partial, "r+b")  # noqa: SIM115
            self.ids.truncate(state["ids_bytes"])
            self.ids.seek(state["ids_bytes"])

    def append(self, ids: Sequence[str], texts: Sequence[str], stored: np.ndarray) -> None:
        for doc_id in ids:
            if "\n" in doc_id or "\r" in doc_id:
                raise DataError(
                    f"id {doc_id!r} contains a line break, but {ids_path(self.out).name} holds one id per line; "
                    "write .parquet or .jsonl instead"
                )
        self.data.write(np.ascontiguousarray(stored, dtype=numpy_dtype(self.dtype)).tobytes())
        self.ids.write("".join(f"{doc_id}\n" for doc_id in ids).encode("utf-8"))
        _flush_to_disk(self.data)
        _flush_to_disk(self.ids)

    def state(self) -> dict[str, int]:
        return {"data_bytes": self.data.tell(), "ids_bytes": self.ids.tell()}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        self.data.seek(0)
        # meta["count"]: the rows written, which the header placeholder could not know
        self.data.write(_npy_header(numpy_dtype(self.dtype).str, (int(meta["count"]), self.width)))
        _flush_to_disk(self.data)
        self.close()
        meta["checksums"] = {"data": _io.file_entry(self.data_path), "ids": _io.file_entry(self.ids_partial)}
        return [(self.ids_partial, ids_path(self.out)), (self.data_path, self.out)]

    def close(self) -> None:
        self.data.close()
        self.ids.close()


class _JsonlWriter:
    """``emb.jsonl.partial``, one object per row, appended; ``emb.jsonl.meta.json`` at the end."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        self.out = out
        self.path = partial_path(out)
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
        _flush_to_disk(self.stream)

    def state(self) -> dict[str, int]:
        return {"bytes": self.stream.tell()}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        self.close()
        meta["checksums"] = {"data": _io.file_entry(self.path)}
        return [(self.path, self.out)]

    def close(self) -> None:
        self.stream.close()


class _ParquetWriter:
    """One Parquet part per chunk in ``emb.parquet.partial/``, merged (one row group each) into the final file."""

    def __init__(self, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> None:
        import pyarrow as pa

        self.out, self.width = out, width
        self.folder = partial_path(out)
        value_type = {"float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8(), "binary": pa.uint8()}
        self.value_type = value_type[dtype.value]
        self.schema = pa.schema(
            [("id", pa.string()), ("text", pa.string()), ("embedding", pa.list_(self.value_type, width))]
        )
        if state is None:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
        else:
            for stale in self.folder.iterdir():  # parts written after the last recorded chunk
                if not stale.name.startswith("part-") or int(stale.stem.split("-")[1]) >= state["parts"]:
                    stale.unlink()

    def _parts(self) -> int:
        """Parts written so far: ``part-000000.parquet`` … (a torn write is a ``tmp-`` file, not counted)."""
        return sum(1 for _ in self.folder.glob("part-*.parquet"))

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
        part = self._part(self._parts())
        tmp = part.with_name(f"tmp-{part.name}")
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, part)

    def state(self) -> dict[str, int]:
        return {"parts": self._parts()}

    def seal(self, meta: dict[str, Any]) -> list[tuple[Path, Path]]:
        import pyarrow.parquet as pq

        # The metadata lives inside the file, so it cannot hold the file's own checksum: it holds the
        # sha256 of the decoded columns instead, which a reader recomputes (see parquet_content_sha256).
        digest = ContentDigest()
        for number in range(self._parts()):
            digest.update(pq.read_table(self._part(number)))
        meta["content_sha256"] = digest.hexdigests()
        schema = self.schema.with_metadata({"xlingual": json.dumps(meta, ensure_ascii=False)})
        merged = self.folder / "merged.parquet"  # inside the partial folder: discarded with it
        with pq.ParquetWriter(merged, schema) as writer:
            for number in range(self._parts()):
                writer.write_table(pq.read_table(self._part(number)).replace_schema_metadata(schema.metadata))
        with open(merged, "rb") as fh:
            os.fsync(fh.fileno())
        return [(merged, self.out)]

    def close(self) -> None:
        return None


class ContentDigest:
    """sha256 of an embeddings table's columns, the same however its rows are split into row groups.

    ``embedding``: the stored values row after row, little-endian; ``id`` and ``text``: every value's UTF-8
    bytes, each preceded by its length as 8 little-endian bytes.
    """

    def __init__(self) -> None:
        self._hashes = {"id": hashlib.sha256(), "text": hashlib.sha256(), "embedding": hashlib.sha256()}

    def update(self, table: Any) -> None:
        """Add the rows of a pyarrow table with ``id``, ``text`` and ``embedding`` columns."""
        values = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        self.update_columns(table.column("id").to_pylist(), table.column("text").to_pylist(), np.asarray(values))

    def update_columns(self, ids: Sequence[str], texts: Sequence[str], values: np.ndarray) -> None:
        """Add rows given as column values (``values``: the stored vectors, any shape, row after row)."""
        for name, column in (("id", ids), ("text", texts)):
            digest = self._hashes[name]
            for value in column:
                data = str(value).encode("utf-8")
                digest.update(struct.pack("<Q", len(data)))
                digest.update(data)
        self._hashes["embedding"].update(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes())

    def hexdigests(self) -> dict[str, str]:
        """The sha256 of each column so far."""
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}


_WRITERS: dict[OutputFormat, Any] = {
    OutputFormat.NPY: _NpyWriter,
    OutputFormat.JSONL: _JsonlWriter,
    OutputFormat.PARQUET: _ParquetWriter,
}


def open_writer(fmt: OutputFormat, out: Path, dtype: EmbedDtype, width: int, state: dict[str, int] | None) -> Writer:
    """The writer of ``fmt`` for ``out``: fresh partial files, or (``state`` from the progress file) resumed ones."""
    writer: Writer = _WRITERS[fmt](out, dtype, width, state)
    return writer


def sweep_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left beside ``out``'s progress and metadata files."""
    for target in (progress_path(out), meta_path(out)):
        _io.sweep_stale(target)


def discard_partials(out: Path) -> None:
    """Delete the partial files, progress file and stale temporary files of a previous run at ``out``."""
    sweep_temporaries(out)
    for path in (partial_path(out), partial_path(ids_path(out)), progress_path(out)):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def publish(out: Path, fmt: OutputFormat, meta: dict[str, Any], renames: Sequence[Sequence[str]]) -> list[Path]:
    """Rename the sealed files into place (the metadata sidecar first); safe to repeat after a crash midway."""
    if fmt is not OutputFormat.PARQUET:
        _io.atomic_write_json(meta_path(out), meta)
    for source, target in renames:
        if (out.parent / source).exists():  # absent: renamed by the run that was interrupted
            os.replace(out.parent / source, out.parent / target)
    _io.fsync_dir(out.parent)
    if fmt is OutputFormat.PARQUET:
        shutil.rmtree(partial_path(out), ignore_errors=True)
        return [out]
    return [out, ids_path(out), meta_path(out)] if fmt is OutputFormat.NPY else [out, meta_path(out)]
