"""The distillation loss: MSE onto the teacher for both languages, plus an optional in-batch ranking term."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def distillation_loss(
    student_en: torch.Tensor,
    student_ja: torch.Tensor,
    teacher_en: torch.Tensor,
    contrastive_weight: float = 0.0,
    temperature: float = 0.05,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """``MSE(student_en, teacher_en) + MSE(student_ja, teacher_en)`` [+ weight × InfoNCE].

    All three ``(batch, dim)``. The contrastive term, when weighted, scores each student(ja) against every
    teacher(en) vector of the batch (cosine / ``temperature``) and asks for its own pair, in both directions:
    the cross-model retrieval the evaluation measures, which MSE only approaches indirectly. ``negatives``
    (``(m, dim)``, teacher vectors of other training sentences, :mod:`.negatives`) join the batch's as
    candidates for the student(ja) → teacher(en) direction; the other direction stays in-batch (the student's
    embeddings of those sentences are not computed).

    Example: ``distillation_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3)) == 0``.
    """
    import torch
    import torch.nn.functional as F

    loss = F.mse_loss(student_en, teacher_en) + F.mse_loss(student_ja, teacher_en)
    if contrastive_weight > 0 and len(teacher_en) > 1:
        candidates = teacher_en if negatives is None else torch.cat([teacher_en, negatives.to(teacher_en)])
        scores = F.normalize(student_ja, dim=1) @ F.normalize(candidates, dim=1).T / temperature
        labels = torch.arange(len(teacher_en), device=scores.device)
        in_batch = scores[:, : len(teacher_en)]
        loss = loss + contrastive_weight * 0.5 * (F.cross_entropy(scores, labels) + F.cross_entropy(in_batch.T, labels))
    return loss


def loss_label(contrastive_weight: float) -> str:
    """What the logged ``loss`` holds, for plots: ``"MSE en + MSE ja"`` plus the contrastive term when weighted."""
    return "loss (MSE en + MSE ja + contrastive)" if contrastive_weight > 0 else "MSE en + MSE ja"
