"""Fuzz and property tests of every reader: parallel corpora, documents, embeddings files, the cache, the index,
evaluation files (sentences, gold pairs, STS) and the texts trimming reads.

The contract under test: any input either loads exactly what an independent reference parse says, or
stops with an :class:`~xlingual.errors.XlingualError` whose one-line message names the file (and, for
line-based input, the right line). Any other exception, a wrong line number, a silently dropped or
shifted line fails the test. Inputs: arbitrary bytes, Shift_JIS / EUC-JP / UTF-16 / UTF-32 text, UTF-8
with BOMs, mixed LF / CRLF / CR line ends, NUL bytes, very long lines, tabs inside fields, empty files,
and truncated, bit-flipped or rewritten data files and manifests.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import tempfile
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from tests.fakes import FakeEncoder, HashEncoder
from xlingual import evaluation as ev
from xlingual.cache import EmbeddingCache, cache_key
from xlingual.cli import cli
from xlingual.config import DataConfig, EmbedConfig, IndexConfig, SearchConfig
from xlingual.data.clean import clean
from xlingual.data.documents import read_documents
from xlingual.data.readers import ParallelCorpus, read_corpus
from xlingual.errors import CacheError, DataError, XlingualError
from xlingual.export.embeddings import embed_file
from xlingual.export.read import read_embeddings
from xlingual.export.writers import ids_path, meta_path
from xlingual.models.trim import _text_lines, corpus_texts
from xlingual.search import faiss_ops
from xlingual.search.display import format_info
from xlingual.search.index import Index

#: Examples per property; a longer campaign: XLINGUAL_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py
EXAMPLES = int(os.environ.get("XLINGUAL_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=2 * EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per hypothesis example (a function-scoped tmp_path would be shared by all of them)."""
    with tempfile.TemporaryDirectory(prefix="xlingual-fuzz-") as folder:
        yield Path(folder)


def check_message(exc: XlingualError, *names: object) -> str:
    """The message of a clean failure: one line, naming one of ``names`` (a file or folder)."""
    message = str(exc)
    assert "\n" not in message, f"message spans lines: {message!r}"
    assert any(str(name) in message for name in names), f"{message!r} names none of {names}"
    return message


def attempt(load: Callable[[], Any], *names: object) -> tuple[Any, str | None]:
    """``(result, None)`` or ``(None, message)`` for an XlingualError; anything else propagates and fails."""
    try:
        result = load()
    except XlingualError as exc:
        note_outcome(f"refused: {type(exc).__name__}")
        return None, check_message(exc, *names)
    note_outcome("loaded")
    return result, None


def note_outcome(outcome: str) -> None:
    """Count outcomes per property (shown by ``pytest --hypothesis-show-statistics``); a no-op outside one."""
    with contextlib.suppress(InvalidArgument):
        event(outcome)


# --------------------------------------------------------------------------- reference parsing

