import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xlingual.cli import cli
from xlingual.config import DistillConfig
from xlingual.distillation import run as distill_lib
from xlingual.errors import ConfigError, XlingualError

PAIRS = [
    ("The weather is nice today.", "今日はいい天気です。"),
    ("I would like a cup of coffee.", "コーヒーを一杯ください。"),
    ("Where is the station?", "駅はどこですか。"),
    ("He reads a book every night.", "彼は毎晩本を読みます。"),
    ("The meeting starts at ten.", "会議は十時に始まります。"),
    ("Please close the window.", "窓を閉めてください。"),
    ("My sister lives in Osaka.", "姉は大阪に住んでいます。"),
    ("This computer is very fast.", "このコンピューターはとても速い。"),
    ("We went to the sea last summer.", "去年の夏、私たちは海に行きました。"),
    ("The store closes at nine.", "店は九時に閉まります。"),
    ("How much is this bag?", "このかばんはいくらですか。"),
    ("It started to rain.", "雨が降り始めた。"),
]


@pytest.fixture()
def corpus(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[:10]), encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    dev.write_text("".join(f"{en}\t{ja}\n" for en, ja in PAIRS[8:]), encoding="utf-8")
    return train, dev


def _config(tiny_models, corpus, out, **kw):
    train, dev = corpus
    base = dict(
        teacher=tiny_models["teacher"],
        student=tiny_models["student"],
        train=[str(train)],
        dev=str(dev),
        out=out,
        batch_size=4,
        max_steps=6,
        lr=1e-3,
        warmup_ratio=0.0,
        save_every=3,
        device="cpu",
        quiet=True,
    )
    base.update(kw)
    return DistillConfig(**base)


def _weights(model_dir):
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(Path(model_dir).rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.parent.name}/{k}"] = v
    return out


def test_fit_alignment_head_recovers_a_rotation():
    rng = np.random.default_rng(0)
    teacher = rng.standard_normal((200, 8)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    offset = rng.standard_normal(8)
    student = (0.5 * teacher @ rotation.T + offset).astype(np.float32)  # student = 0.5 R t + offset
    for method in ("procrustes", "lstsq"):
        weight, bias = distill_lib.fit_alignment_head(student, teacher, method)
        mapped = student @ weight.T + bias
        np.testing.assert_allclose(mapped, teacher, atol=1e-4)
    with pytest.raises(ConfigError, match="--init 'pca'"):
        distill_lib.fit_alignment_head(student, teacher, "pca")


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


def test_inserted_head_maps_the_student_onto_the_teacher(tiny_models):
    from xlingual.models.specs import encode, load_model

    student, teacher = load_model(tiny_models["student"]), load_model(tiny_models["teacher"])
    texts = [en for en, _ in PAIRS] + [ja for _, ja in PAIRS]
    target = encode(teacher, [en for en, _ in PAIRS] * 2)
    before = encode(student, texts)
    weight, bias = distill_lib.fit_alignment_head(before, target, "lstsq")
    distill_lib._insert_head(student, weight, bias, 16)
    after = encode(student, texts)
    expected = before @ weight.T + bias
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(after, expected, atol=1e-5)  # Normalize → Dense(head) → Normalize
    random_mse = np.mean((encode(load_model(tiny_models["student"]), texts)[:, :16] - target) ** 2)
    assert np.mean((after - target) ** 2) < 0.5 * random_mse


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


def test_resume_reaches_the_same_weights(tiny_models, corpus, tmp_path, isolated_home, monkeypatch):
    full = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "full"))

    original = distill_lib._Trainer.save_checkpoint

    def crash_after_first(self, step, *args):
        original(self, step, *args)
        if step == 3:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(distill_lib._Trainer, "save_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "split"))
    monkeypatch.setattr(distill_lib._Trainer, "save_checkpoint", original)
    assert not (tmp_path / "split" / "model").exists()
    resumed = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "split", resume=True))
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

    with caplog.at_level(logging.WARNING, logger="xlingual.distillation.run"):
        distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run", max_steps=1, init="none"))
    assert "the dev set overlaps the training data: 2 training pairs" in caplog.text


def test_exclude_drops_pairs_sharing_a_sentence_with_test_data(tiny_models, corpus, tmp_path, isolated_home, caplog):
    import logging

    test = tmp_path / "test.tsv"
    test.write_text(f"{PAIRS[0][0]}\tまったく別の文です。\n", encoding="utf-8")  # shares only the English side
    config = _config(tiny_models, corpus, tmp_path / "run", max_steps=1, init="none", exclude=[str(test)])
    with caplog.at_level(logging.WARNING, logger="xlingual.distillation.run"):
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


def test_distillation_loss_hand_computed():
    import math

    import torch

    from xlingual.distillation.run import distillation_loss

    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student_en = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student_ja = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # each Japanese vector sits on the other pair's teacher
    mse = float(distillation_loss(student_en, student_ja, teacher))
    assert mse == pytest.approx(0.0 + 1.0)  # mean of (0-1)², (1-0)² over 4 elements ×2 → 1.0
    # Own-pair score 0, other-pair score 1/τ: cross-entropy log(1 + e^{1/τ}) per row, both directions.
    tau = 0.5
    expected = mse + 0.1 * math.log(1 + math.exp(1 / tau))
    assert float(distillation_loss(student_en, student_ja, teacher, 0.1, tau)) == pytest.approx(expected, rel=1e-6)
    aligned = float(distillation_loss(student_en, student_en, teacher, 0.1, tau))
    assert aligned == pytest.approx(0.1 * math.log(1 + math.exp(-1 / tau)), rel=1e-6)


def test_damaged_checkpoint_falls_back_to_the_previous_one(tiny_models, corpus, tmp_path, isolated_home, caplog):
    full = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run"))
    run = full.run_dir
    older, newest = distill_lib._checkpoints(run)
    manifest = json.loads((newest / distill_lib.CHECKPOINT_MANIFEST).read_text())
    assert manifest["step"] == 6
    assert {"optim.pt", "trainer_state.json", "rng-rank0.pt", "model/modules.json"} <= set(manifest["files"])
    before = _weights(full.model_dir)
    data = bytearray((newest / "optim.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (newest / "optim.pt").write_bytes(bytes(data))

    with caplog.at_level("WARNING", logger="xlingual.distillation.run"):
        resumed = distill_lib.distill(_config(tiny_models, corpus, run, resume=True))
    assert f"checkpoint {newest} does not match its manifest ({newest / 'optim.pt'}: sha256" in caplog.text
    assert "expected" in caplog.text and f"resumes from {older.name} instead" in caplog.text
    assert (run / "checkpoints" / f"damaged-{newest.name}").is_dir()
    after = _weights(resumed.model_dir)  # steps 5 and 6 again, from the intact checkpoint
    assert max(float(np.abs(before[k] - after[k]).max()) for k in before) <= 1e-5

    for checkpoint in distill_lib._checkpoints(run):  # a size change in every checkpoint: nothing to resume from
        with open(checkpoint / distill_lib.STATE_FILE, "a") as fh:
            fh.write(" ")
    with pytest.raises(XlingualError, match=r"no checkpoint in .* matches its manifest") as info:
        distill_lib.distill(_config(tiny_models, corpus, run, resume=True))
    assert "bytes, expected" in str(info.value) and "--overwrite" in str(info.value)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is visible")
def test_device_cuda_without_a_gpu_says_use_cpu():
    from xlingual.distillation.run import _resolve_device

    with pytest.raises(ConfigError, match=r"no CUDA device is visible.*--device cpu"):
        _resolve_device("cuda")
    assert _resolve_device("auto") == "cpu"
