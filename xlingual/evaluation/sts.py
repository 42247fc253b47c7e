"""STS files and the Spearman correlation of a model's cosine similarities with their gold scores."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlingual.errors import DataError
from xlingual.evaluation.metrics import spearman
from xlingual.evaluation.tsv import tsv_rows


@dataclass(frozen=True)
class StsData:
    """Scored sentence pairs: ``first[i]`` and ``second[i]`` have gold similarity ``scores[i]``."""

    first: list[str]
    second: list[str]
    scores: list[float]


#: The bundled STS sets (``data/NAME.tsv``), named ``builtin:NAME``.
BUILTIN_STS = ("sts-ja",)


def sts_file(path: str | os.PathLike[str]) -> Path:
    """The file of an STS spec: a path, or ``builtin:sts-ja`` (Japanese pairs written for this project)."""
    text = os.fspath(path)
    if not text.startswith("builtin:"):
        return Path(path)
    from xlingual.data.sources import bundled_data_dir

    name = text.removeprefix("builtin:")
    if name not in BUILTIN_STS:
        raise DataError(f"{text}: unknown built-in STS set; use {', '.join(f'builtin:{n}' for n in BUILTIN_STS)}")
    return bundled_data_dir() / f"{name}.tsv"


def read_sts(path: str | os.PathLike[str]) -> StsData:
    """Read ``sentence1<TAB>sentence2<TAB>score`` lines (UTF-8, gzip allowed); a header row is skipped.

    ``path`` may also be ``builtin:sts-ja``. Example: ``read_sts("sts.tsv").scores``.
    """
    file = sts_file(path)
    first: list[str] = []
    second: list[str] = []
    scores: list[float] = []
    header_allowed = True
    for line_no, cols in tsv_rows(file, "sentence1<TAB>sentence2<TAB>score"):
        try:
            score = float(cols[2])
        except ValueError:
            if header_allowed:  # the first row names the columns
                header_allowed = False
                continue
            raise DataError(
                f"{file}:{line_no}: score {cols[2]!r} is not a number; write a number such as 3.8"
            ) from None
        header_allowed = False
        if not math.isfinite(score):
            raise DataError(f"{file}:{line_no}: score {cols[2]!r} is not a finite number; write a number such as 3.8")
        first.append(cols[0])
        second.append(cols[1])
        scores.append(score)
    if len(scores) < 2 or len(set(scores)) < 2:
        raise DataError(
            f"{file}: {len(scores)} scored pairs with {len(set(scores))} distinct scores; need ≥ 2 of each."
        )
    return StsData(first, second, scores)


def sts_spearman(first_emb: np.ndarray, second_emb: np.ndarray, gold: Sequence[float]) -> float:
    """Spearman correlation of ``cos(first_emb[i], second_emb[i])`` with ``gold[i]``; ``(n, dim)`` L2-normalised."""
    return spearman(np.einsum("ij,ij->i", first_emb, second_emb), gold)
