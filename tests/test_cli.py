import json

import pytest
from click.testing import CliRunner

from xlingual import __version__
from xlingual.cli import cli


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    for command in ("models", "data", "distill", "demo"):
        assert command in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help_with_an_example():
    for args in (["models"], ["data", "inspect"], ["distill"], ["demo"]):
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
