"""Parallel English–Japanese corpora: readers, normalisation, validation, cleaning, splits, leakage check.

A *spec* names a corpus. Accepted specs (any file may be gzip-compressed, detected by ``.gz`` or content):

- ``pairs.tsv`` / ``pairs.txt`` — ``en<TAB>ja`` per line, optional header row (``en<TAB>ja``);
- ``train.en,train.ja`` — two line-aligned files, English first; or the prefix ``train`` when
  ``train.en`` and ``train.ja`` (or ``.en.gz`` / ``.ja.gz``) exist;
- ``pairs.jsonl`` / ``pairs.json`` — JSON Lines with keys ``en``/``ja`` (``DataConfig.en_key``/``ja_key``)
  or ``{"translation": {"en": ..., "ja": ...}}``;
- a folder written by ``datasets``' ``save_to_disk`` (``folder@split``, default split ``train``);
- ``hf:NAME``, ``hf:NAME@split`` or ``hf:NAME:CONFIG@split`` — loaded from the Hugging Face Hub;
- ``builtin:train`` / ``builtin:dev`` — the small corpus bundled with xlingual.

Example::

    pairs, stats = load_pairs(["pairs.tsv"], DataConfig(exclude=["builtin:dev"]))
    train, dev = split(pairs, dev_fraction=0.05, seed=42)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import random
import re
import statistics
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any

from xlingual.config import DataConfig
from xlingual.errors import ConfigError, DataError

__all__ = [
    "ACCEPTED_FORMATS",
    "CleanStats",
    "ParallelCorpus",
    "bundled_data_dir",
    "clean",
    "detokenize_en",
    "detokenize_ja",
    "format_inspect",
    "inspect_corpus",
    "load_pairs",
    "normalize_text",
    "read_corpus",
    "split",
    "text_lines",
]

#: Named in every "cannot find / cannot read" message so that the user sees what would work.
ACCEPTED_FORMATS = (
    "a TSV file (.tsv/.txt, en<TAB>ja per line), aligned files 'a.en,a.ja' or their prefix 'a', "
    "JSON Lines (.jsonl/.json with keys en/ja), a folder saved with datasets' save_to_disk "
    "('folder' or 'folder@split'), 'hf:NAME[@split]', 'builtin:train' or 'builtin:dev'; "
    "files may be gzip-compressed"
)

#: At most this many problems are kept per file by :func:`inspect_corpus` (all are counted).
MAX_LISTED_PROBLEMS = 100

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
#: Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its little-endian mark starts like UTF-16's).
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_EN_HEADER_NAMES = frozenset({"en", "eng", "english", "src", "source"})
_JA_HEADER_NAMES = frozenset({"ja", "jp", "jpn", "japanese", "tgt", "target"})

# Hiragana, katakana (incl. phonetic extensions and half-width), CJK ideographs (incl. extension A,
# compatibility ideographs and the supplementary planes) and the iteration / closing marks 々〆〇.
_HIRAGANA = "\u3041-\u309f"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_KANJI = "\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_JAPANESE_RE = re.compile(f"[{_HIRAGANA}{_KATAKANA}{_KANJI}]")
_HIRAGANA_RE = re.compile(f"[{_HIRAGANA}]")
_KATAKANA_RE = re.compile(f"[{_KATAKANA}]")
_KANJI_RE = re.compile(f"[{_KANJI}]")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
# What a right guess of a legacy encoding yields; half-width katakana, what EUC-JP read as Shift_JIS yields.
_FULL_WIDTH_JA_RE = re.compile(f"[{_HIRAGANA}\u30a0-\u30ff{_KANJI}\u3000-\u303f\uff01-\uff5e]")
_HALF_WIDTH_KANA_RE = re.compile("[\uff61-\uff9f]")

# Every whitespace run except the ideographic space U+3000, which Japanese text uses on purpose.
_SPACE_RUN_RE = re.compile(r"[^\S\u3000]+")
_NOT_WORD_RE = re.compile(r"[\W_]+")


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


@dataclass
class CleanStats:
    """How many pairs :func:`clean` received, kept, and dropped for each reason.

    Example: ``CleanStats(n_in=10, n_out=9, duplicates=1).as_dict()["duplicates"] == 1``.
    """

    n_in: int = 0
    n_out: int = 0
    duplicates: int = 0
    too_short: int = 0
    too_long: int = 0
    empty: int = 0
    leaked: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict (JSON-serialisable).

        Example: ``json.dumps(stats.as_dict())``.
        """
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Normalisation and detokenisation


