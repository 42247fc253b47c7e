"""The approximate indexes: index choice by FAISS's guidance, each type against exact search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.search.helpers import unit_rows
from xlingual.config import IndexConfig, SearchConfig
from xlingual.errors import SearchIndexError
from xlingual.search import ann, calibration, faiss_ops
from xlingual.search.ann import IndexType

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


# --------------------------------------------------------------------------- index choice (FAISS guidance)


def test_auto_choice_by_size():
    config = IndexConfig()
    assert ann.choose_index(50_000, 384, config).type is IndexType.FLAT
    assert ann.choose_index(config.flat_max, 384, config).type is IndexType.FLAT
    above = ann.choose_index(config.flat_max + 1, 384, config)
    assert above.type is IndexType.IVF_PQ and "auto" in above.reason
    hnsw = ann.choose_index(config.flat_max + 1, 384, IndexConfig(auto_approximate="hnsw"))
    assert hnsw.type is IndexType.HNSW and hnsw.hnsw_m == 32
    ivf = ann.choose_index(4_000_000, 384, config)
    assert ivf.type is IndexType.IVF_PQ
    assert ivf.nlist == 8000  # 4·sqrt(N)
    assert ivf.pq_m == 192 and ivf.factory_string() == "IVF8000,PQ192x4fs,RFlat"
    assert 30 * ivf.nlist <= ivf.train_size <= 256 * ivf.nlist  # FAISS: 30·K to 256·K training vectors


def test_nlist_follows_faiss_guidance():
    assert ann.ivf_nlist(1_000_000) == 4000
    assert ann.ivf_nlist(10**9) == 65_536
    assert ann.ivf_nlist(3000) == 3000 // 39  # ≥ 39 training points per list
    assert ann.ivf_nlist(10) == 1


def test_bad_index_choices():
    with pytest.raises(SearchIndexError, match="Unknown index type 'annoy'; choose auto, flat, hnsw, ivf-pq"):
        ann.choose_index(10, 8, IndexConfig(index_type="annoy"))
    with pytest.raises(SearchIndexError, match="ivf-pq needs at least 1,024 vectors"):
        ann.choose_index(500, 8, IndexConfig(index_type="ivf-pq"))
    with pytest.raises(SearchIndexError, match="hnsw_m=1"):
        ann.choose_index(500, 8, IndexConfig(index_type="hnsw", hnsw_m=1))


def test_spec_round_trips_through_json():
    spec = ann.choose_index(200_000, 16, IndexConfig())
    again = ann.IndexSpec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again == spec


# --------------------------------------------------------------------------- each index type against exact search


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf-pq"])
def test_index_types_against_exact_search(kind):
    rng = np.random.default_rng(7)
    database = unit_rows(rng, 3000, 32)
    queries = unit_rows(rng, 200, 32)  # fresh random queries, not in the index
    exact_scores, exact_ids = faiss_ops.knn(queries, database, 10)
    spec = ann.choose_index(len(database), 32, IndexConfig(index_type=kind))
    built, spec = calibration.build_calibrated(database, spec, target_recall=0.95)  # as Index.build does
    assert built.ntotal == len(database)
    np.testing.assert_array_equal(ann.exact_view(built, spec).reconstruct_n(0, 3000), database)  # ids = rows
    scores, ids = faiss_ops.search(built, queries, 10, params=ann.search_params(spec))
    recall = calibration.recall_at_k(exact_scores, scores, ids)
    if kind == "flat":
        np.testing.assert_array_equal(ids, exact_ids)
        assert recall == 1.0
    else:
        assert recall >= 0.9, (kind, recall, spec)
        assert spec.calibrated_recall is not None and spec.calibrated_recall >= 0.9
    # Scores are exact inner products of the returned ids, best first.
    valid = ids >= 0
    np.testing.assert_allclose(
        scores[valid], np.einsum("qd,qkd->qk", queries, database[np.where(valid, ids, 0)])[valid], atol=1e-5
    )
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_search_knobs_default_to_the_spec_and_can_be_overridden():
    hnsw = ann.IndexSpec(IndexType.HNSW, 8, hnsw_m=16, ef_search=48)
    assert ann.search_params(hnsw).efSearch == 48
    assert ann.search_params(hnsw, ef_search=200).efSearch == 200
    ivf = ann.IndexSpec(IndexType.IVF_PQ, 8, nlist=20, pq_m=4, nprobe=4, refine_factor=3)
    stored = ann.search_params(ivf)
    assert stored.k_factor == 3 and stored.referenced_objects[0].nprobe == 4
    assert ann.search_params(ivf, nprobe=7).referenced_objects[0].nprobe == 7
    assert ann.search_params(ivf, nprobe=64).referenced_objects[0].nprobe == 20  # capped at nlist
    assert ann.search_params(ann.IndexSpec(IndexType.FLAT, 8)) is None
    with pytest.raises(SearchIndexError, match="ef_search=-1 is not positive"):
        ann.search_params(hnsw, ef_search=-1)


def test_index_and_search_configs_check_their_values():
    with pytest.raises(SearchIndexError, match=r"target_recall=0 is not in \(0, 1\]"):
        IndexConfig(target_recall=0)
    with pytest.raises(SearchIndexError, match="auto_approximate must be hnsw or ivf-pq, not flat"):
        IndexConfig(auto_approximate="flat")
    with pytest.raises(SearchIndexError, match="Unknown index type 'annoy'"):
        IndexConfig(auto_approximate="annoy")
    with pytest.raises(SearchIndexError, match="k=0 is not positive"):
        SearchConfig(k=0)
    assert IndexConfig(index_type="ivf-pq").index_type == IndexType.IVF_PQ
