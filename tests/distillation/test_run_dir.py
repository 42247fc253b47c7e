import json
from pathlib import Path

import pytest

from tests.distillation.helpers import distill_config
from xlingual.choices import InitMethod
from xlingual.config import DistillConfig
from xlingual.distillation import run_dir as run_dir_lib
from xlingual.errors import ConfigError


def _saved_run(tmp_path: Path, tiny_models, corpus, **kw) -> Path:
    """A run directory holding only the config.json a run writes at its start."""
    out = tmp_path / "run"
    out.mkdir()
    config = distill_config(tiny_models, corpus, out, **kw)
    run_dir_lib.write_config(out, config, {"head": "none"})
    return out


def test_resume_compared_settings_come_from_field_metadata():
    compared = set(DistillConfig.resume_compared())
    expected = {"teacher", "student", "train", "dev", "lr", "head_lr", "seed", "init", "trim_vocab", "detokenize"}
    expected |= {"en_key", "ja_key", "extra_dev", "negatives", "hard_negatives", "teacher_prompt", "missing_teacher"}
    assert expected <= compared
    assert not compared & {"out", "quiet", "device", "resume", "overwrite", "eval_every", "save_every"}
    assert len(compared) == 31


def test_a_run_saved_before_a_setting_existed_still_resumes(tiny_models, corpus, tmp_path):
    """config.json of an older run lacks the newer settings: they count as their defaults, not as changed."""
    out = _saved_run(tmp_path, tiny_models, corpus)
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    del saved["config"]["en_key"], saved["config"]["ja_key"]
    (out / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    config = run_dir_lib.resume_config(out, {"detokenize": False})
    assert config.en_key == "en" and config.ja_key == "ja"
    run_dir_lib.check_same_config(out, config)  # what distill runs before it resumes: no refusal


def test_a_run_from_before_the_bank_of_negatives_resumes_without_it(tiny_models, corpus, tmp_path):
    """--negatives became 1,024 by default after runs were saved without the setting: those ran with 0."""
    out = _saved_run(tmp_path, tiny_models, corpus)
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    del saved["config"]["negatives"]
    (out / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    assert DistillConfig().negatives == 1024
    assert run_dir_lib.resume_config(out, {}).negatives == 0


def test_resume_config_needs_nothing_but_the_folder(tiny_models, corpus, tmp_path):
    out = _saved_run(tmp_path, tiny_models, corpus, lr=0.002, init="lstsq", max_steps=7)
    config = run_dir_lib.resume_config(out, {})
    assert config.resume is True and config.overwrite is False and config.out == out
    assert config.lr == 0.002 and config.max_steps == 7 and config.init is InitMethod.LSTSQ
    assert config.train == [str(corpus[0])] and config.teacher == tiny_models["teacher"]


def test_resume_config_applies_settings_that_may_change(tiny_models, corpus, tmp_path):
    out = _saved_run(tmp_path, tiny_models, corpus, quiet=False)
    config = run_dir_lib.resume_config(out, {"quiet": True, "device": "cpu", "eval_every": 2, "lr": 1e-3})
    assert config.quiet is True and config.device == "cpu" and config.eval_every == 2
    assert config.lr == 1e-3  # given, but equal to the run's: accepted


def test_resume_config_refuses_a_compared_setting_that_differs(tiny_models, corpus, tmp_path):
    out = _saved_run(tmp_path, tiny_models, corpus)
    with pytest.raises(ConfigError) as info:
        run_dir_lib.resume_config(out, {"lr": 0.5, "train": (str(corpus[1]),), "quiet": True})
    message = str(info.value)
    assert "\n" not in message
    assert f"--resume: {out} was started with --train [{str(corpus[0])!r}], not [{str(corpus[1])!r}]" in message
    assert "--lr 0.001, not 0.5" in message and "Leave out --train, --lr to continue the run" in message


def test_resume_config_without_a_run(tmp_path):
    with pytest.raises(ConfigError, match="holds no run"):
        run_dir_lib.resume_config(tmp_path / "nothing", {})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read"):
        run_dir_lib.resume_config(tmp_path / "bad", {})
    (tmp_path / "bad" / "config.json").write_text('{"config": {}}', encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rate: not a distill setting"):
        run_dir_lib.resume_config(tmp_path / "bad", {"learning_rate": 1.0})


def test_config_json_records_settings_as_json(tiny_models, corpus, tmp_path):
    out = _saved_run(tmp_path, tiny_models, corpus, init="none")
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["config"]["init"] == "none" and saved["config"]["out"] == str(out)
    assert saved["head"] == "none" and set(saved["versions"]) >= {"torch", "numpy"} and "python" in saved


def test_resumed_run_continues_from_the_folder_alone(tiny_models, corpus, tmp_path, isolated_home):
    from xlingual.distillation.run import distill

    out = tmp_path / "run"
    distill(distill_config(tiny_models, corpus, out, max_steps=2, init="none"))
    resumed = distill(run_dir_lib.resume_config(out, {"quiet": True}))
    assert resumed.steps == 2