def normalize_text(text: str) -> str:
    """Unicode NFC, then strip and collapse whitespace runs to one space (U+3000 inside is kept).

    Example: ``normalize_text(" a  b ") == "a b"``.
    """
    text = unicodedata.normalize("NFC", text)
    if text.isprintable() and "  " not in text:
        return text.strip(" ")  # the common case: no tabs, odd spaces or runs
    return _SPACE_RUN_RE.sub(" ", text).strip()


_MOSES_ESCAPES = {
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&apos;": "'",
    "&#124;": "|",
    "&#91;": "[",
    "&#93;": "]",
}
_MOSES_ESCAPE_RE = re.compile("|".join(map(re.escape, _MOSES_ESCAPES)))
# Tokens glued to the word before them: closing punctuation, clitics ('s, 't, 're, 'clock, n't).
_EN_ATTACH_LEFT_RE = re.compile(r"^(?:[.,!?;:%)\]}…]+|[nN]['’][tT]|['’][A-Za-z]+)$")
# Tokens glued to the word after them.
_EN_ATTACH_RIGHT = frozenset({"(", "[", "{", "$", "#", "£", "€", "¥"})
# Moses "aggressive hyphen" style joiners: ``well @-@ known`` → ``well-known``.
_EN_JOINER_RE = re.compile(r"^@(\S)@$")
_EN_SPLIT_CONTRACTIONS = frozenset({("gon", "na"), ("wan", "na"), ("got", "ta")})


def detokenize_en(text: str) -> str:
    """Undo word tokenisation of English: rejoin clitics, attach punctuation, pair quotes.

    ``''``, ``"`` and PTB's opening quote become ``"``; a lone ``'`` is a quote when the sentence
    has an even number of them (``say ' ahhh '``), otherwise a possessive or elision
    (``minutes ' walk``, ``goin '``).
    A spaced hyphen `` - `` is left alone (it may be a dash); Moses' ``@-@`` is joined.

    Example: ``detokenize_en("i can 't swim .") == "i can't swim."``.
    """
    text = _MOSES_ESCAPE_RE.sub(lambda m: _MOSES_ESCAPES[m.group(0)], text)
    tokens = text.split()
    single_quotes_pair = tokens.count("'") >= 2 and tokens.count("'") % 2 == 0
    out: list[str] = []
    glue_next = False
    open_double = open_single = False
    for k, tok in enumerate(tokens):
        if not glue_next and tok.isalnum() and tok.lower() not in ("na", "ta"):
            out.append(tok)  # the common case: a plain word
            continue
        glue, glue_next = glue_next, False
        if tok in ('"', "''"):
            tok = '"'
            # A quote that ends the sentence closes one opened in an earlier sentence.
            if open_double or (k == len(tokens) - 1 and out):
                glue, open_double = True, False
            else:
                glue_next, open_double = True, True
        elif tok in ("``", "“"):
            tok = '"' if tok == "``" else tok
            glue_next, open_double = True, True
        elif tok == "”":
            glue, open_double = True, False
        elif tok == "'" and (single_quotes_pair or not out):
            if open_single:
                glue = True
            else:
                glue_next = True
            open_single = not open_single
        elif tok in ("`", "‘"):
            tok = "'" if tok == "`" else tok
            glue_next, open_single = True, True
        elif tok in ("'", "’") or _EN_ATTACH_LEFT_RE.match(tok):
            glue = True
            # Thousands separator split off a number: "1 , 000" → "1,000".
            nxt = tokens[k + 1] if k + 1 < len(tokens) else ""
            if tok == "," and out and out[-1][-1:].isdigit() and re.fullmatch(r"\d{3}(?:\D.*)?", nxt):
                glue_next = True
        elif tok in _EN_ATTACH_RIGHT:
            glue_next = True
        elif (joined := _EN_JOINER_RE.match(tok)) is not None:
            tok, glue, glue_next = joined.group(1), True, True
        elif out and (out[-1].lower(), tok.lower()) in _EN_SPLIT_CONTRACTIONS:
            glue = True
        if out and glue:
            out[-1] += tok
        else:
            out.append(tok)
    return " ".join(out)


