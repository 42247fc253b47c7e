"""Retrieval, cross-model, MSE and Spearman metrics on hand-worked cases and against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from xlingual.config import EvalConfig
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation import metrics as ev
from xlingual.search import faiss_ops

# --------------------------------------------------------------------------- helpers


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def noisy_pairs(seed: int, n: int, dim: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    en = unit_rows(rng, n, dim)
    ja = en + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return en, ja / np.linalg.norm(ja, axis=1, keepdims=True)


def brute_ranks(scores: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Reference ranks from the full score matrix: 1 + wrong candidates scoring ≥ partner − 1e-6."""
    n = scores.shape[0]
    groups = np.arange(n) if groups is None else groups
    twin = groups[None, :] == groups[:n, None]
    ref = np.where(twin, scores, -np.inf).max(axis=1)
    return 1 + ((scores >= ref[:, None] - ev.TIE_ATOL) & ~twin).sum(axis=1)


def brute_margin_best(scores: np.ndarray, k: int) -> np.ndarray:
    """Reference best-margin ids over the full matrix (queries on rows)."""
    q_mean = np.sort(scores, axis=1)[:, ::-1][:, :k].mean(axis=1)
    d_mean = np.sort(scores.T, axis=1)[:, ::-1][:, :k].mean(axis=1)
    return np.argmax(scores / ((q_mean[:, None] + d_mean[None, :]) / 2), axis=1)


# --------------------------------------------------------------------------- hand-worked toy case

# Three pairs of 2-D unit vectors (Pythagorean coordinates, so every cosine is exact):
#   en: e0=(1, 0)     e1=(.8, .6)   e2=(-.6, .8)
#   ja: j0=(.8, .6)   j1=(.6, .8)   j2=(.28, .96)
# Cosine matrix S[e, j]:
#          j0     j1     j2
#   e0    0.80   0.60   0.28
#   e1    1.00   0.96   0.80
#   e2    0.00   0.28   0.60
# en→ja (rows): e0's partner j0 is best (rank 1); e1's partner j1 (.96) is beaten by j0 (1.0): rank 2;
#   e2's partner j2 is best: rank 1. acc = 2/3, recall@5 = recall@10 = 1, MRR = (1 + 1/2 + 1)/3 = 5/6.
# ja→en (columns): j0's partner e0 (.8) is beaten by e1 (1.0): rank 2; j1's partner e1 is best: rank 1;
#   j2's partner e2 (.6) is beaten by e1 (.8): rank 2. acc = 1/3, MRR = (1/2 + 1 + 1/2)/3 = 2/3.
# mean_acc = (2/3 + 1/3)/2 = 1/2.
# Margin, k=2: mean of the two best cosines of each row / column:
#   en: e0 (.8+.6)/2 = .70, e1 (1+.96)/2 = .98, e2 (.6+.28)/2 = .44
#   ja: j0 (1+.8)/2 = .90,  j1 (.96+.6)/2 = .78, j2 (.8+.6)/2 = .70
# margin(e, j) = S / ((m_e + m_j)/2):
#          j0                 j1                  j2
#   e0   .8/.80 = 1.000     .6/.74 = 0.811      .28/.70 = 0.400
#   e1   1./.94 = 1.064     .96/.88 = 1.091     .8/.84  = 0.952
#   e2   0/.67  = 0.000     .28/.61 = 0.459     .6/.57  = 1.053
# en→ja by margin: rows pick j0, j1, j2 — all partners: margin_en2ja_acc = 1 (the hub j0 no longer
#   steals e1). ja→en by margin: j0 picks e1 (1.064 > 1.000) ✗, j1 picks e1 ✓, j2 picks e2 ✓: 2/3.
TOY_EN = np.array([[1.0, 0.0], [0.8, 0.6], [-0.6, 0.8]], dtype=np.float32)
TOY_JA = np.array([[0.8, 0.6], [0.6, 0.8], [0.28, 0.96]], dtype=np.float32)


