"""The static student's folder: model2vec's layout, which sentence-transformers' ``StaticEmbedding`` also loads.

::

    model.safetensors                 {"embeddings": (vocab, dim) float32}
    tokenizer.json                    the (trimmed) word-piece tokenizer
    config.json                       model2vec's settings (normalize: true)
    modules.json                      StaticEmbedding at ".", then 1_Normalize: SentenceTransformer(path) loads it
    config_sentence_transformers.json
    1_Normalize/
    xlingual_distill.json             its teacher (for the compatibility rule of search -Q) and its source
    README.md

Written into a temporary sibling folder and swapped in whole (:func:`xlingual._io.replace_dir`).
Example: ``write_static_folder(Path("st"), table, tokenizer_spec, {"teacher": ..., "teacher_fingerprint": ...})``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import __version__, _io

MODULES = [
    {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"},
    {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def write_static_folder(out: Path, table: np.ndarray, tokenizer: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write the folder at ``out`` atomically (an existing one is replaced only when complete)."""
    from safetensors.numpy import save

    tmp = _io.temp_sibling(out, "static")
    tmp.mkdir(parents=True)
    _io.atomic_write_bytes(
        tmp / "model.safetensors", save({"embeddings": np.ascontiguousarray(table, dtype=np.float32)})
    )
    _io.atomic_write_text(tmp / "tokenizer.json", json.dumps(tokenizer, ensure_ascii=False))
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": meta.get("source"),
        "apply_pca": None,
        "apply_zipf": None,
        "hidden_dim": int(table.shape[1]),
        "seq_length": 1000000,
        "normalize": True,
    }
    _io.atomic_write_json(tmp / "config.json", config)
    _io.atomic_write_json(tmp / "modules.json", MODULES)
    st_config = {"__version__": {"xlingual": __version__}, "prompts": {}, "default_prompt_name": None}
    _io.atomic_write_json(tmp / "config_sentence_transformers.json", st_config)
    (tmp / "1_Normalize").mkdir()
    _io.atomic_write_json(tmp / "xlingual_distill.json", {"xlingual_version": __version__, "kind": "static", **meta})
    _io.atomic_write_text(tmp / "README.md", _card(table, meta))
    _io.replace_dir(tmp, out)
    return out


def _card(table: np.ndarray, meta: dict[str, Any]) -> str:
    return (
        "---\nlibrary_name: model2vec\ntags:\n- static-embeddings\n- sentence-transformers\n- xlingual\n---\n\n"
        f"# Static student of {meta.get('teacher')}\n\n"
        f"One {table.shape[1]}-d vector per word piece ({table.shape[0]:,} pieces), averaged and L2-normalised: "
        f"Japanese and English in the vector space of `{meta.get('teacher')}`. Built by `xlingual distill-static` "
        f"from `{meta.get('source')}`.\n\n"
        "```python\nfrom sentence_transformers import SentenceTransformer\nmodel = SentenceTransformer(PATH)\n"
        "# or: from model2vec import StaticModel; model = StaticModel.from_pretrained(PATH)\n```\n"
    )
