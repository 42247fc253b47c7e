"""Labelled texts for ``xlingual classify``: a spec in, a checked :class:`LabelledSet` out.

Accepted specs (any file may be gzip-compressed):

- ``labelled.tsv`` / ``.txt`` — ``label<TAB>text`` per line, an optional header row (``label<TAB>text``);
- ``labelled.jsonl`` / ``.json`` / ``.ndjson`` and ``labelled.parquet`` — records with the fields
  ``ClassifyConfig.label_key`` and ``text_key`` (``--label-key`` / ``--text-key``);
- a folder saved with ``datasets``' ``save_to_disk`` (``folder@split``) or ``hf:NAME[:CONFIG][@split]``;
- ``builtin:topics-{train,test}-{en,ja}`` — the bundled bilingual topic set (``data/topics.tsv``).

Example::

    train = read_labelled("builtin:topics-train-en")
    train.texts[0], train.labels[0], train.where(0)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlingual.config import ClassifyConfig
from xlingual.data.documents import parquet_rows, parse_json_line
from xlingual.data.lines import Problems, iter_lines
from xlingual.data.sources import bundled_data_dir, resolve_dataset_spec
from xlingual.data.text import detokenize_en, detokenize_ja, has_japanese, normalize_text
from xlingual.errors import DataError

__all__ = ["BUILTIN_LABELLED", "LabelledSet", "check_trainable", "read_labelled"]

#: The bundled labelled sets: ``builtin:topics-SPLIT-LANG`` (8 topics, English sentences and their translations).
BUILTIN_LABELLED = tuple(f"topics-{split}-{lang}" for split in ("train", "test") for lang in ("en", "ja"))

ACCEPTED = (
    "a TSV file (label<TAB>text per line), JSON Lines or Parquet with label and text fields (--label-key, "
    "--text-key), a folder saved with datasets' save_to_disk ('folder' or 'folder@split'), 'hf:NAME[@split]' or "
    + ", ".join(f"'builtin:{name}'" for name in BUILTIN_LABELLED)
    + "; files may be gzip-compressed"
)

#: One labelled row as read: (where, label as found, text as found).
_Row = tuple[str, Any, Any]


@dataclass
class LabelledSet:
    """Texts and their labels (``labels[i]`` is the label of ``texts[i]``), with where each came from."""

    texts: list[str]
    labels: list[str]
    source: str = ""
    places: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.places:
            self.places = [f"{self.source or 'texts'} row {i}" for i in range(1, len(self.texts) + 1)]
        if not len(self.texts) == len(self.labels) == len(self.places):
            raise DataError(
                f"{self.source or 'labelled set'}: {len(self.texts)} texts and {len(self.labels)} labels; "
                "give exactly one label per text"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        """Where row ``i`` came from, for messages: ``train.tsv:17``."""
        return self.places[i]

    def counts(self) -> dict[str, int]:
        """Examples per label, most frequent first."""
        return dict(Counter(self.labels).most_common())


def read_labelled(spec: str | os.PathLike[str] | LabelledSet, config: ClassifyConfig | None = None) -> LabelledSet:
    """Read and check one labelled set: every row has a label and a non-empty text, labels are not texts.

    Texts are NFC- and whitespace-normalised (detokenised with ``config.detokenize``). Raises
    :class:`DataError` naming the file, row and fix.
    Example: ``read_labelled("news.jsonl", ClassifyConfig(text_key="body"))``.
    """
    if isinstance(spec, LabelledSet):
        return spec
    config = config or ClassifyConfig()
    text = os.fsdecode(spec)
    texts: list[str] = []
    labels: list[str] = []
    places: list[str] = []
    for where, raw_label, raw_text in _rows(text, config):
        texts.append(_text(raw_text, where, config))
        labels.append(_label(raw_label, where, config))
        places.append(where)
    labelled = LabelledSet(texts, labels, text, places)
    if not labelled.texts:
        raise DataError(
            f"{text}: no labelled texts; give rows of label<TAB>text (TSV) or records with "
            f"{config.text_key!r} and {config.label_key!r}"
        )
    _check_labels_are_labels(labelled, config)
    return labelled


def check_trainable(labelled: LabelledSet) -> None:
    """Refuse a training set a classifier cannot learn from: one class, or a class with one example."""
    counts = labelled.counts()
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(
            f"{labelled.source}: every one of the {len(labelled)} texts has the label {only!r}; a classifier needs "
            "at least two classes — add texts of another class"
        )
    single = [label for label, n in counts.items() if n < 2]
    if single:
        first = labelled.where(labelled.labels.index(single[0]))
        raise DataError(
            f"{labelled.source}: the label {single[0]!r} has a single example ({first})"
            + (f", and {len(single) - 1} more labels too" if len(single) > 1 else "")
            + "; cross-validation needs at least 2 per class — add examples or remove those rows"
        )


# --------------------------------------------------------------------------- rows of each format


def _rows(text: str, config: ClassifyConfig) -> Iterator[_Row]:
    if text.startswith("builtin:"):
        return _builtin_rows(text)
    if (dataset := resolve_dataset_spec(text)) is not None:
        return _dataset_rows(dataset, config)
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataError(f"{text}: no such file or folder. Accepted: {ACCEPTED}")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".txt")):
        return _tsv_rows(path, text, config)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _record_rows(path, "jsonl", config)
    if name.endswith((".parquet", ".pq")):
        return _record_rows(path, "parquet", config)
    raise DataError(f"{text}: unknown file type {Path(name).suffix or '(no extension)'!r}. Accepted: {ACCEPTED}")


def _tsv_rows(path: Path, name: str, config: ClassifyConfig) -> Iterator[_Row]:
    problems = Problems(collect=False)
    first = True
    for lineno, line in iter_lines(path, name, problems):
        if line is None or not line.strip():
            continue
        cells = line.split("\t")
        if first:
            first = False
            if [c.strip().lower() for c in cells] == [config.label_key.lower(), config.text_key.lower()]:
                continue
        if len(cells) != 2:
            raise DataError(
                f"{name}:{lineno}: {len(cells)} column{'s' if len(cells) != 1 else ''}, expected 2 (label<TAB>text); "
                + ("separate the label and the text with one tab" if len(cells) == 1 else "remove tabs inside the text")
            )
        yield f"{name}:{lineno}", cells[0], cells[1]


def _record_rows(path: Path, fmt: str, config: ClassifyConfig) -> Iterator[_Row]:
    if fmt == "jsonl":
        for lineno, line in iter_lines(path, str(path), Problems(collect=False)):
            if line is None or not line.strip():
                continue
            where = f"{path}:{lineno}"
            row = parse_json_line(line, where)
            if not isinstance(row, dict):
                raise DataError(
                    f"{where}: a JSON {type(row).__name__}, expected an object with "
                    f"{config.label_key!r} and {config.text_key!r}"
                )
            yield _fields(row, where, config)
    else:
        for number, row in enumerate(parquet_rows(path), start=1):
            yield _fields(row, f"{path} row {number}", config)


def _dataset_rows(src: Any, config: ClassifyConfig) -> Iterator[_Row]:
    from xlingual.data.hf import load_hf_dataset

    dataset = load_hf_dataset(src)
    columns = list(dataset.column_names)
    missing = [key for key in (config.label_key, config.text_key) if key not in columns]
    if missing:
        raise DataError(
            f"{src.name}: no column {missing[0]!r} (columns: {', '.join(columns)}); "
            "name the label and text columns with --label-key / --text-key"
        )
    label_names = _class_names(dataset, config.label_key)
    for number, (label, text) in enumerate(zip(dataset[config.label_key], dataset[config.text_key], strict=True), 1):
        if label_names and isinstance(label, int) and 0 <= label < len(label_names):
            label = label_names[label]
        yield f"{src.name} record {number}", label, text


def _class_names(dataset: Any, key: str) -> list[str]:
    """The names of a ``ClassLabel`` column (its values are ints), else ``[]``."""
    feature = getattr(dataset, "features", {}).get(key)
    names = getattr(feature, "names", None)
    return list(names) if isinstance(names, list) else []


def _builtin_rows(text: str) -> Iterator[_Row]:
    name = text.removeprefix("builtin:")
    if name not in BUILTIN_LABELLED:
        raise DataError(
            f"{text}: unknown built-in labelled set; use one of " + ", ".join(f"builtin:{n}" for n in BUILTIN_LABELLED)
        )
    _, split, lang = name.split("-")
    path = bundled_data_dir() / "topics.tsv"
    if not path.is_file():
        raise DataError(
            f"{text}: the bundled file {path} is missing; reinstall xlingual or pass your own labelled data"
        )
    column = 2 if lang == "en" else 3
    for lineno, line in iter_lines(path, str(path), Problems(collect=False)):
        cells = (line or "").split("\t")
        if lineno == 1 or len(cells) != 4 or cells[1] != split:
            continue
        yield f"{path}:{lineno}", cells[0], cells[column]


def _fields(row: dict[str, Any], where: str, config: ClassifyConfig) -> _Row:
    for key, option in ((config.label_key, "--label-key"), (config.text_key, "--text-key")):
        if key not in row:
            keys = ", ".join(sorted(map(str, row))) or "none"
            raise DataError(f"{where}: no field {key!r} (fields: {keys}); name the right field with {option}")
    return where, row[config.label_key], row[config.text_key]


# --------------------------------------------------------------------------- values


def _text(value: Any, where: str, config: ClassifyConfig) -> str:
    if value is not None and not isinstance(value, str):
        raise DataError(f"{where}: the text is {type(value).__name__} {value!r:.40}, not a string; check --text-key")
    text = normalize_text(value or "")
    if config.detokenize:
        text = detokenize_ja(text) if has_japanese(text) else detokenize_en(text)
    if not text:
        raise DataError(f"{where}: empty text; add the text or delete the row")
    return text


def _label(value: Any, where: str, config: ClassifyConfig) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        kind = "missing" if value is None else f"{type(value).__name__} {value!r:.40}"
        raise DataError(
            f"{where}: the label is {kind}; every row needs a label (a string or an integer) in {config.label_key!r}"
        )
    label = normalize_text(str(value))
    if not label:
        raise DataError(f"{where}: empty label; give every row a label or delete it")
    return label


def _check_labels_are_labels(labelled: LabelledSet, config: ClassifyConfig) -> None:
    """Refuse a label column that holds texts (swapped TSV columns, a wrong ``--label-key``)."""
    counts = labelled.counts()
    n = len(labelled)
    mean_label = sum(len(label) for label in labelled.labels) / n
    mean_text = sum(len(text) for text in labelled.texts) / n
    # Sentence-like: three words or more, or twenty characters (Japanese has no spaces).
    wordy = sum(1 for label in labelled.labels if len(label.split()) >= 3 or len(label) >= 20) / n
    many = len(counts) > n // 2
    if n >= 10 and ((many and wordy > 0.5) or (len(counts) > 20 and mean_label > mean_text)):
        example = max(counts, key=len)
        raise DataError(
            f"{labelled.source}: {len(counts):,} different labels among {n:,} rows (e.g. {example[:40]!r}): the label "
            f"column looks like text. A TSV row is label<TAB>text — swap the columns — or name the label field with "
            f"--label-key (now {config.label_key!r})"
        )
