"""Parallel English–Japanese corpora: a spec in, a normalised and validated :class:`ParallelCorpus` out.

A *spec* names a corpus. Accepted specs (any file may be gzip-compressed, detected by ``.gz`` or content):

- ``pairs.tsv`` / ``pairs.txt`` — ``en<TAB>ja`` per line, optional header row (``en<TAB>ja``);
- ``train.en,train.ja`` — two line-aligned files, English first; or the prefix ``train`` when
  ``train.en`` and ``train.ja`` (or ``.en.gz`` / ``.ja.gz``) exist;
- ``pairs.jsonl`` / ``pairs.json`` — JSON Lines with keys ``en``/``ja`` (``DataConfig.en_key``/``ja_key``)
  or ``{"translation": {"en": ..., "ja": ...}}``;
- a folder written by ``datasets``' ``save_to_disk`` (``folder@split``, default split ``train``);
- ``hf:NAME``, ``hf:NAME@split`` or ``hf:NAME:CONFIG@split`` — loaded from the Hugging Face Hub;
- ``builtin:train`` / ``builtin:dev`` — the small corpus bundled with xlingual.

Cleaning and splitting live in :mod:`xlingual.data.clean`, statistics in :mod:`xlingual.data.inspect`.

Example::

    corpus = read_corpus("pairs.tsv", DataConfig(detokenize=True))
    corpus.en[0], corpus.ja[0], corpus.lines[0]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from xlingual.config import DataConfig
from xlingual.data.lines import Problems, iter_lines
from xlingual.data.sources import Source, resolve_spec
from xlingual.data.text import detokenize_en, detokenize_ja, has_japanese, normalize_text
from xlingual.errors import DataError

__all__ = ["ParallelCorpus", "Record", "read_corpus", "read_normalised", "record_texts", "validate"]

_EN_HEADER_NAMES = frozenset({"en", "eng", "english", "src", "source"})
_JA_HEADER_NAMES = frozenset({"ja", "jp", "jpn", "japanese", "tgt", "target"})

#: One pair as a reader yields it: (line or record number, raw English, raw Japanese).
Record = tuple[int, str, str]

# --------------------------------------------------------------------------------------------------
# The corpus type


@dataclass
class ParallelCorpus:
    """Aligned English and Japanese sentences; ``en[i]`` translates to ``ja[i]``.

    ``lines[i]`` is the 1-based line (or record) number of pair ``i`` in ``source``, for messages;
    left empty, it becomes ``1..n``.

    Example: ``ParallelCorpus(["Hello."], ["こんにちは。"], "pairs.tsv", [1])``.
    """

    en: list[str]
    ja: list[str]
    source: str = ""
    lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = list(range(1, len(self.en) + 1))
        if not len(self.en) == len(self.ja) == len(self.lines):
            raise DataError(
                f"{self.source or 'corpus'}: {len(self.en)} English sentences, {len(self.ja)} Japanese "
                f"sentences and {len(self.lines)} line numbers; the three lists must have equal length"
            )

    def __len__(self) -> int:
        return len(self.en)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.en, self.ja, strict=True)

    def select(self, indices: Sequence[int]) -> ParallelCorpus:
        """Return the pairs at ``indices`` (in that order), keeping their line numbers.

        Example: ``corpus.select([0, 2])``.
        """
        return ParallelCorpus(
            [self.en[i] for i in indices],
            [self.ja[i] for i in indices],
            self.source,
            [self.lines[i] for i in indices],
        )

    @staticmethod
    def concat(corpora: Sequence[ParallelCorpus]) -> ParallelCorpus:
        """Join corpora in order; the source becomes ``"a.tsv + b.tsv"``.

        Example: ``ParallelCorpus.concat([read_corpus("a.tsv"), read_corpus("b.tsv")])``.
        """
        sources = list(dict.fromkeys(c.source for c in corpora))
        return ParallelCorpus(
            [s for c in corpora for s in c.en],
            [s for c in corpora for s in c.ja],
            " + ".join(sources),
            [n for c in corpora for n in c.lines],
        )


def _read_tsv(src: Source, config: DataConfig, problems: Problems) -> Iterator[Record]:
    en_names = _EN_HEADER_NAMES | {config.en_key.lower()}
    ja_names = _JA_HEADER_NAMES | {config.ja_key.lower()}
    first_row = True
    for lineno, line in iter_lines(src.paths[0], src.name, problems):
        if line is None or not line.strip():
            continue
        cells = line.split("\t")
        if first_row:
            first_row = False
            if len(cells) == 2:
                head = (cells[0].strip().lower(), cells[1].strip().lower())
                if head[0] in en_names and head[1] in ja_names:
                    continue
                if head[0] in ja_names and head[1] in en_names:
                    problems.add(
                        f"{src.where(lineno)}: the header says {cells[0].strip()}<TAB>{cells[1].strip()}; "
                        "xlingual expects en<TAB>ja — swap the columns, "
                        "e.g. awk -F'\\t' -v OFS='\\t' '{print $2, $1}'"
                    )
                    continue
        if len(cells) != 2:
            problems.add(_column_message(src.where(lineno), len(cells)))
            continue
        yield lineno, cells[0], cells[1]


def _column_message(where: str, n_cells: int) -> str:
    if n_cells == 1:
        return f"{where}: 1 column, expected 2 (en<TAB>ja); separate the English and the Japanese sentence with one tab"
    return (
        f"{where}: {n_cells} columns, expected 2 (en<TAB>ja); "
        "remove tabs inside the sentences or keep only two columns (e.g. cut -f1,2)"
    )


def _read_aligned(src: Source, problems: Problems) -> Iterator[Record]:
    en_path, ja_path = src.paths
    n_en = n_ja = 0
    mismatch = False
    en_lines = iter_lines(en_path, str(en_path), problems)
    ja_lines = iter_lines(ja_path, str(ja_path), problems)
    for en_item, ja_item in zip_longest(en_lines, ja_lines):
        n_en = en_item[0] if en_item else n_en
        n_ja = ja_item[0] if ja_item else n_ja
        if en_item is None or ja_item is None:
            # Trailing blank lines in the longer file are harmless.
            extra = en_item or ja_item
            mismatch = mismatch or extra is None or extra[1] is None or bool(extra[1].strip())
            continue
        lineno, en = en_item
        ja = ja_item[1]
        if en is None or ja is None or (not en.strip() and not ja.strip()):
            continue
        yield lineno, en, ja
    if mismatch:
        problems.add(
            f"{en_path} has {n_en} lines but {ja_path} has {n_ja}; aligned files need exactly one "
            "sentence per line on both sides — look for missing, extra or wrapped lines"
        )


JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
}


def _read_jsonl(src: Source, config: DataConfig, problems: Problems) -> Iterator[Record]:
    example = f'{{"{config.en_key}": "...", "{config.ja_key}": "..."}}'
    first_row = True
    for lineno, line in iter_lines(src.paths[0], src.name, problems):
        if line is None or not line.strip():
            continue
        where = src.where(lineno)
        if first_row and line.lstrip().startswith("["):
            raise DataError(
                f"{where}: a JSON array; xlingual reads JSON Lines (one object per line) — "
                f"convert it, e.g. jq -c '.[]' {src.paths[0].name} > pairs.jsonl"
            )
        first_row = False
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
                f"each line must be one object like {example}"
            )
            continue
        except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; nesting deeper than ~1000
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            problems.add(f"{where}: JSON that cannot be read ({reason}); each line must be one object like {example}")
            continue
        if not isinstance(obj, dict):
            kind = JSON_TYPE_NAMES.get(type(obj), "null")
            problems.add(f"{where}: a JSON {kind}, expected an object like {example}")
            continue
        record = obj
        nested = obj.get("translation")
        if (config.en_key not in obj or config.ja_key not in obj) and isinstance(nested, dict):
            record = nested
        texts = record_texts(record, where, config, problems)
        if texts is not None:
            yield lineno, texts[0], texts[1]


def record_texts(record: dict[str, Any], where: str, config: DataConfig, problems: Problems) -> tuple[str, str] | None:
    """The English and Japanese texts of one JSON record or dataset row; None (after a problem) if unusable."""
    texts: list[str] = []
    for key, side, option in ((config.en_key, "English", "en_key"), (config.ja_key, "Japanese", "ja_key")):
        if key not in record:
            keys = ", ".join(map(repr, record)) or "none"
            problems.add(
                f"{where}: no key {key!r} for the {side} side (keys: {keys}); set {option} "
                f"(--{option.replace('_', '-')}) to the right key or nest them as {{'translation': {{...}}}}"
            )
            return None
        value = record[key]
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems.add(f"{where}: {key!r} is a {JSON_TYPE_NAMES.get(type(value), 'value')}, expected text")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.add(
                f"{where}: {key!r} holds a lone surrogate U+{ord(value[exc.start]):04X} (an unpaired \\ud800-\\udfff "
                f"escape) at character {exc.start + 1}, which is not text; fix or remove that escape"
            )
            return None
        texts.append(value)
    return texts[0], texts[1]


def _read_records(src: Source, config: DataConfig, problems: Problems) -> Iterator[Record]:
    if src.kind == "tsv":
        return _read_tsv(src, config, problems)
    if src.kind == "aligned":
        return _read_aligned(src, problems)
    if src.kind == "jsonl":
        return _read_jsonl(src, config, problems)
    from xlingual.data.hf import read_hf  # hf imports this module's record reader

    return read_hf(src, config, problems)


def read_normalised(src: Source, config: DataConfig, problems: Problems) -> ParallelCorpus:
    """Read every pair of ``src``, NFC- and whitespace-normalised (detokenised with ``config.detokenize``)."""
    en_list: list[str] = []
    ja_list: list[str] = []
    lines: list[int] = []
    for lineno, en_raw, ja_raw in _read_records(src, config, problems):
        en = normalize_text(en_raw)
        ja = normalize_text(ja_raw)
        if config.detokenize:
            en = detokenize_en(en)
            ja = detokenize_ja(ja)
        en_list.append(en)
        ja_list.append(ja)
        lines.append(lineno)
    return ParallelCorpus(en_list, ja_list, src.name, lines)


# --------------------------------------------------------------------------------------------------
# Validation


def _snippet(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def validate(src: Source, corpus: ParallelCorpus, config: DataConfig, problems: Problems) -> None:
    """Report empty sides and (with ``config.check_scripts``) a Japanese side without Japanese script."""
    for en, ja, lineno in zip(corpus.en, corpus.ja, corpus.lines, strict=True):
        if en and ja:
            continue
        if not en and not ja:
            problems.add(f"{src.where(lineno)}: empty English and Japanese sides; delete the line")
        elif not en:
            problems.add(
                f"{src.where(lineno, 'en')}: empty English side (Japanese: {_snippet(ja)}); "
                "add the English sentence or delete the pair"
            )
        else:
            problems.add(
                f"{src.where(lineno, 'ja')}: empty Japanese side (English: {_snippet(en)}); "
                "add the translation or delete the pair"
            )
    if config.check_scripts:
        message = _script_problem(src, corpus)
        if message:
            problems.add(message)


def _script_problem(src: Source, corpus: ParallelCorpus) -> str | None:
    n = len(corpus)
    not_japanese = [i for i, ja in enumerate(corpus.ja) if ja and not has_japanese(ja)]
    # One stray line in a tiny corpus is no evidence; all of them is.
    if not not_japanese or (n <= 2 and len(not_japanese) < n) or (n > 2 and 2 * len(not_japanese) <= n):
        return None
    first = not_japanese[0]
    en_example, ja_example = _snippet(corpus.en[first]), _snippet(corpus.ja[first])
    example = f"e.g. {src.where(corpus.lines[first])}: en={en_example} ja={ja_example}"
    n_en_japanese = sum(1 for en in corpus.en if has_japanese(en))
    if 2 * n_en_japanese > n:
        return (
            f"{src.name}: the columns look swapped — {len(not_japanese)} of {n} Japanese-side sentences have "
            f"no Japanese script but {n_en_japanese} English-side sentences do ({example}); put English "
            "first (en<TAB>ja) or swap en_key/ja_key"
        )
    return (
        f"{src.name}: the Japanese side does not look Japanese — {len(not_japanese)} of {n} sentences have "
        f"no hiragana, katakana or kanji ({example}); check the file and the column order, "
        "or turn off check_scripts if this is intended"
    )


# --------------------------------------------------------------------------------------------------
# Public reading and cleaning


def read_corpus(spec: str | os.PathLike[str], config: DataConfig | None = None) -> ParallelCorpus:
    """Read one corpus: normalise (NFC, whitespace), optionally detokenise, validate. No cleaning.

    Raises :class:`DataError` naming file, line and fix for format errors, empty sides and
    (with ``check_scripts``) a Japanese side that has mostly no Japanese script.

    Example: ``read_corpus("train", DataConfig(detokenize=True))`` reads ``train.en`` + ``train.ja``.
    """
    config = config or DataConfig()
    src = resolve_spec(spec)
    problems = Problems(collect=False)
    corpus = read_normalised(src, config, problems)
    validate(src, corpus, config, problems)
    return corpus
