"""One dataclass per stage. Every default is defined here, once; the CLI reads these."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: The English teacher used when no ``--teacher`` is given.
DEFAULT_TEACHER = "builtin:minilm-en"
#: The multilingual student used when no ``--student`` is given.
DEFAULT_STUDENT = "builtin:me5-small"


def xlingual_home() -> Path:
    """Return the directory for converted models and caches (``$XLINGUAL_HOME``, default ``~/.cache/xlingual``)."""
    env = os.environ.get("XLINGUAL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xlingual"


@dataclass
class DataConfig:
    """How parallel pairs are read and cleaned.

    Example: ``DataConfig(detokenize=True, max_chars=300)``.
    """

    #: Undo word tokenisation (Japanese: drop spaces; English: rejoin clitics and punctuation).
    detokenize: bool = False
    #: Drop exact duplicate pairs (keeps the first occurrence).
    dedupe: bool = True
    #: Pairs whose either side is shorter than this (in characters, after normalisation) are dropped.
    min_chars: int = 1
    #: Pairs whose either side is longer than this (in characters, after normalisation) are dropped.
    max_chars: int = 1000
    #: Reject a corpus whose "Japanese" side mostly has no Japanese script (swapped columns).
    check_scripts: bool = True
    #: Column names / JSON keys for the English and Japanese sides (JSONL and HF datasets).
    en_key: str = "en"
    ja_key: str = "ja"
    #: Fraction of pairs held out for dev by :func:`xlingual.data.split` (deterministic by ``seed``).
    dev_fraction: float = 0.05
    seed: int = 42
    #: Evaluation files whose sentences must not occur in training data (leakage filter).
    exclude: list[str] = field(default_factory=list)
