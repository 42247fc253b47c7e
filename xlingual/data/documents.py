"""Document corpora for search: readers and passage splitting.

A *document corpus* is one file (gzip allowed, detected by content):

- **text** (any other name, e.g. ``docs.txt``): one document per line (LF, CRLF or CR, mixed); its id
  is ``FILE:LINE``;
- **JSONL** (``.jsonl``, ``.ndjson``): one object per line with ``text`` and optionally ``id`` (string or
  integer; missing: ``FILE:LINE``); every other field is kept as the document's metadata;
- **Parquet** (``.parquet``, ``.pq``): the same columns as JSONL, one row per document.

Text is NFC-normalised and line ends become ``\\n``. Blank documents are skipped (and counted). A
document id that repeats within the file is an error naming both lines. Files are UTF-8 (a BOM is
fine); UTF-16/32, NUL bytes, undecodable bytes, unreadable JSON and damaged Parquet stop with a
:class:`~xlingual.errors.DataError` naming the file, the line (or row) and the fix.

**Passages.** A long document is split at sentence boundaries — after ``。！？．!?`` (with any closing
brackets or quotes that follow, e.g. ``」``), after an English ``.`` followed by a space, and at line
breaks — and consecutive sentences are packed into passages of at most ``max_tokens`` tokens (counted
with the model's tokenizer, sentence by sentence) or, without a tokenizer, ``max_chars`` characters. A
single sentence longer than that is cut into pieces that fit. Each passage keeps its document id, its
number within the document and its character span in the (normalised) document text.

Example::

    docs = list(read_documents("news.jsonl"))
    parts = list(to_passages(docs, max_chars=200))   # Passage(doc_id="n1", number=0, text=..., start=0, end=57)
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from xlingual.data.lines import text_lines
from xlingual.errors import DataError

#: Counts the tokens of each string in a batch (e.g. with a model's tokenizer, without special tokens).
TokenCounter = Callable[[Sequence[str]], list[int]]

_GZIP_MAGIC = b"\x1f\x8b"
#: Sentence terminators (an English "." counts only before whitespace: "3.14", "e.g." stay whole).
_TERMINATORS = frozenset("。！？．!?")
_BRACKETS = {
    "「": "」",
    "『": "』",
    "（": "）",
    "(": ")",
    "［": "］",
    "[": "]",
    "【": "】",
    "〔": "〕",
    "〈": "〉",
    "《": "》",
}
_OPENERS = frozenset(_BRACKETS)
_CLOSERS = frozenset(_BRACKETS.values())
#: Quotes without a separate closing form: kept with the sentence they follow.
_TRAILING_QUOTES = frozenset("\"'”’")
#: A bracket left open for this many characters is taken as unbalanced and no longer suppresses boundaries.
_MAX_QUOTE_CHARS = 500
#: Where a sentence longer than a passage is preferably cut (after these), before falling back to any character.
_SOFT_BREAK_RE = re.compile(r"[、，,;；:：\s]")


class CorpusFormat(StrEnum):
    """The document file formats :func:`read_documents` reads."""

    TEXT = "text"
    JSONL = "jsonl"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Document:
    """One document: its id (unique within an index), text and metadata (any JSON-able fields)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A piece of a document that is embedded on its own; ``text == document.text[start:end]``."""

    doc_id: str
    #: Position of the passage within its document (0, 1, …).
    number: int
    text: str
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadStats:
    """What :func:`read_documents` saw: documents yielded and blank ones skipped."""

    documents: int = 0
    skipped_blank: int = 0


def detect_format(path: str | os.PathLike[str]) -> CorpusFormat:
    """The format a file name implies (``.gz`` ignored): ``news.jsonl.gz`` → JSONL; unknown → text."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return CorpusFormat.JSONL
    if name.endswith((".parquet", ".pq")):
        return CorpusFormat.PARQUET
    return CorpusFormat.TEXT


