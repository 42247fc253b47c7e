"""``xlingual classify fit | predict | evaluate`` end to end with the tiny models (a copy of the teacher that
records it as its teacher stands in for a distilled student)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from xlingual.cli import cli
from xlingual.models.specs import fingerprint

TOPICS = {
    "sports": ["The team won the football match.", "He scored a goal in the last minute.", "She runs ten kilometres."],
    "food": ["I cooked rice and miso soup.", "The ramen shop opens at noon.", "We baked bread this morning."],
    "weather": ["It will rain all day tomorrow.", "Heavy snow closed the roads.", "The sky is clear and sunny."],
}


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    train = root / "train.tsv"
    rows = [f"{label}\t{text}" for label, texts in TOPICS.items() for text in texts * 2]
    train.write_text("label\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    student = root / "student"
    shutil.copytree(tiny_models["teacher"], student)
    meta = {"teacher": tiny_models["teacher"], "teacher_fingerprint": fingerprint(student), "student": "tiny"}
    (student / "xlingual_distill.json").write_text(json.dumps(meta), encoding="utf-8")
    return {"root": root, "train": str(train), "teacher": tiny_models["teacher"], "student": str(student)}


def _run(*args):
    result = CliRunner().invoke(cli, ["classify", *map(str, args)])
    return result


def test_fit_predict_evaluate(setup, tiny_models):
    root = setup["root"]
    out = root / "clf"
    result = _run("fit", "--train", setup["train"], "-m", setup["teacher"], "-o", out, "--cv-folds", "2", "-q")
    assert result.exit_code == 0, result.output
    assert "3 labels, 18 texts; cross-validated accuracy" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "head.safetensors", "metrics.json"]

    inputs = root / "in.txt"
    inputs.write_text("It snowed all night.\n\nA great goal!\n", encoding="utf-8")
    result = _run("predict", out, inputs, "-m", setup["student"], "--json", "-q")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["id"] for line in lines] == ["in.txt:1", "in.txt:3"]  # input order; the blank line skipped
    assert all(line["label"] in TOPICS and len(line["top"]) == 3 for line in lines)
    assert lines[0]["top"][0] == {"label": lines[0]["label"], "probability": lines[0]["probability"]}

    labels = root / "labels.tsv"
    result = _run("predict", out, inputs, "-m", setup["student"], "-o", labels, "--top", "2")
    assert result.exit_code == 0, result.output
    rows = labels.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "id\tlabel\tprobability\ttop\ttext" and rows[1].startswith("in.txt:1\t") and len(rows) == 3
    assert rows[1].endswith("\tIt snowed all night.") and rows[1].split("\t")[3].count(";") == 1

    report_dir = root / "report"
    result = _run(
        "evaluate", out, "--test", setup["train"], "-m", setup["teacher"], "-m", setup["student"], "-o", report_dir
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("train.tsv") == 2 and "other space" not in result.output
    metrics = json.loads((report_dir / "metrics.json").read_text())
    teacher_row, student_row = metrics["results"]
    assert teacher_row["accuracy"] == student_row["accuracy"]  # same weights: the same predictions
    assert len(list(report_dir.glob("confusion-*.png"))) == 2


def test_models_outside_the_space_and_bad_input_are_one_line_errors(setup, tiny_models):
    out = setup["root"] / "clf2"
    assert (
        _run("fit", "--train", setup["train"], "-m", setup["teacher"], "-o", out, "--cv-folds", "2", "-q").exit_code
        == 0
    )
    inputs = setup["root"] / "in2.txt"
    inputs.write_text("hello\n", encoding="utf-8")
    result = _run("predict", out, inputs, "-m", tiny_models["student"])
    assert result.exit_code == 1
    assert "does not share the classifier's vector space" in result.output and "Traceback" not in result.output
    result = _run("evaluate", out, "--test", setup["train"], "-m", tiny_models["student"])
    assert result.exit_code == 1 and "the head reads 16-dimensional vectors, the model gave 32" in result.output
    single = setup["root"] / "single.tsv"
    single.write_text("a\tone\na\ttwo\n", encoding="utf-8")
    result = _run("fit", "--train", single, "-m", setup["teacher"], "-o", setup["root"] / "x")
    assert result.exit_code == 1 and "at least two classes" in result.output
    assert not (setup["root"] / "x").exists()
    result = _run("fit", "--train", setup["train"], "-m", setup["teacher"], "-o", out, "-q")
    assert result.exit_code == 1 and "pass --overwrite" in result.output
