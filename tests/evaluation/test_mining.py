"""Margin mining on a hand-worked case, gold scoring, threshold tuning, the files, and mine_files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from xlingual.choices import MineMode
from xlingual.config import MineConfig
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation import mining as ev

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


def test_mine_config_converts_the_mode_and_checks_values():
    assert MineConfig(mode="intersect").mode is MineMode.INTERSECT
    assert MineConfig().mode is MineMode.MAX
    with pytest.raises(ConfigError, match=r"MineConfig\.k=0 is not positive; pass 1 or more\."):
        MineConfig(k=0)


# --------------------------------------------------------------------------- mine_files: what `xlingual mine` runs

SRC_LINES = "apple pie recipe\nblue sky today\ncold water please\nqqq zzz xxx\n"
TGT_LINES = "cold water please!\napple pie recipe!\nblue sky today!\nkkk vvv www\n"
GOLD_LINES = (
    "apple pie recipe\tapple pie recipe!\nblue sky today\tblue sky today!\ncold water please\tcold water please!\n"
)
SUMMARY_KEYS = ["threshold", "n_src", "n_tgt"]
GOLD_KEYS = ["precision", "recall", "f1", "n_gold", "n_correct"]


@pytest.fixture()
def mine_inputs(tmp_path):
    files = {"src": tmp_path / "ja.txt", "tgt": tmp_path / "en.txt", "gold": tmp_path / "gold.tsv"}
    for name, text in zip(files, (SRC_LINES, TGT_LINES, GOLD_LINES), strict=True):
        files[name].write_text(text, encoding="utf-8")
    return files


def test_mine_files_tunes_on_gold_and_writes_the_pairs(mine_inputs, tmp_path):
    config = MineConfig(k=2, mode="intersect")
    out = tmp_path / "out" / "mined.tsv"
    result = ev.mine_files(
        FakeEncoder(),
        mine_inputs["src"],
        mine_inputs["tgt"],
        config=config,
        gold=mine_inputs["gold"],
        tune=True,
        output=out,
    )
    assert list(result.summary) == [*SUMMARY_KEYS, *GOLD_KEYS, "n_mined"]
    # The library steps the CLI ran one by one, by hand: mine everything, then cut at the F1-optimal threshold.
    src, tgt = ev.read_lines(mine_inputs["src"]), ev.read_lines(mine_inputs["tgt"])
    everything = ev.mine(FakeEncoder(), src, tgt, config=MineConfig(k=2, mode="intersect", threshold=-math.inf))
    threshold, scores = ev.best_threshold(everything, ev.read_gold(mine_inputs["gold"]), src, tgt)
    assert result.mined == [p for p in everything if p.score >= threshold]
    assert result.summary == {
        "threshold": threshold,
        "n_src": 4,
        "n_tgt": 4,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "n_gold": 3,
        "n_correct": 3,
        "n_mined": 3,
    }
    assert scores.f1 == 1.0
    assert out.read_text(encoding="utf-8").splitlines() == list(result.tsv_lines())
    rows = [line.split("\t") for line in result.tsv_lines()]
    assert {(r[1], r[2]) for r in rows} == set(ev.read_gold(mine_inputs["gold"]))


def test_mine_files_scores_at_the_given_threshold_without_tuning(mine_inputs):
    config = MineConfig(k=2, mode="intersect", threshold=0.5)
    result = ev.mine_files(
        FakeEncoder(), mine_inputs["src"], mine_inputs["tgt"], config=config, gold=mine_inputs["gold"]
    )
    src, tgt = ev.read_lines(mine_inputs["src"]), ev.read_lines(mine_inputs["tgt"])
    expected = ev.mine(FakeEncoder(), src, tgt, config=config)
    scores = ev.mine_scores_vs_gold(expected, ev.read_gold(mine_inputs["gold"]), src, tgt)
    assert result.mined == expected
    assert result.summary == {"threshold": 0.5, "n_src": 4, "n_tgt": 4, **scores.as_dict(), "n_mined": len(expected)}
    assert list(result.summary) == [*SUMMARY_KEYS, *GOLD_KEYS, "n_mined"]


def test_mine_files_without_gold_and_output(mine_inputs):
    config = MineConfig(k=2, threshold=1.0)
    result = ev.mine_files(FakeEncoder(), mine_inputs["src"], mine_inputs["tgt"], config=config)
    assert list(result.summary) == [*SUMMARY_KEYS, "n_mined"]
    assert result.summary["threshold"] == 1.0 and result.summary["n_mined"] == len(result.mined)
    assert result.src_texts == SRC_LINES.splitlines() and result.tgt_texts == TGT_LINES.splitlines()
    assert all(p.score >= 1.0 for p in result.mined)


def test_mine_files_refuses_tuning_without_gold(mine_inputs):
    with pytest.raises(ConfigError, match="Tuning the threshold needs gold pairs"):
        ev.mine_files(FakeEncoder(), mine_inputs["src"], mine_inputs["tgt"], config=MineConfig(), tune=True)
