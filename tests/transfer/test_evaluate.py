"""Scoring a head: accuracy, macro-F1, per class and confusion computed by hand; the report and its files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from xlingual.config import ClassifyConfig
from xlingual.search.compat import ModelInfo
from xlingual.transfer.classifier import Classifier
from xlingual.transfer.evaluate import evaluate_classifier, score_predictions
from xlingual.transfer.labelled import LabelledSet


def test_scores_by_hand():
    true = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "a", "a"]
    accuracy, macro_f1, per_class, confusion = score_predictions(true, pred, ["a", "b", "c"])
    assert accuracy == pytest.approx(3 / 6)
    assert confusion == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]
    # a: precision 2/4, recall 2/3 → F1 4/7; b: 1/2, 1/2 → 1/2; c: 0
    assert per_class["a"] == {
        "precision": 0.5,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(4 / 7),
        "support": 3,
    }
    assert macro_f1 == pytest.approx((4 / 7 + 1 / 2 + 0) / 3)
    # a label neither true nor predicted does not dilute macro-F1
    assert score_predictions(true, pred, ["a", "b", "c", "d"])[1] == pytest.approx(macro_f1)


def test_report_with_an_unknown_label_and_files(tmp_path):
    encoder = FakeEncoder(8)
    texts = ["alpha", "beta", "gamma"]
    emb = encoder.encode(texts)
    clf = Classifier(("alpha", "beta"), emb[:2] * 50, np.zeros(2), ModelInfo("fake"))
    test = LabelledSet(texts, ["alpha", "beta", "gamma"], "t.tsv")
    report = evaluate_classifier(clf, [test], [encoder], ClassifyConfig(show_progress=False, cache=False))
    (result,) = report.results
    assert result.labels == ("alpha", "beta", "gamma") and result.accuracy == pytest.approx(2 / 3)
    assert result.per_class["gamma"]["recall"] == 0.0 and result.confusion[2][2] == 0
    table = report.format_table()
    assert "66.7" in table and "t.tsv" in table
    files = report.write(tmp_path / "out")
    assert files[0].name == "metrics.json" and files[1].suffix == ".png"
    assert files[1].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(files[0].read_text())["results"][0]["accuracy"] == pytest.approx(2 / 3)