def test_hand_computed_toy_case():
    metrics = ev.retrieval_metrics(TOY_EN, TOY_JA, config=EvalConfig(margin_k=2))
    expected = {
        "en2ja_acc": 2 / 3,
        "ja2en_acc": 1 / 3,
        "mean_acc": 1 / 2,
        "en2ja_recall@5": 1.0,
        "en2ja_recall@10": 1.0,
        "ja2en_recall@5": 1.0,
        "ja2en_recall@10": 1.0,
        "en2ja_mrr": 5 / 6,
        "ja2en_mrr": 2 / 3,
        "margin_en2ja_acc": 1.0,
        "margin_ja2en_acc": 2 / 3,
    }
    assert metrics == pytest.approx(expected)


def test_hand_computed_ranks_and_margins():
    en2ja, ja2en = ev.retrieval_directions(TOY_EN, TOY_JA, config=EvalConfig(margin_k=2))
    assert en2ja.ranks.tolist() == [1, 2, 1]
    assert ja2en.ranks.tolist() == [2, 1, 2]
    assert en2ja.margin_hits.tolist() == [True, True, True]
    assert ja2en.margin_hits.tolist() == [False, True, True]
    np.testing.assert_allclose(ja2en.partner_scores, [0.8, 0.96, 0.6], atol=1e-6)
    # Best wrong candidate of each Japanese query: j0 → e1 (1.0), j1 → e0 (.6), j2 → e1 (.8).
    np.testing.assert_allclose(ja2en.best_wrong_scores, [1.0, 0.6, 0.8], atol=1e-6)


# --------------------------------------------------------------------------- exactness vs brute force


@pytest.mark.parametrize("noise", [0.3, 1.5])
def test_ranks_equal_brute_force(noise, caplog):
    # noise 1.5: most partners fall outside the top 16, so the exact blockwise count is exercised.
    en, ja = noisy_pairs(seed=5, n=400, dim=16, noise=noise)
    with caplog.at_level("DEBUG", logger="xlingual.evaluation.metrics"):
        en2ja, ja2en = ev.retrieval_directions(en, ja, config=EvalConfig(block_size=37))
    if noise > 1:
        assert "exact rank count" in caplog.text
    scores = en.astype(np.float64) @ ja.astype(np.float64).T
    np.testing.assert_array_equal(en2ja.ranks, brute_ranks(scores))
    np.testing.assert_array_equal(ja2en.ranks, brute_ranks(scores.T))


@pytest.mark.parametrize("candidates", [1, 2, 16])
def test_margin_is_exact_with_few_candidates(candidates, caplog):
    # With one or two candidates the bound often fails, forcing the exhaustive rescoring path.
    en, ja = noisy_pairs(seed=6, n=300, dim=8, noise=0.8)
    config = EvalConfig(margin_candidates=candidates, block_size=50)
    with caplog.at_level("INFO", logger="xlingual.evaluation.metrics"):
        en2ja, ja2en = ev.retrieval_directions(en, ja, config=config)
    if candidates < 16:
        assert "rescored against every candidate" in caplog.text
    scores = en.astype(np.float64) @ ja.astype(np.float64).T
    np.testing.assert_array_equal(en2ja.margin_hits, brute_margin_best(scores, 4) == np.arange(300))
    np.testing.assert_array_equal(ja2en.margin_hits, brute_margin_best(scores.T, 4) == np.arange(300))


def test_best_margin_matches_brute_force_ids():
    en, ja = noisy_pairs(seed=7, n=200, dim=8, noise=1.0)
    fwd = faiss_ops.knn(en, ja, 3)
    bwd = faiss_ops.knn(ja, en, 4)
    en_mean = faiss_ops.knn(en, ja, 4)[0].mean(axis=1)
    ja_mean = bwd[0].mean(axis=1)
    ids, margins = ev.best_margin(en, ja, fwd[0], fwd[1], en_mean, ja_mean, block_size=16)
    scores = en.astype(np.float64) @ ja.astype(np.float64).T
    np.testing.assert_array_equal(ids, brute_margin_best(scores, 4))
    expected = scores[np.arange(200), ids] / ((en_mean + ja_mean[ids]) / 2)
    np.testing.assert_allclose(margins, expected, rtol=1e-5)


# --------------------------------------------------------------------------- ties and duplicates


