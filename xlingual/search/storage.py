"""An index folder on disk: written whole by a build, extended by an add, read back checked.

**Atomic writes** (all through :mod:`xlingual._io`). A build writes a temporary sibling folder and swaps
it into place in one rename, so an existing index is never missing, even for a moment; the folders of
killed builds are swept by the next. An add writes new files under new names, then replaces
``manifest.json`` — the one file readers trust — and only then deletes the file the new manifest no
longer lists. A crash or a full disk at any point leaves the previous index intact.

**Checked reads.** Every file the manifest lists is compared with its size (always) and sha256 (with
``verify``) before it is parsed; FAISS's and Parquet's own readers then only see vouched-for bytes, or,
without ``verify``, bytes whose layout was checked first. Problems raise
:class:`~xlingual.errors.SearchIndexError` naming the path and the fix.

Example::

    write_new_index(Path("idx"), manifest, faiss_index, table, config)
    faiss_index, store = load_files(Path("idx"), read_manifest(Path("idx")), verify=True)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from xlingual import __version__, _io
from xlingual.choices import IndexType
from xlingual.config import IndexConfig
from xlingual.errors import SearchIndexError
from xlingual.search.ann import IndexSpec
from xlingual.search.manifest import CONFIG_NAME, MANIFEST_NAME, is_count, next_file_names, read_manifest, rebuild_hint
from xlingual.search.passages import PassageStore

#: The files of a new index.
FIRST_INDEX, FIRST_PART = "index-000000.faiss", "passages-00000.parquet"
#: FAISS's tags of a flat index file: inner product, L2, other metrics.
_FLAT_FOURCCS = (b"IxFI", b"IxF2", b"IxFl")
#: The integer parameters of an index block (each a positive integer or null).
_SPEC_INTS = ("hnsw_m", "ef_construction", "ef_search", "nlist", "pq_m", "nprobe", "refine_factor", "train_size")


def faiss_bytes(faiss_index: Any) -> bytes:
    """The FAISS index serialised, as ``faiss.write_index`` would write it."""
    return bytes(faiss.serialize_index(faiss_index).tobytes())


def _config_payload(config: IndexConfig) -> Any:
    """``config.json``: the settings and the command that built the index."""
    payload = {"xlingual_version": __version__, "config": asdict(config), "command": sys.argv}
    # default=str: a setting given as a Path (or another object) is stored as its text.
    return json.loads(json.dumps(payload, default=str))


# --------------------------------------------------------------------------- writing


def write_new_index(
    target: Path,
    manifest: dict[str, Any],
    faiss_index: Any,
    table: Any,
    config: IndexConfig,
    extra: tuple[Mapping[str, Any], Mapping[str, bytes]] | None = None,
) -> dict[str, Any]:
    """Write a complete index into a temporary sibling folder, then swap it in at ``target``; return the manifest.

    ``manifest`` (:func:`~xlingual.search.manifest.new_manifest`) gets its ``files`` and ``checksums`` here.
    ``table``: the passages as an Arrow table (:meth:`PassageStore.to_table`). ``extra``: more ``files``
    entries and the bytes of each file they name (the hubness files). An ``OSError`` (a full disk) leaves no
    temporary folder and any previous index at ``target`` intact.
    """
    entries, blobs = extra or ({}, {})
    target.parent.mkdir(parents=True, exist_ok=True)
    _io.sweep_stale(target)  # temporary folders of builds that were killed
    tmp = _io.temp_sibling(target, "tmp")
    tmp.mkdir()
    try:
        checksums = {
            FIRST_INDEX: _io.atomic_write_bytes(tmp / FIRST_INDEX, faiss_bytes(faiss_index)),
            FIRST_PART: _io.atomic_write_bytes(tmp / FIRST_PART, PassageStore.to_parquet(table)),
        }
        checksums[CONFIG_NAME] = _io.atomic_write_json(tmp / CONFIG_NAME, _config_payload(config))
        checksums.update({name: _io.atomic_write_bytes(tmp / name, data) for name, data in blobs.items()})
        complete = {
            **manifest,
            "files": {"index": FIRST_INDEX, "passages": [FIRST_PART], "config": CONFIG_NAME, **entries},
            "checksums": checksums,
        }
        _io.atomic_write_json(tmp / MANIFEST_NAME, complete)
        _io.fsync_dir(tmp)
        _io.replace_dir(tmp, target)  # one atomic swap: the previous index stays whole until then
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return complete


def write_addition(
    folder: Path, manifest: Mapping[str, Any], faiss_index: Any, table: Any
) -> dict[str, dict[str, Any]]:
    """Write the FAISS index and a new passage part under the next names; return their checksum entries.

    Nothing reads them until :func:`commit_manifest` lists them. ``table``: only the new passages.
    """
    index_name, part_name = next_file_names(manifest)
    return {
        index_name: _io.atomic_write_bytes(folder / index_name, faiss_bytes(faiss_index)),
        part_name: _io.atomic_write_bytes(folder / part_name, PassageStore.to_parquet(table)),
    }


def commit_manifest(folder: Path, manifest: Mapping[str, Any], previous_index: str) -> None:
    """Replace ``manifest.json`` (the commit point), then delete the FAISS file it no longer lists."""
    _io.atomic_write_json(folder / MANIFEST_NAME, manifest)
    _io.fsync_dir(folder)
    if previous_index != manifest["files"]["index"]:
        with contextlib.suppress(OSError):
            (folder / previous_index).unlink()


def discard_uncommitted(folder: Path, names: tuple[str, ...]) -> None:
    """Delete the files of ``names`` that the manifest on disk does not list (an add that never committed)."""
    committed = read_manifest(folder)["checksums"]
    for name in names:
        if name not in committed:
            (folder / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading


def read_checked(folder: Path, name: str, manifest: Mapping[str, Any], *, verify: bool) -> bytes:
    """The bytes of ``folder/name`` after checking them against the manifest's size and sha256."""
    path = folder / name
    expected = manifest["checksums"].get(name)
    if expected is None:
        raise SearchIndexError(
            f"{MANIFEST_NAME} of {folder} has no checksum for {name}; {rebuild_hint(folder, manifest)}"
        )
    if not path.is_file():
        raise SearchIndexError(f"{path} is missing: the index is incomplete; {rebuild_hint(folder, manifest)}")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise SearchIndexError(
            f"{path} has {size:,} bytes, the manifest says {expected['bytes']:,}: the file is truncated or "
            f"was replaced; {rebuild_hint(folder, manifest)}"
        )
    data = path.read_bytes()
    if verify and _io.sha256_bytes(data) != expected["sha256"]:
        raise SearchIndexError(
            f"{path} is corrupt: its sha256 differs from the manifest's; {rebuild_hint(folder, manifest)}"
        )
    return data


