"""Calibration of the search knobs: probe queries, the cheapest setting reaching the target, recall with ties."""

from __future__ import annotations

import numpy as np
import pytest

from tests.search.helpers import unit_rows
from xlingual.config import IndexConfig
from xlingual.errors import SearchIndexError
from xlingual.search import ann, calibration, faiss_ops

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def test_probe_queries_calibrate_without_held_out_vectors():
    rng = np.random.default_rng(5)
    database = unit_rows(rng, 3000, 32)
    queries = unit_rows(rng, 200, 32)
    spec = ann.choose_index(3000, 32, IndexConfig(index_type="hnsw"))
    built = ann.build_index(database, spec)
    spec = calibration.calibrate(built, spec)  # no held-out queries: synthetic probes near the corpus
    exact_scores, _ = faiss_ops.knn(queries, database, 10)
    scores, ids = faiss_ops.search(built, queries, 10, params=ann.search_params(spec))
    assert calibration.recall_at_k(exact_scores, scores, ids) >= 0.9
    probes = calibration.probe_queries(ann.exact_view(built, spec), 50)
    assert probes.shape == (50, 32) and np.allclose(np.linalg.norm(probes, axis=1), 1, atol=1e-5)
    assert calibration.holdout_size(3000, spec) == 256 and calibration.holdout_size(200, spec) == 0


def test_calibration_picks_the_cheapest_setting_reaching_the_target():
    rng = np.random.default_rng(3)
    database = unit_rows(rng, 2000, 16)
    spec = ann.choose_index(2000, 16, IndexConfig(index_type="hnsw"))
    built = ann.build_index(database, spec)
    low = calibration.calibrate(built, spec, target_recall=0.5)
    high = calibration.calibrate(built, spec, target_recall=0.99)
    assert low.ef_search is not None and high.ef_search is not None
    assert low.ef_search <= high.ef_search
    assert high.calibrated_recall >= 0.99 or high.ef_search == calibration.EF_SEARCH_GRID[-1]
    with pytest.raises(SearchIndexError, match=r"target_recall=1\.5"):
        calibration.calibrate(built, spec, target_recall=1.5)


def test_recall_tolerates_ties():
    exact = np.array([[0.9, 0.5, 0.5]], np.float32)
    # id 8 ties with the exact 3rd neighbour: it counts; an id of -1 (not found) does not.
    assert calibration.recall_at_k(exact, np.array([[0.9, 0.5, 0.5]], np.float32), np.array([[1, 2, 8]])) == 1.0
    assert calibration.recall_at_k(exact, np.array([[0.9, 0.5, -np.inf]], np.float32), np.array([[1, 2, -1]])) == 2 / 3
