"""Reading text files line by line: gzip by content, BOMs, mixed line ends, encoding errors with the fix.

Problems go to a :class:`Problems`, which raises (``read_corpus``) or collects them (``inspect_corpus``).
Example: ``for lineno, text in text_lines("ja.txt.gz"): ...``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from xlingual.data.text import guess_encoding
from xlingual.errors import DataError

__all__ = ["MAX_LISTED_PROBLEMS", "Problems", "iter_lines", "text_lines"]

#: At most this many problems are kept per file by :func:`xlingual.data.inspect.inspect_corpus` (all are counted).
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

# --------------------------------------------------------------------------------------------------
# Readers. Each yields (line, en, ja) with raw text; problems go to a Problems that raises
# (read_corpus) or collects them (inspect_corpus).


class Problems:
    """Raise each problem as a DataError, or collect it (``collect=True``) and go on."""

    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.items: list[str] = []
        self._all: list[None] = []  # one entry per problem, listed or not

    @property
    def count(self) -> int:
        """How many problems were noted (``items`` keeps the first :data:`MAX_LISTED_PROBLEMS`)."""
        return len(self._all)

    def add(self, message: str) -> None:
        """Raise ``message`` as a :class:`DataError`, or note it when collecting."""
        if not self.collect:
            raise DataError(message)
        self.note(message)

    def note(self, message: str) -> None:
        """Count ``message``; keep it while fewer than :data:`MAX_LISTED_PROBLEMS` are kept."""
        self._all.append(None)
        if len(self.items) < MAX_LISTED_PROBLEMS:
            self.items.append(message)


def _open_binary(path: Path) -> IO[bytes] | gzip.GzipFile:
    # Gzip by content, not only by name: a compressed file renamed without ".gz" still reads.
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return path.open("rb")


def iter_lines(path: Path, display: str, problems: Problems) -> Iterator[tuple[int, str | None]]:
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
    for lineno, text in iter_lines(file, str(file), Problems(collect=False)):
        if text is not None:  # a line that cannot be read raised already
            yield lineno, text


def _decode_line(raw: bytes, path: Path, where: str, problems: Problems) -> str | None:
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
            f"convert it to UTF-8, e.g. iconv -f {guess_encoding(raw)} -t UTF-8 {path.name} > {path.name}.utf8"
        )
        return None
