"""``xlingual data inspect`` and the shared data options."""

import json

from click.testing import CliRunner

from xlingual.cli import cli


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


def test_data_inspect_en_ja_keys(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"english": f"I have {n} cats.", "japanese": f"猫を{n}匹飼っています。"} for n in range(5)]
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "inspect", str(pairs), "--en-key", "english", "--ja-key", "japanese"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        cli, ["data", "inspect", str(pairs), "--json", "--en-key", "english", "--ja-key", "japanese"]
    )
    assert json.loads(result.output)["total"]["n_pairs"] == 5