EOLS = st.sampled_from([b"\n", b"\r\n", b"\r"])
_EOL_RE = re.compile(rb"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
_JAPANESE_RE = re.compile(
    "[\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003134f]"
)
_EN_NAMES = {"en", "eng", "english", "src", "source"}
_JA_NAMES = {"ja", "jp", "jpn", "japanese", "tgt", "target"}


def ref_lines(data: bytes) -> list[bytes]:
    """Lines as a reader must see them: LF, CRLF and CR each end one; a final line end adds no line."""
    lines = _EOL_RE.split(data)
    if lines[-1] == b"":
        lines.pop()
    return lines


def ref_decode(raw: bytes) -> str | None:
    """The text of one line (a UTF-8 BOM at its start dropped), or None when a reader must refuse it."""
    raw = raw.removeprefix(_UTF8_BOM)
    if b"\x00" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def ref_norm(text: str) -> str:
    """NFC, whitespace runs (but the ideographic space) to one space, stripped."""
    return re.sub(r"[^\S\u3000]+", " ", unicodedata.normalize("NFC", text)).strip()


def other_bom(first_line: bytes) -> str | None:
    return next((name for bom, name in _OTHER_BOMS.items() if first_line.startswith(bom)), None)


@dataclass
class Expected:
    """What a reader must do with a file: return ``rows``, or fail at ``line`` (None: a file-level error)."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    failed: bool = False
    path: Path | None = None
    line: int | None = None
    says: str = ""

    def fail(self, path: Path, line: int | None, says: str = "") -> Expected:
        self.failed, self.path, self.line, self.says = True, path, line, says
        return self


def assert_outcome(expected: Expected, result: Any, message: str | None, rows: Callable[[Any], list[Any]]) -> None:
    if message is None:
        assert not expected.failed, f"accepted a bad file; expected a failure at {expected.path}:{expected.line}"
        assert rows(result) == expected.rows
        return
    assert expected.failed, f"refused a good file: {message}"
    if expected.line is not None:
        assert message.startswith(f"{expected.path}:{expected.line}: "), (message, expected.line)
    else:
        assert message.startswith(str(expected.path)), message
    assert expected.says in message


def script_failure(pairs: list[tuple[int, str, str]]) -> bool:
    """The swapped-columns / not-Japanese check: more than half the Japanese sides have no Japanese script."""
    n = len(pairs)
    not_japanese = sum(1 for _, _, ja in pairs if ja and not _JAPANESE_RE.search(ja))
    if not not_japanese:
        return False
    return not_japanese == n if n <= 2 else 2 * not_japanese > n


def ref_tsv(path: Path, content: bytes) -> Expected:
    expected = Expected()
    lines = ref_lines(content)
    if lines and (encoding := other_bom(lines[0])):
        return expected.fail(path, None, f"is {encoding} encoded")
    pairs: list[tuple[int, str, str]] = []
    first_row = True
    for number, raw in enumerate(lines, start=1):
        text = ref_decode(raw)
        if text is None:
            return expected.fail(path, number)
        if not text.strip():
            continue
        cells = text.split("\t")
        if first_row:
            first_row = False
            head = tuple(cell.strip().lower() for cell in cells)
            if len(cells) == 2 and head[0] in _EN_NAMES and head[1] in _JA_NAMES:
                continue
            if len(cells) == 2 and head[0] in _JA_NAMES and head[1] in _EN_NAMES:
                return expected.fail(path, number, "swap the columns")
        if len(cells) != 2:
            return expected.fail(path, number, "expected 2 (en<TAB>ja)")
        pairs.append((number, ref_norm(cells[0]), ref_norm(cells[1])))
    for number, en, ja in pairs:
        if not en or not ja:
            return expected.fail(path, number, "empty")
    if script_failure(pairs):
        return expected.fail(path, None)
    expected.rows = pairs
    return expected


def corpus_rows(corpus: ParallelCorpus) -> list[tuple[int, str, str]]:
    return list(zip(corpus.lines, corpus.en, corpus.ja, strict=True))


# --------------------------------------------------------------------------- strategies

#: Files of evaluate's readers (sentences, gold pairs, STS) and of trimming's texts, in the order of TEXT_FILE_READERS.
TEXT_FILE_NAMES = ("src.txt", "gold.tsv", "sts.tsv", "corpus.txt")

EN_TEXT = st.text("abcdfghikmoprstuvwxyzABC .,'!?-0123456789", min_size=1, max_size=30).filter(str.strip)
JA_TEXT = st.text("あいうおかきくけこ漢字日本語カタカナー。、「」\u3000", min_size=1, max_size=20).filter(
    lambda s: _JAPANESE_RE.search(s) is not None
)
#: Odd whitespace a reader must keep inside a line: tab, NEL, line/paragraph separators, form feed.
ODD_SPACE = st.sampled_from(["\t", "\x85", "\u2028", "\u2029", "\x0c", "\x0b", "\x1c"])
GARBAGE = st.binary(max_size=40)


@st.composite
def tsv_line(draw: st.DrawFn, damaged: bool = True) -> bytes:
    """One line of a parallel TSV file: mostly good pairs, sometimes (``damaged``) each kind of damage."""
    en, ja = draw(EN_TEXT), draw(JA_TEXT)
    bad_kinds = ["sjis", "eucjp", "nul", "three", "one", "empty-side", "garbage", "header"] if damaged else []
    kind = draw(st.sampled_from(["pair"] * 6 + ["blank", "bom", *bad_kinds]))
    if kind == "pair":
        return f"{en}\t{ja}".encode()
    if kind == "blank":
        return draw(st.sampled_from([b"", b"  ", b" \t ", "\u3000".encode()]))
    if kind in ("sjis", "eucjp"):
        return f"{en}\t{ja}".encode("shift_jis" if kind == "sjis" else "euc_jp")
    if kind == "nul":
        return f"{en}\x00\t{ja}".encode()
    if kind == "three":
        return f"{en}\t{ja}\t{en}".encode()
    if kind == "one":
        return f"{en} {ja}".encode()
    if kind == "empty-side":
        return draw(st.sampled_from([f"{en}\t ", f" \t{ja}"])).encode()
    if kind == "bom":  # a later file's BOM, as left by cat a.tsv b.tsv
        return _UTF8_BOM + f"{en}\t{ja}".encode()
    if kind == "header":
        return draw(st.sampled_from([b"en\tja", b"ja\ten", b"English\tJapanese"]))
    return draw(GARBAGE)


@st.composite
def joined(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    """Lines joined with a random mix of LF, CRLF and CR, maybe a BOM first and a line end last."""
    ends = [draw(EOLS) for _ in lines]
    for i in reversed(range(len(lines) - 1)):  # from the end: a changed end may make the one before merge
        if ends[i] == b"\r" and (lines[i + 1] + ends[i + 1]).startswith(b"\n"):
            ends[i] = b"\n"  # CR then LF is one CRLF line end, not two: keep the file meaning what the list says
    body = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    if body and draw(st.booleans()):
        body = body.removesuffix(ends[-1])
    return (_UTF8_BOM if draw(st.booleans()) else b"") + body


def compress_maybe(draw: st.DrawFn, content: bytes, name: str) -> tuple[bytes, str]:
    if draw(st.booleans()):
        return gzip.compress(content), name + ".gz"
    return content, name


# --------------------------------------------------------------------------- parallel corpora


@MANY
@given(data=st.data(), lines=st.lists(tsv_line(), max_size=12) | st.lists(tsv_line(damaged=False), max_size=12))
def test_tsv_reader_matches_the_reference_or_names_the_bad_line(data, lines):
    content = data.draw(joined(lines))
    assume(not content.startswith(b"\x1f\x8b"))
    with scratch() as folder:
        stored, name = compress_maybe(data.draw, content, "pairs.tsv")
        path = folder / name
        path.write_bytes(stored)
        corpus, message = attempt(lambda: read_corpus(path), path)
        assert_outcome(ref_tsv(path, content), corpus, message, corpus_rows)


@MANY
@given(
    data=st.data(),
    pairs=st.lists(st.tuples(EN_TEXT, JA_TEXT, ODD_SPACE, ODD_SPACE), min_size=1, max_size=10),
)
def test_tabs_and_odd_spaces_inside_fields_never_shift_a_pair(data, pairs):
    # Whitespace that str.splitlines() would break on (NEL, U+2028, FF, VT, FS) must stay inside the line.
    lines = [f"{en}{space}x\t{ja}{odd}ja".encode() for en, ja, space, odd in pairs if space != "\t" and odd != "\t"]
    assume(lines)
    content = data.draw(joined(lines))
    with scratch() as folder:
        path = folder / "pairs.tsv"
        path.write_bytes(content)
        corpus = read_corpus(path)
    expected = [(en, ja) for en, ja, space, odd in pairs if space != "\t" and odd != "\t"]
    assert len(corpus) == len(expected)
    for (en, ja), got_en, got_ja in zip(expected, corpus.en, corpus.ja, strict=True):
        assert got_en == ref_norm(f"{en} x") and got_ja == ref_norm(f"{ja} ja")


def ref_aligned(en_path: Path, ja_path: Path, en_content: bytes, ja_content: bytes) -> Expected:
    expected = Expected()
    sides = [(en_path, ref_lines(en_content)), (ja_path, ref_lines(ja_content))]
    decoded: list[list[str]] = [[], []]
    for number in range(1, max(len(sides[0][1]), len(sides[1][1])) + 1):
        for side, (path, lines) in enumerate(sides):  # the reader takes English line k, then Japanese line k
            if number > len(lines):
                continue
            if number == 1 and (encoding := other_bom(lines[0])):
                return expected.fail(path, None, f"is {encoding} encoded")
            text = ref_decode(lines[number - 1])
            if text is None:
                return expected.fail(path, number)
            decoded[side].append(text)
    en_lines, ja_lines = decoded
    shorter, longer = sorted((en_lines, ja_lines), key=len)
    if any(text.strip() for text in longer[len(shorter) :]):
        return expected.fail(en_path, None, f"has {len(en_lines)} lines but {ja_path} has {len(ja_lines)}")
    pairs = [
        (number, ref_norm(en), ref_norm(ja))
        for number, (en, ja) in enumerate(zip(en_lines, ja_lines, strict=False), start=1)
        if en.strip() or ja.strip()
    ]
    for number, en, ja in pairs:
        if not en or not ja:
            return expected.fail(ja_path if en else en_path, number, "empty")
    if script_failure(pairs):
        return expected.fail(en_path, None)
    expected.rows = pairs
    return expected


@st.composite
def aligned_sides(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Line lists of an .en and a .ja file: aligned, with damage, blank lines, and sometimes one side longer."""
    en_lines: list[bytes] = []
    ja_lines: list[bytes] = []
    damaged = draw(st.booleans())
    for _ in range(draw(st.integers(0, 10))):
        en, ja = draw(EN_TEXT), draw(JA_TEXT)
        damage_kinds = ["sjis", "nul", "lone-cr", "empty", "garbage"] if damaged else []
        kind = draw(st.sampled_from(["pair"] * 6 + ["blank", *damage_kinds]))
        en_raw, ja_raw = en.encode(), ja.encode()
        if kind == "blank":
            en_raw, ja_raw = b"", b" "
        elif kind == "sjis":
            ja_raw = ja.encode("shift_jis")
        elif kind == "nul":
            en_raw = en_raw + b"\x00"
        elif kind == "lone-cr":  # a stray CR splits one side's line in two: the sides no longer line up
            en_raw = en_raw.replace(b" ", b"\r", 1) if b" " in en_raw else en_raw + b"\r" + en_raw
        elif kind == "empty":
            en_raw = b""
        elif kind == "garbage":
            ja_raw = draw(GARBAGE)
        en_lines.append(en_raw)
        ja_lines.append(ja_raw)
    tail = draw(st.sampled_from(["", "en", "ja", "blank-en", "blank-ja"] if damaged else ["", "blank-en", "blank-ja"]))
    if tail in ("en", "ja"):
        (en_lines if tail == "en" else ja_lines).append(draw(EN_TEXT).encode())
    elif tail:
        (en_lines if tail == "blank-en" else ja_lines).extend([b"", b"  "])
    return en_lines, ja_lines


@MANY
@given(data=st.data(), sides=aligned_sides())
def test_aligned_reader_keeps_line_i_with_line_i_or_names_the_bad_line(data, sides):
    en_content, ja_content = data.draw(joined(sides[0])), data.draw(joined(sides[1]))
    assume(not en_content.startswith(b"\x1f\x8b") and not ja_content.startswith(b"\x1f\x8b"))
    with scratch() as folder:
        en_stored, en_name = compress_maybe(data.draw, en_content, "corpus.en")
        ja_stored, ja_name = compress_maybe(data.draw, ja_content, "corpus.ja")
        en_path, ja_path = folder / en_name, folder / ja_name
        en_path.write_bytes(en_stored)
        ja_path.write_bytes(ja_stored)
        corpus, message = attempt(lambda: read_corpus(f"{en_path},{ja_path}"), en_path, ja_path)
        assert_outcome(ref_aligned(en_path, ja_path, en_content, ja_content), corpus, message, corpus_rows)


@st.composite
def jsonl_line(draw: st.DrawFn, damaged: bool = True) -> tuple[bytes, bool, tuple[str, str] | None]:
    """``(line, bad, (en, ja))`` of a parallel JSONL file; fields may hold tabs, newlines and U+2028 escaped."""
    en = draw(EN_TEXT) + draw(st.sampled_from(["", "\t", "\n", "\u2028", "\r\n"])) + draw(EN_TEXT)
    ja = draw(JA_TEXT)
    ascii_only = draw(st.booleans())
    bad_kinds = ["truncated", "deep", "bigint", "surrogate", "array", "number", "no-key", "nul"]
    kind = draw(st.sampled_from(["pair"] * 6 + ["nested", "blank"] + (bad_kinds if damaged else [])))
    good = json.dumps({"en": en, "ja": ja}, ensure_ascii=ascii_only).encode()
    if kind == "pair":
        return good, False, (en, ja)
    if kind == "nested":
        return json.dumps({"translation": {"en": en, "ja": ja}}, ensure_ascii=ascii_only).encode(), False, (en, ja)
    if kind == "blank":
        return b"  ", False, None
    bad = {
        "truncated": good[: len(good) // 2],
        "deep": b"[" * 100_000,
        "bigint": b'{"en": 1' + b"0" * 5000 + b', "ja": "x"}',
        "surrogate": b'{"en": "a\\ud800b", "ja": "' + ja.encode() + b'"}',
        "array": b'["' + en.encode("unicode_escape") + b'"]',
        "number": b'{"en": 5, "ja": "x"}',
        "no-key": b'{"english": "x", "ja": "y"}',
        "nul": good[:-1] + b"\x00}",
    }[kind]
    return bad, True, None


@MANY
@given(data=st.data(), rows=st.lists(jsonl_line(), max_size=8) | st.lists(jsonl_line(damaged=False), max_size=8))
def test_jsonl_reader_loads_every_good_record_or_names_the_first_bad_line(data, rows):
    content = data.draw(joined([line for line, _, _ in rows]))
    with scratch() as folder:
        stored, name = compress_maybe(data.draw, content, "pairs.jsonl")
        path = folder / name
        path.write_bytes(stored)
        corpus, message = attempt(lambda: read_corpus(path), path)
    bad_lines = [number for number, (_, bad, _) in enumerate(rows, start=1) if bad]
    if bad_lines:
        assert message is not None and message.startswith(f"{path}:{bad_lines[0]}: "), message
        return
    assert message is None, message
    expected = [(n, ref_norm(p[0]), ref_norm(p[1])) for n, (_, _, p) in enumerate(rows, start=1) if p is not None]
    assert corpus_rows(corpus) == expected


@FUZZ
@given(data=st.data(), lines=st.lists(JA_TEXT, min_size=1, max_size=6), ascii_lines=st.lists(EN_TEXT, max_size=3))
def test_legacy_encodings_are_refused_at_the_first_undecodable_line_with_the_iconv_fix(data, lines, ascii_lines):
    encoding, hint = data.draw(
        st.sampled_from(
            [
                ("shift_jis", "SHIFT_JIS"),
                ("euc_jp", "EUC-JP"),
                ("utf-16", "UTF-16"),
                ("utf-16-le", "UTF-16"),
                ("utf-16-be", "UTF-16"),
                ("utf-32", "UTF-32"),
            ]
        )
    )
    rows = [f"{en}\t{ja}" for en, ja in zip(ascii_lines + ["Hello."] * len(lines), lines, strict=False)]
    text = "".join(row + data.draw(st.sampled_from(["\n", "\r\n", "\r"])) for row in rows)
    content = text.encode(encoding)
    first_bad = next(n for n, raw in enumerate(ref_lines(content), start=1) if ref_decode(raw) is None)
    for reader, name in ((read_corpus, "pairs.tsv"), (lambda p: list(read_documents(p)), "docs.txt")):
        with scratch() as folder:
            path = folder / name
            path.write_bytes(content)
            _, message = attempt(lambda: reader(path), path)  # noqa: B023 - called right here
        assert message is not None
        assert f"{hint} -t UTF-8" in message, message
        if other_bom(content) is None:
            assert message.startswith(f"{path}:{first_bad}: "), message


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_utf8_with_or_without_bom_and_a_megabyte_line_load_exactly(tmp_path, encoding):
    long_en, long_ja = "word " * 200_000, "長い文です。" * 170_000  # ~1 MB each
    rows = [("Hello.", "こんにちは。"), (long_en, long_ja), ("Bye.", "さようなら。")]
    path = tmp_path / "pairs.tsv"
    path.write_bytes("\r\n".join(f"{en}\t{ja}" for en, ja in rows).encode(encoding))
    corpus = read_corpus(path)
    assert corpus.lines == [1, 2, 3]
    assert [(en, ja) for en, ja in corpus] == [(ref_norm(en), ref_norm(ja)) for en, ja in rows]
    kept, stats = clean(corpus, DataConfig(max_chars=1000))
    assert list(kept) == [rows[0], rows[2]] and kept.lines == [1, 3] and stats.too_long == 1
    docs = tmp_path / "docs.txt"
    docs.write_bytes(f"{long_ja}\r{long_en}\n".encode(encoding))
    assert [(d.id, len(d.text)) for d in read_documents(docs)] == [
        ("docs.txt:1", len(long_ja)),
        ("docs.txt:2", len(long_en.strip())),
    ]


def test_empty_files_load_as_empty_or_stop_with_the_file_named(tmp_path):
    for name in ("pairs.tsv", "pairs.jsonl", "a.en", "a.ja", "docs.txt", "docs.jsonl", "docs.parquet"):
        (tmp_path / name).write_bytes(b"")
    assert len(read_corpus(tmp_path / "pairs.tsv")) == 0
    assert len(read_corpus(tmp_path / "pairs.jsonl")) == 0
    assert len(read_corpus(tmp_path / "a")) == 0
    assert list(read_documents(tmp_path / "docs.txt")) == []
    assert list(read_documents(tmp_path / "docs.jsonl")) == []
    with pytest.raises(DataError) as info:
        list(read_documents(tmp_path / "docs.parquet"))
    check_message(info.value, tmp_path / "docs.parquet")
    (tmp_path / "a.ja").write_text("一行。\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"has 0 lines but .* has 1") as info:
        read_corpus(tmp_path / "a")
    check_message(info.value, tmp_path / "a.en")


# --------------------------------------------------------------------------- cleaning keeps pairs aligned


POOL_EN = ["Hello.", "hello!", "Thanks.", "", "A cat.", "x" * 40, "Good night.", "Yes"]
POOL_JA = ["こんにちは。", "ありがとう。", "", "猫。", "あ" * 40, "おやすみ。", "はい"]


@MANY
@given(
    pairs=st.lists(st.tuples(st.sampled_from(POOL_EN), st.sampled_from(POOL_JA)), max_size=40),
    exclude=st.lists(st.tuples(st.sampled_from(POOL_EN), st.sampled_from(POOL_JA)), max_size=3),
    min_chars=st.integers(0, 6),
    max_chars=st.integers(6, 60),
    dedupe=st.booleans(),
)
def test_clean_keeps_every_survivor_with_its_own_partner(pairs, exclude, min_chars, max_chars, dedupe):
    corpus = ParallelCorpus(
        [en for en, _ in pairs], [ja for _, ja in pairs], "mem", [7 * i + 3 for i in range(len(pairs))]
    )
    config = DataConfig(min_chars=min_chars, max_chars=max_chars, dedupe=dedupe)
    kept, stats = clean(corpus, config, [ParallelCorpus([e for e, _ in exclude], [j for _, j in exclude], "ex")])
    by_line = {line: i for i, line in enumerate(corpus.lines)}
    survivors = [by_line[line] for line in kept.lines]
    assert survivors == sorted(set(survivors)), "order changed or a pair was kept twice"
    for i, en, ja in zip(survivors, kept.en, kept.ja, strict=True):
        assert (en, ja) == (corpus.en[i], corpus.ja[i]), f"pair {i} lost its partner"

    # An independent statement of the rules decides which indices survive.
    def loose(text):
        return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())

    leak_en = {loose(en) for en, _ in exclude} - {""}
    leak_ja = {loose(ja) for _, ja in exclude} - {""}
    seen: set[tuple[str, str]] = set()
    expected = []
    for i, (en, ja) in enumerate(pairs):
        if not en or not ja or min(len(en), len(ja)) < min_chars or max(len(en), len(ja)) > max_chars:
            continue
        if loose(en) in leak_en or loose(ja) in leak_ja or (dedupe and (en, ja) in seen):
            continue
        seen.add((en, ja))
        expected.append(i)
    assert survivors == expected
    assert stats.n_out == len(kept) and stats.n_in == len(pairs)
    assert stats.n_in == stats.n_out + stats.empty + stats.too_short + stats.too_long + stats.leaked + stats.duplicates


@FUZZ
@given(data=st.data(), pairs=st.lists(st.tuples(st.sampled_from(POOL_EN[:3] + POOL_EN[4:]), JA_TEXT), max_size=25))
def test_read_then_clean_keeps_file_line_i_with_its_translation(data, pairs):
    # Dropped lines (duplicates, over-long pairs, blank lines) must not shift later pairs onto other partners.
    lines = [f"{en}\t{ja}".encode() if data.draw(st.integers(0, 5)) else b"" for en, ja in pairs]
    content = data.draw(joined(lines))
    with scratch() as folder:
        tsv = folder / "pairs.tsv"
        tsv.write_bytes(content)
        en_file, ja_file = folder / "p.en", folder / "p.ja"
        en_file.write_bytes(data.draw(joined([line.split(b"\t")[0] for line in lines])))
        ja_file.write_bytes(data.draw(joined([line.split(b"\t")[-1] if line else b"" for line in lines])))
        for spec in (tsv, f"{en_file},{ja_file}"):
            kept, _ = clean(read_corpus(spec), DataConfig(max_chars=30))
            for en, ja, line in zip(kept.en, kept.ja, kept.lines, strict=True):
                raw_en, raw_ja = lines[line - 1].decode().split("\t")
                assert (ref_norm(raw_en), ref_norm(raw_ja)) == (en, ja), (spec, line)


# --------------------------------------------------------------------------- documents


@st.composite
def doc_line(draw: st.DrawFn, damaged: bool = True) -> bytes:
    text = draw(JA_TEXT) + draw(ODD_SPACE) + draw(EN_TEXT)
    kind = draw(st.sampled_from(["doc"] * 6 + ["blank", "bom"] + (["sjis", "nul", "garbage"] if damaged else [])))
    return {
        "doc": text.encode(),
        "blank": b" \t ",
        "sjis": text.replace("\x85", " ").encode("shift_jis", errors="replace"),
        "nul": text.encode() + b"\x00",
        "bom": _UTF8_BOM + text.encode(),
    }.get(kind) or draw(GARBAGE)


def ref_text_documents(path: Path, content: bytes) -> Expected:
    expected = Expected()
    lines = ref_lines(content)
    if lines and (encoding := other_bom(lines[0])):
        return expected.fail(path, 1, f"is {encoding} encoded")
    for number, raw in enumerate(lines, start=1):
        text = ref_decode(raw)
        if text is None:
            return expected.fail(path, number)
        text = unicodedata.normalize("NFC", text).strip()
        if text:
            expected.rows.append((f"{path.name}:{number}", text))
    return expected


@MANY
@given(data=st.data(), lines=st.lists(doc_line(), max_size=10) | st.lists(doc_line(damaged=False), max_size=10))
def test_text_documents_are_one_per_line_whatever_the_line_ends(data, lines):
    content = data.draw(joined(lines))
    assume(not content.startswith(b"\x1f\x8b"))
    with scratch() as folder:
        stored, name = compress_maybe(data.draw, content, "docs.txt")
        path = folder / name
        path.write_bytes(stored)
        docs, message = attempt(lambda: list(read_documents(path)), path)
        expected = ref_text_documents(path, content)
        assert_outcome(expected, docs, message, lambda d: [(doc.id, doc.text) for doc in d])


@st.composite
def doc_jsonl_line(draw: st.DrawFn, number: int) -> tuple[bytes, str, tuple[str, str] | None]:
    """``(line, kind, (id, text))`` of a documents JSONL file; ``kind`` names the damage, if any."""
    text = draw(JA_TEXT) + draw(st.sampled_from(["", "\n", "\t", "\r\n", "\u2028"])) + draw(EN_TEXT)
    doc_id = f"d{number}"
    kind = draw(
        st.sampled_from(
            ["doc"] * 8
            + ["no-id", "blank", "truncated", "deep", "bigint", "surrogate", "meta-surrogate", "list", "no-text"]
            + ["number", "dup-id", "bad-id"]
        )
    )
    ascii_only = draw(st.booleans())
    row: dict[str, Any] = {"id": doc_id, "text": text, "meta": {"n": number, "tags": ["a", "b"]}}
    if kind == "no-id":
        del row["id"]
        return json.dumps(row, ensure_ascii=ascii_only).encode(), kind, ("", text)
    if kind == "doc":
        return json.dumps(row, ensure_ascii=ascii_only).encode(), kind, (doc_id, text)
    if kind == "dup-id":  # a repeat only if an earlier line already used d0
        return b'{"id": "d0", "text": "t"}', kind, ("d0", "t")
    if kind == "blank":
        return b"", kind, None
    good = json.dumps(row).encode()
    bad = {
        "truncated": good[:-3],
        "deep": b'{"id": "x", "text": "t", "meta": ' + b"[" * 100_000,
        "bigint": b'{"text": "t", "n": 1' + b"0" * 5000 + b"}",
        "surrogate": b'{"id": "x", "text": "\\udc80 bad"}',
        "meta-surrogate": b'{"id": "x", "text": "ok", "\\ud83d": 1}',
        "list": b"[1, 2]",
        "no-text": b'{"id": "x", "body": "t"}',
        "number": b'{"id": "x", "text": 3.5}',
        "bad-id": b'{"id": [], "text": "t"}',
    }[kind]
    return bad, kind, None


@MANY
@given(data=st.data(), n=st.integers(0, 8))
def test_jsonl_documents_load_or_name_the_first_bad_line(data, n):
    rows = [data.draw(doc_jsonl_line(number)) for number in range(n)]
    content = data.draw(joined([line for line, _, _ in rows]))
    with scratch() as folder:
        path = folder / "docs.jsonl"
        path.write_bytes(content)
        docs, message = attempt(lambda: list(read_documents(path)), path)
    seen: set[str] = set()
    expected = []
    for number, (_, kind, doc) in enumerate(rows, start=1):
        if (doc is None and kind != "blank") or (kind == "dup-id" and "d0" in seen):
            assert message is not None and message.startswith(f"{path}:{number}: "), (message, number, kind)
            return
        if doc is not None:
            doc_id = doc[0] or f"docs.jsonl:{number}"
            seen.add(doc_id)
            expected.append((doc_id, unicodedata.normalize("NFC", doc[1]).replace("\r\n", "\n").strip()))
    assert message is None, message
    assert [(d.id, d.text) for d in docs] == expected


def damage(data: st.DataObject, original: bytes) -> bytes:
    """Truncate, extend, bit-flip, overwrite, splice or empty ``original``."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "flip", "append", "garbage", "empty", "splice"]))
    if not original or kind == "empty":
        return b""
    if kind == "truncate":
        return original[: data.draw(st.integers(0, len(original) - 1))]
    if kind == "flip":
        out = bytearray(original)
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(out) - 1))
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(out)
    if kind == "append":
        return original + data.draw(st.binary(min_size=1, max_size=64))
    if kind == "garbage":
        return data.draw(st.binary(max_size=256))
    start = data.draw(st.integers(0, len(original) - 1))
    return original[:start] + data.draw(st.binary(max_size=16)) + original[start + data.draw(st.integers(0, 16)) :]


@pytest.fixture(scope="module")
def parquet_docs(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["a", "b", "c"], "text": ["一つ目。", "二つ目\tです。", "three"], "n": [1, 2, 3]})
    path = tmp_path_factory.mktemp("parquet") / "docs.parquet"
    pq.write_table(table, path)
    return path.read_bytes(), [(d.id, d.text) for d in read_documents(path)]


@FUZZ
@given(data=st.data(), variant=st.sampled_from(["plain", "gzip-of-damaged", "damaged-gzip"]))
def test_damaged_parquet_documents_stop_with_the_file_named(parquet_docs, data, variant):
    original, docs = parquet_docs
    source = gzip.compress(original) if variant == "damaged-gzip" else original
    damaged = damage(data, source)
    with scratch() as folder:
        path = folder / "docs.parquet"  # gzip is detected by content
        path.write_bytes(gzip.compress(damaged) if variant == "gzip-of-damaged" else damaged)
        result, message = attempt(lambda: [(d.id, d.text) for d in read_documents(path)], path)
    # Parquet pages carry no checksum, so a flipped bit inside a value may load as other text; but a
    # truncated or emptied file never loads, and an undamaged one loads exactly.
    if len(damaged) < len(source) and source.startswith(damaged):
        assert message is not None
    if damaged == source:
        assert message is None and result == docs


def _gzip_damages(row: str = "Hello.\tこんにちは。\n") -> dict[str, bytes]:
    good = gzip.compress(row.encode() * 200)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # inside the deflate stream: zlib.error or a CRC mismatch
    return {"truncated": good[:-20], "flipped": bytes(flipped), "header-only": good[:10], "trailing": good + b"\x00x"}


@pytest.mark.parametrize("damage_kind", list(_gzip_damages()))
@pytest.mark.parametrize(
    "name",
    # The parallel-corpus and document readers, then evaluate's readers and trimming's texts.
    [*("pairs.tsv", "pairs.jsonl", "c.en", "docs.txt", "docs.jsonl", "docs.parquet"), *TEXT_FILE_NAMES],
)
def test_damaged_gzip_stops_with_the_file_named(tmp_path, name, damage_kind):
    path = tmp_path / name
    row = "Hello.\tこんにちは。\t4.5\n" if name == "sts.tsv" else "Hello.\tこんにちは。\n"  # every row good
    path.write_bytes(_gzip_damages(row)[damage_kind])
    (tmp_path / "c.ja").write_text("一。\n" * 200, encoding="utf-8")
    text_readers = {reader[1]: reader[2] for reader in TEXT_FILE_READERS.values()}
    if name in text_readers:
        _, message = attempt(lambda: text_readers[name](path), path)
        assert message is not None and message.startswith(str(path)), message
        # A flipped bit may garble a line into bad bytes before the checksum at the end catches it.
        assert damage_kind == "flipped" or message.startswith(f"{path}: corrupt gzip data"), message
    elif name.startswith("docs."):
        _, message = attempt(lambda: list(read_documents(path)), path)
    else:
        _, message = attempt(lambda: read_corpus(f"{path},{tmp_path / 'c.ja'}" if name == "c.en" else path), path)
    assert message is not None


def test_flipped_length_field_of_a_faiss_file_is_refused_before_allocating(built_index, tmp_path):
    # With verify off only sizes are compared; a flipped bit in FAISS's vector count made it allocate
    # gigabytes (or raise MemoryError) before it noticed the file was shorter.
    folder = tmp_path / "idx"
    shutil.copytree(built_index[0], folder)
    faiss_file = folder / "index-000000.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[44] ^= 0x40  # the high byte of the uint64 float count that follows the 37-byte header
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(XlingualError, match="is not a readable FAISS index") as info:
        Index.load(folder, config=SearchConfig(verify=False))
    check_message(info.value, faiss_file)


# --------------------------------------------------------------------------- evaluation files and trimming texts

SCORE = st.floats(-10, 10).map(str) | st.sampled_from(["0", "5", " 2 ", "1e1", "-1", "3.8"])
BAD_SCORE = st.sampled_from(["nan", "inf", "-inf", "x", "", "score"])


@st.composite
def tab_line(draw: st.DrawFn, columns: int, damaged: bool = True) -> bytes:
    """One line of a ``columns``-field TSV (with 3, the last is an STS score; with 1, a sentence per line).

    Mostly good rows; sometimes a header, a blank line, a later file's BOM or odd whitespace inside a
    field, and (``damaged``) each kind of damage: legacy encodings, NUL, garbage, one column too many or
    too few, a score that is not a finite number.
    """
    fields = [draw(EN_TEXT | JA_TEXT) for _ in range(min(columns, 2))]
    if columns == 3:
        fields.append(draw(SCORE))
    good = "\t".join(fields)
    kinds = ["row"] * 6 + ["blank", "bom", "odd-space", "header"]
    kinds += ["sjis", "eucjp", "nul", "garbage", "more", "fewer", "bad-score"] if damaged else []
    kind = draw(st.sampled_from(kinds))
    if kind == "blank":
        return draw(st.sampled_from([b"", b"  ", b" \t ", "\u3000".encode()]))
    if kind == "bom":
        return _UTF8_BOM + good.encode()
    if kind == "odd-space":  # whitespace that str.splitlines() would break on must stay inside the field
        space = draw(ODD_SPACE if columns == 1 else ODD_SPACE.filter(lambda s: s != "\t"))
        return "\t".join([f"{fields[0]}{space}x", *fields[1:]]).encode()
    if kind == "header":
        return [b"sentence", b"src\ttgt", b"sentence1\tsentence2\tscore"][columns - 1]
    if kind in ("sjis", "eucjp"):
        return good.encode("shift_jis" if kind == "sjis" else "euc_jp")
    if kind == "nul":
        return "\t".join([fields[0] + "\x00", *fields[1:]]).encode()
    if kind == "more":
        return f"{good}\t{draw(EN_TEXT)}".encode()
    if kind == "fewer":
        return "\t".join(fields[:-1]).encode() if columns > 1 else good.encode()
    if kind == "bad-score":
        return "\t".join([*fields[: columns - 1], draw(BAD_SCORE)]).encode() if columns == 3 else good.encode()
    if kind == "garbage":
        return draw(GARBAGE)
    return good.encode()


def ref_text_rows(path: Path, content: bytes, expected: Expected) -> Iterator[tuple[int, str]]:
    """Every ``(line, text)`` of a text file, in order; stops after marking ``expected`` failed at a bad line.

    A reader must stop at the first problem in file order, so a bad line after a bad row is never reached.
    """
    lines = ref_lines(content)
    if lines and (encoding := other_bom(lines[0])):
        expected.fail(path, None, f"is {encoding} encoded")
        return
    for number, raw in enumerate(lines, start=1):
        text = ref_decode(raw)
        if text is None:
            expected.fail(path, number, "-t UTF-8")  # the iconv command that fixes it
            return
        yield number, text


def columns_said(n_cols: int, expected_cols: int) -> str:
    return f"{n_cols} column{'' if n_cols == 1 else 's'}, expected {expected_cols} ("


def ref_trim_text(path: Path, content: bytes) -> Expected:
    expected = Expected()
    expected.rows = [text.strip() for _, text in ref_text_rows(path, content, expected) if text.strip()]
    return expected


def ref_read_lines(path: Path, content: bytes) -> Expected:
    expected = ref_trim_text(path, content)
    return expected if expected.failed or expected.rows else expected.fail(path, None, "no sentences")


def ref_read_gold(path: Path, content: bytes) -> Expected:
    expected = Expected()
    for number, text in ref_text_rows(path, content, expected):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != 2:
            return expected.fail(path, number, columns_said(len(cells), 2))
        expected.rows.append((cells[0].strip(), cells[1].strip()))
    return expected if expected.failed or expected.rows else expected.fail(path, None, "no gold pairs")


def ref_read_sts(path: Path, content: bytes) -> Expected:
    expected = Expected()
    header_allowed = True
    for number, text in ref_text_rows(path, content, expected):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != 3:
            return expected.fail(path, number, columns_said(len(cells), 3))
        try:
            score = float(cells[2])
        except ValueError:
            if header_allowed:
                header_allowed = False
                continue
            return expected.fail(path, number, "is not a number")
        header_allowed = False
        if score in (float("inf"), float("-inf")) or score != score:
            return expected.fail(path, number, "is not a finite number")
        expected.rows.append((cells[0], cells[1], score))
    if not expected.failed and (len(expected.rows) < 2 or len({row[2] for row in expected.rows}) < 2):
        expected.fail(path, None, "distinct scores")
    return expected


def sts_rows(sts: ev.StsData) -> list[tuple[str, str, float]]:
    return list(zip(sts.first, sts.second, sts.scores, strict=True))


#: reader: (columns per line, file name, load, reference parse, the loaded rows in the reference's form)
TEXT_FILE_READERS: dict[str, tuple[int, str, Callable[[Path], Any], Callable[[Path, bytes], Expected], Any]] = {
    "read_lines": (1, "src.txt", ev.read_lines, ref_read_lines, list),
    "read_gold": (2, "gold.tsv", ev.read_gold, ref_read_gold, list),
    "read_sts": (3, "sts.tsv", ev.read_sts, ref_read_sts, sts_rows),
    "trim-text": (1, "corpus.txt", lambda p: list(_text_lines(p)), ref_trim_text, list),
}


@pytest.mark.parametrize("reader", list(TEXT_FILE_READERS))
@FUZZ
@given(data=st.data())
def test_evaluation_and_trim_text_files_match_the_reference_or_name_the_bad_line(reader, data):
    columns, name, load, reference, rows = TEXT_FILE_READERS[reader]
    clean_lines = st.lists(tab_line(columns, damaged=False), max_size=10)
    lines = data.draw(st.lists(tab_line(columns), max_size=10) | clean_lines)
    content = data.draw(joined(lines))
    assume(not content.startswith(b"\x1f\x8b"))
    storage = data.draw(st.sampled_from(["plain", "plain", "gzip", "gzip-without-.gz", "truncated-gzip"]))
    compressed = gzip.compress(content)
    with scratch() as folder:
        path = folder / (name + ".gz" if storage in ("gzip", "truncated-gzip") else name)
        if storage == "plain":
            path.write_bytes(content)
        elif storage == "truncated-gzip":
            path.write_bytes(compressed[: data.draw(st.integers(2, len(compressed) - 1))])
        else:
            path.write_bytes(compressed)  # gzip is detected by content, with or without the name
        result, message = attempt(lambda: load(path), path)
    expected = reference(path, content)
    if storage == "truncated-gzip":
        # Stops at the end of the data, unless a bad line read before it stopped the reader first.
        assert message is not None, "a truncated gzip file loaded"
        if "corrupt gzip data" in message:
            assert message.startswith(f"{path}: corrupt gzip data") and "re-compress" in message, message
            return
    assert_outcome(expected, result, message, rows)


@pytest.mark.parametrize("reader", list(TEXT_FILE_READERS))
@FUZZ
@given(data=st.data(), lines=st.lists(JA_TEXT, min_size=1, max_size=6), ascii_lines=st.lists(EN_TEXT, max_size=3))
def test_legacy_encodings_in_evaluation_and_trim_texts_name_the_line_and_iconv(reader, data, lines, ascii_lines):
    columns, name, load, _, _ = TEXT_FILE_READERS[reader]
    encoding, hint = data.draw(
        st.sampled_from(
            [
                ("shift_jis", "SHIFT_JIS"),
                ("euc_jp", "EUC-JP"),
                ("utf-16", "UTF-16"),
                ("utf-16-le", "UTF-16"),
                ("utf-16-be", "UTF-16"),
                ("utf-32", "UTF-32"),
            ]
        )
    )
    score = ["4.5"] if columns == 3 else []
    rows = ["\t".join([en, ja, *score]) for en, ja in zip(ascii_lines + ["Hello."] * len(lines), lines, strict=False)]
    content = "".join(row + data.draw(st.sampled_from(["\n", "\r\n", "\r"])) for row in rows).encode(encoding)
    first_bad = next(n for n, raw in enumerate(ref_lines(content), start=1) if ref_decode(raw) is None)
    with scratch() as folder:
        path = folder / name
        path.write_bytes(content)
        _, message = attempt(lambda: load(path), path)
    assert message is not None
    assert f"{hint} -t UTF-8" in message, message
    if other_bom(content) is None:
        assert message.startswith(f"{path}:{first_bad}: "), message


def test_bom_and_lone_cr_neither_stick_to_nor_merge_sentences(tmp_path):
    # Found by fuzzing: the BOM stayed in read_lines' first sentence; trimming merged lines split by a lone CR.
    path = tmp_path / "ja.txt"
    path.write_bytes(_UTF8_BOM + "一。\r二。\r\n".encode() + _UTF8_BOM + "三。\n\x85四。".encode())
    assert ev.read_lines(path) == list(_text_lines(path)) == ["一。", "二。", "三。", "四。"]
    gold = tmp_path / "gold.tsv"
    gold.write_bytes(_UTF8_BOM + "一。\tOne.\r二。\tTwo.".encode())
    assert ev.read_gold(gold) == [("一。", "One."), ("二。", "Two.")]


@pytest.mark.parametrize("stored", [b"", gzip.compress(b""), b"\n\r\n \t\r"], ids=["empty", "empty-gzip", "blank"])
def test_empty_evaluation_files_stop_with_the_file_named_and_trimming_reads_nothing(tmp_path, stored):
    for reader, says in (("read_lines", "no sentences"), ("read_gold", "no gold pairs"), ("read_sts", "0 scored")):
        _, name, load, _, _ = TEXT_FILE_READERS[reader]
        path = tmp_path / name
        path.write_bytes(stored)
        with pytest.raises(DataError, match=says) as info:
            load(path)
        check_message(info.value, path)
    (tmp_path / "corpus.txt").write_bytes(stored)
    assert list(_text_lines(tmp_path / "corpus.txt")) == []
    with pytest.raises(DataError, match="hold no text") as info:
        corpus_texts([tmp_path / "corpus.txt"])
    check_message(info.value, tmp_path / "corpus.txt")


# --------------------------------------------------------------------------- arbitrary bytes, every reader


def _read_pairs(path: Path) -> Any:
    return read_corpus(path)


READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "tsv": ("pairs.tsv", _read_pairs),
    "pairs-jsonl": ("pairs.jsonl", _read_pairs),
    "aligned-en": ("c.en", lambda p: read_corpus(f"{p},{p.with_suffix('.ja')}")),
    "aligned-ja": ("c.ja", lambda p: read_corpus(f"{p.with_suffix('.en')},{p}")),
    "docs-text": ("docs.txt", lambda p: list(read_documents(p))),
    "docs-jsonl": ("docs.jsonl", lambda p: list(read_documents(p))),
    "docs-parquet": ("docs.parquet", lambda p: list(read_documents(p))),
    "embeddings-npy": ("emb.npy", read_embeddings),
    "embeddings-jsonl": ("emb.jsonl", read_embeddings),
    "embeddings-parquet": ("emb.parquet", read_embeddings),
    "eval-lines": ("src.txt", ev.read_lines),
    "eval-gold": ("gold.tsv", ev.read_gold),
    "eval-sts": ("sts.tsv", ev.read_sts),
    "trim-texts": ("corpus.txt", lambda p: corpus_texts([p])),
}


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(content=st.binary(max_size=3000))
def test_arbitrary_bytes_never_escape_as_another_exception(reader, content):
    name, load = READERS[reader]
    with scratch() as folder:
        path = folder / name
        path.write_bytes(content)
        if name == "c.en":
            (folder / "c.ja").write_text("一。\n二。\n", encoding="utf-8")
        if name == "c.ja":
            (folder / "c.en").write_text("One.\nTwo.\n", encoding="utf-8")
        if name.startswith("emb.") and not name.endswith(".parquet"):
            meta_path(path).write_text('{"dtype": "float32", "dim": 4, "count": 1}', encoding="utf-8")
            ids_path(path).write_text("a\n", encoding="utf-8")
        attempt(lambda: load(path), path)


# --------------------------------------------------------------------------- embeddings files


@pytest.fixture(scope="module")
def embeddings_files(tmp_path_factory):
    """Pristine embeddings files (npy / jsonl / parquet × float32 / int8) and what reading them gives."""
    root = tmp_path_factory.mktemp("embeddings")
    texts = root / "texts.txt"
    texts.write_text("\n".join(f"文 {i}\tcol" for i in range(9)) + "\n", encoding="utf-8")
    made = {}
    for fmt in ("npy", "jsonl", "parquet"):
        for dtype in ("float32", "int8"):
            folder = root / f"{fmt}-{dtype}"
            folder.mkdir()
            out = folder / f"emb.{fmt}"
            embed_file(texts, out, EmbedConfig(model="hash", dtype=dtype, chunk_size=4), encoder=HashEncoder())
            made[(fmt, dtype)] = (folder, read_embeddings(out))
    return made


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(["npy", "jsonl", "parquet"]), dtype=st.sampled_from(["float32", "int8"]))
def test_damaged_embeddings_files_read_exactly_or_stop_with_the_file_named(embeddings_files, data, fmt, dtype):
    pristine, original = embeddings_files[(fmt, dtype)]
    with scratch() as folder:
        shutil.copytree(pristine, folder, dirs_exist_ok=True)
        out = folder / f"emb.{fmt}"
        victims = [p for p in (out, meta_path(out), ids_path(out)) if p.exists()]
        victim = data.draw(st.sampled_from(victims))
        if victim.name.endswith(".json") and data.draw(st.booleans()):
            victim.write_text(json.dumps(mutate_json(data, json.loads(victim.read_text(encoding="utf-8")))))
        else:
            victim.write_bytes(damage(data, victim.read_bytes()))
        result, message = attempt(lambda: read_embeddings(out), out)
    if message is None:
        assert result.ids == original.ids and result.texts == original.texts
        np.testing.assert_array_equal(result.vectors, original.vectors)
        assert result.vectors.dtype == original.vectors.dtype


# --------------------------------------------------------------------------- JSON manifests

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def mutate_json(data: st.DataObject, document: Any) -> Any:
    """Replace, delete or add one value somewhere in a parsed JSON document (or replace it whole)."""
    if not isinstance(document, dict | list) or not document or data.draw(st.integers(0, 9)) == 0:
        return data.draw(JSON_VALUES)
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    key = data.draw(st.sampled_from(keys))
    child = document[key]
    action = data.draw(st.sampled_from(["replace", "delete", "descend", "descend"]))
    if action == "descend" and isinstance(child, dict | list) and child:
        document[key] = mutate_json(data, child)
    elif action == "delete":
        del document[key]
    else:
        document[key] = data.draw(JSON_VALUES)
    return document


# --------------------------------------------------------------------------- embedding cache

CACHE_TEXTS = [f"sentence {i}" for i in range(12)]


@pytest.fixture(scope="module")
def cache_entry(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    key = cache_key("sha256:fuzz", CACHE_TEXTS, max_seq_length=64)
    emb = EmbeddingCache(root).get_or_compute(key, CACHE_TEXTS, _encode, chunk_size=5)
    return root, key, np.array(emb)


def _encode(texts):
    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(8) for t in texts]).astype(
        np.float32
    )


@MANY
@given(data=st.data())
def test_damaged_cache_entries_load_exactly_or_raise_cache_error_naming_the_folder(cache_entry, data):
    pristine, key, emb = cache_entry
    with scratch() as folder:
        root = folder / "cache"
        shutil.copytree(pristine, root)
        cache = EmbeddingCache(root)
        entry = cache.path(key)
        victim = data.draw(st.sampled_from(["emb.f32", "meta.json", "meta.json", "both", "missing"]))
        if victim == "missing":
            (entry / data.draw(st.sampled_from(["emb.f32", "meta.json"]))).unlink()
        for name in ("emb.f32", "meta.json") if victim == "both" else (victim,) if victim != "missing" else ():
            path = entry / name
            if name == "meta.json" and data.draw(st.booleans()):
                path.write_text(json.dumps(mutate_json(data, json.loads(path.read_text(encoding="utf-8")))))
            else:
                path.write_bytes(damage(data, path.read_bytes()))
        verify = data.draw(st.booleans())
        loaded, message = attempt(lambda: np.array(cache.get(key, verify=verify)), entry)
        if message is None and (verify or (entry / "emb.f32").read_bytes() == emb.tobytes()):
            np.testing.assert_array_equal(loaded, emb)
        if message is not None:
            with pytest.raises(CacheError):  # the same entry never computes silently over the damage
                cache.get_or_compute(key, CACHE_TEXTS, _encode)
        assert isinstance(cache.entries(), list)


@FUZZ
@given(data=st.data())
def test_damaged_progress_of_an_interrupted_computation_resumes_to_the_exact_result(cache_entry, data):
    _, key, emb = cache_entry
    calls = []

    def fail_on_third(texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return _encode(texts)

    with scratch() as folder:
        cache = EmbeddingCache(folder / "cache")
        with pytest.raises(KeyboardInterrupt):
            cache.get_or_compute(key, CACHE_TEXTS, fail_on_third, chunk_size=3)
        partial = cache.path(key).with_name(f"{key}.partial")
        victim = partial / data.draw(st.sampled_from(["progress.json", "emb.f32"]))
        if victim.name == "progress.json" and data.draw(st.booleans()):
            victim.write_text(json.dumps(mutate_json(data, json.loads(victim.read_text(encoding="utf-8")))))
        else:
            victim.write_bytes(damage(data, victim.read_bytes()))
        resumed = cache.get_or_compute(key, CACHE_TEXTS, _encode, chunk_size=3)
        np.testing.assert_array_equal(np.array(resumed), emb)


# --------------------------------------------------------------------------- search index


@pytest.fixture(scope="module")
def built_index(tmp_path_factory):
    faiss_ops.set_num_threads(1)
    docs = [{"id": f"d{i}", "text": f"文書{i}です。とても短い文。Doc {i} is here.", "n": i} for i in range(8)]
    path = tmp_path_factory.mktemp("index") / "idx"
    index = Index.build(
        docs, path, config=IndexConfig(model="fake", show_progress=False, max_chars=12), encoder=FakeEncoder(16)
    )
    queries = np.eye(16, dtype=np.float32)[:4]
    return path, index.passages.table, _hits(index, queries), queries


def _hits(index: Index, queries: np.ndarray) -> list[list[tuple[str, int, float]]]:
    return [[(h.doc_id, h.passage, round(h.score, 5)) for h in hits] for hits in index.search_vectors(queries, 5)]


def _rewrite_checksum(folder: Path, name: str) -> None:
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data = (folder / name).read_bytes()
    manifest["checksums"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@MANY
@given(data=st.data())
def test_damaged_index_loads_exactly_or_raises_search_index_error_naming_it(built_index, data):
    pristine, passages, hits, queries = built_index
    with scratch() as scratch_folder:
        folder = scratch_folder / "idx"
        shutil.copytree(pristine, folder)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        files = [manifest["files"]["index"], *manifest["files"]["passages"], "config.json"]
        victim = data.draw(st.sampled_from(["manifest.json"] * 3 + files))
        exact = True  # whether only a load equal to the original (or an error) is acceptable
        if victim == "manifest.json" and data.draw(st.booleans()):
            (folder / victim).write_text(json.dumps(mutate_json(data, manifest)), encoding="utf-8")
        elif data.draw(st.integers(0, 9)) == 0:
            (folder / victim).unlink()
        else:
            (folder / victim).write_bytes(damage(data, (folder / victim).read_bytes()))
            if victim.endswith(".parquet") and data.draw(st.booleans()):
                _rewrite_checksum(folder, victim)  # checksums agree: only the reader's own checks remain
                exact = False
        verify = data.draw(st.booleans())
        exact = exact and (verify or victim == "manifest.json")
        index, message = attempt(lambda: Index.load(folder, config=SearchConfig(verify=verify)), folder)
        if message is None:
            info = format_info(index.info())  # what `xlingual index info` prints
            assert str(folder) in info
            # Rows are decoded at search time; a damaged row that no checksum caught fails there, cleanly.
            got_hits, search_message = attempt(lambda: _hits(index, queries), folder)
            if exact:
                assert index.passages.table.equals(passages)
                assert search_message is None and got_hits == hits


# --------------------------------------------------------------------------- the CLI boundary


def test_cli_reports_a_damaged_index_in_one_line_without_traceback(built_index, tmp_path):
    folder = tmp_path / "idx"
    shutil.copytree(built_index[0], folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["passages"] = ["../../outside.parquet"]
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = CliRunner().invoke(cli, ["index", "info", str(folder)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {folder / 'manifest.json'} is damaged: file name")
    assert "xlingual index build" in lines[0]


def test_cli_data_inspect_lists_undecodable_lines_with_file_line_and_fix(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(
        "Hello.\tこんにちは。\r".encode() + "Thanks.\tありがとう。\n".encode("shift_jis") + b"Bye.\t\x00\n"
    )
    result = CliRunner().invoke(cli, ["data", "inspect", str(path)])
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert f"{path}:2: not valid UTF-8 (byte 0x82 at byte 9)" in result.output
    assert "iconv -f SHIFT_JIS -t UTF-8 pairs.tsv" in result.output
    assert f"{path}:3: NUL byte at byte 6" in result.output
    assert "pairs                 1" in result.output  # line 1 loads; the two bad lines do not
