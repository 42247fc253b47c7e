"""STS files and the Spearman correlation of cosine similarities with gold scores."""

from __future__ import annotations

import numpy as np
import pytest

from xlingual.errors import DataError
from xlingual.evaluation import sts as ev


def test_read_sts_skips_header_and_names_bad_lines(tmp_path):
    good = tmp_path / "sts.tsv"
    good.write_text("sentence1\tsentence2\tscore\n猫\tcat\t5\n犬\tcar\t0.5\n", encoding="utf-8")
    data = ev.read_sts(good)
    assert data.first == ["猫", "犬"] and data.scores == [5.0, 0.5]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t1\nc\td\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: 2 columns, expected 3"):
        ev.read_sts(bad)


def test_sts_spearman_hand_case():
    # Four pairs whose cosines are 1.0, 0.8, 0.6, 0.0 (first side always (1, 0)); gold 5, 3, 4, 1.
    # Ranks of the cosines: 4, 3, 2, 1; of the gold scores: 4, 2, 3, 1; d² = 0+1+1+0 = 2;
    # rho = 1 - 6·2 / (4·(16 - 1)) = 0.8.
    first = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (4, 1))
    second = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    assert ev.sts_spearman(first, second, [5.0, 3.0, 4.0, 1.0]) == pytest.approx(0.8)
