"""An index's ``manifest.json``: what the folder holds, made for a build, updated by an add, checked on load.

The manifest lists the model (spec, fingerprint, teacher), the dimension, the FAISS index type and
parameters, the passage splitting, counts, sources, dates, package versions, and the size and sha256 of
every file — it is the commit point of every write. A reader trusts nothing the manifest does not list,
and a manifest that is missing, of another format, or damaged (a field of the wrong type) raises
:class:`~xlingual.errors.SearchIndexError` naming the field and how to rebuild the index.

Example::

    manifest = read_manifest(Path("idx"))     # checked: right format, version and field shapes
    manifest["counts"]                         # {"documents": 5, "passages": 9, "skipped_blank": 0}
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlingual import __version__, _io
from xlingual.errors import SearchIndexError

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.json"
FORMAT_NAME = "xlingual-index"
FORMAT_VERSION = 1
#: Packages whose versions a manifest records.
VERSIONED_PACKAGES = ("faiss-cpu", "sentence-transformers", "torch", "numpy", "pyarrow")
#: Top-level fields every manifest has (``files`` and ``checksums`` are added when the files are written).
REQUIRED = ("model", "dim", "index", "counts", "files", "checksums", "splitting", "sources")
#: The hubness files (an index built with a query model): the reference query vectors, and r(d) per passage
#: part (``hubness-00000.npy`` beside ``passages-00000.parquet``), listed as ``files.hubness_queries`` and
#: ``files.hubness``; the ``hubness`` block says how they were made. Older indexes have neither.
HUBNESS_QUERIES = "hubness-queries.npy"


def hubness_part_name(number: int) -> str:
    """The r(d) file beside passage part ``number``: ``hubness_part_name(1)`` → ``"hubness-00001.npy"``."""
    return f"hubness-{number:05d}.npy"


@dataclass(frozen=True)
class Addition:
    """What one build or add read: where from, and how many documents and passages it gave."""

    source: str
    documents: int
    passages: int
    skipped_blank: int

    def source_entry(self, now: str) -> dict[str, Any]:
        """The manifest's ``sources`` entry for this addition, dated ``now``."""
        return {"path": self.source, "documents": self.documents, "passages": self.passages, "added_at": now}


def utc_now() -> str:
    """The current time as the manifest writes it, e.g. ``"2025-01-31T09:30:00Z"``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def splitting_block(max_tokens: int | None, max_chars: int) -> dict[str, Any]:
    """The manifest's ``splitting`` block: by tokens when ``max_tokens`` is set, else by characters."""
    return {
        "unit": "tokens" if max_tokens else "characters",
        "max_tokens": max_tokens,
        "max_chars": None if max_tokens else max_chars,
        "boundaries": "。！？．!? (outside brackets), '. ', line breaks",
    }


def new_manifest(
    model: dict[str, Any], dim: int, index: dict[str, Any], splitting: dict[str, Any], added: Addition
) -> dict[str, Any]:
    """The manifest of a new index, without ``files`` and ``checksums`` (the writer adds them).

    ``model``: the model block (:class:`~xlingual.search.compat.ModelInfo` fields plus ``max_seq_length``
    and ``prompt``); ``index``: :meth:`IndexSpec.as_dict`; ``splitting``: :func:`splitting_block`.
    """
    now = utc_now()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "xlingual_version": __version__,
        "created_at": now,
        "updated_at": now,
        "generation": 0,
        "model": model,
        "dim": dim,
        "normalised": True,
        "metric": "inner_product",
        "index": index,
        "splitting": splitting,
        "counts": {"documents": added.documents, "passages": added.passages, "skipped_blank": added.skipped_blank},
        "sources": [added.source_entry(now)],
        "versions": _io.package_versions(VERSIONED_PACKAGES),
    }


def next_file_names(manifest: Mapping[str, Any]) -> tuple[str, str]:
    """The FAISS file and the passage part the next add writes.

    Example: ``("index-000001.faiss", "passages-00001.parquet")`` after a build.
    """
    generation = int(manifest.get("generation", 0)) + 1
    return f"index-{generation:06d}.faiss", f"passages-{len(manifest['files']['passages']):05d}.parquet"


