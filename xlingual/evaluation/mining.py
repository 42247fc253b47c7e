"""Margin-based bitext mining (Artetxe & Schwenk, 2019): find translation pairs in two unaligned files.

:func:`mine_embeddings` works on arrays, :func:`mine` adds the model, :func:`mine_files` the files, gold
scores and threshold tuning (what ``xlingual mine`` runs). The best-margin search is exact (see
:func:`xlingual.evaluation.metrics.best_margin`).

Example: ``mine_files("runs/student", "ja.txt", "en.txt", config=MineConfig(), gold="gold.tsv", tune=True)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xlingual._io import atomic_write_text
from xlingual.choices import MineMode
from xlingual.config import MineConfig
from xlingual.data.lines import text_lines
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation.evaluator import ModelLike, embed, load_encoder
from xlingual.evaluation.metrics import best_margin
from xlingual.evaluation.tsv import tsv_rows
from xlingual.search import faiss_ops


@dataclass(frozen=True)
class MinedPair:
    """``src[src_idx]`` and ``tgt[tgt_idx]`` look like translations with ratio margin ``score``."""

    src_idx: int
    tgt_idx: int
    score: float


@dataclass(frozen=True)
class MiningScores:
    """BUCC-style scores of mined pairs against gold pairs (fractions)."""

    precision: float
    recall: float
    f1: float
    n_mined: int
    n_gold: int
    n_correct: int

    def as_dict(self) -> dict[str, float | int]:
        """The scores as a plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class _BestMatches:
    """Each side's best-margin partner on the other side and its margin: ids and scores ``(n,)`` / ``(m,)``."""

    fwd_ids: np.ndarray
    fwd_scores: np.ndarray
    bwd_ids: np.ndarray
    bwd_scores: np.ndarray


def _best_matches(src: np.ndarray, tgt: np.ndarray, config: MineConfig) -> _BestMatches:
    width = max(config.k, config.candidates)
    fwd = faiss_ops.knn(src, tgt, min(tgt.shape[0], width), block_size=config.block_size)
    bwd = faiss_ops.knn(tgt, src, min(src.shape[0], width), block_size=config.block_size)
    src_mean = fwd[0][:, : config.k].mean(axis=1, dtype=np.float64)
    tgt_mean = bwd[0][:, : config.k].mean(axis=1, dtype=np.float64)
    cut = config.candidates
    fwd_ids, fwd_scores = best_margin(
        src, tgt, fwd[0][:, :cut], fwd[1][:, :cut], src_mean, tgt_mean, block_size=config.block_size
    )
    bwd_ids, bwd_scores = best_margin(
        tgt, src, bwd[0][:, :cut], bwd[1][:, :cut], tgt_mean, src_mean, block_size=config.block_size
    )
    return _BestMatches(fwd_ids, fwd_scores, bwd_ids, bwd_scores)


def _one_to_one(best: _BestMatches) -> list[MinedPair]:
    """Both directions' matches, greedily one-to-one by decreasing score (LASER's ``max``)."""
    src_ids = np.concatenate([np.arange(best.fwd_ids.shape[0]), best.bwd_ids])
    tgt_ids = np.concatenate([best.fwd_ids, np.arange(best.bwd_ids.shape[0])])
    scores = np.concatenate([best.fwd_scores, best.bwd_scores])
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    pairs = []
    for pos in np.argsort(-scores, kind="stable"):
        i, j = int(src_ids[pos]), int(tgt_ids[pos])
        if i not in seen_src and j not in seen_tgt:
            seen_src.add(i)
            seen_tgt.add(j)
            pairs.append(MinedPair(i, j, float(scores[pos])))
    return pairs


def _candidates(best: _BestMatches, mode: MineMode) -> list[MinedPair]:
    if mode is MineMode.FORWARD:
        return [
            MinedPair(i, int(j), float(s)) for i, (j, s) in enumerate(zip(best.fwd_ids, best.fwd_scores, strict=True))
        ]
    if mode is MineMode.BACKWARD:
        return [
            MinedPair(int(i), j, float(s)) for j, (i, s) in enumerate(zip(best.bwd_ids, best.bwd_scores, strict=True))
        ]
    if mode is MineMode.INTERSECT:
        # The ratio margin is symmetric, so a mutual best pair has one score.
        return [
            MinedPair(i, int(j), float(best.fwd_scores[i])) for i, j in enumerate(best.fwd_ids) if best.bwd_ids[j] == i
        ]
    return _one_to_one(best)


