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


@pytest.fixture()
def student_space(monkeypatch):
    """Model specs ``fake`` (a teacher) and ``fake-student`` (distilled from it) and ``fake-other`` (unrelated):
    their fingerprints, and the encoders their specs load — set them with ``space["fake"] = encoder``."""
    from xlingual.search import index as search_lib
    from xlingual.search.compat import ModelInfo

    infos = {
        "fake": ModelInfo("fake", "T" * 64),
        "fake-student": ModelInfo("fake-student", "S" * 64, "fake", "T" * 64),
        "fake-other": ModelInfo("fake-other", "O" * 64),
    }
    encoders = {}
    monkeypatch.setattr(ModelInfo, "from_spec", classmethod(lambda cls, spec: infos[spec]))
    monkeypatch.setattr(search_lib, "_load_model", lambda spec, device: encoders[spec])
    return encoders
