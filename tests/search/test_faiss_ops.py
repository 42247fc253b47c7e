"""FAISS k-NN against NumPy brute force (ties included), block invariance, validation."""

from __future__ import annotations

import numpy as np
import pytest

from xlingual.errors import SearchIndexError
from xlingual.search import faiss_ops as index


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def brute_force_knn(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ database.astype(np.float64).T
    # Stable sort on -score: equal scores keep increasing id order (the documented policy).
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def assert_knn_equal_with_ties(ref_scores, ref_ids, new_scores, new_ids, full_scores, atol=1e-5):
    """Scores must match; ids must match as sets within each group of tied scores (faiss contrib style).

    The last group of a row may be cut by k, so there the new ids must merely have the tied score.
    """
    np.testing.assert_allclose(new_scores, ref_scores, atol=atol)
    for row in range(ref_ids.shape[0]):
        if np.array_equal(ref_ids[row], new_ids[row]):
            continue
        ref_row = ref_scores[row]
        # Group positions whose scores are within atol of each other.
        boundaries = np.flatnonzero(np.abs(np.diff(ref_row)) > atol) + 1
        groups = np.split(np.arange(len(ref_row)), boundaries)
        for group in groups[:-1]:
            assert set(ref_ids[row, group]) == set(new_ids[row, group]), f"row {row}: tie group differs"
        last = groups[-1]
        tied_value = ref_row[last[0]]
        for doc in new_ids[row, last]:
            assert abs(full_scores[row, doc] - tied_value) <= atol, f"row {row}: id {doc} is not tied"


@pytest.mark.parametrize("k", [1, 5, 17])
def test_knn_equals_numpy_brute_force_with_ties(k):
    rng = np.random.default_rng(k)
    database = unit_rows(rng, 300, 24)
    # Exact duplicates make exact ties: rows 7, 50, 51 and 299 are the same vector, 3 and 200 another.
    database[[50, 51, 299]] = database[7]
    database[200] = database[3]
    queries = unit_rows(rng, 40, 24)
    queries[:5] = database[[7, 3, 50, 10, 200]]
    scores, ids = index.knn(queries, database, k)
    assert scores.shape == (40, k) and scores.dtype == np.float32
    assert ids.shape == (40, k) and ids.dtype == np.int64
    ref_scores, ref_ids = brute_force_knn(queries, database, k)
    full = queries.astype(np.float64) @ database.astype(np.float64).T
    assert_knn_equal_with_ties(ref_scores, ref_ids, scores, ids, full)


def test_ties_are_ordered_by_id_and_lowest_ids_kept():
    rng = np.random.default_rng(0)
    database = unit_rows(rng, 1000, 64)
    copies = [5, 123, 456, 789, 999]
    database[copies] = database[5]
    scores, ids = index.knn(database[[5]], database, 3)
    assert ids[0].tolist() == [5, 123, 456]
    assert scores[0, 0] == scores[0, 1] == scores[0, 2]
    # Sorted by score then id everywhere.
    scores, ids = index.knn(database[:50], database, 10)
    assert np.all(np.diff(scores, axis=1) <= 0)
    equal = np.diff(scores, axis=1) == 0
    assert np.all(np.diff(ids, axis=1)[equal] > 0)


def test_block_size_does_not_change_results():
    rng = np.random.default_rng(1)
    database = unit_rows(rng, 500, 16)
    queries = unit_rows(rng, 123, 16)
    small = index.knn(queries, database, 9, block_size=7)
    large = index.knn(queries, database, 9, block_size=1000)
    np.testing.assert_array_equal(small[0], large[0])
    np.testing.assert_array_equal(small[1], large[1])


def test_search_on_prebuilt_index_equals_knn():
    rng = np.random.default_rng(2)
    database = unit_rows(rng, 200, 8)
    queries = unit_rows(rng, 30, 8)
    built = index.build_flat_index(database)
    assert built.ntotal == 200
    np.testing.assert_array_equal(index.search(built, queries, 4)[1], index.knn(queries, database, 4)[1])


def test_score_blocks_and_count_at_least_match_numpy():
    rng = np.random.default_rng(3)
    database = unit_rows(rng, 97, 12)
    queries = unit_rows(rng, 31, 12)
    blocks = list(index.score_blocks(queries, database, block_size=8))
    assert [start for start, _ in blocks] == [0, 8, 16, 24]
    assert all(scores.shape[0] <= 8 for _, scores in blocks)
    stacked = np.concatenate([scores for _, scores in blocks])
    np.testing.assert_allclose(stacked, queries @ database.T, atol=1e-6)
    thresholds = rng.uniform(-0.5, 0.5, size=31).astype(np.float32)
    expected = (stacked >= thresholds[:, None]).sum(axis=1)
    np.testing.assert_array_equal(index.count_at_least(queries, database, thresholds, block_size=5), expected)


def test_auto_block_bounds_memory():
    assert index.auto_block(100_000) * 100_000 * 4 <= index.BLOCK_BYTES
    assert index.auto_block(10**12) == 1
    assert index.auto_block(10, block_size=3) == 3


def test_zero_rows_are_accepted():
    database = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    scores, ids = index.knn(np.array([[0.0, 1.0]], dtype=np.float32), database, 2)
    assert scores.tolist() == [[0.0, 0.0]] and ids.tolist() == [[0, 1]]


def test_float64_input_is_converted():
    rng = np.random.default_rng(4)
    database = unit_rows(rng, 20, 4).astype(np.float64)
    scores, _ = index.knn(database[:2], database, 1)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("queries", "database", "k", "message"),
    [
        (
            np.ones((2, 3), np.float32) / np.sqrt(3),
            np.eye(4, dtype=np.float32),
            1,
            "dimension 3 but the database has dimension 4",
        ),
        (np.ones(4, np.float32) / 2, np.eye(4, dtype=np.float32), 1, "must be a 2-D array"),
        (np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), 0, "k=0 is not positive"),
        (np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), 5, "k=5 exceeds the database size 4"),
        (np.eye(4, dtype=np.float32), np.zeros((0, 4), np.float32), 1, "database is empty"),
        (np.eye(4, dtype=np.float32) * 3, np.eye(4, dtype=np.float32), 1, "queries row 0 has norm 3"),
        (np.full((1, 4), np.nan, np.float32), np.eye(4, dtype=np.float32), 1, "L2-normalise"),
        (np.eye(4, dtype=np.int64), np.eye(4, dtype=np.float32), 1, "dtype int64"),
    ],
)
def test_bad_inputs_raise_with_values(queries, database, k, message):
    with pytest.raises(SearchIndexError, match=message):
        index.knn(queries, database, k)


def test_bad_block_size_and_threads():
    eye = np.eye(3, dtype=np.float32)
    with pytest.raises(SearchIndexError, match="block_size=0"):
        index.knn(eye, eye, 1, block_size=0)
    with pytest.raises(SearchIndexError, match="Thread count 0"):
        index.set_num_threads(0)
    assert index.set_num_threads(None) >= 1