def mine_embeddings(src_emb: np.ndarray, tgt_emb: np.ndarray, *, config: MineConfig | None = None) -> list[MinedPair]:
    """Margin-based bitext mining between two unaligned sets, best score first.

    ``src_emb``: ``(n, dim)``, ``tgt_emb``: ``(m, dim)``, float32, L2-normalised. Keeps pairs with
    ``score >= config.threshold`` (ratio margin, k neighbours each side; exact best-margin search).
    Example: ``mine_embeddings(ja_emb, en_emb, config=MineConfig(threshold=1.04))``.
    """
    config = config or MineConfig()
    src = faiss_ops.as_vectors("src_emb", src_emb)
    tgt = faiss_ops.as_vectors("tgt_emb", tgt_emb, dim=src.shape[1])
    candidates = _candidates(_best_matches(src, tgt, config), MineMode(config.mode))
    kept = [pair for pair in candidates if pair.score >= config.threshold]
    kept.sort(key=lambda p: (-p.score, p.src_idx, p.tgt_idx))
    return kept


def mine(
    model: ModelLike,
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
    *,
    config: MineConfig | None = None,
) -> list[MinedPair]:
    """Embed two unaligned sentence lists with ``model`` and mine translation pairs (see :func:`mine_embeddings`).

    Example: ``mine("runs/student", read_lines("ja.txt"), read_lines("en.txt"))``.
    """
    config = config or MineConfig()
    if not src_texts or not tgt_texts:
        raise DataError(f"Nothing to mine: {len(src_texts)} source and {len(tgt_texts)} target sentences.")
    encoder = load_encoder(model, config.device)
    src_emb = embed(encoder, src_texts, config.batch_size, config.show_progress)
    tgt_emb = embed(encoder, tgt_texts, config.batch_size, config.show_progress)
    return mine_embeddings(src_emb, tgt_emb, config=config)


def mine_scores_vs_gold(
    mined: Iterable[MinedPair],
    gold: Iterable[tuple[str, str]],
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
) -> MiningScores:
    """Precision, recall and F1 of ``mined`` against gold ``(src_text, tgt_text)`` pairs.

    Pairs are compared by text, so a repeated sentence matches whichever copy was mined; each
    distinct text pair counts once.
    """
    gold_set = set(gold)
    mined_set = {(src_texts[p.src_idx], tgt_texts[p.tgt_idx]) for p in mined}
    correct = len(mined_set & gold_set)
    precision = correct / len(mined_set) if mined_set else 0.0
    recall = correct / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return MiningScores(precision, recall, f1, len(mined_set), len(gold_set), correct)


def best_threshold(
    mined: Sequence[MinedPair],
    gold: Iterable[tuple[str, str]],
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
) -> tuple[float, MiningScores]:
    """The threshold with the best F1 on ``gold`` and the scores there (ties: the higher threshold).

    ``mined`` should come from a run with a low threshold (e.g. ``-inf``) so every cut can be tried;
    the result keeps the pairs with ``score >= threshold``.
    """
    if not mined:
        raise ConfigError("No mined pairs to tune a threshold on; mine with a lower threshold (e.g. -inf).")
    gold_set = set(gold)
    ordered = sorted(mined, key=lambda p: -p.score)
    seen: set[tuple[str, str]] = set()
    correct = 0
    cuts: list[tuple[float, MiningScores]] = []
    for pos, pair in enumerate(ordered):
        key = (src_texts[pair.src_idx], tgt_texts[pair.tgt_idx])
        if key not in seen:
            seen.add(key)
            correct += key in gold_set
        if pos + 1 < len(ordered) and ordered[pos + 1].score == pair.score:
            continue  # a threshold cannot split equal scores
        precision = correct / len(seen)
        recall = correct / len(gold_set) if gold_set else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        cuts.append((pair.score, MiningScores(precision, recall, f1, len(seen), len(gold_set), correct)))
    # max() keeps the first of equal F1s: the highest threshold.
    return max(cuts, key=lambda cut: cut[1].f1)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """Read one sentence per line (UTF-8, gzip allowed), stripped; blank lines are skipped.

    Example: ``read_lines("ja.txt")``.
    """
    file = Path(path)
    sentences = [text for _, line in text_lines(file) if (text := line.strip())]
    if not sentences:
        raise DataError(f"{file}: no sentences (the file is empty or blank); pass one sentence per line.")
    return sentences


