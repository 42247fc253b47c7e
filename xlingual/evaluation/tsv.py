"""Tab-separated evaluation files (gold pairs, STS): rows with a fixed column count, errors naming file:line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xlingual.data.lines import text_lines
from xlingual.errors import DataError


def columns_problem(where: str, n_cols: int, layout: str) -> DataError:
    """``a.tsv:3: 1 column, expected 2 (src<TAB>tgt); …`` with the fix for too few or too many tabs."""
    expected = layout.count("<TAB>") + 1
    fix = (
        "separate the fields with one tab each"
        if n_cols < expected
        else f"remove tabs inside the sentences or keep only {expected} columns (e.g. cut -f1-{expected})"
    )
    return DataError(f"{where}: {n_cols} column{'s' if n_cols != 1 else ''}, expected {expected} ({layout}); {fix}")


def tsv_rows(file: Path, layout: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank line of ``file``, which must have ``layout``'s column count."""
    expected = layout.count("<TAB>") + 1
    for line_no, line in text_lines(file):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != expected:
            raise columns_problem(f"{file}:{line_no}", len(cols), layout)
        yield line_no, cols
