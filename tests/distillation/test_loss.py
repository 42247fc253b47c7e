import math

import pytest


def test_distillation_loss_hand_computed():
    import torch

    from xlingual.distillation.loss import distillation_loss

    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student_en = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student_ja = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # each Japanese vector sits on the other pair's teacher
    mse = float(distillation_loss(student_en, student_ja, teacher))
    assert mse == pytest.approx(0.0 + 1.0)  # mean of (0-1)², (1-0)² over 4 elements ×2 → 1.0
    # Own-pair score 0, other-pair score 1/τ: cross-entropy log(1 + e^{1/τ}) per row, both directions.
    tau = 0.5
    expected = mse + 0.1 * math.log(1 + math.exp(1 / tau))
    assert float(distillation_loss(student_en, student_ja, teacher, 0.1, tau)) == pytest.approx(expected, rel=1e-6)
    aligned = float(distillation_loss(student_en, student_en, teacher, 0.1, tau))
    assert aligned == pytest.approx(0.1 * math.log(1 + math.exp(-1 / tau)), rel=1e-6)


def test_loss_label_names_the_contrastive_term():
    from xlingual.distillation.loss import loss_label

    assert loss_label(0.1) == "loss (MSE en + MSE ja + contrastive)"
    assert loss_label(0.0) == "MSE en + MSE ja"