def flat_layout_problem(data: bytes) -> str | None:
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


def _read_faiss(folder: Path, manifest: Mapping[str, Any], data: bytes) -> Any:
    name = manifest["files"]["index"]
    try:
        problem = flat_layout_problem(data)
        if problem:
            raise RuntimeError(problem)
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except (RuntimeError, MemoryError) as exc:  # a damaged length field makes FAISS allocate what it says
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SearchIndexError(
            f"{folder / name} is not a readable FAISS index ({reason}); {rebuild_hint(folder, manifest)}"
        ) from exc


def _consistency_problems(manifest: Mapping[str, Any], faiss_index: Any, store: PassageStore) -> list[str]:
    passages = manifest["counts"]["passages"]
    problems = []
    if faiss_index.ntotal != passages:
        problems.append(f"the FAISS index holds {faiss_index.ntotal} vectors, the manifest {passages}")
    if len(store) != passages:
        problems.append(f"the passage files hold {len(store)} rows, the manifest {passages}")
    if faiss_index.d != manifest["dim"]:
        problems.append(f"the FAISS index has dimension {faiss_index.d}, the manifest {manifest['dim']}")
    if not problems and not store.is_contiguous():
        problems.append("passage ids are not 0..n-1 in order")
    return problems


def load_files(folder: Path, manifest: Mapping[str, Any], *, verify: bool) -> tuple[Any, PassageStore]:
    """The FAISS index and the passages of the index at ``folder``, every file checked against ``manifest``.

    Sizes are always compared, sha256 with ``verify``; without it, Parquet values are validated instead.
    """
    files = manifest["files"]
    contents = {
        name: read_checked(folder, name, manifest, verify=verify) for name in [files["index"], *files["passages"]]
    }
    if files.get("config") in manifest["checksums"]:
        read_checked(folder, files["config"], manifest, verify=verify)
    faiss_index = _read_faiss(folder, manifest, contents[files["index"]])
    store = PassageStore(
        [PassageStore.from_parquet(contents[name], folder / name, validate=not verify) for name in files["passages"]]
    )
    problems = _consistency_problems(manifest, faiss_index, store)
    if problems:
        raise SearchIndexError(f"{folder} is inconsistent: {'; '.join(problems)}; {rebuild_hint(folder, manifest)}")
    return faiss_index, store


def spec_problems(spec: IndexSpec, faiss_index: Any, dim: int) -> list[str]:
    """Where the manifest's index block disagrees with itself or with the FAISS file (searching would fail)."""
    problems = [
        f"index.{name}={getattr(spec, name)!r}, expected a positive integer or null"
        for name in _SPEC_INTS
        if getattr(spec, name) is not None and not (is_count(getattr(spec, name)) and getattr(spec, name) > 0)
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


def folder_size(path: Path) -> int:
    """Bytes of the files in ``path`` (recursively), hidden ones excepted."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
