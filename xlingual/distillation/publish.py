"""Publish the trained student as ``RUN/model``: a sentence-transformers folder with provenance and a model card.

The folder is written under a hidden temporary name and swapped in whole, so ``RUN/model`` is never partial
(a killed attempt's temporaries are swept first). Beside the modules it holds ``xlingual_distill.json``
(teacher, student, data) and a ``README.md`` model card — the one ``xlingual export -f st`` writes — in place
of the stale card sentence-transformers saves (which describes the untouched student).
Example: ``publish_model(Path("runs/x"), student, meta)`` → ``Path("runs/x/model")``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlingual._io import atomic_write_json, atomic_write_text, replace_dir, sweep_stale, temp_sibling

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_DIR = "model"


def write_model_card(folder: Path, spec: str, student: SentenceTransformer, meta: Mapping[str, Any]) -> None:
    """Write ``folder/README.md``: the card ``xlingual export -f st`` writes (metadata, teacher, dev metrics, usage).

    ``folder`` must sit in the run directory (its metrics.jsonl gives the dev metrics) and already hold
    everything else the model folder will hold (the card's fingerprint covers it).
    """
    from xlingual.export.model_card import model_card, run_metrics
    from xlingual.models.specs import fingerprint

    card = model_card(spec, student, dict(meta), run_metrics(folder.parent), fingerprint(folder))
    atomic_write_text(folder / "README.md", card)


def publish_model(run_dir: Path, student: SentenceTransformer, meta: Mapping[str, Any]) -> Path:
    """Save ``student`` with ``meta`` (→ xlingual_distill.json) and its card as ``run_dir/model``; return it."""
    from xlingual.export.model_card import DISTILL_META

    model_dir = run_dir / MODEL_DIR
    sweep_stale(model_dir)  # what a killed attempt left
    tmp = temp_sibling(model_dir, "tmp")
    try:
        student.save(str(tmp))
        atomic_write_json(tmp / DISTILL_META, dict(meta))
        write_model_card(tmp, str(model_dir), student, meta)
        replace_dir(tmp, model_dir)  # a model/ of an earlier attempt stays whole until the swap
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model_dir