def normalize_document(text: str) -> str:
    """NFC, ``\\r\\n``/``\\r`` → ``\\n``, outer whitespace stripped (inner line breaks are kept: they end sentences)."""
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 file, read exactly as the parallel-corpus readers read lines.

    See :func:`xlingual.data.lines.text_lines`: BOM accepted, LF / CRLF / CR line ends, gzip by content; a
    UTF-16/32 byte-order mark, a NUL byte, bytes that are not UTF-8 or corrupt gzip data stop with a
    :class:`DataError` naming the file and line and the ``iconv`` command that fixes it.
    """
    yield from text_lines(path)


def _lone_surrogate(value: Any) -> str | None:
    """The first string in a parsed JSON value (keys included) with a lone surrogate (a bad ``\\ud800`` escape)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_json_line(line: str, where: str) -> Any:
    """One JSON Lines row, or a :class:`DataError` at ``where`` (bad JSON, too deep, a lone surrogate)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); one object per line.") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read; one flat object per line.") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataError(f"{where}: JSON that cannot be read ({str(exc).split(';')[0]}); one object per line.") from None
    if "\\u" in line and (bad := _lone_surrogate(row)) is not None:
        raise DataError(
            f"{where}: the string {bad[:40]!r} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
            "which is not text; fix or remove that escape."
        )
    return row


def _doc_id(value: Any, where: str, id_key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: {id_key!r} is {type(value).__name__} {value!r}; use a string or an integer id.")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: {id_key!r} is empty; give every document a non-empty id (or drop the field).")
    return text


def _record(
    row: dict[str, Any], where: str, default_id: str, id_key: str, text_key: str
) -> tuple[str, str | None, dict[str, Any]]:
    if text_key not in row:
        keys = ", ".join(sorted(map(str, row))) or "none"
        raise DataError(f"{where}: no {text_key!r} field (fields: {keys}); pass --text-key to name the text field.")
    text = row[text_key]
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: {text_key!r} is {type(text).__name__}, not a string.")
    doc_id = _doc_id(row[id_key], where, id_key) if row.get(id_key) is not None else default_id
    metadata = {str(k): v for k, v in row.items() if k not in (id_key, text_key)}
    return doc_id, text, metadata


def _raw_records(
    path: Path, fmt: CorpusFormat, id_key: str, text_key: str
) -> Iterator[tuple[str, str, str | None, dict[str, Any]]]:
    """``(where, id, text, metadata)`` per document, in file order."""
    name = path.name
    if fmt is CorpusFormat.TEXT:
        for lineno, line in _lines(path):
            yield f"{path}:{lineno}", f"{name}:{lineno}", line, {}
    elif fmt is CorpusFormat.JSONL:
        for lineno, line in _lines(path):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            row = parse_json_line(line, where)
            if not isinstance(row, dict):
                raise DataError(f"{where}: a JSON {type(row).__name__}, expected an object with {text_key!r}.")
            yield where, *_record(row, where, f"{name}:{lineno}", id_key, text_key)
    else:
        for row_no, row in enumerate(parquet_rows(path), start=1):
            where = f"{path} row {row_no}"
            yield where, *_record(row, where, f"{name}:{row_no}", id_key, text_key)


def parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file (gzip allowed) as dicts, batch by batch; a :class:`DataError` if unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source: Any = path
        with path.open("rb") as probe:
            if probe.read(2) == _GZIP_MAGIC:  # gzip-compressed Parquet: decompress into memory
                with gzip.open(path, "rb") as stream:
                    source = io.BytesIO(stream.read())
        parquet = pq.ParquetFile(source)
        for batch in parquet.iter_batches(batch_size=4096):
            batch.validate(full=True)  # Arrow does not check UTF-8 on read: a damaged string shows up here
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{path} does not exist; pass a text, JSONL or Parquet file of documents.") from None
        reason = " ".join(str(exc).split())  # Arrow's messages span lines; ours stay on one
        raise DataError(f"{path}: not a readable Parquet file ({reason}).") from None


def read_documents(
    path: str | os.PathLike[str],
    *,
    id_key: str = "id",
    text_key: str = "text",
    fmt: CorpusFormat | str | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Document]:
    """Yield the documents of a text, JSONL or Parquet file (gzip allowed), in file order.

    Blank documents are skipped (counted in ``stats``). Raises :class:`DataError` naming the file and
    line for unreadable input and for an id that repeats. Example: ``read_documents("docs.jsonl.gz")``.
    """
    file = Path(path)
    if file.is_dir():
        raise DataError(f"{file} is a folder; pass one text, JSONL or Parquet file of documents.")
    if not file.exists():
        raise DataError(f"{file} does not exist; pass a text, JSONL or Parquet file of documents.")
    kind = CorpusFormat(fmt) if fmt else detect_format(file)
    stats = stats if stats is not None else ReadStats()
    seen: dict[str, str] = {}
    for where, doc_id, raw_text, metadata in _raw_records(file, kind, id_key, text_key):
        text = normalize_document(raw_text or "")
        if not text:
            stats.skipped_blank += 1
            continue
        if doc_id in seen:
            raise DataError(
                f"{where}: document id {doc_id!r} already used at {seen[doc_id]}; ids must be unique "
                f"(fix the ids, or drop the {id_key!r} field to number documents by line)."
            )
        seen[doc_id] = where
        stats.documents += 1
        yield Document(doc_id, text, metadata)


# --------------------------------------------------------------------------- splitting


def _add_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    """Append ``(start, end)`` with surrounding whitespace trimmed, unless nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _terminator_run_end(text: str, stop: int) -> int:
    """The end of the terminators and closing quotes that start at ``stop`` (``。」`` ends a sentence whole)."""
    while stop < len(text) and (text[stop] in _TERMINATORS or text[stop] in _TRAILING_QUOTES):
        stop += 1
    return stop


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, whitespace trimmed.

    A sentence ends after a run of ``。！？．!?`` (and any ``"”’`` right after it), after an English
    ``.`` followed by whitespace, and at every line break. Inside brackets (「」『』（）…) only a line
    break ends one, so ``「はい。」と言った。`` is one sentence; a quote that ends with a terminator and is
    followed by another quote or a space ends one too (``「はい。」「いいえ。」`` is two).

    Example: ``sentence_spans("雨です。「傘は？」と聞いた。")`` → ``[(0, 4), (4, 14)]``.
    """
    spans: list[tuple[int, int]] = []

    def emit(start: int, end: int) -> None:
        _add_trimmed(spans, text, start, end)

    n = len(text)
    start = i = depth = 0
    opened_at = 0
    while i < n:
        char = text[i]
        if depth and i - opened_at > _MAX_QUOTE_CHARS:
            depth = 0
        if char == "\n":
            emit(start, i)
            start, depth = i + 1, 0
        elif char in _OPENERS:
            if depth == 0:
                opened_at = i
            depth += 1
        elif char in _CLOSERS and depth:
            depth -= 1
            follower = text[i + 1] if i + 1 < n else ""
            if (
                depth == 0
                and text[i - 1] in _TERMINATORS
                and (not follower or follower in _OPENERS or follower.isspace())
            ):
                emit(start, i + 1)
                start = i + 1
        elif depth == 0 and (char in _TERMINATORS or (char == "." and i + 1 < n and text[i + 1].isspace())):
            stop = _terminator_run_end(text, i + 1)
            emit(start, stop)
            start = i = stop
            continue
        i += 1
    emit(start, n)
    return spans


def _cut(text: str, start: int, end: int, fits: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into consecutive pieces that ``fits``, preferring soft breaks (、, spaces).

    Each piece is the longest prefix that fits (binary search: a few ``fits`` calls per piece), moved
    back to the last soft break in its second half; a single character is kept even if it does not fit.
    """
    pieces: list[tuple[int, int]] = []
    while start < end:
        lo, hi = start + 1, end
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(start, mid):
                lo = mid
            else:
                hi = mid - 1
        stop = lo
        if stop < end:
            soft = [m.end() for m in _SOFT_BREAK_RE.finditer(text, start, stop)]
            if soft and soft[-1] - start > (stop - start) // 2:
                stop = soft[-1]
        piece_end = stop
        while piece_end > start + 1 and text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append((start, piece_end))
        start = stop
        while start < end and text[start].isspace():
            start += 1
    return pieces


def passage_spans(
    text: str,
    *,
    max_tokens: int | None = None,
    count_tokens: TokenCounter | None = None,
    max_chars: int = 400,
) -> list[tuple[int, int]]:
    """Split ``text`` into passage spans: whole sentences packed greedily up to the budget.

    With ``count_tokens`` and ``max_tokens`` the budget is tokens (summed sentence by sentence),
    otherwise ``max_chars`` characters. Example: ``passage_spans(doc, max_chars=200)``.
    """
    by_tokens = count_tokens is not None and max_tokens is not None
    limit = int(max_tokens) if by_tokens and max_tokens is not None else int(max_chars)
    if limit < 1:
        raise DataError(f"The passage limit is {limit}; it must be at least 1 (max_tokens / max_chars).")

    def measure(spans: Sequence[tuple[int, int]]) -> list[int]:
        if by_tokens and count_tokens is not None:
            return list(count_tokens([text[s:e] for s, e in spans]))
        return [e - s for s, e in spans]

    def fits(start: int, end: int) -> bool:
        return measure([(start, end)])[0] <= limit

    sentences = sentence_spans(text)
    sizes = measure(sentences) if sentences else []
    units: list[tuple[int, int, int]] = []  # (start, end, size) of sentences, over-long ones cut to fit
    for (start, end), size in zip(sentences, sizes, strict=True):
        if size <= limit:
            units.append((start, end, size))
            continue
        pieces = _cut(text, start, end, fits)
        units.extend((s, e, n) for (s, e), n in zip(pieces, measure(pieces), strict=True))
    passages: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    used = 0
    for start, end, size in units:
        # Characters: the merged span itself (gaps included); tokens: the sum (a gap is no token).
        merged = used + size if by_tokens else (end - current[0] if current is not None else size)
        if current is not None and merged <= limit:
            current, used = (current[0], end), merged
            continue
        if current is not None:
            passages.append(current)
        current, used = (start, end), size
    if current is not None:
        passages.append(current)
    return passages


def to_passages(
    documents: Iterable[Document],
    *,
    max_tokens: int | None = None,
    count_tokens: TokenCounter | None = None,
    max_chars: int = 400,
) -> Iterator[Passage]:
    """Split each document into :class:`Passage` s (see :func:`passage_spans`), in document order."""
    for doc in documents:
        spans = passage_spans(doc.text, max_tokens=max_tokens, count_tokens=count_tokens, max_chars=max_chars)
        for number, (start, end) in enumerate(spans):
            yield Passage(doc.id, number, doc.text[start:end], start, end, doc.metadata)


def tokenizer_counter(model: Any) -> TokenCounter | None:
    """A :data:`TokenCounter` from a sentence-transformers model's tokenizer, or None when it has none."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):
        return None

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    return count
