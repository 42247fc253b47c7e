"""xlingual: make an English sentence-embedding model speak Japanese by knowledge distillation.

One subpackage per stage (``models``, ``data``, ``distillation``, ``evaluation``, ``search``, ``export``,
``transfer``, ``static``);
the names below are the short public API, imported on first use so that ``import xlingual`` stays cheap
(no torch)::

    from xlingual import DistillConfig, Index, distill

    distill(DistillConfig(train=["pairs.tsv"]))
    hits = Index.load("idx").search("東京の天気", k=5)

The stage packages are named for what they hold (``distillation``, ``evaluation``) so that the functions
``xlingual.distill`` and ``xlingual.evaluate`` are never shadowed by a module of the same name.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_CONFIGS = (
    "CacheConfig",
    "ClassifyConfig",
    "DataConfig",
    "DistillConfig",
    "EmbedConfig",
    "EvalConfig",
    "ExportConfig",
    "IndexConfig",
    "MineConfig",
    "SearchConfig",
    "ServeConfig",
    "StaticConfig",
    "TrimConfig",
)

# name -> module that defines it.
_LAZY = {
    "load_model": "xlingual.models.specs",
    "encode": "xlingual.models.specs",
    "OnnxEncoder": "xlingual.models.onnx_encoder",
    "OpenVinoEncoder": "xlingual.models.openvino_encoder",
    "read_corpus": "xlingual.data.readers",
    "distill": "xlingual.distillation.run",
    "evaluate": "xlingual.evaluation.evaluator",
    "TranslationEvaluator": "xlingual.evaluation.evaluator",
    "mine": "xlingual.evaluation.mining",
    "Index": "xlingual.search.index",
    "Classifier": "xlingual.transfer.classifier",
    "fit_classifier": "xlingual.transfer.classifier",
    "evaluate_classifier": "xlingual.transfer.evaluate",
    "distill_static": "xlingual.static.build",
    "StaticEncoder": "xlingual.static.encoder",
    "VectorTeacher": "xlingual.models.vectors",
    **dict.fromkeys(_CONFIGS, "xlingual.config"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xlingual' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
