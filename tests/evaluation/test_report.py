"""The evaluation report: JSON lines and table formatting."""

from __future__ import annotations

import json

from xlingual.evaluation import report as ev


def test_nan_becomes_null_in_json():
    report = ev.EvalReport([{"model": "m", "sts_spearman": float("nan")}])
    assert json.loads(report.to_json_lines()) == {"model": "m", "sts_spearman": None}
    assert report.format_table().splitlines()[1].split() == ["sts_spearman", "-"]
