"""Fixtures of the search tests."""

from __future__ import annotations

import pytest

from tests.fakes import FakeEncoder
from tests.search.helpers import DOCS, fake_config
from xlingual.search import faiss_ops
from xlingual.search.index import Index


@pytest.fixture()
def one_faiss_thread():
    # Two cores shared with other work: OpenMP spin-waiting makes FAISS training crawl when oversubscribed.
    faiss_ops.set_num_threads(1)
    yield
    faiss_ops.set_num_threads(None)


@pytest.fixture()
def built(tmp_path):
    return Index.build(DOCS, tmp_path / "idx", config=fake_config(max_chars=30), encoder=FakeEncoder(256))
