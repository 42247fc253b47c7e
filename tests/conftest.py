"""Shared test set-up: everything runs offline, as in CI."""

from __future__ import annotations

import os

# Set before any Hugging Face library is imported, so no test can reach (or wait on) a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
