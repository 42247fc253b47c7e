"""Data: parallel corpora (specs, readers, cleaning, inspection) and document corpora for search.

The public names, importable from here::

    from xlingual import data

    pairs, stats = data.load_pairs(["pairs.tsv"], DataConfig(exclude=["builtin:dev"]))
"""

from __future__ import annotations

from xlingual.data.clean import CleanStats, clean, load_pairs, split
from xlingual.data.inspect import format_inspect, inspect_corpus
from xlingual.data.lines import text_lines
from xlingual.data.readers import ParallelCorpus, read_corpus
from xlingual.data.sources import ACCEPTED_FORMATS, bundled_data_dir
from xlingual.data.text import detokenize_en, detokenize_ja, normalize_text

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
