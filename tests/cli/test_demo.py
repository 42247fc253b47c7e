"""``xlingual demo`` end to end through the CLI, with the tiny models standing in for the built-ins."""

import functools

from click.testing import CliRunner

from xlingual.cli import cli


def test_demo_end_to_end(tiny_models, tmp_path, isolated_home, monkeypatch):
    """The demo compares the untouched student with the teacher, so the stand-in student shares its 16 dims."""
    import xlingual.demo
    from tests.conftest import _tiny_sentence_model
    from xlingual.config import DistillConfig
    from xlingual.models.specs import minilm_dir

    student = _tiny_sentence_model(tmp_path / "student16", hidden=16, seed=5, tokenizer_dir=minilm_dir())
    tiny = functools.partial(DistillConfig, teacher=tiny_models["teacher"], student=student, max_steps=2, device="cpu")
    monkeypatch.setattr(xlingual.demo, "DistillConfig", tiny)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "xlingual demo: distilling" in result.stderr
    for text in ("steps:  2", "untouched student", "distilled student", "cross_ja2en_acc", "report.md"):
        assert text in result.stdout, text
    run = tmp_path / "runs" / "demo"
    assert (run / "model" / "modules.json").is_file() and (run / "eval" / "metrics.json").is_file()
    # The transfer at the end: a head on the teacher's English topics, read in Japanese by each student.
    assert "Transfer: a topic classifier fitted on the teacher's vectors of English sentences only" in result.stdout
    assert "(other space)" in result.stdout and "topics-test-ja" in result.stdout
    assert (run / "classifier" / "head.safetensors").is_file()
    assert len(list((run / "classifier-eval").glob("confusion-*.png"))) == 4
    quiet = CliRunner().invoke(cli, ["demo", "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert "xlingual demo: distilling" not in quiet.stderr and "distilled student" in quiet.stdout
