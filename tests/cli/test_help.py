"""Every command and subcommand answers -h with its example; the group lists them and knows its version."""

import click
import pytest
from click.testing import CliRunner

from xlingual import __version__
from xlingual.cli import cli


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group``, walked recursively, so a new command is covered without an edit."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


ALL_COMMANDS = _command_paths(cli)


def test_the_walk_finds_nested_commands():
    assert {("data", "inspect"), ("index", "build"), ("index", "add"), ("index", "info"), ("distill",)} <= set(
        ALL_COMMANDS
    )


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    for (name,) in (path for path in ALL_COMMANDS if len(path) == 1):
        assert name in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(path, flag):
    result = CliRunner().invoke(cli, [*path, flag])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {' '.join(path)}" in result.output
    command = cli
    for name in path:
        command = command.commands[name]
    if not isinstance(command, click.Group):
        assert "Example" in result.output, path


def test_shared_options_read_the_same_everywhere():
    """--json, --quiet and the data options are declared once: the same flags wherever they appear."""
    for path in ALL_COMMANDS:
        result = CliRunner().invoke(cli, [*path, "-h"])
        if "--en-key" in result.output:
            assert "--ja-key" in result.output and "--detokenize" in result.output, path
        if "--quiet" in result.output:
            assert "-q, --quiet" in result.output, path


@pytest.mark.parametrize("path", [("distill",), ("evaluate",), ("trim",), ("data", "inspect")])
def test_data_options_wherever_pairs_are_read(path):
    result = CliRunner().invoke(cli, [*path, "-h"])
    assert "--detokenize" in result.output and "--en-key" in result.output and "--ja-key" in result.output


def test_distill_help_shows_the_short_resume():
    result = CliRunner().invoke(cli, ["distill", "-h"])
    assert "xlingual distill -o runs/tanaka --resume" in result.output
    assert "--resume needs nothing but --out" in result.output
