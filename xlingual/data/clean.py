"""Cleaning parallel pairs: length and emptiness filters, dedupe, the leakage filter, train/dev split.

Example::

    pairs, stats = load_pairs(["pairs.tsv"], DataConfig(exclude=["builtin:dev"]))
    train, dev = split(pairs, dev_fraction=0.05, seed=42)
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from xlingual.config import DataConfig
from xlingual.data.readers import ParallelCorpus, read_corpus
from xlingual.data.sources import ACCEPTED_FORMATS
from xlingual.data.text import loose_key
from xlingual.errors import ConfigError, DataError

__all__ = ["CleanStats", "clean", "load_pairs", "split"]


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
    leak_en = {k for other in exclude for s in other.en if (k := loose_key(s))}
    leak_ja = {k for other in exclude for s in other.ja if (k := loose_key(s))}
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
        elif (leak_en or leak_ja) and (loose_key(en) in leak_en or loose_key(ja) in leak_ja):
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
        groups.setdefault(loose_key(en) or f"\0{i}", []).append(i)
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
