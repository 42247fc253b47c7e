"""The one I/O layer: atomic writes (always fsync), folder swaps, checksums, locks, full-disk messages.

Every artifact is written under a temporary name and published by a rename, so a reader (or a run after
a ``kill -9``) sees the complete previous version or the complete new one. A folder that replaces an
existing one is swapped in with one ``renameat2(RENAME_EXCHANGE)`` on Linux — no moment without a
folder at the target; elsewhere two renames, the old folder kept under a hidden name until the new one
is in place.

Checksums are ``{"bytes": n, "sha256": hex}`` per file, keyed by the path relative to the artifact;
:func:`check_files` compares them with what is on disk and returns one line per problem (path, expected
and found), which each loader turns into an error saying what to do.

Example::

    checksums = folder_checksums(tmp)        # {"model/model.safetensors": {"bytes": 123, "sha256": "…"}, …}
    replace_dir(tmp, Path("runs/x/model"))
    problems = check_files(Path("runs/x/model"), checksums)   # [] when intact
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from xlingual.errors import ConfigError

#: errno values that mean "the disk (or the user's quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_BLOCK = 1 << 20
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


#: How libraries that do not raise ``OSError`` report a full disk: safetensors (Rust's ``StorageFull``),
#: PyTorch's zip writer (``file write failed``, errno lost) and messages that keep the C library's text.
_DISK_FULL_TEXTS = ("No space left on device", "StorageFull", "Disk quota exceeded", "file write failed")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` reports a full disk or quota: ``OSError`` ENOSPC/EDQUOT, or a library's words for it."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno in DISK_FULL_ERRNOS
    return isinstance(exc, Exception) and any(text in str(exc) for text in _DISK_FULL_TEXTS)


def disk_full_message(path: str | os.PathLike[str], intact: str, then: str) -> str:
    """The message for a write to ``path`` that ran out of space: what is intact, and how to go on.

    Example: ``disk_full_message("idx", "the previous index at idx is intact", "run the build again")``.
    """
    return f"no space left on device while writing {path}; {intact}. Free some disk space, then {then}"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames into it) to disk; a no-op where folders cannot be fsynced."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], start: int = 0, stop: int | None = None) -> str:
    """Hex sha256 of a file's bytes ``[start, stop)`` (the whole file by default), streamed through 1 MiB.

    A file shorter than ``stop`` hashes what is there (the digest then cannot match an expected one).
    """
    digest = hashlib.sha256()
    buffer = bytearray(_READ_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        if start:
            handle.seek(start)
        left = float("inf") if stop is None else stop - start
        while left > 0:
            got = handle.readinto(view[: int(min(left, _READ_BLOCK))])
            if not got:
                break
            digest.update(view[:got])
            left -= got
    return digest.hexdigest()


# --------------------------------------------------------------------------- atomic file writes


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> dict[str, Any]:
    """Write ``data`` to ``path`` through a hidden temporary sibling, fsync, rename; return its checksum entry.

    A reader sees the old file or the new one, never a part. A failed write (full disk) removes the temporary
    file and raises the ``OSError``. Example: ``atomic_write_bytes(Path("idx/faiss.index"), blob)``.
    """
    path = Path(path)
    tmp = temp_sibling(path, "tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return {"bytes": len(data), "sha256": sha256_bytes(data)}


def atomic_write_text(path: str | os.PathLike[str], text: str) -> dict[str, Any]:
    """:func:`atomic_write_bytes` of ``text`` as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_text_stream(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A UTF-8 text file to write line by line, published at ``path`` (fsync, rename) when the block ends.

    For output too large to hold in memory; an exception in the block (or a kill) leaves ``path`` as it was and
    removes the temporary sibling. Example: ``with atomic_text_stream("labels.tsv") as out: out.write(line)``.
    """
    path = Path(path)
    tmp = temp_sibling(path, "tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def json_text(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """The one JSON layout of our files: UTF-8 characters kept, ``indent``, a final newline."""
    return json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> dict[str, Any]:
    """Write ``obj`` as JSON (:func:`json_text`) atomically; return the file's checksum entry."""
    return atomic_write_text(path, json_text(obj, indent=indent, sort_keys=sort_keys))


# --------------------------------------------------------------------------- locks


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike[str], *, blocking: bool = True, on_wait: Callable[[], None] | None = None
) -> Iterator[bool]:
    """Hold an exclusive advisory ``flock`` on ``path`` (created if missing) for the ``with`` block.

    Yields True once held; with ``blocking=False`` yields False at once if another process holds it.
    ``on_wait`` is called before blocking (to log that we wait). The lock file is never deleted: deleting it
    would let two processes lock different inodes. Example: ``with file_lock(folder / ".lock"): ...``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                yield False
                return
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# --------------------------------------------------------------------------- provenance


def package_versions(packages: Iterable[str], *, python: bool = True) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None when absent), with Python's first, for config.json files.

    Example: ``package_versions(["torch", "numpy"])`` → ``{"python": "3.11.7", "torch": "2.13.0", …}``.
    """
    out: dict[str, str | None] = {"python": sys.version.split()[0]} if python else {}
    for package in packages:
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            out[package] = None
    return out


