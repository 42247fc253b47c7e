"""The short public API: every name resolves, `import xlingual` stays cheap, no module shadows a function."""

import subprocess
import sys

import xlingual


def test_every_public_name_resolves():
    for name in xlingual.__all__:
        assert getattr(xlingual, name) is not None, name


def test_functions_are_not_shadowed_by_their_stage_packages():
    import xlingual.distillation.run
    import xlingual.evaluation.evaluator  # importing a stage must not rebind xlingual.evaluate

    assert callable(xlingual.distill) and xlingual.distill.__module__ == "xlingual.distillation.run"
    assert callable(xlingual.evaluate) and xlingual.evaluate.__module__ == "xlingual.evaluation.evaluator"


def test_import_is_cheap():
    code = "import sys, xlingual; print(sorted(m for m in ('torch', 'faiss', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_name_is_an_attribute_error():
    try:
        xlingual.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("xlingual.no_such_name resolved")
