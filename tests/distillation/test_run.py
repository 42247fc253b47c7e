import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from tests.distillation.helpers import PAIRS
from tests.distillation.helpers import distill_config as _config
from tests.distillation.helpers import weights as _weights
from xlingual.cli import cli
from xlingual.distillation import checkpoint as checkpoint_lib
from xlingual.distillation import run as distill_lib
from xlingual.errors import ConfigError


def test_run_directory_and_loss_falls(tiny_models, corpus, tmp_path, isolated_home):
    out = tmp_path / "run"
    result = distill_lib.distill(_config(tiny_models, corpus, out, max_steps=12, init="none"))
    assert result.steps == 12 and result.pairs_seen == 48
    for name in ("config.json", "metrics.jsonl", "report.md", "curves.png", "model/modules.json"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["batch_size"] == 4 and "torch" in config["versions"]
    assert config["head"] == "random projection"  # 32-d student, 16-d teacher
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])  # overfitting 10 pairs: the loss must fall
    assert records[0]["untouched"] == 1.0 and "cross_ja2en_acc" not in records[0]  # 32-d student vs 16-d teacher
    assert {"dev_mse", "en2ja_acc", "ja2en_acc", "cross_ja2en_acc"} <= set(records[1])
    assert "untouched" in (out / "report.md").read_text() and "distilled" in result.summary()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out / "model"), device="cpu")
    assert model.encode(["hello"]).shape == (1, 16)
    meta = json.loads((out / "model" / "xlingual_distill.json").read_text())
    assert meta["teacher_fingerprint"] == config["teacher_fingerprint"]
    assert len(list((out / "checkpoints").iterdir())) == 2  # keep_checkpoints


def test_procrustes_head_is_recorded(tiny_models, corpus, tmp_path, isolated_home):
    distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run", max_steps=1))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["head"] == "procrustes on 8 pairs"  # 2 pairs shared with dev were removed


def test_teacher_runs_once_per_corpus(tiny_models, corpus, tmp_path, isolated_home, monkeypatch):
    from xlingual.models import specs as models

    calls = []
    original = models.encode

    def counting(model, texts, **kw):
        calls.append(len(texts))
        return original(model, texts, **kw)

    monkeypatch.setattr(models, "encode", counting)
    distill_lib.distill(_config(tiny_models, corpus, tmp_path / "a", dev=None, init="none", max_steps=1))
    assert calls == [10]  # the teacher embedded the 10 training sentences
    calls.clear()
    distill_lib.distill(_config(tiny_models, corpus, tmp_path / "b", dev=None, init="none", max_steps=1))
    assert calls == []  # second run on the same data: cache hit, no teacher call


@pytest.mark.parametrize("extra", [{}, {"head_lr": 1e-2}], ids=["one-rate", "head-lr"])
def test_resume_reaches_the_same_weights(tiny_models, corpus, tmp_path, isolated_home, monkeypatch, extra):
    full = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "full", **extra))

    original = checkpoint_lib.Checkpointer.save

    def crash_after_first(self, position, *args):
        original(self, position, *args)
        if position.step == 3:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(checkpoint_lib.Checkpointer, "save", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "split", **extra))
    monkeypatch.setattr(checkpoint_lib.Checkpointer, "save", original)
    assert not (tmp_path / "split" / "model").exists()
    resumed = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "split", resume=True, **extra))
    assert resumed.steps == full.steps == 6
    a, b = _weights(full.model_dir), _weights(resumed.model_dir)
    assert a.keys() == b.keys() and a
    diffs = {key: float(np.abs(a[key] - b[key]).max()) for key in a}
    assert max(diffs.values()) <= 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:6]
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(x)["step"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]


def test_refuses_to_clobber_or_resume_wrongly(tiny_models, corpus, tmp_path, isolated_home):
    out = tmp_path / "run"
    distill_lib.distill(_config(tiny_models, corpus, out, max_steps=1, init="none"))
    with pytest.raises(ConfigError, match=r"already holds a run\. Pass --resume"):
        distill_lib.distill(_config(tiny_models, corpus, out, max_steps=1, init="none"))
    with pytest.raises(ConfigError, match=r"other settings \(lr: run has 0.001, now 0.5\)"):
        distill_lib.distill(_config(tiny_models, corpus, out, max_steps=1, init="none", lr=0.5, resume=True))
    with pytest.raises(ConfigError, match="holds no run"):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "empty", resume=True))
    result = distill_lib.distill(_config(tiny_models, corpus, out, max_steps=2, init="none", overwrite=True))
    assert result.steps == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"batch_size": 0}, "--batch-size 0: must be at least 1"),
        ({"lr": 3.0}, "--lr 3.0: must be in (0, 1)"),
        ({"head_lr": -1.0}, "--head-lr -1.0: must be in [0, 1) (0 keeps the head fixed)"),
        ({"init": "pca"}, "--init 'pca'"),
        ({"device": "tpu"}, "--device 'tpu'"),
        ({"freeze_layers": -1}, "--freeze-layers -1: must be 0"),
    ],
)
def test_bad_options(tiny_models, corpus, tmp_path, option, message):
    with pytest.raises(ConfigError) as info:
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "x", **option))
    assert message in str(info.value)


