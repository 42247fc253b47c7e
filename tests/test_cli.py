import json

import pytest
from click.testing import CliRunner

from xlingual import __version__
from xlingual.cli import cli


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    for command in ("models", "data", "distill", "evaluate", "mine", "demo"):
        assert command in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help_with_an_example():
    for args in (["models"], ["data", "inspect"], ["distill"], ["evaluate"], ["mine"], ["demo"]):
        result = CliRunner().invoke(cli, [*args, "-h"])
        assert result.exit_code == 0, args
        assert "Example" in result.output, args


def test_models_lists_both_builtins(isolated_home):
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "builtin:minilm-en" in result.output and "builtin:me5-small" in result.output
    assert "xlingual models --convert" in result.output  # me5-small is not converted in a fresh home


def test_models_json(isolated_home):
    result = CliRunner().invoke(cli, ["models", "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    by_spec = {row["spec"]: row for row in rows}
    assert by_spec["builtin:minilm-en"]["installed"] is True and by_spec["builtin:minilm-en"]["dim"] == 384
    assert by_spec["builtin:me5-small"]["converted"] is False


def test_data_inspect_builtin():
    result = CliRunner().invoke(cli, ["data", "inspect", "builtin:train", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["total"]["n_pairs"] >= 1000


def test_data_inspect_reports_problems_in_text(tmp_path):
    bad = tmp_path / "pairs.tsv"
    bad.write_text("hello\tこんにちは\nthree\tcolumns\there\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "inspect", str(bad)])
    assert result.exit_code == 0
    assert "pairs.tsv:2" in result.output and "3 columns" in result.output


def test_library_errors_become_clean_messages(tmp_path):
    result = CliRunner().invoke(cli, ["data", "inspect", str(tmp_path / "missing.tsv")])
    assert "Traceback" not in result.output
    assert "missing.tsv" in result.output


@pytest.mark.parametrize("args", [["distill", "--epochs", "0", "--dev", "none"], ["distill", "--batch-size", "0"]])
def test_bad_distill_options_exit_1(args, tmp_path):
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "must be at least 1" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- evaluate and mine (fake encoders)


@pytest.fixture()
def fake_models(monkeypatch):
    import xlingual.models.specs as models
    from tests.fakes import FakeEncoder

    monkeypatch.setattr(models, "load_model", lambda spec, device=None: FakeEncoder(32 if spec == "small" else 64))


def _pairs(tmp_path):
    from tests.evaluation.test_evaluator import EN, JA

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{e}\t猫{j}\n" for e, j in zip(EN, JA, strict=True)), encoding="utf-8")
    return path


def test_evaluate_table_json_and_out(tmp_path, fake_models):
    pairs = _pairs(tmp_path)
    args = ["evaluate", "-m", "a", "-m", "b", "-p", str(pairs), "-t", "a", "-q", "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["metric", "a", "b"]
    assert (tmp_path / "run" / "metrics.json").exists()
    result = CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", str(pairs), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert {"mean_acc", "en2ja_acc", "ja2en_mrr", "margin_ja2en_acc", "n_pairs", "model", "seconds"} <= set(row)


def test_evaluate_dimension_mismatch_is_a_clean_error(tmp_path, fake_models):
    result = CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", str(_pairs(tmp_path)), "-t", "small"])
    assert result.exit_code == 1
    assert "Error: The teacher embeds in 32 dimensions but the student in 64" in result.output


def test_mine_with_gold_and_tuning(tmp_path, fake_models):
    src, tgt, gold = tmp_path / "ja.txt", tmp_path / "en.txt", tmp_path / "gold.tsv"
    src.write_text("apple pie recipe\nblue sky today\ncold water please\nqqq zzz xxx\n", encoding="utf-8")
    tgt.write_text("cold water please!\napple pie recipe!\nblue sky today!\nkkk vvv www\n", encoding="utf-8")
    gold.write_text(
        "apple pie recipe\tapple pie recipe!\nblue sky today\tblue sky today!\ncold water please\tcold water please!\n",
        encoding="utf-8",
    )
    base = ["mine", "-m", "a", "-s", str(src), "-t", str(tgt), "-k", "2"]
    result = CliRunner().invoke(cli, [*base, "--threshold", "1.0"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, [*base, "-g", str(gold), "--tune", "-o", str(tmp_path / "m.tsv"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["f1"] == 1.0
    assert len((tmp_path / "m.tsv").read_text(encoding="utf-8").splitlines()) == 3
    result = CliRunner().invoke(cli, [*base, "--tune"])
    assert result.exit_code == 2 and "--tune needs --gold" in result.output
