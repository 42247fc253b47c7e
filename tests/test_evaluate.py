"""Evaluation metrics on hand-worked cases and against brute force; reports, files, mining."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from xlingual.config import EvalConfig, MineConfig
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation import evaluator as ev

# --------------------------------------------------------------------------- helpers


@dataclass
class Corpus:
    en: list[str]
    ja: list[str]


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
    with caplog.at_level("DEBUG", logger="xlingual.evaluation.evaluator"):
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
    with caplog.at_level("INFO", logger="xlingual.evaluation.evaluator"):
        en2ja, ja2en = ev.retrieval_directions(en, ja, config=config)
    if candidates < 16:
        assert "rescored against every candidate" in caplog.text
    scores = en.astype(np.float64) @ ja.astype(np.float64).T
    np.testing.assert_array_equal(en2ja.margin_hits, brute_margin_best(scores, 4) == np.arange(300))
    np.testing.assert_array_equal(ja2en.margin_hits, brute_margin_best(scores.T, 4) == np.arange(300))


def test_best_margin_matches_brute_force_ids():
    en, ja = noisy_pairs(seed=7, n=200, dim=8, noise=1.0)
    fwd = ev.index.knn(en, ja, 3)
    bwd = ev.index.knn(ja, en, 4)
    en_mean = ev.index.knn(en, ja, 4)[0].mean(axis=1)
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


def test_cross_metrics_with_fake_teacher():
    en, ja = noisy_pairs(seed=10, n=60, dim=12, noise=0.05)
    teacher_en = en.copy()
    # Student Japanese close to the teacher's English: cross retrieval is perfect both ways.
    metrics = ev.cross_metrics(en, ja, teacher_en)
    assert metrics["cross_ja2en_acc"] == 1.0 and metrics["cross_en2ja_acc"] == 1.0
    assert metrics["mse_en"] == 0.0
    assert metrics["mse"] == pytest.approx(float(((ja - en) ** 2).mean() * 100), rel=1e-6)
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
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(13)
    a = rng.integers(0, 6, size=200).astype(float)  # many ties
    b = a + rng.normal(0, 2, size=200)
    assert ev.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(ev.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_spearman_hand_case():
    # Ranks of x: 1, 2, 3, 4; ranks of y: 1, 3, 2, 4; d² = 0+1+1+0 = 2; rho = 1 - 6·2/(4·15) = 0.8.
    assert ev.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)


def test_read_sts_skips_header_and_names_bad_lines(tmp_path):
    good = tmp_path / "sts.tsv"
    good.write_text("sentence1\tsentence2\tscore\n猫\tcat\t5\n犬\tcar\t0.5\n", encoding="utf-8")
    data = ev.read_sts(good)
    assert data.first == ["猫", "犬"] and data.scores == [5.0, 0.5]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t1\nc\td\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: 2 columns, expected 3"):
        ev.read_sts(bad)


# --------------------------------------------------------------------------- mining

# Five sources, five targets in 8-D (e_i = unit axis i):
#   src: s0=e0, s1=e1, s2=e2, s3=e3, s4=e4
#   tgt: t0=e1, t1=e2, t2=e0, t3=.8·e3 + .6·e5, t4=e6
# Non-zero cosines: s0·t2 = s1·t0 = s2·t1 = 1, s3·t3 = .8; s4 and t4 are orthogonal to everything.
# k=2 neighbourhood means: s0..s2 and t0..t2: (1+0)/2 = .5; s3, t3: (.8+0)/2 = .4; s4, t4: 0.
# Margins: planted pairs 1/((.5+.5)/2) = 2; (s3, t3): .8/((.4+.4)/2) = 2; anything with s4/t4 ≤ 0.
# So with threshold 1.06 the mined pairs are s0-t2, s1-t0, s2-t1 and the distractor s3-t3.
# Gold: the three planted pairs + s4-t4 (unfindable): precision 3/4, recall 3/4, F1 3/4.
MINE_SRC = ["s0", "s1", "s2", "s3", "s4"]
MINE_TGT = ["t0", "t1", "t2", "t3", "t4"]
MINE_GOLD = [("s0", "t2"), ("s1", "t0"), ("s2", "t1"), ("s4", "t4")]


def mining_vectors() -> tuple[np.ndarray, np.ndarray]:
    eye = np.eye(8, dtype=np.float32)
    src = eye[:5].copy()
    tgt = np.stack([eye[1], eye[2], eye[0], 0.8 * eye[3] + 0.6 * eye[5], eye[6]]).astype(np.float32)
    return src, tgt


@pytest.mark.parametrize("mode", ["max", "forward", "backward", "intersect"])
def test_mining_toy_case_precision_recall(mode):
    src, tgt = mining_vectors()
    mined = ev.mine_embeddings(src, tgt, config=MineConfig(k=2, mode=mode))
    assert {(p.src_idx, p.tgt_idx) for p in mined} == {(0, 2), (1, 0), (2, 1), (3, 3)}
    assert all(p.score == pytest.approx(2.0) for p in mined)
    scores = ev.mine_scores_vs_gold(mined, MINE_GOLD, MINE_SRC, MINE_TGT)
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((0.75, 0.75, 0.75))
    assert (scores.n_mined, scores.n_gold, scores.n_correct) == (4, 4, 3)


def test_mining_threshold_filters():
    src, tgt = mining_vectors()
    assert ev.mine_embeddings(src, tgt, config=MineConfig(k=2, threshold=2.5)) == []


def test_mining_rejects_unknown_mode():
    src, tgt = mining_vectors()
    with pytest.raises(ConfigError, match="Mining mode 'both' is unknown; choose one of: forward, backward"):
        ev.mine_embeddings(src, tgt, config=MineConfig(mode="both"))


def test_best_threshold_picks_f1_optimum():
    texts = [f"x{i}" for i in range(6)]
    mined = [
        ev.MinedPair(0, 0, 2.0),  # correct
        ev.MinedPair(1, 1, 1.5),  # correct
        ev.MinedPair(2, 2, 1.2),  # wrong
        ev.MinedPair(3, 3, 1.1),  # correct
        ev.MinedPair(4, 4, 0.9),  # wrong
    ]
    gold = [("x0", "x0"), ("x1", "x1"), ("x3", "x3"), ("x5", "x5")]
    # F1 per cut: 2.0 → P1 R.25 F.4; 1.5 → P1 R.5 F.667; 1.2 → P.667 R.5 F.571;
    # 1.1 → P.75 R.75 F.75 (best); 0.9 → P.6 R.75 F.667.
    threshold, scores = ev.best_threshold(mined, gold, texts, texts)
    assert threshold == 1.1
    assert scores.f1 == pytest.approx(0.75) and scores.n_mined == 4
    with pytest.raises(ConfigError, match="No mined pairs"):
        ev.best_threshold([], gold, texts, texts)


def test_mine_end_to_end_with_fake_encoder_and_files(tmp_path):
    src_file, tgt_file, gold_file = tmp_path / "ja.txt", tmp_path / "en.txt", tmp_path / "gold.tsv"
    src_file.write_text("apple pie recipe\nblue sky today\n\ncold water please\nqqq zzz xxx\n", encoding="utf-8")
    tgt_file.write_text("cold water please!\napple pie recipe!\nblue sky today!\nkkk vvv www\n", encoding="utf-8")
    gold_file.write_text(
        "apple pie recipe\tapple pie recipe!\nblue sky today\tblue sky today!\ncold water please\tcold water please!\n",
        encoding="utf-8",
    )
    src, tgt, gold = ev.read_lines(src_file), ev.read_lines(tgt_file), ev.read_gold(gold_file)
    assert len(src) == 4  # the blank line is skipped
    mined = ev.mine(FakeEncoder(), src, tgt, config=MineConfig(k=2, threshold=float("-inf"), mode="intersect"))
    threshold, scores = ev.best_threshold(mined, gold, src, tgt)
    assert scores.recall == 1.0 and scores.precision == 1.0
    kept = [p for p in mined if p.score >= threshold]
    out = ev.write_mined(tmp_path / "out" / "mined.tsv", kept, src, tgt)
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert {(r[1], r[2]) for r in rows} == set(gold)
    assert all(float(r[0]) >= threshold - 1e-6 for r in rows)  # scores are written with 6 decimals


def test_read_gold_names_file_and_line(tmp_path):
    bad = tmp_path / "gold.tsv"
    bad.write_text("a\tb\nonly one column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gold.tsv:2: 1 column, expected 2 \(src<TAB>tgt\); separate the fields"):
        ev.read_gold(bad)
    with pytest.raises(DataError, match="no such file"):
        ev.read_lines(tmp_path / "missing.txt")


# --------------------------------------------------------------------------- evaluate() and the report

EN = [
    "The cat sleeps on the sofa.",
    "I bought three apples today.",
    "Where is the train station?",
    "She plays the violin every morning.",
    "It will rain tomorrow afternoon.",
    "My brother works at a hospital.",
    "This book is very interesting.",
    "Please close the window.",
]
# Stand-ins for translations that share most character trigrams with their partner.
JA = [f"「{s[:-1].lower()}」" for s in EN]
BASE_KEYS = [
    "model",
    "n_pairs",
    "en2ja_acc",
    "ja2en_acc",
    "mean_acc",
    "en2ja_recall@5",
    "en2ja_recall@10",
    "ja2en_recall@5",
    "ja2en_recall@10",
    "en2ja_mrr",
    "ja2en_mrr",
    "margin_en2ja_acc",
    "margin_ja2en_acc",
]
CROSS_KEYS = ["cross_ja2en_acc", "cross_en2ja_acc", "mse", "mse_en"]


def test_evaluate_end_to_end_json_keys_exact():
    student, teacher = FakeEncoder(), FakeEncoder()
    report = ev.evaluate({"student": student}, Corpus(EN, JA), teacher=teacher)
    (row,) = [json.loads(line) for line in report.to_json_lines().splitlines()]
    assert list(row) == [*BASE_KEYS, *CROSS_KEYS, "seconds"]
    assert row["model"] == "student" and row["n_pairs"] == 8
    assert row["mean_acc"] == 1.0 and row["cross_ja2en_acc"] == 1.0
    assert row["mse_en"] == 0.0  # same fake weights: student(en) == teacher(en)
    assert report.primary_metric == "mean_acc"
    assert len(teacher.calls) == 1 and teacher.calls[0] == EN  # teacher embeds English once
    assert student.calls == [EN, JA]


def test_evaluate_without_teacher_has_no_cross_keys_and_several_models_side_by_side():
    report = ev.evaluate([FakeEncoder(64), FakeEncoder(32)], Corpus(EN, JA))
    rows = [json.loads(line) for line in report.to_json_lines().splitlines()]
    assert [list(r) for r in rows] == [[*BASE_KEYS, "seconds"]] * 2
    assert [r["model"] for r in rows] == ["FakeEncoder", "FakeEncoder#2"]
    table = report.format_table()
    assert table.splitlines()[0].split() == ["metric", "FakeEncoder", "FakeEncoder#2"]
    assert "mean_acc" in table and "100.00" in table and "in %" in table


def test_teacher_is_embedded_once_for_several_models():
    teacher = FakeEncoder()
    ev.evaluate({"a": FakeEncoder(), "b": FakeEncoder()}, Corpus(EN, JA), teacher=teacher)
    assert len(teacher.calls) == 1


def test_evaluate_refuses_teacher_of_other_dimension():
    with pytest.raises(ConfigError, match="teacher embeds in 32 dimensions but the student in 64"):
        ev.evaluate([FakeEncoder(64)], Corpus(EN, JA), teacher=FakeEncoder(32))


def test_evaluate_refuses_misaligned_and_empty_pairs():
    with pytest.raises(DataError, match="Misaligned pairs: 8 English but 7 Japanese"):
        ev.evaluate([FakeEncoder()], Corpus(EN, JA[:-1]))
    with pytest.raises(DataError, match="empty"):
        ev.evaluate([FakeEncoder()], Corpus([], []))
    with pytest.raises(DataError, match="Misaligned pairs: 3 English but 2 Japanese"):
        ev.retrieval_metrics(TOY_EN, TOY_JA[:2])


def test_evaluate_rejects_bad_config():
    with pytest.raises(ConfigError, match=r"EvalConfig\.margin_k=0"):
        ev.evaluate([FakeEncoder()], Corpus(EN, JA), config=EvalConfig(margin_k=0))


def test_evaluate_with_sts_and_out_dir(tmp_path):
    sts = tmp_path / "sts.tsv"
    sts.write_text(
        "The cat sleeps.\tThe cat is sleeping.\t4.5\nThe cat sleeps.\tI like trains.\t0.2\n"
        "It rains.\tIt is raining.\t4.0\nIt rains.\tMy brother works.\t0.5\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    report = ev.evaluate({"fake": FakeEncoder()}, Corpus(EN, JA), teacher=FakeEncoder(), sts=sts, out_dir=out)
    row = report.metrics[0]
    assert list(row)[-2:] == ["sts_spearman", "seconds"]
    assert -1.0 <= float(row["sts_spearman"]) <= 1.0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["primary_metric"] == "mean_acc"
    assert metrics["models"][0]["mean_acc"] == row["mean_acc"]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["stage"] == "evaluate" and config["eval_config"]["margin_k"] == 4
    png = (out / "similarity_histograms.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_evaluate_reads_a_pairs_file(tmp_path):
    pytest.importorskip("xlingual.data.readers")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "The cat sleeps.\t猫が寝ている。\nI like trains.\t電車が好きです。\nIt rains.\t雨が降っている。\n",
        encoding="utf-8",
    )
    report = ev.evaluate({"fake": FakeEncoder()}, str(pairs))
    assert report.metrics[0]["n_pairs"] == 3


def test_nan_becomes_null_in_json():
    report = ev.EvalReport([{"model": "m", "sts_spearman": float("nan")}])
    assert json.loads(report.to_json_lines()) == {"model": "m", "sts_spearman": None}
    assert report.format_table().splitlines()[1].split() == ["sts_spearman", "-"]


# --------------------------------------------------------------------------- a real model


@pytest.mark.slow
def test_real_teacher_on_fifty_pairs():
    try:
        from xlingual.models.specs import load_model
    except ImportError as exc:  # pragma: no cover - until xlingual.models.specs lands
        pytest.skip(f"xlingual.models.specs cannot be imported yet: {exc}")
    animals = ["cat", "dog", "horse", "bird", "fish", "rabbit", "mouse", "sheep", "goat", "duck"]
    places = ["garden", "kitchen", "river", "forest", "station"]
    en = [f"The {a} is sleeping in the {p}." for a in animals for p in places]
    other = [f"in the {p}, a {a} sleeps" for a in animals for p in places]  # a paraphrase as the "other side"
    model = load_model("builtin:minilm-en", device="cpu")
    report = ev.evaluate({"minilm": model}, Corpus(en, other), teacher=model)
    row = report.metrics[0]
    assert row["n_pairs"] == 50
    assert float(row["mean_acc"]) >= 0.9
    assert float(row["cross_ja2en_acc"]) >= 0.9
    assert row["mse_en"] == 0.0


def test_cached_embeddings_skip_loading_the_model(tiny_models, isolated_home, monkeypatch):
    import xlingual.models.specs as models
    from xlingual.data.readers import ParallelCorpus
    from xlingual.evaluation.evaluator import evaluate

    pairs = ParallelCorpus(en=["one cat", "two dogs", "red sun"], ja=["猫が一匹", "犬が二匹", "赤い太陽"])
    loads = []
    original = models.load_model

    def counting(spec, device=None):
        loads.append(spec)
        return original(spec, device=device)

    monkeypatch.setattr(models, "load_model", counting)
    first = evaluate([tiny_models["student"]], pairs, config=EvalConfig())
    assert loads == [tiny_models["student"]]
    loads.clear()
    second = evaluate([tiny_models["student"]], pairs, config=EvalConfig())
    assert loads == []  # both sides came from the cache: the model was not even loaded
    assert first.metrics[0]["mean_acc"] == second.metrics[0]["mean_acc"]
    evaluate([tiny_models["student"]], pairs, config=EvalConfig(cache=False))
    assert loads == [tiny_models["student"]]