def added_manifest(
    manifest: Mapping[str, Any], index: dict[str, Any], added: Addition, checksums: Mapping[str, Any]
) -> dict[str, Any]:
    """The manifest after an add: the new FAISS file replaces the old one, the new part is appended.

    ``checksums``: the entries of the new files (:func:`next_file_names`, and the r(d) part of an index with
    a ``hubness`` block), FAISS file first.
    """
    updated: dict[str, Any] = copy.deepcopy(dict(manifest))
    files = updated["files"]
    index_name, part_name = next_file_names(manifest)
    updated["checksums"].pop(files["index"], None)
    updated["checksums"].update(checksums)
    files["index"] = index_name
    if "hubness" in files:
        files["hubness"].append(hubness_part_name(len(files["passages"])))
    files["passages"].append(part_name)
    now = utc_now()
    updated["generation"] = int(manifest.get("generation", 0)) + 1
    updated["updated_at"] = now
    updated["index"] = index
    counts = updated["counts"]
    counts["documents"] += added.documents
    counts["passages"] += added.passages
    counts["skipped_blank"] += added.skipped_blank
    updated["sources"].append(added.source_entry(now))
    return updated


def rebuild_hint(path: Path, manifest: Mapping[str, Any] | None = None) -> str:
    """How to rebuild the index at ``path``: its sources and model, when the manifest still says them."""
    # The manifest may be the damaged one being reported: take only what has the expected shape.
    manifest = manifest if isinstance(manifest, Mapping) else {}
    listed = manifest.get("sources")
    sources = [s.get("path") for s in listed if isinstance(s, Mapping)] if isinstance(listed, list) else []
    block = manifest.get("model")
    model = block.get("spec") if isinstance(block, Mapping) else None
    corpus = " ".join(s for s in sources if isinstance(s, str) and s) or "CORPUS"
    model_part = f" --model {model}" if isinstance(model, str) and model else ""
    return f"rebuild it: xlingual index build {corpus}{model_part}{_hubness_part(manifest)} --out {path} --overwrite"


def _hubness_part(manifest: Mapping[str, Any]) -> str:
    """The build options that recreate the hubness block, when the manifest has a readable one."""
    block = manifest.get("hubness")
    if not isinstance(block, Mapping) or not isinstance(block.get("query_model"), Mapping):
        return ""
    spec = block["query_model"].get("spec")
    if not isinstance(spec, str) or not spec:
        return ""
    source = block.get("source")
    queries = f" --hubness-queries {source}" if isinstance(source, str) and source != "passages" else ""
    k = block.get("k")
    return f" --query-model {spec}" + (f" --hubness-k {k}" if is_count(k) else "") + queries


