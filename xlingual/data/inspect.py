"""``xlingual data inspect``: corpus statistics and every problem of each file, for people and scripts.

Example: ``print(format_inspect(inspect_corpus(["pairs.tsv"])))``.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

from xlingual.config import DataConfig
from xlingual.data.lines import Problems
from xlingual.data.readers import ParallelCorpus, read_normalised, validate
from xlingual.data.sources import resolve_spec
from xlingual.data.text import HIRAGANA_RE, KANJI_RE, KATAKANA_RE, LATIN_RE, has_japanese
from xlingual.errors import DataError

__all__ = ["format_inspect", "inspect_corpus"]

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
        hira, kata, kanji = (bool(r.search(ja)) for r in (HIRAGANA_RE, KATAKANA_RE, KANJI_RE))
        counts["hiragana"] += hira
        counts["katakana"] += kata
        counts["kanji"] += kanji
        if not (hira or kata or kanji):
            counts["latin_only" if LATIN_RE.search(ja) else "none"] += 1
    return {
        "n_pairs": n,
        "en_chars": _length_stats([len(s) for s in corpus.en]),
        "en_tokens": _length_stats([len(s.split()) for s in corpus.en]),
        "ja_chars": _length_stats([len(s) for s in corpus.ja]),
        "duplicates": n - len(set(zip(corpus.en, corpus.ja, strict=True))),
        "ja_script": {k: round(v / n, 4) if n else 0.0 for k, v in counts.items()},
        "en_with_japanese": sum(1 for s in corpus.en if has_japanese(s)),
    }


def _inspect_one(spec: str | os.PathLike[str], config: DataConfig) -> tuple[dict[str, Any], ParallelCorpus]:
    problems = Problems(collect=True)
    name = os.fsdecode(spec)
    corpus = ParallelCorpus([], [], name, [])
    try:
        src = resolve_spec(spec)
        name = src.name
        corpus = read_normalised(src, config, problems)
        validate(src, corpus, config, problems)
        for en, ja, lineno in zip(corpus.en, corpus.ja, corpus.lines, strict=True):
            if ja and not has_japanese(ja) and has_japanese(en):
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
