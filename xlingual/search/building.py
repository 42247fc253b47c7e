"""The steps of ``Index.build`` around the index itself: the target check, FAISS, the query model, the write.

Each step is a function with its inputs and outputs explicit; :meth:`xlingual.search.index.Index.build`
runs them in order.

Example::

    check_target(Path("idx"), IndexConfig())               # refuses a folder that is not an index
    faiss_index, spec, passages, vectors = build_faiss(passages, vectors, IndexConfig())
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import _io
from xlingual.config import IndexConfig
from xlingual.data.documents import Passage
from xlingual.errors import DataError, DiskFullError, SearchIndexError
from xlingual.search import ann, calibration, hubness, storage
from xlingual.search.ann import IndexSpec
from xlingual.search.compat import ModelInfo, check_compatible
from xlingual.search.manifest import MANIFEST_NAME, Addition

logger = logging.getLogger(__name__)


def check_target(target: Path, config: IndexConfig) -> None:
    """Refuse to build over a folder that is not an index, or over an index without ``overwrite``."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not (target / MANIFEST_NAME).is_file():
            # Never delete a folder that is not an index, whatever --overwrite says.
            raise SearchIndexError(f"{target} exists and is not an xlingual index; choose another --out.")
        if not config.overwrite:
            raise SearchIndexError(
                f"{target} already exists; pass --overwrite (IndexConfig.overwrite) to replace it, "
                f"or xlingual index add {target} CORPUS to append to it."
            )


def require_text(passages: list[Passage], added: Addition, outcome: str) -> None:
    """Refuse a corpus that gave no passages (``outcome``: what happens then, e.g. "nothing added")."""
    if not passages:
        raise DataError(f"{added.source} holds no text ({added.skipped_blank} blank documents); {outcome}.")


def build_faiss(
    passages: list[Passage], vectors: np.ndarray, config: IndexConfig
) -> tuple[Any, IndexSpec, list[Passage], np.ndarray]:
    """The calibrated FAISS index over ``vectors`` (``(n, dim)`` float32, L2-normalised), its spec, passages, vectors.

    Passages and vectors come back in the index's row order: a random sample goes last, held out as fresh queries.
    """
    spec = ann.choose_index(len(passages), vectors.shape[1], config)
    logger.info("building a %s index (%s)", spec.factory_string(), spec.reason)
    held = calibration.holdout_size(len(passages), spec, config.calibration_queries)
    if held:
        order = calibration.holdout_order(len(passages), held, config.seed)
        passages = [passages[i] for i in order]
        vectors = vectors[order]
    faiss_index, spec = calibration.build_calibrated(
        vectors,
        spec,
        target_recall=config.target_recall,
        n_queries=config.calibration_queries,
        refine_base=config.refine_factor,
        seed=config.seed,
    )
    return faiss_index, spec, passages, vectors


def query_model_info(index_model: ModelInfo, config: IndexConfig) -> ModelInfo | None:
    """The query model of a new index (``None``: none given), refused unless it shares the index's space."""
    if config.query_model is None:
        if config.hubness_queries is not None:
            raise SearchIndexError("--hubness-queries needs --query-model: the model that embeds those queries.")
        return None
    info = ModelInfo.from_spec(config.query_model)
    logger.info("query model %s accepted: %s", config.query_model, check_compatible(index_model, info))
    return info


def write_build(
    target: Path,
    manifest: dict[str, Any],
    faiss_index: Any,
    table: Any,
    config: IndexConfig,
    hub: hubness.Hubness | None,
) -> dict[str, Any]:
    """Write the new index (with its hubness files) atomically; a full disk is a :class:`DiskFullError`."""
    if hub is not None:
        manifest = {**manifest, "hubness": hub.block}
    try:
        return storage.write_new_index(target, manifest, faiss_index, table, config, hub.files() if hub else None)
    except OSError as exc:
        if not _io.is_disk_full(exc):
            raise
        intact = f"the previous index at {target} is intact" if target.exists() else f"{target} was not written"
        then = "run the same xlingual index build command again"
        raise DiskFullError(_io.disk_full_message(exc.filename or target, intact, then)) from exc