_LATIN_WORD = r"0-9A-Za-z\u00c0-\u024f"
# A space survives only between a Latin word (or its closing punctuation) and a following Latin word.
_LATIN_WORD_RE = re.compile(f"[{_LATIN_WORD}]")
_JA_DROP_SPACE_RE = re.compile(rf"(?<![{_LATIN_WORD}.,!?;:%)]) | (?![{_LATIN_WORD}])")


def detokenize_ja(text: str) -> str:
    """Undo word tokenisation of Japanese: drop spaces, except one between two Latin words or numbers.

    Example: ``detokenize_ja("私 は iPhone 15 を 買 っ た 。") == "私はiPhone 15を買った。"``.
    """
    if _LATIN_WORD_RE.search(text) is None:
        return text.replace(" ", "").replace("\t", "")
    text = re.sub(r"[ \t]+", " ", text).strip(" \t")
    return _JA_DROP_SPACE_RE.sub("", text)


def _has_japanese(text: str) -> bool:
    return _JAPANESE_RE.search(text) is not None


def _loose_key(text: str) -> str:
    """Key for the leakage check: NFKC, case-folded, letters and digits only."""
    return _NOT_WORD_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


# --------------------------------------------------------------------------------------------------
# Spec resolution


@dataclass(frozen=True)
class _Source:
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


