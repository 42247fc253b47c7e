"""The package's shape is part of its design: small modules, short functions, a thin CLI, state set in __init__.

These limits are the ones ``../ARCHITECTURE.md`` states; ruff's C901/PLR0912/PLR0913/PLR0915 (pyproject) cover
complexity, branches, arguments and statements.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xlingual"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_COMMAND_LINES = 40


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_short(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)}: {lines} lines, limit {MAX_MODULE_LINES}: split it by job"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_functions_are_short(path):
    limit = MAX_COMMAND_LINES if "cli" in path.relative_to(PACKAGE).parts[:1] else MAX_FUNCTION_LINES
    long = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # From `def` to the last line: decorators (click options) are declarations, not logic.
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            if length > limit:
                long.append(f"{node.name} ({length} lines)")
    assert not long, f"{_name(path)}: functions over {limit} lines: {', '.join(long)}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_attributes_set_only_in_init(path):
    offenders = []
    for cls in (n for n in ast.walk(_tree(path)) if isinstance(n, ast.ClassDef)):
        for method in cls.body:
            if not isinstance(method, ast.FunctionDef) or method.name in ("__init__", "__post_init__", "__setattr__"):
                continue
            if not method.args.args or method.args.args[0].arg != "self":
                continue
            for node in ast.walk(method):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign | ast.AugAssign):
                    targets = [node.target]
                for target in targets:
                    is_self = isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    if is_self and target.value.id == "self":  # type: ignore[attr-defined]
                        offenders.append(f"{cls.name}.{method.name} sets self.{target.attr}")  # type: ignore[attr-defined]
    assert not offenders, f"{_name(path)}: " + "; ".join(offenders)


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_only_the_cli_imports_click(path):
    if path.relative_to(PACKAGE).parts[0] in ("cli", "__main__.py"):
        return
    imported = {name.split(".")[0] for name in _imported_modules(path)}
    assert "click" not in imported, f"{_name(path)} imports click: only xlingual/cli/ may"
    assert not any(name.startswith("xlingual.cli") for name in _imported_modules(path)), (
        f"{_name(path)} imports the CLI: stages must not"
    )


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names