def _parse(folder: Path) -> dict[str, Any]:
    """The manifest file's JSON, or the error saying the folder is not (or not yet) an index."""
    if not folder.exists():
        raise SearchIndexError(f"{folder} does not exist; build it with: xlingual index build CORPUS --out {folder}")
    if not folder.is_dir():
        raise SearchIndexError(f"{folder} is a file; an index is a folder made by xlingual index build.")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise SearchIndexError(
            f"{folder} is not a complete xlingual index: {MANIFEST_NAME} is missing (an interrupted build "
            f"leaves none); {rebuild_hint(folder)}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SearchIndexError(f"{path} is corrupt ({exc}); {rebuild_hint(folder)}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SearchIndexError(f"{path} is not an xlingual index manifest; {rebuild_hint(folder)}")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check ``folder/manifest.json``; :class:`SearchIndexError` with the fix when it is missing or bad."""
    manifest = _parse(folder)
    path = folder / MANIFEST_NAME
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SearchIndexError(
            f"{path} has format version {manifest.get('format_version')}, this xlingual ({__version__}) reads "
            f"{FORMAT_VERSION}; {rebuild_hint(folder, manifest)}"
        )
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise SearchIndexError(f"{path} lacks {', '.join(missing)}; {rebuild_hint(folder, manifest)}")
    problems = manifest_problems(manifest)
    if problems:
        raise SearchIndexError(f"{path} is damaged: {'; '.join(problems)}; {rebuild_hint(folder, manifest)}")
    return manifest


# --------------------------------------------------------------------------- field checks


def is_count(value: Any) -> bool:
    """An integer ≥ 0 (a bool is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_file_name(value: Any) -> bool:
    """A plain name of a file inside the index folder (never a path that could point outside it)."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and not any(char in value for char in ("/", "\\", "\x00"))
    )


def _shape_problems(manifest: Mapping[str, Any]) -> list[str]:
    problems = [
        f"{key!r} is {type(manifest[key]).__name__}, expected an object"
        for key in ("model", "index", "counts", "files", "checksums", "splitting")
        if not isinstance(manifest[key], dict)
    ]
    if not isinstance(manifest["sources"], list):
        problems.append(f"'sources' is {type(manifest['sources']).__name__}, expected a list")
    if not is_count(manifest["dim"]) or manifest["dim"] < 1:
        problems.append(f"dim={manifest['dim']!r}, expected a positive integer")
    return problems


def _block_problems(manifest: Mapping[str, Any]) -> list[str]:
    model, splitting, counts = manifest["model"], manifest["splitting"], manifest["counts"]
    problems = []
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
        if splitting.get(key) is not None and not (is_count(splitting[key]) and splitting[key] > 0)
    ]
    problems += [
        f"counts.{key}={counts.get(key)!r}, expected an integer ≥ 0"
        for key in ("documents", "passages", "skipped_blank")
        if not is_count(counts.get(key)) and not (key == "skipped_blank" and key not in counts)
    ]
    return problems


def _source_problems(sources: list[Any]) -> list[str]:
    return [
        f"sources[{number}]={source!r}, expected {{'path': ..., 'documents': N, 'passages': N}}"
        for number, source in enumerate(sources)
        if not (
            isinstance(source, dict)
            and isinstance(source.get("path"), str)
            and is_count(source.get("documents"))
            and is_count(source.get("passages"))
        )
    ]


def _entry_problem(name: Any, checksums: Mapping[str, Any]) -> str | None:
    """What is wrong with a listed file's name or its checksum entry (None: fine)."""
    if not _is_file_name(name):
        return f"file name {name!r} is not the name of a file inside the index folder"
    entry = checksums.get(name)
    if not (isinstance(entry, dict) and is_count(entry.get("bytes")) and isinstance(entry.get("sha256"), str)):
        return f"checksums[{name!r}]={entry!r}, expected {{'bytes': SIZE, 'sha256': HEX}}"
    return None


def _file_problems(files: Mapping[str, Any], checksums: Mapping[str, Any]) -> list[str]:
    problems = []
    parts = files.get("passages")
    if not isinstance(parts, list):
        problems.append(f"files.passages={parts!r}, expected a list of file names")
        parts = []
    for name in [files.get("index"), *parts, *([files["config"]] if "config" in files else [])]:
        if name == files.get("config") and _is_file_name(name) and name not in checksums:
            continue  # config.json is informative: checked only when the manifest lists its checksum
        problem = _entry_problem(name, checksums)
        if problem:
            problems.append(problem)
    return problems


def _hubness_problems(manifest: Mapping[str, Any]) -> list[str]:
    """The ``hubness`` block and its files: all present and well formed, or (an older index) none of them."""
    block, files = manifest.get("hubness"), manifest["files"]
    if block is None:
        listed = [key for key in ("hubness", "hubness_queries") if key in files]
        return [f"files.{key} is listed but there is no hubness block" for key in listed]
    if not isinstance(block, dict):
        return [f"'hubness' is {type(block).__name__}, expected an object"]
    problems = [
        f"hubness.{key}={block.get(key)!r}, expected a positive integer"
        for key in ("k", "references")
        if not (is_count(block.get(key)) and block[key] > 0)
    ]
    if not isinstance(block.get("source"), str) or not block["source"]:
        problems.append(f"hubness.source={block.get('source')!r}, expected 'passages' or a file name")
    if block.get("source_sha256") is not None and not isinstance(block["source_sha256"], str):
        problems.append(f"hubness.source_sha256={block['source_sha256']!r}, expected a hex string or null")
    query_model = block.get("query_model")
    if not (isinstance(query_model, dict) and isinstance(query_model.get("spec"), str) and query_model["spec"]):
        problems.append(f"hubness.query_model={query_model!r}, expected a model block with its spec")
    parts, passages = files.get("hubness"), files.get("passages")
    if not isinstance(parts, list) or not isinstance(passages, list) or len(parts) != len(passages):
        problems.append(f"files.hubness={parts!r}, expected one file name per passage part")
        parts = []
    for name in [files.get("hubness_queries"), *parts]:
        problem = _entry_problem(name, manifest["checksums"])
        if problem:
            problems.append(problem)
    return problems


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What in a manifest has the wrong type or shape (each problem names the field and its value)."""
    problems = _shape_problems(manifest)
    if problems:
        return problems
    return (
        _block_problems(manifest)
        + _source_problems(manifest["sources"])
        + _file_problems(manifest["files"], manifest["checksums"])
        + _hubness_problems(manifest)
    )