def _resolve(spec: str | os.PathLike[str]) -> _Source:
    text = os.fsdecode(spec)
    if text.startswith("builtin:"):
        return _resolve_builtin(text)
    if text.startswith("hf:"):
        return _resolve_hub(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _resolve_saved_dataset(path, None, text)
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
        return _Source("aligned", f"{parts[0]},{parts[1]}", paths)
    base, at, split_name = text.rpartition("@")
    if at and base and Path(base).expanduser().is_dir():
        return _resolve_saved_dataset(Path(base).expanduser(), split_name, text)
    en_path = _first_file(Path(text + ".en"), Path(text + ".en.gz"))
    ja_path = _first_file(Path(text + ".ja"), Path(text + ".ja.gz"))
    if en_path and ja_path:
        return _Source("aligned", f"{en_path},{ja_path}", (en_path, ja_path))
    if en_path or ja_path:
        found, missing = (en_path, text + ".ja") if en_path else (ja_path, text + ".en")
        raise DataError(f"{text}: found {found} but not {missing}; aligned files need both sides")
    raise DataError(f"{text}: no such file or folder. Accepted: {ACCEPTED_FORMATS}")


def _first_file(*candidates: Path) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _resolve_builtin(text: str) -> _Source:
    name = text.removeprefix("builtin:")
    if name not in ("train", "dev"):
        raise DataError(f"{text}: unknown built-in corpus; use builtin:train or builtin:dev")
    folder = bundled_data_dir()
    path = _first_file(folder / f"{name}.tsv", folder / f"{name}.tsv.gz")
    if path is None:
        raise DataError(
            f"{text}: the bundled file {folder / (name + '.tsv')} is missing; "
            "reinstall xlingual or pass your own parallel data"
        )
    return _Source("tsv", str(path), (path,))


def _resolve_hub(text: str) -> _Source:
    rest = text.removeprefix("hf:")
    name, at, split_name = rest.rpartition("@") if "@" in rest else (rest, "", "")
    name, _, config_name = name.partition(":")
    if not name or (at and not split_name):
        raise DataError(f"{text}: expected hf:NAME, hf:NAME@split or hf:NAME:CONFIG@split")
    return _Source("hf-hub", text, hub_name=name, hub_config=config_name or None, split=split_name or None)


def _resolve_saved_dataset(path: Path, split_name: str | None, text: str) -> _Source:
    if not any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        raise DataError(
            f"{text}: a folder, but not a dataset saved with datasets' save_to_disk "
            f"(no dataset_dict.json or state.json inside). Accepted: {ACCEPTED_FORMATS}"
        )
    return _Source("hf-disk", text, (path,), split=split_name)


def _resolve_file(path: Path, text: str) -> _Source:
    lower = path.name.lower().removesuffix(".gz")
    ext = Path(lower).suffix
    if ext in (".tsv", ".txt"):
        return _Source("tsv", text, (path,))
    if ext in (".jsonl", ".json"):
        return _Source("jsonl", text, (path,))
    if ext in (".en", ".ja"):
        stem = text[:-3] if text.lower().endswith(".gz") else text
        stem = stem[: -len(ext)]
        raise DataError(f"{text}: one side of aligned files; pass both as '{stem}.en,{stem}.ja' or the prefix '{stem}'")
    raise DataError(f"{text}: unknown file type {ext or '(no extension)'!r}. Accepted: {ACCEPTED_FORMATS}")


# --------------------------------------------------------------------------------------------------
# Readers. Each yields (line, en, ja) with raw text; problems go to a _Problems that raises
# (read_corpus) or collects them (inspect_corpus).


class _Problems:
    """Raise each problem as a DataError, or collect it (``collect=True``) and go on."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.items: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        if not self.collect:
            raise DataError(message)
        self.note(message)

    def note(self, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_LISTED_PROBLEMS:
            self.items.append(message)


def _open_binary(path: Path) -> IO[bytes] | gzip.GzipFile:
    # Gzip by content, not only by name: a compressed file renamed without ".gz" still reads.
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return path.open("rb")


def _iter_lines(path: Path, display: str, problems: _Problems) -> Iterator[tuple[int, str | None]]:
    """Yield ``(line number, text)``; text is None for a line already reported as unreadable.

    Accepts a UTF-8 BOM (also at the start of a later line: files joined with ``cat``) and LF, CRLF
    or CR line ends, mixed.
    """
    lineno = 0
    try:
        with _open_binary(path) as stream:
            for raw in stream:
                if lineno == 0:
                    for bom, encoding in _OTHER_BOMS:
                        if raw.startswith(bom):
                            raise DataError(
                                f"{display}: the file is {encoding} encoded; convert it to UTF-8, "
                                f"e.g. iconv -f {encoding} -t UTF-8 {path.name} > {path.name}.utf8"
                            )
                raw = raw.removesuffix(b"\n").removesuffix(b"\r")
                for piece in raw.split(b"\r") if b"\r" in raw else (raw,):
                    lineno += 1
                    yield lineno, _decode_line(piece.removeprefix(_UTF8_BOM), path, f"{display}:{lineno}", problems)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{display}: corrupt gzip data{f' after line {lineno}' if lineno else ''} ({exc}); "
            "re-download or re-compress the file"
        ) from exc
    except OSError as exc:
        raise DataError(f"{display}: cannot read the file ({exc.strerror or exc})") from exc


def text_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of a UTF-8 text file, line ends removed; gzip is detected by content.

    Reads lines exactly as the corpus readers do: a UTF-8 BOM is dropped (also at the start of a later
    line), and LF, CRLF and CR each end a line. Anything else stops with a :class:`DataError` naming the
    file and line and the fix: a missing file, a UTF-16/32 byte-order mark, a NUL byte, a line that is not
    UTF-8 (with the ``iconv`` command for its likely encoding), corrupt or truncated gzip data.

    Example: ``sentences = [text.strip() for _, text in text_lines("ja.txt") if text.strip()]``.
    """
    file = Path(path)
    if not file.is_file():
        what = "a folder, not a file" if file.is_dir() else "no such file"
        raise DataError(f"{file}: {what}; check the path")
    for lineno, text in _iter_lines(file, str(file), _Problems(collect=False)):
        if text is not None:  # a line that cannot be read raised already
            yield lineno, text


def _decode_line(raw: bytes, path: Path, where: str, problems: _Problems) -> str | None:
    nul = raw.find(b"\x00")
    if nul >= 0:
        problems.add(
            f"{where}: NUL byte at byte {nul + 1}; the file looks binary or UTF-16 — "
            f"convert it to UTF-8 text, e.g. iconv -f UTF-16 -t UTF-8 {path.name}"
        )
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(
            f"{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); "
            f"convert it to UTF-8, e.g. iconv -f {_guess_encoding(raw)} -t UTF-8 {path.name} > {path.name}.utf8"
        )
        return None


def _guess_encoding(raw: bytes) -> str:
    """The legacy encoding a line that is not UTF-8 most likely uses, for the ``iconv`` hint.

    Of Shift_JIS and EUC-JP, the one that decodes the line into the most full-width Japanese (EUC-JP
    bytes often decode as Shift_JIS too, but into half-width katakana, which counts against it); CP1252
    when neither decodes.
    """
    guess, best = "CP1252", None
    for codec, name in (("cp932", "SHIFT_JIS"), ("euc_jp", "EUC-JP")):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        score = len(_FULL_WIDTH_JA_RE.findall(text)) - len(_HALF_WIDTH_KANA_RE.findall(text))
        if best is None or score > best:
            guess, best = name, score
    return guess


_Record = tuple[int, str, str]


def _read_tsv(src: _Source, config: DataConfig, problems: _Problems) -> Iterator[_Record]:
    en_names = _EN_HEADER_NAMES | {config.en_key.lower()}
    ja_names = _JA_HEADER_NAMES | {config.ja_key.lower()}
    first_row = True
    for lineno, line in _iter_lines(src.paths[0], src.name, problems):
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


def _read_aligned(src: _Source, problems: _Problems) -> Iterator[_Record]:
    en_path, ja_path = src.paths
    n_en = n_ja = 0
    mismatch = False
    en_lines = _iter_lines(en_path, str(en_path), problems)
    ja_lines = _iter_lines(ja_path, str(ja_path), problems)
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


_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
}


