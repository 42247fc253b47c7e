"""xlingual: make an English sentence-embedding model speak Japanese by knowledge distillation.

The stages are importable on their own; the names below are the short public API::

    from xlingual import Index, load_model, read_corpus

    hits = Index.load("idx").search("東京の天気", k=5)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Index", "OnnxEncoder", "__version__", "encode", "load_model", "read_corpus"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: `import xlingual` stays cheap (no torch) until a stage is used.
    if name in ("load_model", "encode"):
        from xlingual import models

        return getattr(models, name)
    if name == "read_corpus":
        from xlingual import data

        return data.read_corpus
    if name == "Index":
        from xlingual import search

        return search.Index
    if name == "OnnxEncoder":
        from xlingual import onnx

        return onnx.OnnxEncoder
    raise AttributeError(f"module 'xlingual' has no attribute {name!r}")
