"""Evaluation: translation retrieval, alignment with a teacher, STS and margin-based bitext mining.

``metrics`` (pure functions on arrays), ``evaluator`` (:class:`TranslationEvaluator` and :func:`evaluate`),
``sts``, ``mining``, ``report``, ``tsv``. The names below are imported on first use (no FAISS or NumPy
cost for ``import xlingual.evaluation``)::

    from xlingual.evaluation import evaluate, mine_files
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# name -> module that defines it.
_LAZY = {
    "TranslationEvaluator": "xlingual.evaluation.evaluator",
    "evaluate": "xlingual.evaluation.evaluator",
    "EvalReport": "xlingual.evaluation.report",
    "retrieval_metrics": "xlingual.evaluation.metrics",
    "cross_metrics": "xlingual.evaluation.metrics",
    "mse_x100": "xlingual.evaluation.metrics",
    "top1_accuracy": "xlingual.evaluation.metrics",
    "spearman": "xlingual.evaluation.metrics",
    "StsData": "xlingual.evaluation.sts",
    "read_sts": "xlingual.evaluation.sts",
    "MinedPair": "xlingual.evaluation.mining",
    "MineResult": "xlingual.evaluation.mining",
    "best_threshold": "xlingual.evaluation.mining",
    "mine": "xlingual.evaluation.mining",
    "mine_embeddings": "xlingual.evaluation.mining",
    "mine_files": "xlingual.evaluation.mining",
    "mine_scores_vs_gold": "xlingual.evaluation.mining",
    "mined_tsv_lines": "xlingual.evaluation.mining",
    "read_gold": "xlingual.evaluation.mining",
    "read_lines": "xlingual.evaluation.mining",
    "write_mined": "xlingual.evaluation.mining",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xlingual.evaluation' has no attribute {name!r}")
