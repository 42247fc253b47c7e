"""The files of one embedding-cache entry: layout, checks, the resumable computation's progress, error messages.

:class:`xlingual.cache.EmbeddingCache` is the store's API; this module is what it does on disk. An entry is
``emb.f32`` (raw little-endian float32, ``(n, dim)``) plus ``meta.json``; an unfinished one is a
``<key>.partial/`` folder whose ``emb.f32`` is preallocated and filled chunk by chunk, each chunk's sha256
recorded in ``progress.json``, so a crashed computation resumes at its first chunk that does not verify.
Every write goes through :mod:`xlingual._io`; every ``OSError`` becomes a :class:`CacheError` naming the path.

Example: ``read_meta(key, cache.path(key))["n"]``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from xlingual import _io
from xlingual.errors import CacheError

logger = logging.getLogger("xlingual.cache")

EMB_FILE = "emb.f32"
META_FILE = "meta.json"
PROGRESS_FILE = "progress.json"
#: Bump when the key derivation or the entry layout changes; old entries are then simply not found.
FORMAT_VERSION = 1

KEY_RE = re.compile(r"[0-9a-f]{64}")
DTYPE = np.dtype("<f4")
ITEMSIZE = DTYPE.itemsize
_UNSUPPORTED_FALLOCATE = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

FloatMatrix = npt.NDArray[np.float32]
ComputeFn = Callable[[Sequence[str]], Any]


# ---------------------------------------------------------------------- checks and messages


def check_key(key: str) -> None:
    """Raise :class:`CacheError` unless ``key`` is 64 lowercase hex characters (a :func:`cache_key`)."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise CacheError(f"not a cache key: {key!r}; expected 64 lowercase hex characters from cache_key()")


def check_rows(key: str, rows: int, texts_n: int) -> None:
    """Raise ``ValueError`` when an entry of ``rows`` rows is asked for ``texts_n`` texts."""
    if rows != texts_n:
        raise ValueError(
            f"cache entry {key} holds {rows} rows but {texts_n} texts were given; "
            "the key was not made from these texts (use cache_key(model_id, texts, ...))"
        )


def corrupt(key: str, folder: Path, problem: str) -> CacheError:
    """The error for a damaged entry: what is wrong, and which folder to delete."""
    return CacheError(
        f"cache entry {folder} is corrupt: {problem}; delete the folder {folder} "
        f"(or call EmbeddingCache.remove({key[:12]}…)), it will be recomputed"
    )


def io_error(exc: OSError, path: Path, doing: str) -> CacheError:
    """The error for an ``OSError`` while ``doing`` something to ``path``; a full disk says how to go on."""
    reason = exc.strerror or str(exc)
    if _io.is_disk_full(exc):
        return CacheError(
            f"no space left on device while {doing} {path} ({reason}); free some space or point "
            "XLINGUAL_HOME at a larger disk, then run again: finished chunks are kept and resumed"
        )
    return CacheError(f"{doing} {path} failed: {reason} (errno {exc.errno})")


def read_meta(key: str, folder: Path) -> dict[str, Any]:
    """Read and check ``meta.json`` of the entry in ``folder``; raises :class:`CacheError` naming the problem."""
    meta_path = folder / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise corrupt(key, folder, f"{META_FILE} is missing") from None
    except (ValueError, RecursionError) as exc:  # undecodable bytes, bad JSON, a 5000-digit number, [[[[…
        reason = str(exc).split(";")[0]
        raise corrupt(key, folder, f"{META_FILE} is not valid JSON ({reason})") from exc
    except OSError as exc:
        raise io_error(exc, meta_path, "reading") from exc
    if not isinstance(meta, dict):
        raise corrupt(key, folder, f"{META_FILE} holds {type(meta).__name__}, expected an object")
    for field, kind in (("n", int), ("dim", int), ("sha256", str), ("dtype", str)):
        value = meta.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise corrupt(key, folder, f"{META_FILE}: {field}={value!r}, expected {kind.__name__}")
    if meta["n"] < 1 or meta["dim"] < 1:
        raise corrupt(key, folder, f"{META_FILE}: n={meta['n']}, dim={meta['dim']}, expected positive")
    if meta["dtype"] != "float32":
        raise corrupt(key, folder, f"{META_FILE}: dtype={meta['dtype']!r}, expected 'float32'")
    if meta.get("key", key) != key:
        raise corrupt(key, folder, f"{META_FILE} belongs to key {meta['key']!r}")
    return meta


# ---------------------------------------------------------------------- one chunk of the computation