def test_collapsed_encoder_scores_zero_not_hundred():
    # Every vector equal: each partner ties with every wrong candidate; ties count against the model.
    same = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (5, 1))
    metrics = ev.retrieval_metrics(same, same)
    assert metrics["en2ja_acc"] == 0.0 and metrics["ja2en_acc"] == 0.0
    assert metrics["en2ja_mrr"] == pytest.approx(1 / 5)


def test_duplicate_texts_count_the_twin_as_correct():
    # ja[0] and ja[1] are the same sentence (identical vectors); en[0] and en[1] differ.
    en = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    twin = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    ja = np.stack([twin, twin, np.array([0.0, 0.0, 1.0], dtype=np.float32)])
    en_texts, ja_texts = ["I see.", "I understand.", "Bye."], ["なるほど。", "なるほど。", "さようなら。"]
    without = ev.retrieval_metrics(en, ja)
    with_texts = ev.retrieval_metrics(en, ja, en_texts=en_texts, ja_texts=ja_texts)
    # en→ja: en[0] scores .6 with both twins and en[1] .8 with both: by index only, en[0]'s partner
    # ties with its twin (rank 2, pessimistic); by text the twin is as good as the partner.
    assert without["en2ja_acc"] == pytest.approx(1 / 3)
    assert with_texts["en2ja_acc"] == 1.0
    assert with_texts["en2ja_mrr"] == 1.0
    # ja→en: the twins are queries; their English partners differ in text, so ja[0] (best: en[1]) is wrong.
    assert with_texts["ja2en_acc"] == pytest.approx(2 / 3)
    assert with_texts["margin_en2ja_acc"] == 1.0


def test_duplicate_texts_ranks_equal_brute_force():
    rng = np.random.default_rng(8)
    en, ja = noisy_pairs(seed=8, n=120, dim=6, noise=1.0)
    texts = [f"s{int(v)}" for v in rng.integers(0, 70, size=120)]  # many repeated sentences
    groups = np.unique(texts, return_inverse=True)[1]
    ja[:] = ja[np.array([texts.index(t) for t in texts])]  # equal text → equal vector
    en2ja, _ = ev.retrieval_directions(en, ja, ja_texts=texts, config=EvalConfig(block_size=11))
    scores = en.astype(np.float64) @ ja.astype(np.float64).T
    np.testing.assert_array_equal(en2ja.ranks, brute_ranks(scores, groups))


# --------------------------------------------------------------------------- MSE, cross, STS


def test_mse_matches_formula():
    rng = np.random.default_rng(9)
    student, teacher = unit_rows(rng, 50, 10), unit_rows(rng, 50, 10)
    expected = float(((student - teacher) ** 2).mean() * 100)
    assert ev.mse_x100(student, teacher) == pytest.approx(expected, rel=1e-6)
    assert ev.mse_x100(teacher, teacher) == 0.0


# A teacher that is not the student, for the toy pairs above: t0=(.6, .8), t1=(1, 0), t2=(0, 1).
# Cosine of student Japanese j with teacher English t:
#          t0      t1     t2
#   j0    0.96    0.80   0.60
#   j1    1.00    0.60   0.80
#   j2    0.936   0.28   0.96
# cross_ja2en (rows): j0 → t0 ✓, j1's partner t1 (.6) loses to t0 (1.0) ✗, j2 → t2 (.96 > .936) ✓: 2/3.
# cross_en2ja (columns): t0's partner j0 (.96) loses to j1 (1.0) ✗, t1's partner j1 (.6) loses to j0 (.8) ✗,
#   t2 → j2 ✓: 1/3.
# For unit vectors |a - b|² = 2 - 2·cos, so with dim 2:
#   mse    = (0.08 + 0.8 + 0.08) / 6 × 100 = 16      (j_i vs t_i: cos .96, .6, .96)
#   mse_en = (0.8 + 0.4 + 0.4) / 6 × 100 = 80/3     (e_i vs t_i: cos .6, .8, .8)
# CSLS (k = 10 → all 3 queries): score 2·cos − r(doc), r = the doc's mean cosine over the queries.
#   ja2en: r(t0) = 2.896/3 = .9653, r(t1) = 1.68/3 = .56, r(t2) = 2.36/3 = .7867
#     j0: t0 .9547, t1 1.04 ✗;  j1: t0 1.0347 beats t1 .64 ✗;  j2: t2 1.1333 beats t0 .9067 ✓  → 1/3
#   en2ja: r(j0) = 2.36/3 = .7867, r(j1) = 2.4/3 = .8, r(j2) = 2.176/3 = .7253
#     t0: j1 1.2 beats j0 1.1333 ✗;  t1: j0 .8133 beats j1 .4 ✗;  t2: j2 1.1947 beats j1 .8 ✓  → 1/3
TOY_TEACHER_EN = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def test_cross_metrics_hand_computed_with_another_teacher():
    metrics = ev.cross_metrics(TOY_EN, TOY_JA, TOY_TEACHER_EN)
    assert metrics == pytest.approx(
        {
            "cross_ja2en_acc": 2 / 3,
            "cross_en2ja_acc": 1 / 3,
            "csls_cross_ja2en_acc": 1 / 3,
            "csls_cross_en2ja_acc": 1 / 3,
            "mse": 16.0,
            "mse_en": 80 / 3,
        },
        rel=1e-6,
    )


