"""Dev evaluation during a run, through the same metric functions as ``xlingual evaluate``.

The four metrics in metrics.jsonl are the ones :func:`xlingual.evaluation.evaluator.evaluate` reports
for the same pairs, model and teacher (same tie and duplicate-text policy): ``en2ja_acc`` and ``ja2en_acc``
(top-1 translation retrieval, fractions), and against the teacher's English vectors ``cross_ja2en_acc``
and ``dev_mse`` (evaluate's ``mse``: ×100, student(ja) vs teacher(en)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Dev metrics in metrics.jsonl: accuracies are fractions (0–1); dev_mse is ×100 as sentence-transformers reports it.
DEV_METRICS = ("dev_mse", "en2ja_acc", "ja2en_acc", "cross_ja2en_acc")


@dataclass(frozen=True)
class DevSet:
    """The dev pairs and the teacher's vectors of their English side."""

    en: list[str]
    ja: list[str]
    #: ``(n, d_t)`` float32, L2-normalised: the teacher's embedding of ``en[i]``.
    teacher_en: np.ndarray


def evaluate_dev(student: SentenceTransformer, dev: DevSet | None) -> dict[str, float]:
    """Dev metrics of ``student`` as it is now (fractions; dev_mse ×100); ``{}`` without a dev set.

    Cross metrics (``dev_mse``, ``cross_ja2en_acc``) need the student in the teacher's dimension: an
    untouched student of another dimension has none. The student's training mode is kept.
    """
    if dev is None:
        return {}
    import torch

    from xlingual.config import EvalConfig
    from xlingual.evaluation.evaluator import mse_x100, retrieval_metrics, top1_accuracy
    from xlingual.models.specs import encode

    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            en_emb = encode(student, dev.en, batch_size=EvalConfig.batch_size)
            ja_emb = encode(student, dev.ja, batch_size=EvalConfig.batch_size)
    finally:
        student.train(was_training)
    retrieval = retrieval_metrics(en_emb, ja_emb, en_texts=dev.en, ja_texts=dev.ja, config=EvalConfig())
    metrics = {"en2ja_acc": retrieval["en2ja_acc"], "ja2en_acc": retrieval["ja2en_acc"]}
    teacher_en = np.asarray(dev.teacher_en)
    if teacher_en.shape[1] == ja_emb.shape[1]:
        metrics["dev_mse"] = mse_x100(ja_emb, teacher_en)
        metrics["cross_ja2en_acc"] = top1_accuracy(ja_emb, teacher_en, doc_texts=dev.en)
    return metrics
