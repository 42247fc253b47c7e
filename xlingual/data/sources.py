"""Corpus specs: which reader a spec names (TSV, aligned files, JSONL, a saved or hub dataset, the bundled pairs).

Example: ``resolve_spec("train")`` → ``Source(kind="aligned", name="train.en,train.ja", ...)`` when both exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xlingual.errors import DataError

__all__ = ["ACCEPTED_FORMATS", "Source", "bundled_data_dir", "resolve_dataset_spec", "resolve_spec"]

#: Named in every "cannot find / cannot read" message so that the user sees what would work.
ACCEPTED_FORMATS = (
    "a TSV file (.tsv/.txt, en<TAB>ja per line), aligned files 'a.en,a.ja' or their prefix 'a', "
    "JSON Lines (.jsonl/.json with keys en/ja), a folder saved with datasets' save_to_disk "
    "('folder' or 'folder@split'), 'hf:NAME[@split]', 'builtin:train', 'builtin:dev' or 'builtin:long-dev'; "
    "files may be gzip-compressed"
)

# --------------------------------------------------------------------------------------------------
# Spec resolution


@dataclass(frozen=True)
class Source:
    """A resolved spec: what to read and how to name it in messages."""

    kind: str  # "tsv", "aligned", "jsonl", "hf-disk" or "hf-hub"
    name: str
    paths: tuple[Path, ...] = ()
    hub_name: str = ""
    hub_config: str | None = None
    split: str | None = None

    def where(self, line: int, side: str = "en") -> str:
        """Name a line for a message: ``pairs.tsv:17`` (aligned files: the file of that side)."""
        if self.kind == "aligned":
            return f"{self.paths[0 if side == 'en' else 1]}:{line}"
        if self.kind.startswith("hf"):
            return f"{self.name} record {line}"
        return f"{self.name}:{line}"


def bundled_data_dir() -> Path:
    """Return the folder of the bundled pairs (``train.tsv``, ``dev.tsv``).

    A wheel ships them as ``xlingual/_bundled_data``; an editable checkout reads ``<repo>/data``.

    Example: ``bundled_data_dir() / "train.tsv"``.
    """
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_bundled_data", package_dir.parent / "data"):
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"no bundled data: neither {package_dir / '_bundled_data'} nor {package_dir.parent / 'data'} "
        "exists; reinstall xlingual or pass your own parallel data"
    )


def resolve_spec(spec: str | os.PathLike[str]) -> Source:
    """Resolve a corpus spec to a :class:`Source`; raise :class:`DataError` listing what is accepted."""
    text = os.fsdecode(spec)
    if text.startswith("builtin:"):
        return _resolve_builtin(text)
    if (dataset := resolve_dataset_spec(text)) is not None:
        return dataset
    path = Path(text).expanduser()
    if path.is_file():
        return _resolve_file(path, text)
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{text}: aligned files are given as exactly two paths 'a.en,a.ja' (English first)")
        paths = tuple(Path(p).expanduser() for p in parts)
        for p in paths:
            if not p.is_file():
                raise DataError(f"{p}: no such file (from {text!r}); give two existing files 'a.en,a.ja'")
        return Source("aligned", f"{parts[0]},{parts[1]}", paths)
    en_path = _first_file(Path(text + ".en"), Path(text + ".en.gz"))
    ja_path = _first_file(Path(text + ".ja"), Path(text + ".ja.gz"))
    if en_path and ja_path:
        return Source("aligned", f"{en_path},{ja_path}", (en_path, ja_path))
    if en_path or ja_path:
        found, missing = (en_path, text + ".ja") if en_path else (ja_path, text + ".en")
        raise DataError(f"{text}: found {found} but not {missing}; aligned files need both sides")
    raise DataError(f"{text}: no such file or folder. Accepted: {ACCEPTED_FORMATS}")


def resolve_dataset_spec(text: str) -> Source | None:
    """A Hugging Face dataset spec (``hf:NAME[:CONFIG][@split]``, a saved folder or ``folder@split``), else None."""
    if text.startswith("hf:"):
        return _resolve_hub(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _resolve_saved_dataset(path, None, text)
    base, at, split_name = text.rpartition("@")
    if at and base and not path.exists() and Path(base).expanduser().is_dir():
        return _resolve_saved_dataset(Path(base).expanduser(), split_name, text)
    return None


def _first_file(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


#: The bundled corpora (``data/NAME.tsv``): short everyday pairs to train and tune on, and long out-of-domain
#: sentences (encyclopedic, news, technical, instructions) to measure on — never to train on.
BUILTIN_CORPORA = ("train", "dev", "long-dev")


def _resolve_builtin(text: str) -> Source:
    name = text.removeprefix("builtin:")
    if name not in BUILTIN_CORPORA:
        choices = ", ".join(f"builtin:{corpus}" for corpus in BUILTIN_CORPORA)
        raise DataError(f"{text}: unknown built-in corpus; use one of {choices}")
    folder = bundled_data_dir()
    path = _first_file(folder / f"{name}.tsv", folder / f"{name}.tsv.gz")
    if path is None:
        raise DataError(
            f"{text}: the bundled file {folder / (name + '.tsv')} is missing; "
            "reinstall xlingual or pass your own parallel data"
        )
    return Source("tsv", str(path), (path,))


def _resolve_hub(text: str) -> Source:
    rest = text.removeprefix("hf:")
    name, at, split_name = rest.rpartition("@") if "@" in rest else (rest, "", "")
    name, _, config_name = name.partition(":")
    if not name or (at and not split_name):
        raise DataError(f"{text}: expected hf:NAME, hf:NAME@split or hf:NAME:CONFIG@split")
    return Source("hf-hub", text, hub_name=name, hub_config=config_name or None, split=split_name or None)


def _resolve_saved_dataset(path: Path, split_name: str | None, text: str) -> Source:
    if not any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        raise DataError(
            f"{text}: a folder, but not a dataset saved with datasets' save_to_disk "
            f"(no dataset_dict.json or state.json inside). Accepted: {ACCEPTED_FORMATS}"
        )
    return Source("hf-disk", text, (path,), split=split_name)


def _resolve_file(path: Path, text: str) -> Source:
    lower = path.name.lower().removesuffix(".gz")
    ext = Path(lower).suffix
    if ext in (".tsv", ".txt"):
        return Source("tsv", text, (path,))
    if ext in (".jsonl", ".json"):
        return Source("jsonl", text, (path,))
    if ext in (".en", ".ja"):
        stem = text[:-3] if text.lower().endswith(".gz") else text
        stem = stem[: -len(ext)]
        raise DataError(f"{text}: one side of aligned files; pass both as '{stem}.en,{stem}.ja' or the prefix '{stem}'")
    raise DataError(f"{text}: unknown file type {ext or '(no extension)'!r}. Accepted: {ACCEPTED_FORMATS}")
