"""Reading embeddings files back, checked: metadata, checksums, shapes, one id per vector.

Example: ``ids, vectors, texts, meta = read_embeddings("emb.parquet")``; ``to_float32(vectors, meta)`` gives floats.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xlingual._io import check_files
from xlingual.choices import EmbedDtype, OutputFormat
from xlingual.errors import DataError
from xlingual.export.dtypes import numpy_dtype, vector_width
from xlingual.export.writers import ContentDigest, ids_path, meta_path, output_format, progress_path

__all__ = ["EmbeddingsFile", "read_embeddings"]


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
    width = vector_width(dtype, dim)
    if vectors.ndim != 2 or vectors.shape[1] != width or vectors.dtype != numpy_dtype(dtype):
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
    digest = ContentDigest()
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
    store = numpy_dtype(dtype)
    width = vector_width(dtype, meta["dim"])
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