def _read_jsonl(src: _Source, config: DataConfig, problems: _Problems) -> Iterator[_Record]:
    example = f'{{"{config.en_key}": "...", "{config.ja_key}": "..."}}'
    first_row = True
    for lineno, line in _iter_lines(src.paths[0], src.name, problems):
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
            kind = _JSON_TYPE_NAMES.get(type(obj), "null")
            problems.add(f"{where}: a JSON {kind}, expected an object like {example}")
            continue
        record = obj
        nested = obj.get("translation")
        if (config.en_key not in obj or config.ja_key not in obj) and isinstance(nested, dict):
            record = nested
        texts = _record_texts(record, where, config, problems)
        if texts is not None:
            yield lineno, texts[0], texts[1]


def _record_texts(
    record: dict[str, Any], where: str, config: DataConfig, problems: _Problems
) -> tuple[str, str] | None:
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
            problems.add(f"{where}: {key!r} is a {_JSON_TYPE_NAMES.get(type(value), 'value')}, expected text")
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


@contextlib.contextmanager
def _hub_offline_from_env() -> Iterator[None]:
    """Honour HF_HUB_OFFLINE / HF_DATASETS_OFFLINE even when set after ``datasets`` was imported.

    Both libraries read these variables once, at import; without this, a late setting would let
    ``load_dataset`` spend half a minute retrying a network that is not there.
    """
    truthy = {"1", "ON", "YES", "TRUE"}
    if not any(os.environ.get(v, "").upper() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        yield
        return
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _import_datasets(src: _Source) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{src.name}: reading Hugging Face datasets needs 'datasets'; pip install datasets") from exc
    return datasets


def _load_hf(src: _Source) -> Any:
    datasets = _import_datasets(src)
    if src.kind == "hf-hub":
        split_name = src.split or "train"
        try:
            with _hub_offline_from_env():
                return datasets.load_dataset(src.hub_name, src.hub_config, split=split_name)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(
                f"{src.name}: cannot load dataset {src.hub_name!r} (split {split_name!r}) "
                f"from the Hugging Face Hub ({type(exc).__name__}: {reason}); check the name and the "
                "network, or use a local copy: a TSV/JSONL file or a folder saved with save_to_disk"
            ) from exc
    try:
        loaded = datasets.load_from_disk(str(src.paths[0]))
    except Exception as exc:
        raise DataError(f"{src.name}: cannot load the saved dataset ({type(exc).__name__}: {exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        split_name = src.split or "train"
        if split_name not in loaded:
            raise DataError(
                f"{src.name}: no split {split_name!r} (splits: {', '.join(loaded)}); pick one with {src.paths[0]}@SPLIT"
            )
        return loaded[split_name]
    if src.split:
        raise DataError(f"{src.name}: the folder holds a single dataset, not splits; drop '@{src.split}'")
    return loaded


def _read_hf(src: _Source, config: DataConfig, problems: _Problems) -> Iterator[_Record]:
    dataset = _load_hf(src)
    columns = list(dataset.column_names)
    if config.en_key in columns and config.ja_key in columns:
        records: Iterator[dict[str, Any]] = (
            {config.en_key: en, config.ja_key: ja}
            for en, ja in zip(dataset[config.en_key], dataset[config.ja_key], strict=True)
        )
    elif "translation" in columns:
        records = iter(dataset["translation"])
    else:
        raise DataError(
            f"{src.name}: no columns {config.en_key!r} and {config.ja_key!r} and no 'translation' column "
            f"(columns: {', '.join(columns)}); set en_key / ja_key (--en-key / --ja-key) to the right columns"
        )
    for number, record in enumerate(records, start=1):
        where = src.where(number)
        if not isinstance(record, dict):
            problems.add(f"{where}: 'translation' is not a dict of languages")
            continue
        texts = _record_texts(record, where, config, problems)
        if texts is not None:
            yield number, texts[0], texts[1]


def _read_records(src: _Source, config: DataConfig, problems: _Problems) -> Iterator[_Record]:
    if src.kind == "tsv":
        return _read_tsv(src, config, problems)
    if src.kind == "aligned":
        return _read_aligned(src, problems)
    if src.kind == "jsonl":
        return _read_jsonl(src, config, problems)
    return _read_hf(src, config, problems)


def _read_normalised(src: _Source, config: DataConfig, problems: _Problems) -> ParallelCorpus:
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


def _validate(src: _Source, corpus: ParallelCorpus, config: DataConfig, problems: _Problems) -> None:
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


def _script_problem(src: _Source, corpus: ParallelCorpus) -> str | None:
    n = len(corpus)
    not_japanese = [i for i, ja in enumerate(corpus.ja) if ja and not _has_japanese(ja)]
    # One stray line in a tiny corpus is no evidence; all of them is.
    if not not_japanese or (n <= 2 and len(not_japanese) < n) or (n > 2 and 2 * len(not_japanese) <= n):
        return None
    first = not_japanese[0]
    en_example, ja_example = _snippet(corpus.en[first]), _snippet(corpus.ja[first])
    example = f"e.g. {src.where(corpus.lines[first])}: en={en_example} ja={ja_example}"
    n_en_japanese = sum(1 for en in corpus.en if _has_japanese(en))
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
    src = _resolve(spec)
    problems = _Problems(collect=False)
    corpus = _read_normalised(src, config, problems)
    _validate(src, corpus, config, problems)
    return corpus


def clean(
    corpus: ParallelCorpus, config: DataConfig, exclude: Sequence[ParallelCorpus] = ()
) -> tuple[ParallelCorpus, CleanStats]:
    """Drop empty, too short, too long, leaked and (``config.dedupe``) duplicate pairs, in that order.

    Each dropped pair is counted once, under the first reason that applies. A pair *leaks* when its
    English or Japanese side equals a sentence of any ``exclude`` corpus, compared loosely: NFKC,
    case-folded, letters and digits only — so case, punctuation, tokenisation spaces and full-width
    forms cannot hide a test sentence. Duplicates are exact pairs; the first one is kept.

    Example: ``kept, stats = clean(corpus, DataConfig(max_chars=200), exclude=[read_corpus("test.tsv")])``.
    """
    if config.min_chars < 0 or config.max_chars < config.min_chars:
        raise ConfigError(
            f"min_chars={config.min_chars}, max_chars={config.max_chars}: "
            "need 0 <= min_chars <= max_chars, e.g. min_chars=1, max_chars=1000"
        )
    leak_en = {k for other in exclude for s in other.en if (k := _loose_key(s))}
    leak_ja = {k for other in exclude for s in other.ja if (k := _loose_key(s))}
    stats = CleanStats(n_in=len(corpus))
    seen: set[tuple[str, str]] = set()
    keep: list[int] = []
    for i, (en, ja) in enumerate(corpus):
        if not en or not ja:
            stats.empty += 1
        elif len(en) < config.min_chars or len(ja) < config.min_chars:
            stats.too_short += 1
        elif len(en) > config.max_chars or len(ja) > config.max_chars:
            stats.too_long += 1
        elif (leak_en or leak_ja) and (_loose_key(en) in leak_en or _loose_key(ja) in leak_ja):
            stats.leaked += 1
        elif config.dedupe and (en, ja) in seen:
            stats.duplicates += 1
        else:
            seen.add((en, ja))
            keep.append(i)
    stats.n_out = len(keep)
    return corpus.select(keep), stats


def load_pairs(
    specs: Sequence[str | os.PathLike[str]], config: DataConfig | None = None
) -> tuple[ParallelCorpus, CleanStats]:
    """Read every spec, concatenate, and clean against the ``config.exclude`` corpora.

    Example: ``pairs, stats = load_pairs(["a.tsv", "b.jsonl"], DataConfig(exclude=["test.tsv"]))``.
    """
    config = config or DataConfig()
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    if not specs:
        raise DataError(f"no parallel data given; pass at least one corpus. Accepted: {ACCEPTED_FORMATS}")
    corpus = ParallelCorpus.concat([read_corpus(spec, config) for spec in specs])
    exclude = [read_corpus(spec, config) for spec in config.exclude]
    return clean(corpus, config, exclude)


def split(
    corpus: ParallelCorpus, dev_fraction: float = DataConfig.dev_fraction, seed: int = DataConfig.seed
) -> tuple[ParallelCorpus, ParallelCorpus]:
    """Split into ``(train, dev)`` at random, reproducibly by ``seed``; both keep the corpus order.

    Pairs sharing an English sentence (compared like the leakage check) go to the same side, so dev
    never sees an English sentence that training saw. ``len(dev)`` is ``round(n * dev_fraction)``
    (at least 1), overshooting only by the rest of such a group.

    Example: ``train, dev = split(corpus, dev_fraction=0.1, seed=42)``.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise ConfigError(f"dev_fraction={dev_fraction}: must lie strictly between 0 and 1, e.g. 0.05")
    n = len(corpus)
    if n < 2:
        raise DataError(f"{corpus.source or 'corpus'}: {n} pair(s); need at least 2 to split into train and dev")
    n_dev = min(max(round(n * dev_fraction), 1), n - 1)
    groups: dict[str, list[int]] = {}
    for i, en in enumerate(corpus.en):
        groups.setdefault(_loose_key(en) or f"\0{i}", []).append(i)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    dev_indices: list[int] = []
    for group in order:
        if len(dev_indices) >= n_dev:
            break
        dev_indices.extend(group)
    if len(dev_indices) == n:
        raise DataError(
            f"{corpus.source or 'corpus'}: all {n} pairs share one English sentence; nothing left to train on"
        )
    dev_set = set(dev_indices)
    train_indices = [i for i in range(n) if i not in dev_set]
    return corpus.select(train_indices), corpus.select(sorted(dev_indices))


# --------------------------------------------------------------------------------------------------
# Inspection


def _length_stats(lengths: list[int]) -> dict[str, float | int | None]:
    if not lengths:
        return {"min": None, "mean": None, "median": None, "p95": None, "max": None}
    ordered = sorted(lengths)
    return {
        "min": ordered[0],
        "mean": round(sum(ordered) / len(ordered), 2),
        "median": statistics.median(ordered),
        "p95": ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)],
        "max": ordered[-1],
    }


def _describe(corpus: ParallelCorpus) -> dict[str, Any]:
    n = len(corpus)
    counts = {"hiragana": 0, "katakana": 0, "kanji": 0, "latin_only": 0, "none": 0}
    for ja in corpus.ja:
        hira, kata, kanji = (bool(r.search(ja)) for r in (_HIRAGANA_RE, _KATAKANA_RE, _KANJI_RE))
        counts["hiragana"] += hira
        counts["katakana"] += kata
        counts["kanji"] += kanji
        if not (hira or kata or kanji):
            counts["latin_only" if _LATIN_RE.search(ja) else "none"] += 1
    return {
        "n_pairs": n,
        "en_chars": _length_stats([len(s) for s in corpus.en]),
        "en_tokens": _length_stats([len(s.split()) for s in corpus.en]),
        "ja_chars": _length_stats([len(s) for s in corpus.ja]),
        "duplicates": n - len(set(zip(corpus.en, corpus.ja, strict=True))),
        "ja_script": {k: round(v / n, 4) if n else 0.0 for k, v in counts.items()},
        "en_with_japanese": sum(1 for s in corpus.en if _has_japanese(s)),
    }


def _inspect_one(spec: str | os.PathLike[str], config: DataConfig) -> tuple[dict[str, Any], ParallelCorpus]:
    problems = _Problems(collect=True)
    name = os.fsdecode(spec)
    corpus = ParallelCorpus([], [], name, [])
    try:
        src = _resolve(spec)
        name = src.name
        corpus = _read_normalised(src, config, problems)
        _validate(src, corpus, config, problems)
        for en, ja, lineno in zip(corpus.en, corpus.ja, corpus.lines, strict=True):
            if ja and not _has_japanese(ja) and _has_japanese(en):
                problems.note(f"{src.where(lineno)}: looks swapped (Japanese script on the en side, none on the ja)")
    except DataError as exc:
        # A problem that stops reading (missing file, corrupt gzip): report it; the file counts as empty.
        problems.note(str(exc))
    entry = {"source": name, **_describe(corpus), "problems": problems.items, "n_problems": problems.count}
    return entry, corpus


def inspect_corpus(specs: Sequence[str | os.PathLike[str]], config: DataConfig | None = None) -> dict[str, Any]:
    """Describe corpora for people and scripts, listing every problem instead of stopping at the first.

    Returns a JSON-serialisable dict: ``{"files": [entry, ...], "total": entry}`` where an entry has
    ``n_pairs``, length stats ``en_chars``/``en_tokens``/``ja_chars`` (min/mean/median/p95/max),
    ``duplicates``, ``ja_script`` (fraction of Japanese sentences with hiragana, katakana, kanji,
    Latin letters only, none of these), ``en_with_japanese``, ``problems`` (up to
    ``MAX_LISTED_PROBLEMS`` per file, each naming file and line) and ``n_problems``.

    Example: ``print(format_inspect(inspect_corpus(["pairs.tsv"])))``.
    """
    config = config or DataConfig()
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    entries: list[dict[str, Any]] = []
    corpora: list[ParallelCorpus] = []
    for spec in specs:
        entry, corpus = _inspect_one(spec, config)
        entries.append(entry)
        corpora.append(corpus)
    total = {
        "source": "total",
        **_describe(ParallelCorpus.concat(corpora)),
        "problems": [p for e in entries for p in e["problems"]],
        "n_problems": sum(e["n_problems"] for e in entries),
    }
    return {"files": entries, "total": total}


def _format_stats(stats: dict[str, Any]) -> str:
    if stats["min"] is None:
        return "-"
    return "  ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items())


def _format_entry(entry: dict[str, Any], list_problems: bool = True) -> list[str]:
    script = entry["ja_script"]
    lines = [
        entry["source"],
        f"  pairs                 {entry['n_pairs']}",
        f"  duplicate pairs       {entry['duplicates']}",
        f"  English chars         {_format_stats(entry['en_chars'])}",
        f"  English words         {_format_stats(entry['en_tokens'])}",
        f"  Japanese chars        {_format_stats(entry['ja_chars'])}",
        "  Japanese script       "
        + "  ".join(f"{key.replace('_', ' ')} {100 * value:.1f}%" for key, value in script.items()),
        f"  Japanese on EN side   {entry['en_with_japanese']}",
        f"  problems              {entry['n_problems']}",
    ]
    if not list_problems:
        return lines
    lines += [f"    {problem}" for problem in entry["problems"]]
    if entry["n_problems"] > len(entry["problems"]):
        lines.append(f"    … and {entry['n_problems'] - len(entry['problems'])} more")
    return lines


def format_inspect(report: dict[str, Any]) -> str:
    """Render an :func:`inspect_corpus` report as plain text for people.

    Example: ``print(format_inspect(inspect_corpus(["pairs.tsv"])))``.
    """
    lines: list[str] = []
    for entry in report["files"]:
        lines += [*_format_entry(entry), ""]
    if len(report["files"]) > 1:
        total = dict(report["total"], source=f"total ({len(report['files'])} files)")
        lines += _format_entry(total, list_problems=False)
    return "\n".join(lines).rstrip()
