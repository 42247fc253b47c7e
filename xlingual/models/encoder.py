"""The one ``Encoder`` protocol, and how a model's prompt is looked up.

Everything that embeds sentences (``SentenceTransformer``, :class:`~xlingual.models.onnx_encoder.OnnxEncoder`,
the test fakes) fits :class:`Encoder`; the stages take an ``Encoder`` rather than a concrete class.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from xlingual.errors import ModelError


class Encoder(Protocol):
    """Anything that embeds sentences like ``SentenceTransformer.encode``."""

    def encode(self, sentences: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Return ``(n, dim)`` embeddings for ``sentences``."""
        ...


def prompt_text(model: Any, prompt_name: str | None = None) -> str | None:
    """The text ``model`` prepends at encode time: ``prompts[prompt_name]``, else its default prompt, else None.

    Works for any object with sentence-transformers' ``prompts`` / ``default_prompt_name`` attributes (a model
    without them has no prompt). A ``prompt_name`` the model does not know raises :class:`ModelError`.
    Example: ``prompt_text(load_model("builtin:me5-small"))`` → ``"query: "``.
    """
    prompts = getattr(model, "prompts", None) or {}
    name = prompt_name if prompt_name is not None else getattr(model, "default_prompt_name", None)
    if name is None:
        return None
    if name not in prompts:
        raise ModelError(
            f"prompt name {name!r} is not one of the model's prompts: {', '.join(sorted(prompts)) or 'none'}"
        )
    return str(prompts[name])


def normalize_rows(emb: np.ndarray) -> np.ndarray:
    """L2-normalise each row of ``emb`` in place (zero rows stay zero) and return it.

    Example: ``normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))`` → ``[[0.6, 0.8], [0, 0]]``.
    """
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    np.divide(emb, norms, out=emb, where=norms > 0)
    return emb
