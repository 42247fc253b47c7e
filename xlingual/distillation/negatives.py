"""Negatives from the teacher's cache: rank each student(ja) against many teacher(en) vectors, not a batch's.

The teacher's vectors of every training sentence are fixed and already in memory, so the contrastive term can
score a student(ja) against thousands of them for the cost of one matrix product (issue 14: the cross-model
ranking as the objective). Two sources, both deterministic given the seed and the step, so ``--resume`` trains
on the same negatives:

- ``negatives``: that many training rows drawn at random each step (a *bank*);
- ``hard_negatives``: for each pair of the batch, the training sentences nearest to its English one in the
  teacher's space (mined once, before the first step) — the ones a student is most likely to confuse.

A batch's own pairs are never among its negatives. Example::

    neighbours = hard_neighbours(teacher_train, 8)        # (n, 8) int64
    rows = negative_rows(len(teacher_train), batch_ids, step, seed=42, bank=4096, neighbours=neighbours)
"""

from __future__ import annotations

import numpy as np


def hard_neighbours(teacher_train: np.ndarray, count: int) -> np.ndarray | None:
    """Each training row's ``count`` nearest other rows by the teacher's cosine: ``(n, count)`` int64; None if 0.

    ``teacher_train``: ``(n, d)`` float32, L2-normalised. Rows whose vector equals this row's (a repeated English
    sentence) are skipped: they are not negatives. Example: ``hard_neighbours(vectors, 8).shape == (n, 8)``.
    """
    if count <= 0:
        return None
    from xlingual.search.faiss_ops import knn

    n = teacher_train.shape[0]
    want = min(n, count + 4)  # room to drop the row itself and its duplicates
    scores, ids = knn(teacher_train, teacher_train, want)
    keep = (ids != np.arange(n)[:, None]) & (scores < 1.0 - 1e-6)
    out = np.full((n, count), -1, dtype=np.int64)
    for row in range(n):
        picked = ids[row][keep[row]][:count]
        out[row, : len(picked)] = picked
    return out


def negative_rows(
    n: int, batch: np.ndarray, step: int, *, seed: int, bank: int, neighbours: np.ndarray | None
) -> np.ndarray:
    """Training rows whose teacher vectors serve as extra negatives at ``step`` for the pairs ``batch``.

    ``bank`` random rows (seeded by ``seed`` and ``step``) plus the batch's hard neighbours, without the batch's
    own rows or repeats, sorted: ``(m,)`` int64. Example: ``negative_rows(1000, np.array([3, 7]), 5, seed=1,
    bank=16, neighbours=None)``.
    """
    parts = []
    if bank > 0:
        rng = np.random.default_rng([seed, step])
        parts.append(rng.choice(n, size=min(bank, n), replace=False))
    if neighbours is not None:
        parts.append(neighbours[batch].ravel())
    if not parts:
        return np.empty(0, dtype=np.int64)
    rows = np.unique(np.concatenate(parts).astype(np.int64))
    return rows[(rows >= 0) & ~np.isin(rows, batch)]