def test_cli_distill_json(tiny_models, corpus, tmp_path, isolated_home):
    train, dev = corpus
    args = ["distill", "-t", tiny_models["teacher"], "-s", tiny_models["student"], "--train", str(train)]
    args += ["--dev", str(dev), "-o", str(tmp_path / "run"), "--max-steps", "2", "-b", "4", "--device", "cpu", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["steps"] == 2 and set(payload["after"]) >= {"cross_ja2en_acc", "dev_mse"}
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "already holds a run" in again.output and "Traceback" not in again.output


def test_cli_unloadable_teacher(tmp_path, corpus):
    train, _ = corpus
    result = CliRunner().invoke(
        cli, ["distill", "-t", "builtin:nope", "--train", str(train), "-o", str(tmp_path / "r"), "--dev", "none"]
    )
    assert result.exit_code == 1
    assert "Unknown built-in model 'builtin:nope'" in result.output


def _cli_cmd(tiny_models, corpus, out, *extra):
    train, dev = corpus
    return [
        sys.executable, "-m", "xlingual", "distill", "-t", tiny_models["teacher"], "-s", tiny_models["student"],
        "--train", str(train), "--dev", str(dev), "-o", str(out), "--max-steps", "40", "-b", "4",
        "--save-every", "2", "--lr", "1e-3", "--warmup-ratio", "0", "--device", "cpu", "--init", "none", "-q", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tiny_models, corpus, tmp_path, isolated_home):
    env = {**os.environ, "XLINGUAL_HOME": str(isolated_home)}
    full = tmp_path / "full"
    subprocess.run(_cli_cmd(tiny_models, corpus, full), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli_cmd(tiny_models, corpus, killed), env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpts = list((killed / "checkpoints").glob("step-*")) if (killed / "checkpoints").exists() else []
        if any(int(p.name[5:]) >= 6 for p in ckpts):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model").exists(), "the run finished before it could be killed"
    subprocess.run(_cli_cmd(tiny_models, corpus, killed, "--resume"), check=True, env=env, capture_output=True)
    a, b = _weights(full / "model"), _weights(killed / "model")
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tiny_models, corpus, tmp_path, isolated_home):
    env = {**os.environ, "XLINGUAL_HOME": str(isolated_home), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    train, dev = corpus
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
        "-m", "xlingual", "distill", "-t", tiny_models["teacher"], "-s", tiny_models["student"],
        "--train", str(train), "--dev", str(dev), "-o", str(out), "--max-steps", "3", "-b", "2",
        "--device", "cpu", "--json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payloads = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(payloads) == 1  # only rank 0 reports
    assert payloads[0]["pairs_seen"] == 3 * 2 * 2  # 3 steps × 2 pairs × 2 processes
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    assert (out / "model" / "modules.json").is_file()


def test_dev_overlap_is_warned_with_counts(tiny_models, corpus, tmp_path, isolated_home, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="xlingual.distillation.inputs"):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run", max_steps=1, init="none"))
    assert "the dev set overlaps the training data: 2 training pairs" in caplog.text


def test_exclude_drops_pairs_sharing_a_sentence_with_test_data(tiny_models, corpus, tmp_path, isolated_home, caplog):
    import logging

    test = tmp_path / "test.tsv"
    test.write_text(f"{PAIRS[0][0]}\tまったく別の文です。\n", encoding="utf-8")  # shares only the English side
    config = _config(tiny_models, corpus, tmp_path / "run", max_steps=1, init="none", exclude=[str(test)])
    with caplog.at_level(logging.WARNING, logger="xlingual.distillation.inputs"):
        distill_lib.distill(config)
    assert "3 training pairs shared a sentence with" in caplog.text and str(test) in caplog.text
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train_pairs"] == 7 and saved["config"]["exclude"] == [str(test)]


def test_no_training_pairs_left(tiny_models, corpus, tmp_path, isolated_home):
    from xlingual.errors import XlingualError

    train, _ = corpus
    with pytest.raises(XlingualError, match="no training pairs left after cleaning"):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run", dev=str(train)))


def test_freeze_layers_keeps_lower_layers_fixed(tiny_models, corpus, tmp_path, isolated_home):
    from sentence_transformers import SentenceTransformer

    result = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run", freeze_layers=1, init="none"))
    before = dict(SentenceTransformer(tiny_models["student"], device="cpu").named_parameters())
    after = dict(SentenceTransformer(str(result.model_dir), device="cpu").named_parameters())
    changed = {
        name for name, p in after.items() if name in before and not np.array_equal(p.detach(), before[name].detach())
    }
    assert changed, "nothing trained"
    assert not [n for n in changed if ".embeddings." in n or ".layer.0." in n]
    assert [n for n in changed if ".layer.1." in n]
    with pytest.raises(ConfigError, match="--freeze-layers 3: the student has 2 transformer layers; pass at most 2"):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "bad", freeze_layers=3))


def test_head_lr_gives_the_head_its_own_rate(tiny_models, corpus, tmp_path, isolated_home):
    fixed = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "fixed", head_lr=0.0))
    one_step = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "one", head_lr=0.0, max_steps=1))
    shared = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "shared"))
    a, b, c = (_weights(r.model_dir) for r in (fixed, one_step, shared))
    head = [key for key in a if "linear" in key]
    encoder = [key for key in a if "encoder.layer" in key]
    assert head and encoder
    for key in head:  # the closed-form head as fitted, after 1 or 6 steps; with --lr it moves
        np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a[key], c[key]) for key in head)
    assert any(not np.array_equal(a[key], b[key]) for key in encoder)  # the encoder still trains
    config = json.loads((tmp_path / "fixed" / "config.json").read_text())["config"]
    assert config["head_lr"] == 0.0 and config["lr"] == 1e-3
