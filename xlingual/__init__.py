"""xlingual: make an English sentence-embedding model speak Japanese by knowledge distillation.

The stages are importable on their own; the names below are the short public API::

    from xlingual import Index, load_model, read_corpus

    hits = Index.load("idx").search("東京の天気", k=5)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it. Imported on first use, so `import xlingual` stays cheap (no torch).
_LAZY = {
    "load_model": "xlingual.models.specs",
    "encode": "xlingual.models.specs",
    "OnnxEncoder": "xlingual.models.onnx_encoder",
    "read_corpus": "xlingual.data.readers",
    "Index": "xlingual.search.index",
}

__all__ = ["Index", "OnnxEncoder", "__version__", "encode", "load_model", "read_corpus"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xlingual' has no attribute {name!r}")