def _csls_reference(queries: np.ndarray, docs: np.ndarray, k: int) -> float:
    """CSLS top-1 accuracy in plain NumPy: 2·cos − mean of each document's k best cosines with the queries."""
    cos = queries.astype(np.float64) @ docs.T.astype(np.float64)
    hubness = np.sort(cos, axis=0)[-k:].mean(axis=0)
    return float(np.mean(np.argmax(2 * cos - hubness, axis=1) == np.arange(len(queries))))


def test_csls_takes_a_hub_off_and_matches_numpy():
    rng = np.random.default_rng(21)
    centre = unit_rows(rng, 1, 16)
    queries = centre + 0.3 * rng.standard_normal((300, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    docs = queries + 0.3 * rng.standard_normal(queries.shape).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    docs[0] = centre[0]  # a hub: the queries' centre is near every query
    plain = ev.top1_accuracy(queries, docs)
    csls = ev.csls_top1_accuracy(queries, docs, k=10, block_size=64)
    assert csls == pytest.approx(_csls_reference(queries, docs, 10), abs=1e-12)
    assert csls > plain
    hub_wins = np.mean(np.argmax(queries @ docs.T, axis=1) == 0)
    assert hub_wins > 0.1  # the hub did attract queries under plain cosine


def test_csls_counts_a_twin_document_as_correct():
    docs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    queries = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert ev.csls_top1_accuracy(queries, docs) == pytest.approx(1 / 3)  # the tie between rows 0 and 1 counts against
    assert ev.csls_top1_accuracy(queries, docs, doc_texts=["a", "a", "b"]) == 1.0


def test_cross_metrics_of_a_student_in_another_space():
    en, ja = noisy_pairs(seed=10, n=60, dim=12, noise=0.05)
    teacher_en = en.copy()
    # A student whose Japanese lives in another space (rotated) does not align with the teacher.
    rotation = np.linalg.qr(np.random.default_rng(11).standard_normal((12, 12)))[0].astype(np.float32)
    rotated = ja @ rotation
    assert ev.cross_metrics(en, rotated, teacher_en)["cross_ja2en_acc"] < 0.5


def test_cross_metrics_refuse_teacher_of_other_dimension():
    en, ja = noisy_pairs(seed=12, n=10, dim=8, noise=0.1)
    teacher_en = unit_rows(np.random.default_rng(12), 10, 16)
    with pytest.raises(ConfigError, match="teacher embeds in 16 dimensions but the student in 8"):
        ev.cross_metrics(en, ja, teacher_en)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(13)
    a = rng.integers(0, 6, size=200).astype(float)  # many ties
    b = a + rng.normal(0, 2, size=200)
    assert ev.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(ev.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_spearman_hand_case():
    # Ranks of x: 1, 2, 3, 4; ranks of y: 1, 3, 2, 4; d² = 0+1+1+0 = 2; rho = 1 - 6·2/(4·15) = 0.8.
    assert ev.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)


def test_misaligned_embeddings_are_refused():
    with pytest.raises(DataError, match="Misaligned pairs: 3 English but 2 Japanese"):
        ev.retrieval_metrics(TOY_EN, TOY_JA[:2])
