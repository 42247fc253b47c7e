"""Which pairs go into which step: a seeded order per epoch, global batches split across ranks, length grouping.

Everything here is a pure function of ``(seed, epoch)``, the pair lengths and the world size, so a resumed
run replays exactly the batches the interrupted one would have seen.
Example: ``epoch_batches(n_pairs=100, batch_size=8, seed=42, epoch=0, dist=DistInfo())[0]`` → 8 pair indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xlingual.distillation.distributed import DistInfo

#: Length grouping sorts pairs inside windows of this many global batches.
GROUP_WINDOW_BATCHES = 64


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The pair order of one epoch: a permutation ``(n,)`` int64 fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(
    order: np.ndarray,
    batch_size: int,
    dist: DistInfo,
    lengths: np.ndarray | None = None,
    shuffle_key: tuple[int, int] = (0, 0),
) -> list[np.ndarray]:
    """Global batches of ``batch_size × world`` pairs (the last partial one dropped); each rank takes its slice.

    With ``lengths`` (tokens per pair), pairs are sorted by length inside windows of
    :data:`GROUP_WINDOW_BATCHES` batches and the batch order is then shuffled by ``shuffle_key``
    (seed, epoch): less padding, same determinism.
    """
    global_size = batch_size * dist.world
    n_batches = len(order) // global_size if len(order) >= global_size else 1
    usable = order[: n_batches * global_size] if len(order) >= global_size else order
    if lengths is not None and n_batches > 1:
        window = global_size * GROUP_WINDOW_BATCHES
        usable = np.concatenate(
            [
                usable[start : start + window][np.argsort(lengths[usable[start : start + window]], kind="stable")]
                for start in range(0, len(usable), window)
            ]
        )
        blocks = [usable[b * global_size : (b + 1) * global_size] for b in range(n_batches)]
        permutation = np.random.default_rng([*shuffle_key, 1]).permutation(n_batches)
        blocks = [blocks[i] for i in permutation]
    else:
        blocks = [usable[b * global_size : (b + 1) * global_size] for b in range(n_batches)]
    return [block[dist.rank :: dist.world] for block in blocks]


def batches_per_epoch(n_pairs: int, batch_size: int, dist: DistInfo) -> int:
    """How many steps one epoch of ``n_pairs`` takes on this world size."""
    return len(batches(np.arange(n_pairs), batch_size, dist))


def epoch_batches(
    n_pairs: int, batch_size: int, seed: int, epoch: int, dist: DistInfo, lengths: np.ndarray | None = None
) -> list[np.ndarray]:
    """The batches of ``epoch`` this rank trains on: :func:`batches` over :func:`epoch_order`."""
    return batches(epoch_order(n_pairs, seed, epoch), batch_size, dist, lengths, (seed, epoch))


def pair_lengths(tokenizer: Any, en: Sequence[str], ja: Sequence[str], prompt: str | None) -> np.ndarray:
    """Student tokens of the longer side of each pair ``(n,)`` int64, prompt included, for length grouping."""
    prefix = prompt or ""
    lengths = np.zeros(len(en), dtype=np.int64)
    for start in range(0, len(en), 8192):
        stop = min(len(en), start + 8192)
        en_ids = tokenizer([prefix + t for t in en[start:stop]], add_special_tokens=True)["input_ids"]
        ja_ids = tokenizer([prefix + t for t in ja[start:stop]], add_special_tokens=True)["input_ids"]
        lengths[start:stop] = [max(len(a), len(b)) for a, b in zip(en_ids, ja_ids, strict=True)]
    return lengths