def read_gold(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read gold pairs, one ``src<TAB>tgt`` per line (the texts, as in the mined files; UTF-8, gzip allowed).

    Example: ``read_gold("gold.tsv")[0] == ("猫が好き。", "I like cats.")``.
    """
    file = Path(path)
    pairs: list[tuple[str, str]] = []
    for _, cols in tsv_rows(file, "src<TAB>tgt"):
        pairs.append((cols[0].strip(), cols[1].strip()))
    if not pairs:
        raise DataError(f"{file}: no gold pairs; write one src<TAB>tgt pair per line.")
    return pairs


def mined_tsv_lines(mined: Iterable[MinedPair], src_texts: Sequence[str], tgt_texts: Sequence[str]) -> Iterable[str]:
    """``score<TAB>src<TAB>tgt`` lines (LASER's order), tabs inside sentences turned into spaces."""
    for pair in mined:
        src = src_texts[pair.src_idx].replace("\t", " ")
        tgt = tgt_texts[pair.tgt_idx].replace("\t", " ")
        yield f"{pair.score:.6f}\t{src}\t{tgt}"


def write_mined(
    path: str | os.PathLike[str], mined: Iterable[MinedPair], src_texts: Sequence[str], tgt_texts: Sequence[str]
) -> Path:
    """Write :func:`mined_tsv_lines` to ``path`` atomically; returns the path."""
    file = Path(path)
    if file.parent != Path():
        file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, "".join(line + "\n" for line in mined_tsv_lines(mined, src_texts, tgt_texts)))
    return file


# --------------------------------------------------------------------------- the whole job, files in and out


@dataclass(frozen=True)
class MineResult:
    """What :func:`mine_files` found: the kept pairs (best first), the sentences they index, and the summary.

    ``summary`` holds ``threshold`` (the one applied), ``n_src``, ``n_tgt``, with gold pairs also
    ``precision``, ``recall``, ``f1``, ``n_gold``, ``n_correct``, and ``n_mined``.
    """

    mined: list[MinedPair]
    src_texts: list[str]
    tgt_texts: list[str]
    summary: dict[str, Any]

    def tsv_lines(self) -> Iterator[str]:
        """The mined pairs as ``score<TAB>src<TAB>tgt`` lines (:func:`mined_tsv_lines`)."""
        return iter(mined_tsv_lines(self.mined, self.src_texts, self.tgt_texts))


def mine_files(
    model: ModelLike,
    src: str | os.PathLike[str],
    tgt: str | os.PathLike[str],
    *,
    config: MineConfig,
    gold: str | os.PathLike[str] | None = None,
    tune: bool = False,
    output: str | os.PathLike[str] | None = None,
) -> MineResult:
    """Mine pairs between two sentence files; score them on ``gold`` pairs; write them to ``output`` (atomically).

    With ``tune`` (needs ``gold``) every pair is mined (threshold ``-inf``) and the F1-optimal threshold
    on ``gold`` replaces ``config.threshold``. Example:
    ``mine_files("runs/student", "ja.txt", "en.txt", config=MineConfig(), gold="gold.tsv", tune=True).summary``.
    """
    if tune and gold is None:
        raise ConfigError("Tuning the threshold needs gold pairs; pass gold=<src<TAB>tgt file> or tune=False.")
    src_texts, tgt_texts = read_lines(src), read_lines(tgt)
    mined = mine(model, src_texts, tgt_texts, config=replace(config, threshold=-math.inf) if tune else config)
    threshold = config.threshold
    summary: dict[str, Any] = {"threshold": threshold, "n_src": len(src_texts), "n_tgt": len(tgt_texts)}
    if gold is not None:
        gold_pairs = read_gold(gold)
        if tune:
            threshold, scores = best_threshold(mined, gold_pairs, src_texts, tgt_texts)
            mined = [pair for pair in mined if pair.score >= threshold]
        else:
            scores = mine_scores_vs_gold(mined, gold_pairs, src_texts, tgt_texts)
        summary.update(
            threshold=threshold,
            precision=scores.precision,
            recall=scores.recall,
            f1=scores.f1,
            n_gold=scores.n_gold,
            n_correct=scores.n_correct,
        )
    summary["n_mined"] = len(mined)
    if output is not None:
        write_mined(output, mined, src_texts, tgt_texts)
    return MineResult(mined, src_texts, tgt_texts, summary)