def file_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex}`` of one file."""
    return {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}


def folder_checksums(folder: str | os.PathLike[str], *, exclude: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Checksum entry of every file under ``folder`` (relative POSIX paths, sorted), except ``exclude``."""
    root = Path(folder)
    skip = set(exclude)
    entries: dict[str, dict[str, Any]] = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel not in skip:
            entries[rel] = file_entry(file)
    return entries


def check_files(
    folder: str | os.PathLike[str], checksums: Mapping[str, Mapping[str, Any]], *, verify: bool = True
) -> list[str]:
    """Problems of the files ``checksums`` lists under ``folder``: missing, other size, other sha256.

    Sizes are always compared; contents only with ``verify``. Returns one line per bad file, e.g.
    ``"idx/a.bin: 10 bytes, expected 12"`` or ``"idx/a.bin: sha256 9f2c…, expected 41d0…"``; ``[]`` if intact.
    """
    root = Path(folder)
    problems: list[str] = []
    for rel, expected in checksums.items():
        path = root / rel
        # A damaged manifest may hold anything here; a bad entry is a problem line, not a crash.
        expected_bytes = expected.get("bytes") if isinstance(expected, Mapping) else None
        if not isinstance(expected_bytes, int) or isinstance(expected_bytes, bool) or expected_bytes < 0:
            entry = _short_repr(expected)
            problems.append(f"{path}: bad checksum entry {entry}, expected {{'bytes': n, 'sha256': hex}}")
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{path} is missing")
            continue
        if size != expected_bytes:
            problems.append(f"{path}: {size:,} bytes, expected {expected_bytes:,}")
        elif verify and (actual := sha256_file(path)) != expected.get("sha256"):
            problems.append(f"{path}: sha256 {actual[:16]}…, expected {str(expected.get('sha256'))[:16]}…")
    return problems


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def temp_sibling(target: str | os.PathLike[str], tag: str) -> Path:
    """A hidden sibling ``.NAME.TAG-PID-RANDOM`` of ``target``, e.g. ``temp_sibling(Path("idx"), "tmp")``.

    On the target's filesystem (so a rename publishes it), and named so that :func:`sweep_stale` can tell
    whether the process that made it is still alive.
    """
    target = Path(target)
    return target.with_name(f".{target.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the :func:`temp_sibling` folders and files of ``target`` whose process is gone (killed mid-write).

    Returns what was deleted. Siblings of live processes (a concurrent writer) are left alone, and a previous
    folder that :func:`replace_dir` had moved aside when it was killed is put back if ``target`` is missing.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.([a-z]+)-(\d+)-[0-9a-f]{{8}}")
    if not target.parent.is_dir():
        return []
    removed = []
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if not match or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not target.exists():  # killed between the two renames of replace_dir
            os.replace(entry, target)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # glibc < 2.28 or another libc
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(second))


def prepare_out(out: Path, overwrite: bool, *, what: str, is_ours: Callable[[Path], bool], ours: str) -> None:
    """Check that a writer may publish a folder at ``out``: absent, empty, or one of its own with ``overwrite``.

    A non-empty ``out`` needs ``overwrite``, and even then only a folder ``is_ours`` recognises (what this
    writer made) may be replaced, so a mistyped ``--out`` never deletes someone else's files.
    ``what`` names the output in messages, ``ours`` describes a folder of this writer.
    Example: ``prepare_out(Path("small"), True, what="the trimmed model", is_ours=lambda p: (p / "x.json").is_file(),
    ours="a trimmed model folder (no x.json)")``.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder path for {what}")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"{out} already exists and is not empty; pass --overwrite to replace it, or another --out")
    if not is_ours(out):
        raise ConfigError(f"{out} is not {ours}, so --overwrite will not delete it; pass another --out")


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Publish the complete folder ``new`` at ``target``, replacing any folder there, then delete the old one.

    Both must be on one filesystem (``new`` is normally a hidden sibling of ``target``). At every moment
    ``target`` is the old folder or the new one: swapped in one ``renameat2(RENAME_EXCHANGE)`` on Linux.
    Without it, the old folder is renamed to ``.NAME.old-…`` first, so a crash between the two renames
    leaves it there, intact, rather than nowhere (and :func:`sweep_stale` does not delete it while ``target``
    is missing).
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # it now holds the previous folder
    else:
        old = temp_sibling(target, "old")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(target.parent)


def remove_dir(folder: str | os.PathLike[str]) -> None:
    """Delete a folder so that it is never seen half-deleted: rename it to a hidden name first."""
    folder = Path(folder)
    doomed = temp_sibling(folder, "del")
    try:
        os.replace(folder, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


# --------------------------------------------------------------------------- in-place writes
# Added for the embedding cache, which fills a preallocated file chunk by chunk and resumes after a crash.


def write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at byte ``offset`` of the open file ``fd``, then fsync it; a short write is continued.

    Not atomic: for files preallocated to their final size whose chunks are checksummed separately
    (a crash leaves earlier chunks intact). Raises the ``OSError`` (e.g. a full disk).
    Example: ``write_at(fd, chunk_emb.tobytes(), row * dim * 4)``.
    """
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    os.fsync(fd)
