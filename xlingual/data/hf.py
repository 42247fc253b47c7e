"""Hugging Face datasets as parallel corpora: a folder saved with ``save_to_disk`` or ``hf:NAME[:CONFIG][@split]``.

Example: ``read_corpus("hf:someone/enja@train")`` reaches :func:`read_hf` through :mod:`xlingual.data.readers`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from xlingual.config import DataConfig
from xlingual.data.lines import Problems
from xlingual.data.readers import Record, record_texts
from xlingual.data.sources import Source
from xlingual.errors import DataError

__all__ = ["load_hf_dataset", "read_hf"]


@contextlib.contextmanager
def _hub_offline_from_env() -> Iterator[None]:
    """Honour HF_HUB_OFFLINE / HF_DATASETS_OFFLINE even when set after ``datasets`` was imported.

    Both libraries read these variables once, at import; without this, a late setting would let
    ``load_dataset`` spend half a minute retrying a network that is not there.
    """
    truthy = {"1", "ON", "YES", "TRUE"}
    if not any(os.environ.get(v, "").upper() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        yield
        return
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _import_datasets(src: Source) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{src.name}: reading Hugging Face datasets needs 'datasets'; pip install datasets") from exc
    return datasets


def load_hf_dataset(src: Source) -> Any:
    """The ``datasets.Dataset`` a saved-folder or ``hf:`` source names (its split), offline when the env says so."""
    datasets = _import_datasets(src)
    if src.kind == "hf-hub":
        split_name = src.split or "train"
        try:
            with _hub_offline_from_env():
                return datasets.load_dataset(src.hub_name, src.hub_config, split=split_name)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(
                f"{src.name}: cannot load dataset {src.hub_name!r} (split {split_name!r}) "
                f"from the Hugging Face Hub ({type(exc).__name__}: {reason}); check the name and the "
                "network, or use a local copy: a TSV/JSONL file or a folder saved with save_to_disk"
            ) from exc
    try:
        loaded = datasets.load_from_disk(str(src.paths[0]))
    except Exception as exc:
        raise DataError(f"{src.name}: cannot load the saved dataset ({type(exc).__name__}: {exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        split_name = src.split or "train"
        if split_name not in loaded:
            raise DataError(
                f"{src.name}: no split {split_name!r} (splits: {', '.join(loaded)}); pick one with {src.paths[0]}@SPLIT"
            )
        return loaded[split_name]
    if src.split:
        raise DataError(f"{src.name}: the folder holds a single dataset, not splits; drop '@{src.split}'")
    return loaded


def read_hf(src: Source, config: DataConfig, problems: Problems) -> Iterator[Record]:
    """Yield ``(record number, en, ja)`` of a saved or hub dataset: ``en_key``/``ja_key`` columns or ``translation``."""
    dataset = load_hf_dataset(src)
    columns = list(dataset.column_names)
    if config.en_key in columns and config.ja_key in columns:
        records: Iterator[dict[str, Any]] = (
            {config.en_key: en, config.ja_key: ja}
            for en, ja in zip(dataset[config.en_key], dataset[config.ja_key], strict=True)
        )
    elif "translation" in columns:
        records = iter(dataset["translation"])
    else:
        raise DataError(
            f"{src.name}: no columns {config.en_key!r} and {config.ja_key!r} and no 'translation' column "
            f"(columns: {', '.join(columns)}); set en_key / ja_key (--en-key / --ja-key) to the right columns"
        )
    for number, record in enumerate(records, start=1):
        where = src.where(number)
        if not isinstance(record, dict):
            problems.add(f"{where}: 'translation' is not a dict of languages")
            continue
        texts = record_texts(record, where, config, problems)
        if texts is not None:
            yield number, texts[0], texts[1]
