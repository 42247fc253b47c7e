"""Content-addressed on-disk store of embedding matrices (teacher embeddings, computed once).

An entry is keyed by :func:`cache_key` — sha256 over the model's identity, its max sequence length,
an extra string (a prompt) and the exact sentences in order — and lives in its own folder::

    <root>/<key[:2]>/<key>/emb.f32     raw little-endian float32, shape (n, dim), C order
    <root>/<key[:2]>/<key>/meta.json   n, dim, dtype, model_id, max_seq_length, extra, created_at,
                                       xlingual_version, sha256 and size of emb.f32, caller's fields
    <root>/<key[:2]>/<key>.partial/    an entry being computed: emb.f32 (preallocated) + progress.json
    <root>/<key[:2]>/<key>.lock        advisory lock (fcntl.flock) held while computing the key

``emb.f32`` is raw bytes rather than ``.npy`` so that the checksum in ``meta.json`` is the sha256
of the array bytes themselves and the expected file size is exactly ``n * dim * 4``; load it
without xlingual with ``np.memmap(path, dtype="<f4", mode="r", shape=(n, dim))``.

Entries are read as read-only memory maps, so 1M×384 vectors (1.5 GB) are paged in on demand.
A computation saves its progress after every chunk and resumes after a crash (even ``kill -9``);
the finished folder appears with one atomic rename, so readers never see half an entry.
Reading checks the file size always and the sha256 when ``verify=True`` (the default; about
0.8–1.05 GB/s measured on the 2-core build machine: 1.5–2 s for 1M×384). Writing is bound by
the fsync after each chunk (~20 s for 1.5 GB there), small next to running the teacher.
What happens to an entry's files (checks, progress, chunk writes, messages) is in :mod:`xlingual._cache_files`.

Example::

    cache = EmbeddingCache()
    key = cache_key(teacher_fingerprint, sentences, max_seq_length=256)
    teacher_emb = cache.get_or_compute(key, sentences, teacher.encode)  # (n, dim) float32, read-only
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import __version__, _io
from xlingual._cache_files import (
    DTYPE,
    EMB_FILE,
    FORMAT_VERSION,
    ITEMSIZE,
    KEY_RE,
    META_FILE,
    PROGRESS_FILE,
    ComputeFn,
    FloatMatrix,
    call_compute,
    check_key,
    check_rows,
    corrupt,
    create_emb,
    io_error,
    load_progress,
    locked,
    open_rw,
    read_meta,
    reset_partial,
    rows_done,
    sha256_range,
    write_chunk,
    write_json,
)
from xlingual.config import CacheConfig, xlingual_home
from xlingual.errors import CacheError, DataError

logger = logging.getLogger(__name__)

__all__ = ["EMB_FILE", "FORMAT_VERSION", "META_FILE", "PROGRESS_FILE", "EmbeddingCache", "cache_key", "default_root"]

#: Fields of meta.json that the cache owns; a caller's ``meta`` may not override them.
_RESERVED = frozenset(
    {"format", "key", "n", "dim", "dtype", "byte_order", "file", "nbytes", "sha256", "created_at"}
    | {"xlingual_version"}
)

ProgressFn = Callable[[int, int], None]


def default_root() -> Path:
    """Return the default cache folder, ``xlingual_home() / "embeddings"``."""
    return xlingual_home() / "embeddings"


def cache_key(model_id: str, texts: Sequence[str], *, max_seq_length: int, extra: str = "") -> str:
    """Return the cache key (64 hex characters) of ``texts`` embedded by one model configuration.

    Every field is hashed with a length prefix, so ``["ab", "c"]`` and ``["a", "bc"]`` differ.

    Args:
        model_id: identity of the model's weights, e.g. a content fingerprint of its folder.
        texts: the sentences, in the order their embeddings will be stored.
        max_seq_length: the model's token limit (longer sentences are truncated, so it matters).
        extra: anything else that changes the vectors, e.g. a prompt prefix or pooling mode.

    Example: ``cache_key("sha256:1f3a…", ["Hello.", "Thanks."], max_seq_length=256)``.
    """
    if not isinstance(model_id, str) or not model_id:
        raise ValueError(f"model_id must be a non-empty string (a fingerprint of the weights), got {model_id!r}")
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 1:
        raise ValueError(f"max_seq_length must be a positive int, got {max_seq_length!r}")
    if not isinstance(extra, str):
        raise ValueError(f"extra must be a string, got {extra!r}")
    if isinstance(texts, str | bytes):
        raise TypeError("texts is a single string; pass a list of sentences")

    digest = hashlib.sha256()
    header = [f"xlingual-embeddings-v{FORMAT_VERSION}", model_id, str(max_seq_length), extra]
    digest.update(b"".join(_framed(field) for field in header))
    digest.update(len(texts).to_bytes(8, "little"))
    # Hashing joined batches is ~3x faster than one update per sentence (1M sentences: ~0.5 s).
    batch: list[bytes] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"texts[{i}] is {type(text).__name__} {text!r}, expected str")
        batch.append(_framed(text))
        if len(batch) == 4096:
            digest.update(b"".join(batch))
            batch.clear()
    digest.update(b"".join(batch))
    return digest.hexdigest()


def _framed(text: str) -> bytes:
    # surrogatepass: a lone surrogate (from a bad decode upstream) still gets a stable key.
    data = text.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(8, "little") + data


class EmbeddingCache:
    """On-disk store of ``(n, dim) float32`` embedding matrices, keyed by :func:`cache_key`.

    Safe across processes: a key is computed under an advisory lock, so two DDP ranks asking
    for the same key compute it once; the other waits and then reads the finished entry.

    Example::

        cache = EmbeddingCache(tmp_path)
        emb = cache.get_or_compute(key, texts, encode)  # computes and stores
        emb = cache.get_or_compute(key, texts, encode)  # memory-maps; encode is not called
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()

    # ------------------------------------------------------------------ paths

    def path(self, key: str) -> Path:
        """Return the folder of ``key``'s entry (which may not exist)."""
        check_key(key)
        return self.root / key[:2] / key

    def _partial_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.partial"

    def _lock_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.lock"

    # ------------------------------------------------------------------ reading

    def __contains__(self, key: object) -> bool:
        """Whether a finished entry exists for ``key`` (cheap: neither size nor checksum is checked)."""
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            return False
        return (self.path(key) / META_FILE).is_file()

    def get(self, key: str, *, verify: bool = CacheConfig.verify) -> FloatMatrix | None:
        """Return the entry as a read-only ``(n, dim) float32`` memory map, or ``None`` if absent.

        The file size is always checked against ``meta.json``; with ``verify=True`` the sha256 of
        the array bytes is checked too (reads the whole file once: 1.5–2 s for 1M×384 vectors).

        Raises:
            CacheError: the entry is incomplete or corrupt; the message names the folder to delete.
        """
        folder = self.path(key)
        if not folder.exists():
            return None
        meta = read_meta(key, folder)
        n, dim = meta["n"], meta["dim"]
        emb_path = folder / EMB_FILE
        try:
            size = emb_path.stat().st_size
        except FileNotFoundError:
            raise corrupt(key, folder, f"{EMB_FILE} is missing") from None
        except OSError as exc:
            raise io_error(exc, emb_path, "reading") from exc
        expected = n * dim * ITEMSIZE
        if size != expected:
            raise corrupt(key, folder, f"{EMB_FILE} has {size} bytes, expected {expected} (n={n} × dim={dim} × 4)")
        if verify:
            actual = sha256_range(emb_path, 0, size)
            if actual != meta["sha256"]:
                raise corrupt(
                    key,
                    folder,
                    f"checksum mismatch: sha256 of {EMB_FILE} is {actual}, meta says {meta['sha256']}",
                )
        try:
            return np.memmap(emb_path, dtype=DTYPE, mode="r", shape=(n, dim))
        except (OSError, ValueError) as exc:
            raise corrupt(key, folder, f"cannot memory-map {EMB_FILE}: {exc}") from exc

    # ------------------------------------------------------------------ computing

    def get_or_compute(
        self,
        key: str,
        texts: Sequence[str],
        compute: ComputeFn,
        *,
        chunk_size: int = CacheConfig.chunk_size,
        progress: ProgressFn | None = None,
        meta: dict[str, Any] | None = None,
        verify: bool = CacheConfig.verify,
    ) -> FloatMatrix:
        """Return the ``(n, dim) float32`` embeddings of ``texts``, computing them only if not cached.

        ``compute(chunk)`` gets up to ``chunk_size`` sentences and must return a ``(len(chunk), dim)``
        array of finite floats; ``dim`` is learned from the first chunk. Each chunk is written to
        ``<key>.partial/`` and progress is saved, so after a crash (or an exception from ``compute``)
        the next call resumes at the first unfinished chunk. ``progress(done, total)`` is called
        once before the first chunk and after each chunk. ``meta`` (JSON-serialisable; normally
        ``model_id``, ``max_seq_length`` and ``extra``, the inputs of :func:`cache_key`) is stored in
        ``meta.json``; when it holds all three, the key is checked against ``texts``.

        Returns:
            A read-only memory map; ``compute`` is not called when the entry exists.

        Raises:
            CacheError: ``compute`` returned a wrong shape or non-finite values (names the rows), the
                disk is full or unwritable (names the path), or the existing entry is corrupt.
        """
        texts_n = len(texts)
        cached = self.get(key, verify=verify)
        if cached is not None:
            check_rows(key, cached.shape[0], texts_n)
            return cached
        if texts_n == 0:
            raise DataError("nothing to embed: texts is empty; pass at least one sentence")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        user_meta = _check_user_meta(key, texts, meta)

        shard = self.root / key[:2]
        try:
            shard.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error(exc, shard, "creating the cache folder") from exc
        with locked(self._lock_path(key)):
            # Another process may have finished the key while we waited for the lock.
            cached = self.get(key, verify=verify)
            if cached is None:
                self._computelocked(key, texts, compute, chunk_size, progress, user_meta)
                cached = self.get(key, verify=False)  # just hashed while finishing
            if cached is None:  # pragma: no cover - only if someone deletes the folder under the lock
                raise CacheError(f"cache entry {self.path(key)} vanished right after it was written")
        check_rows(key, cached.shape[0], texts_n)
        return cached

    def _computelocked(
        self,
        key: str,
        texts: Sequence[str],
        compute: ComputeFn,
        chunk_size: int,
        progress: ProgressFn | None,
        user_meta: dict[str, Any],
    ) -> None:
        n = len(texts)
        partial = self._partial_path(key)
        emb_path = partial / EMB_FILE
        state = load_progress(key, partial, n)
        fd: int | None = None
        try:
            if state is not None:
                fd = open_rw(emb_path)
            else:
                reset_partial(partial)
                state = {"format": FORMAT_VERSION, "key": key, "n": n, "dim": None, "chunks": []}
            done = rows_done(state)
            if progress is not None:
                progress(done, n)
            while done < n:
                stop = min(done + chunk_size, n)
                chunk_emb = call_compute(compute, texts, done, stop, state["dim"], partial)
                if fd is None:  # first chunk: now the size of the whole matrix is known
                    state["dim"] = int(chunk_emb.shape[1])
                    fd = create_emb(emb_path, n * state["dim"] * ITEMSIZE)
                data = chunk_emb.tobytes()
                write_chunk(fd, data, done * state["dim"] * ITEMSIZE, emb_path)
                state["chunks"].append({"start": done, "stop": stop, "sha256": _io.sha256_bytes(data)})
                write_json(partial / PROGRESS_FILE, state)
                done = stop
                if progress is not None:
                    progress(done, n)
        finally:
            if fd is not None:
                os.close(fd)
        self._finish(key, partial, state, user_meta)

    def _finish(self, key: str, partial: Path, state: dict[str, Any], user_meta: dict[str, Any]) -> None:
        n, dim = state["n"], state["dim"]
        emb_path = partial / EMB_FILE
        nbytes = n * dim * ITEMSIZE
        meta = {
            "format": FORMAT_VERSION,
            "key": key,
            "n": n,
            "dim": dim,
            "dtype": "float32",
            "byte_order": "little",
            "file": EMB_FILE,
            "nbytes": nbytes,
            # Hash what is on disk, not what we meant to write.
            "sha256": sha256_range(emb_path, 0, nbytes),
            "model_id": user_meta.pop("model_id", None),
            "max_seq_length": user_meta.pop("max_seq_length", None),
            "extra": user_meta.pop("extra", None),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "xlingual_version": __version__,
            **user_meta,
        }
        write_json(partial / META_FILE, meta)
        final = self.path(key)
        try:
            # A plain rename, not _io.replace_dir: an entry another process finished first must stay.
            os.rename(partial, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise io_error(exc, final, "renaming the finished entry into") from exc
            # Someone finished first (e.g. a process on a filesystem where flock is a no-op).
            self.get(key, verify=True)  # raises if theirs is broken; ours stays for inspection
            logger.info("cache entry %s was finished by another process; discarding ours", final)
            shutil.rmtree(partial, ignore_errors=True)
            return
        _io.fsync_dir(final.parent)
        (final / PROGRESS_FILE).unlink(missing_ok=True)

    # ------------------------------------------------------------------ housekeeping

    def remove(self, key: str) -> bool:
        """Delete ``key``'s entry and any unfinished computation of it; return whether anything existed.

        Raises:
            CacheError: another process is computing the key right now.
        """
        final, partial = self.path(key), self._partial_path(key)
        if not final.exists() and not partial.exists():
            return False
        with locked(self._lock_path(key), blocking=False) as acquired:
            if not acquired:
                raise CacheError(
                    f"cache entry {final} is being computed by another process "
                    f"(lock {self._lock_path(key)} is held); remove it after that finishes"
                )
            for folder in (final, partial):
                try:
                    _io.remove_dir(folder)  # renamed first: a reader never sees a half-deleted entry
                except OSError as exc:
                    raise io_error(exc, folder, "removing") from exc
        return True

    def entries(self) -> list[dict[str, Any]]:
        """Return the ``meta.json`` of every finished entry (plus ``path``), oldest first.

        An entry whose meta cannot be read is listed as ``{"key", "path", "error"}``.
        """
        found: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return found
        for shard in sorted(self.root.iterdir()):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for folder in sorted(shard.iterdir()):
                if not folder.is_dir() or not KEY_RE.fullmatch(folder.name):
                    continue
                try:
                    meta = read_meta(folder.name, folder)
                except CacheError as exc:
                    found.append({"key": folder.name, "path": str(folder), "error": str(exc)})
                    continue
                found.append({**meta, "path": str(folder)})
        found.sort(key=lambda entry: str(entry.get("created_at", "")))
        return found

    def size_bytes(self) -> int:
        """Return the total size of all files under the root, unfinished computations included."""
        total = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:  # removed concurrently
                    continue
        return total


def _check_user_meta(key: str, texts: Sequence[str], meta: dict[str, Any] | None) -> dict[str, Any]:
    user_meta = dict(meta or {})
    clash = sorted(_RESERVED & user_meta.keys())
    if clash:
        raise ValueError(f"meta may not set {clash}: the cache writes these fields itself")
    try:
        json.dumps(user_meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from exc
    if {"model_id", "max_seq_length", "extra"} <= user_meta.keys():
        expected = cache_key(
            user_meta["model_id"],
            texts,
            max_seq_length=user_meta["max_seq_length"],
            extra=user_meta["extra"],
        )
        if expected != key:
            raise ValueError(
                f"key {key} does not match cache_key() of these texts with this meta ({expected}); "
                "the embeddings would be stored under the wrong key"
            )
    return user_meta