def call_compute(
    compute: ComputeFn, texts: Sequence[str], start: int, stop: int, dim: int | None, partial: Path
) -> FloatMatrix:
    """Run ``compute`` on ``texts[start:stop]``; return its ``(stop - start, dim)`` float32 result, checked."""
    try:
        raw = compute(list(texts[start:stop]))
    except OSError as exc:
        cause = io_error(exc, partial, f"computing rows {start}:{stop} for")
        raise CacheError(f"{cause}; rows 0:{start} are saved and the next call resumes there") from exc
    rows = stop - start
    try:
        chunk_emb = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise CacheError(f"compute returned {type(raw).__name__} for rows {start}:{stop}: {exc}") from exc
    shape: tuple[int, ...] = chunk_emb.shape
    want = f"({rows}, {dim if dim is not None else 'dim'})"
    if (
        chunk_emb.ndim != 2
        or shape[0] != rows
        or shape[1] < 1
        or (dim is not None and shape[1] != dim)
        or chunk_emb.dtype.kind not in "fiu"
    ):
        raise CacheError(
            f"compute returned shape {shape} {chunk_emb.dtype} for rows {start}:{stop} "
            f"({rows} sentences); expected {want} floats"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported just below
        chunk_emb = np.ascontiguousarray(chunk_emb, dtype=DTYPE)
    finite = np.isfinite(chunk_emb).all(axis=1)
    if not finite.all():
        bad = start + int(np.argmin(finite))
        raise CacheError(
            f"compute returned non-finite values (NaN or inf) for rows {start}:{stop}, first at row {bad}; "
            "the model diverged or a sentence is degenerate"
        )
    return chunk_emb


def rows_done(state: dict[str, Any]) -> int:
    """Rows of the computation already written and verified (the ``stop`` of its last chunk)."""
    chunks = state["chunks"]
    return int(chunks[-1]["stop"]) if chunks else 0


# ---------------------------------------------------------------------- resuming


def load_progress(key: str, partial: Path, n: int) -> dict[str, Any] | None:
    """Return the saved progress of an interrupted computation, cut back to its verified chunks."""
    try:
        state = _read_progress(key, partial, n)
    except (OSError, ValueError, AttributeError, TypeError, RecursionError) as exc:
        if partial.exists():
            logger.warning("restarting the computation in %s: %s", partial, exc)
        return None
    state["chunks"] = _verified_chunks(state["chunks"], partial, n, state["dim"])
    if state["chunks"]:
        logger.info("resuming %s at row %d of %d", partial, state["chunks"][-1]["stop"], n)
    return state


def _read_progress(key: str, partial: Path, n: int) -> dict[str, Any]:
    state = json.loads((partial / PROGRESS_FILE).read_text(encoding="utf-8"))
    if not (
        state.get("format") == FORMAT_VERSION
        and state.get("key") == key
        and state.get("n") == n
        and isinstance(state.get("dim"), int)
        and not isinstance(state.get("dim"), bool)
        and state["dim"] > 0
        and isinstance(state.get("chunks"), list)
    ):
        raise ValueError("progress.json does not describe this computation")
    size = (partial / EMB_FILE).stat().st_size
    dim = state["dim"]
    if size != n * dim * ITEMSIZE:
        raise ValueError(f"{EMB_FILE} has {size} bytes, expected {n * dim * ITEMSIZE}")
    return dict(state)


def _verified_chunks(chunks: list[Any], partial: Path, n: int, dim: int) -> list[dict[str, Any]]:
    """The contiguous prefix of ``chunks`` whose bytes on disk still match their checksum."""
    kept: list[dict[str, Any]] = []
    row_bytes = dim * ITEMSIZE
    for chunk in chunks:
        if not isinstance(chunk, dict):
            break
        start, stop = chunk.get("start"), chunk.get("stop")
        expected_start = kept[-1]["stop"] if kept else 0
        if not (isinstance(start, int) and isinstance(stop, int) and start == expected_start < stop <= n):
            break
        if sha256_range(partial / EMB_FILE, start * row_bytes, stop * row_bytes) != chunk.get("sha256"):
            logger.warning("rows %d:%d in %s fail their checksum; recomputing from there", start, stop, partial)
            break
        kept.append(chunk)
    return kept


# ---------------------------------------------------------------------- file operations


def reset_partial(partial: Path) -> None:
    """Make ``partial`` an empty folder (an unusable earlier attempt is deleted)."""
    try:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
    except OSError as exc:
        raise io_error(exc, partial, "preparing") from exc


def open_rw(path: Path) -> int:
    """Open an existing ``emb.f32`` for the chunks still to write; returns the descriptor."""
    try:
        return os.open(path, os.O_RDWR)
    except OSError as exc:
        raise io_error(exc, path, "opening") from exc


def create_emb(path: Path, nbytes: int) -> int:
    """Create ``path`` with all ``nbytes`` allocated up front, so a full disk fails now, not midway."""
    fd = -1
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.posix_fallocate(fd, 0, nbytes)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED_FALLOCATE:
                raise
            os.ftruncate(fd, nbytes)  # sparse; a full disk then shows up in the chunk writes
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise io_error(exc, path, f"allocating {nbytes} bytes for") from exc
    return fd


def write_chunk(fd: int, data: bytes, offset: int, path: Path) -> None:
    """Write one chunk's bytes at ``offset`` of ``emb.f32`` and fsync them."""
    try:
        _io.write_at(fd, data, offset)
    except OSError as exc:
        raise io_error(exc, path, "writing") from exc


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write ``meta.json`` or ``progress.json`` atomically (fsynced)."""
    try:
        _io.atomic_write_json(path, obj, indent=1)
    except OSError as exc:
        raise io_error(exc, path, "writing") from exc


def sha256_range(path: Path, start: int, stop: int) -> str:
    """Return the sha256 of bytes ``[start, stop)`` of ``path`` (0.8–1 GB/s, warm page cache)."""
    try:
        return _io.sha256_file(path, start, stop)
    except OSError as exc:
        raise io_error(exc, path, "reading") from exc


@contextmanager
def locked(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields False if ``blocking=False`` and it is taken."""
    with ExitStack() as stack:
        try:
            acquired = stack.enter_context(_io.file_lock(path, blocking=blocking, on_wait=lambda: _log_wait(path)))
        except OSError as exc:
            raise io_error(exc, path, "creating the lock file") from exc
        yield acquired


def _log_wait(path: Path) -> None:
    logger.info("waiting for another process computing the same embeddings (lock %s)", path)
