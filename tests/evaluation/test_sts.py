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


def test_builtin_sts_set_is_bundled_and_spread_over_the_scale():
    data = ev.read_sts("builtin:sts-ja")
    assert len(data.scores) >= 200
    assert min(data.scores) == 0 and max(data.scores) == 5
    bands = np.histogram(data.scores, bins=[0, 1, 2, 3, 4, 5.01])[0]
    assert bands.min() >= 0.1 * len(data.scores)  # every band of the scale holds at least a tenth
    assert all(a != b for a, b in zip(data.first, data.second, strict=True))


def test_unknown_builtin_sts_set_and_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="builtin:sts-en: unknown built-in STS set; use builtin:sts-ja"):
        ev.read_sts("builtin:sts-en")
    with pytest.raises(DataError, match="no such file; check the path"):
        ev.read_sts(tmp_path / "absent.tsv")
