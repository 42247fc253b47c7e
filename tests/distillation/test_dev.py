"""The dev metrics a run logs are those of ``xlingual evaluate``, and the published model carries a true card."""

import json

import pytest

from tests.distillation.helpers import PAIRS, distill_config


@pytest.fixture()
def finished_run(tiny_models, tmp_path, isolated_home):
    from xlingual.distillation.run import distill

    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[:8]), encoding="utf-8")
    dev = tmp_path / "dev.tsv"  # a repeated pair: the duplicate-text policy decides its rank
    dev.write_text("".join(f"{en}\t{ja}\n" for en, ja in [*PAIRS[8:], PAIRS[9]]), encoding="utf-8")
    result = distill(distill_config(tiny_models, (train, dev), tmp_path / "run", init="lstsq", max_steps=4))
    return result, dev


def test_final_dev_metrics_equal_xlingual_evaluate(finished_run, tiny_models):
    from xlingual.evaluation.evaluator import evaluate

    result, dev = finished_run
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    final = next(r for r in records if "final" in r)
    report = evaluate([str(result.model_dir)], str(dev), tiny_models["teacher"])
    row = report.metrics[0]
    assert row["n_pairs"] == 5
    assert final["en2ja_acc"] == row["en2ja_acc"]
    assert final["ja2en_acc"] == row["ja2en_acc"]
    assert final["cross_ja2en_acc"] == row["cross_ja2en_acc"]
    assert final["dev_mse"] == row["mse"]
    assert result.after == {k: final[k] for k in ("en2ja_acc", "ja2en_acc", "dev_mse", "cross_ja2en_acc")}


def test_published_model_has_the_export_model_card(finished_run, tiny_models, tmp_path):
    from xlingual.config import ExportConfig
    from xlingual.export.model_export import export_model

    result, _ = finished_run
    card = (result.model_dir / "README.md").read_text(encoding="utf-8")
    assert "language: [en, ja]" in card and "library_name: sentence-transformers" in card
    assert f"`{tiny_models['teacher']}`" in card  # the teacher is named
    assert "Dense" in card and "## Dev metrics of the run" in card
    export_model(str(result.model_dir), tmp_path / "exported", ExportConfig(formats=["st"]))
    assert (tmp_path / "exported" / "st" / "README.md").read_text(encoding="utf-8") == card
    assert not [p for p in result.run_dir.iterdir() if p.name.startswith(".model")]  # no temporary left
