"""Dev evaluation during a run, by the same evaluator as ``xlingual evaluate``.

The four metrics in metrics.jsonl are the ones :func:`xlingual.evaluation.evaluator.evaluate` reports
for the same pairs, model and teacher (same tie and duplicate-text policy): ``en2ja_acc`` and ``ja2en_acc``
(top-1 translation retrieval, fractions), and against the teacher's English vectors ``cross_ja2en_acc``
and ``dev_mse`` (evaluate's ``mse``: ×100, student(ja) vs teacher(en)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Dev metrics in metrics.jsonl: accuracies are fractions (0–1); dev_mse is ×100 as sentence-transformers reports it.
DEV_METRICS = ("dev_mse", "en2ja_acc", "ja2en_acc", "cross_ja2en_acc")


@dataclass(frozen=True)
class DevSet:
    """The dev pairs and the teacher's vectors of their English side; ``extra``: more named dev sets."""

    en: list[str]
    ja: list[str]
    #: ``(n, d_t)`` float32, L2-normalised: the teacher's embedding of ``en[i]``.
    teacher_en: np.ndarray
    #: ``(name, set)`` of every further ``--dev``; its metrics are prefixed ``name_`` in metrics.jsonl.
    extra: tuple[tuple[str, DevSet], ...] = ()


def dev_set_name(spec: str, taken: set[str]) -> str:
    """A metric prefix for a dev corpus: ``builtin:long-dev`` → ``long_dev``, ``data/ood.tsv.gz`` → ``ood``.

    Unique among ``taken`` (a number is appended). Example: ``dev_set_name("x.tsv", {"x"})`` → ``x_2``.
    """
    last = spec.split(",")[0].rstrip("/").split("/")[-1].split(":")[-1]  # aligned files: the English one
    base = re.sub(r"\.(tsv|txt|jsonl|json|en)(\.gz)?$", "", last)
    base = re.sub(r"[^0-9a-z]+", "_", base.lower()).strip("_") or "dev"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name


#: The evaluator's metrics each dev set reports; the first set's ``mse`` is logged as ``dev_mse``.
_KEPT = ("en2ja_acc", "ja2en_acc", "mse", "cross_ja2en_acc")


def evaluate_dev(student: SentenceTransformer, dev: DevSet | None) -> dict[str, float]:
    """Dev metrics of ``student`` on ``dev`` (:data:`DEV_METRICS`) and, prefixed ``NAME_``, on its extra sets."""
    if dev is None:
        return {}
    metrics = {("dev_mse" if key == "mse" else key): value for key, value in _metrics(student, dev).items()}
    for name, extra in dev.extra:
        metrics.update({f"{name}_{key}": value for key, value in _metrics(student, extra).items()})
    return metrics


def _metrics(student: SentenceTransformer, dev: DevSet) -> dict[str, float]:
    """The evaluator's :data:`_KEPT` metrics of ``student`` on one set as it is now (fractions; mse ×100).

    Computed by :class:`~xlingual.evaluation.evaluator.TranslationEvaluator`, the evaluator behind
    ``xlingual evaluate``, on the student's embeddings. Cross metrics (``dev_mse``, ``cross_ja2en_acc``) need
    the student in the teacher's dimension: an untouched student of another dimension has none. The
    student's training mode is kept.
    """
    import torch

    from xlingual.config import EvalConfig
    from xlingual.evaluation.evaluator import TranslationEvaluator, embed

    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            en_emb = embed(student, dev.en, EvalConfig.batch_size, False)
            ja_emb = embed(student, dev.ja, EvalConfig.batch_size, False)
    finally:
        student.train(was_training)
    same_space = dev.teacher_en.shape[1] == ja_emb.shape[1]
    evaluator = TranslationEvaluator(dev.en, dev.ja, teacher_en_emb=dev.teacher_en if same_space else None)
    scores = evaluator.measure(en_emb, ja_emb).metrics
    return {key: scores[key] for key in _KEPT if key in scores}
