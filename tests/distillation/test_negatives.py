"""Negatives from the teacher's cache: which rows, mined how, and what they add to the loss."""

import math

import numpy as np
import pytest

from xlingual.distillation.negatives import hard_neighbours, negative_rows


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_hard_neighbours_match_brute_force_and_skip_self_and_duplicates():
    vectors = _unit(np.random.default_rng(3).standard_normal((40, 8)))
    vectors[7] = vectors[5]  # a repeated English sentence: not a negative of its twin
    found = hard_neighbours(vectors, 3)
    cos = vectors @ vectors.T
    for row in range(40):
        order = [j for j in np.argsort(-cos[row], kind="stable") if j != row and cos[row, j] < 1 - 1e-6]
        assert list(found[row]) == order[:3], row
    assert 7 not in found[5] and 5 not in found[7]
    assert hard_neighbours(vectors, 0) is None


def test_negative_rows_are_seeded_and_never_the_batch():
    batch = np.array([3, 10, 11])
    first = negative_rows(100, batch, step=4, seed=42, bank=20, neighbours=None)
    assert np.array_equal(first, negative_rows(100, batch, step=4, seed=42, bank=20, neighbours=None))
    assert not np.array_equal(first, negative_rows(100, batch, step=5, seed=42, bank=20, neighbours=None))
    assert not np.isin(first, batch).any() and np.all(np.diff(first) > 0) and 17 <= len(first) <= 20
    neighbours = np.array([[i + 1, i + 2] for i in range(100)]) % 100
    with_hard = negative_rows(100, batch, step=4, seed=42, bank=0, neighbours=neighbours)
    assert list(with_hard) == [4, 5, 12, 13]  # 3 → 4, 5; 10 → 11 (own), 12; 11 → 12, 13
    assert negative_rows(100, batch, step=4, seed=42, bank=0, neighbours=None).size == 0


def test_negatives_join_the_ja_to_en_direction_only():
    import torch

    from xlingual.distillation.loss import distillation_loss

    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student = teacher.clone()  # perfectly aligned: MSE 0
    extra = torch.tensor([[1.0, 0.0]])  # a negative identical to pair 0's teacher vector
    tau = 0.5
    plain = float(distillation_loss(student, student, teacher, 1.0, tau))
    with_extra = float(distillation_loss(student, student, teacher, 1.0, tau, extra))
    # Row 0 (ja→en) now also scores 1/τ against the extra; row 1 scores 0 against it. The en→ja direction is
    # unchanged: CE per row log(1 + e^{-1/τ}).
    ja2en = (math.log(1 + math.exp(-1 / tau) + 1) + math.log(1 + math.exp(-1 / tau) + math.exp(-1 / tau))) / 2
    en2ja = math.log(1 + math.exp(-1 / tau))
    assert plain == pytest.approx(math.log(1 + math.exp(-1 / tau)), rel=1e-6)
    assert with_extra == pytest.approx(0.5 * (ja2en + en2ja), rel=1e-6)
