"""The classifier: fit with cross-validation, probabilities by hand, safe and atomic files, the space rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from xlingual.config import ClassifyConfig
from xlingual.errors import ClassifierError
from xlingual.search.compat import ModelInfo
from xlingual.transfer.classifier import Classifier, fit_classifier
from xlingual.transfer.labelled import LabelledSet

WORDS = {"sports": "football match goal", "food": "rice soup noodles", "weather": "rain snow cloudy"}
CONFIG = ClassifyConfig(show_progress=False, cache=False, cv_folds=3, c_grid=(0.1, 1.0, 10.0))


def _labelled(n=6, offset=0):
    texts, labels = [], []
    for label, words in WORDS.items():
        for i in range(offset, offset + n):
            texts.append(f"{words.split()[i % 3]} and {words.split()[(i + 1) % 3]} number {i}")
            labels.append(label)
    return LabelledSet(texts, labels, "synthetic")


@pytest.fixture(scope="module")
def fitted():
    return fit_classifier(_labelled(), FakeEncoder(64), CONFIG)


def test_fit_learns_the_topics_and_reports_cross_validation(fitted):
    assert fitted.labels == ("food", "sports", "weather") and fitted.coef.shape == (3, 64)
    metrics = fitted.metrics
    assert metrics["cv_folds"] == 3 and metrics["C"] in (0.1, 1.0, 10.0)
    assert set(metrics["cv_accuracy_by_C"]) == {"0.1", "1.0", "10.0"}
    assert metrics["cv_accuracy"] == max(metrics["cv_accuracy_by_C"].values())
    assert metrics["examples_per_label"] == {"sports": 6, "food": 6, "weather": 6}
    held_out = _labelled(4, offset=10)
    predictions = fitted.predict(held_out.texts, FakeEncoder(64), config=CONFIG)
    accuracy = np.mean([p.label == t for p, t in zip(predictions, held_out.labels, strict=True)])
    assert accuracy >= 0.9


def test_probabilities_are_the_softmax_of_the_linear_scores():
    clf = Classifier(("a", "b", "c"), np.eye(3, 4), np.array([0.0, 1.0, 0.0]), ModelInfo("m"))
    x = np.array([[1.0, 0.0, 0.0, 0.0]])
    logits = np.array([1.0, 1.0, 0.0])
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(clf.probabilities(x)[0], expected, rtol=1e-6)
    (p,) = clf.predict_embeddings(x, top=2)
    assert p.label == "a" and p.probability == pytest.approx(expected[0])  # a tie keeps the label order
    assert [label for label, _ in p.top] == ["a", "b"]
    assert p.as_dict()["top"][1] == {"label": "b", "probability": pytest.approx(expected[1])}
    with pytest.raises(ClassifierError, match="the head reads 4-dimensional vectors, the model gave 3"):
        clf.probabilities(np.zeros((1, 3)))


def test_binary_heads_get_one_row_per_label():
    labelled = LabelledSet(_labelled().texts[:12], _labelled().labels[:12], "two")
    clf = fit_classifier(labelled, FakeEncoder(64), CONFIG)
    assert clf.labels == ("food", "sports") and clf.coef.shape == (2, 64)
    probs = clf.probabilities(FakeEncoder(64).encode(labelled.texts))
    assert np.allclose(probs.sum(axis=1), 1) and (probs.argmax(axis=1) == [1] * 6 + [0] * 6).all()


def test_save_and_load_round_trip_without_pickle(fitted, tmp_path):
    out = fitted.save(tmp_path / "clf")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "head.safetensors", "metrics.json"]
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "xlingual-classifier" and config["labels"] == list(fitted.labels)
    assert config["files"]["head.safetensors"]["bytes"] == (out / "head.safetensors").stat().st_size
    raw = (out / "head.safetensors").read_bytes()  # safetensors: a length, a JSON header, raw little-endian floats
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["coef"] == {"dtype": "F32", "shape": [3, 64], "data_offsets": [0, 3 * 64 * 4]}
    assert header["intercept"]["shape"] == [3] and header["__metadata__"] == {"format": "xlingual-classifier"}
    loaded = Classifier.load(out)
    np.testing.assert_array_equal(loaded.coef, fitted.coef)
    assert loaded.labels == fitted.labels and loaded.metrics == fitted.metrics
    with pytest.raises(Exception, match="already exists and is not empty; pass --overwrite"):
        fitted.save(out)
    fitted.save(out, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_damaged_folders_are_refused(fitted, tmp_path):
    out = fitted.save(tmp_path / "clf")
    head = out / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ClassifierError, match=r"head.safetensors: sha256 .*the classifier folder is damaged; refit"):
        Classifier.load(out)
    with pytest.raises(ClassifierError, match=r"has no config.json: not a classifier folder; make one with"):
        Classifier.load(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(ClassifierError, match="is not the config of an xlingual classifier"):
        Classifier.load(tmp_path / "other")
    with pytest.raises(Exception, match="is not a classifier folder, so --overwrite will not delete it"):
        fitted.save(tmp_path / "other", overwrite=True)


def test_nan_weights_are_refused():
    with pytest.raises(ClassifierError, match="NaN or infinite weights"):
        Classifier(("a", "b"), np.array([[np.nan], [0.0]]), np.zeros(2), ModelInfo("m"))


def test_models_outside_the_head_space_are_refused(tiny_models, tmp_path):
    clf = Classifier(("a", "b"), np.zeros((2, 16)), np.zeros(2), ModelInfo.from_spec(tiny_models["teacher"]))
    assert clf.check_model(tiny_models["teacher"]) == "same model"
    with pytest.raises(
        ClassifierError, match=r"does not share the classifier's vector space: .* Use the head's own model"
    ):
        clf.check_model(tiny_models["student"])
    with pytest.raises(ClassifierError, match="refit the head on"):
        clf.predict(["x"], tiny_models["student"])


def test_round_trip_gives_identical_predictions(fitted, tmp_path):
    texts = ["rain and snow number 99", "rice soup number 98", "goal match number 97"]
    loaded = Classifier.load(fitted.save(tmp_path / "clf"))
    assert loaded.predict(texts, FakeEncoder(64), config=CONFIG) == fitted.predict(
        texts, FakeEncoder(64), config=CONFIG
    )


class _Boom:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_in_place_of_the_head_is_never_executed(fitted, tmp_path):
    import pickle

    from xlingual import _io

    out = fitted.save(tmp_path / "clf")
    marker = tmp_path / "pickle-ran"
    (out / "head.safetensors").write_bytes(pickle.dumps(_Boom(marker)))
    config = json.loads((out / "config.json").read_text())
    config["files"]["head.safetensors"] = _io.file_entry(out / "head.safetensors")  # a forger fixes the checksum
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ClassifierError, match=r"head.safetensors cannot be read .*refit it"):
        Classifier.load(out)
    assert not marker.exists()


def test_a_head_from_a_newer_version_is_refused(fitted, tmp_path):
    out = fitted.save(tmp_path / "clf")
    config = json.loads((out / "config.json").read_text())
    config["format_version"] = 99
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ClassifierError, match=r"was written by a newer xlingual \(format 99\); upgrade xlingual"):
        Classifier.load(out)
