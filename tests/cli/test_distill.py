"""``xlingual distill`` through the CLI on the tiny models: options reach the run, --resume needs only --out."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xlingual.cli import cli


@pytest.mark.parametrize("args", [["distill", "--epochs", "0", "--dev", "none"], ["distill", "--batch-size", "0"]])
def test_bad_distill_options_exit_1(args, tmp_path):
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "must be at least 1" in result.output and "Traceback" not in result.output


def _builtin_pairs(start: int, stop: int) -> list[tuple[str, str]]:
    from xlingual.data.readers import read_corpus

    corpus = read_corpus("builtin:train")
    return list(zip(corpus.en, corpus.ja, strict=True))[start:stop]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """32 training pairs (TSV and JSONL with other keys) and 16 dev pairs, cut from the bundled data."""
    root = tmp_path_factory.mktemp("pairs")
    train, dev = _builtin_pairs(0, 32), _builtin_pairs(100, 116)
    (root / "train.tsv").write_text("".join(f"{e}\t{j}\n" for e, j in train), encoding="utf-8")
    (root / "dev.tsv").write_text("".join(f"{e}\t{j}\n" for e, j in dev), encoding="utf-8")
    for name, rows in (("train", train), ("dev", dev)):
        lines = (json.dumps({"english": e, "japanese": j}, ensure_ascii=False) + "\n" for e, j in rows)
        (root / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
    return root


def _distill(tiny_models, *args):
    base = ["distill", "-t", tiny_models["teacher"], "-s", tiny_models["student"], "--device", "cpu", "-b", "8"]
    return CliRunner().invoke(cli, [*base, *args])


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


def _word_embeddings(folder: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "model.safetensors"))
    return next(value for key, value in weights.items() if key.endswith("word_embeddings.weight"))


def test_lstsq_no_contrastive_frozen_embeddings_detokenize(tiny_models, small_corpus, tmp_path, isolated_home):
    """--init lstsq, --contrastive-weight 0, --freeze-embeddings and --detokenize in one real tiny run."""
    train = tmp_path / "tokenized.tsv"
    tokenized = "I do n't know .\t私 は 知ら ない 。\nI don't know.\t私は知らない。\n"
    train.write_text((small_corpus / "train.tsv").read_text(encoding="utf-8") + tokenized, encoding="utf-8")
    run = tmp_path / "run"
    options = ["--init", "lstsq", "--contrastive-weight", "0", "--freeze-embeddings", "--detokenize"]
    result = _distill(
        tiny_models,
        *options,
        "--train",
        str(train),
        "--dev",
        str(small_corpus / "dev.tsv"),
        "--max-steps",
        "2",
        "-o",
        str(run),
    )
    assert result.exit_code == 0, result.output
    assert "fitting the lstsq head" in result.stderr
    saved = _config(run)
    assert saved["config"]["init"] == "lstsq" and saved["config"]["contrastive_weight"] == 0.0
    assert saved["config"]["freeze_embeddings"] is True and saved["config"]["detokenize"] is True
    assert saved["cleaning"]["duplicates"] == 1  # the tokenised pair equals the plain one once detokenised
    np.testing.assert_array_equal(_word_embeddings(run / "model"), _word_embeddings(Path(tiny_models["student"])))
    losses = [json.loads(line).get("loss") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(loss) for loss in losses if loss is not None) and any(loss is not None for loss in losses)


def test_en_ja_keys_with_jsonl_pairs(tiny_models, small_corpus, tmp_path, isolated_home):
    train, dev = str(small_corpus / "train.jsonl"), str(small_corpus / "dev.jsonl")
    run = tmp_path / "run"
    result = _distill(tiny_models, "--train", train, "--dev", dev, "--max-steps", "1", "--init", "none", "-o", str(run))
    assert result.exit_code == 1 and "Traceback" not in result.output  # the default keys en/ja are not there
    keys = ["--en-key", "english", "--ja-key", "japanese"]
    result = _distill(
        tiny_models, *keys, "--train", train, "--dev", dev, "--max-steps", "1", "--init", "none", "-o", str(run)
    )
    assert result.exit_code == 0, result.output
    assert _config(run)["train_pairs"] == 32


def test_resume_needs_only_out(tiny_models, small_corpus, tmp_path, isolated_home):
    """The README's resume: the settings come from the run's config.json; a changed setting is refused."""
    run = tmp_path / "run"
    first = [
        *("--train", str(small_corpus / "train.tsv"), "--dev", str(small_corpus / "dev.tsv")),
        *("--detokenize", "--epochs", "2", "--max-steps", "2", "--init", "none", "--lr", "0.001", "-o", str(run)),
    ]
    assert _distill(tiny_models, *first).exit_code == 0
    saved = _config(run)["config"]
    result = CliRunner().invoke(cli, ["distill", "--out", str(run), "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 2
    resumed = _config(run)["config"]
    assert {key: resumed[key] for key in ("teacher", "student", "train", "dev", "detokenize", "lr", "batch_size")} == {
        key: saved[key] for key in ("teacher", "student", "train", "dev", "detokenize", "lr", "batch_size")
    }
    result = CliRunner().invoke(cli, ["distill", "--out", str(run), "--resume", "--lr", "0.5"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "lr" in result.output and "0.5" in result.output and "0.001" in result.output


def test_head_options_reach_the_run(tiny_models, small_corpus, tmp_path, isolated_home):
    """``--head-lr`` and ``--init-max-pairs`` are settings of the run: recorded, and compared on resume."""
    run = tmp_path / "run"
    data = ("--train", str(small_corpus / "train.tsv"), "--dev", str(small_corpus / "dev.tsv"), "--detokenize")
    result = _distill(
        tiny_models, *data, "--max-steps", "1", "--head-lr", "0.002", "--init-max-pairs", "5", "-o", str(run)
    )
    assert result.exit_code == 0, result.output
    saved = _config(run)
    assert saved["config"]["head_lr"] == 0.002 and saved["config"]["init_max_pairs"] == 5
    assert saved["head"].endswith("on 5 pairs")
    result = CliRunner().invoke(cli, ["distill", "--out", str(run), "--resume", "--head-lr", "0.1"])
    assert result.exit_code == 1 and "started with --head-lr 0.002, not 0.1" in result.output


def test_several_dev_sets_are_named_in_metrics_and_never_trained_on(tiny_models, small_corpus, tmp_path, isolated_home):
    """``--dev A --dev B``: B's metrics carry its name at every evaluation, and B's sentences leave training."""
    ood = tmp_path / "ood.tsv"
    ood.write_text("".join(f"{e}\t{j}\n" for e, j in _builtin_pairs(0, 4) + _builtin_pairs(200, 212)), "utf-8")
    run = tmp_path / "run"
    dev = str(small_corpus / "dev.tsv")
    args = ["--train", str(small_corpus / "train.tsv"), "--dev", dev, "--dev", str(ood), "--dev", "builtin:long-dev"]
    result = _distill(tiny_models, *args, "--max-steps", "2", "-o", str(run), "-q")
    assert result.exit_code == 0, result.output
    config = _config(run)["config"]
    assert config["dev"] == dev and config["extra_dev"] == [str(ood), "builtin:long-dev"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    final = records[-1]
    assert {"en2ja_acc", "ja2en_acc", "cross_ja2en_acc", "dev_mse"} <= set(final)
    for prefix in ("ood_", "long_dev_"):
        assert {f"{prefix}{key}" for key in ("en2ja_acc", "ja2en_acc", "cross_ja2en_acc", "mse")} <= set(final)
    before = next(r for r in records if r["step"] == 0 and "untouched" not in r)
    assert "long_dev_cross_ja2en_acc" in before and "long_dev_en2ja_acc" in records[0]  # at step 0 too
    assert _config(run)["cleaning"]["leaked"] == 4  # the 4 training pairs that ood.tsv shares
    assert "long_dev_cross_ja2en_acc" in result.output  # the summary lists every set


def test_dev_none_with_more_dev_sets_is_refused(tiny_models, tmp_path):
    result = _distill(tiny_models, "--dev", "none", "--dev", "builtin:long-dev", "-o", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "--dev none cannot come with more --dev sets" in result.output


def test_dev_set_names():
    from xlingual.distillation.dev import dev_set_name

    assert dev_set_name("builtin:long-dev", set()) == "long_dev"
    assert dev_set_name("data/OOD Set.tsv.gz", set()) == "ood_set"
    assert dev_set_name("corpus/test.en,corpus/test.ja", set()) == "test"
    assert dev_set_name("x.jsonl", {"x"}) == "x_2"


def test_negatives_from_the_teacher_cache_in_a_tiny_run(tiny_models, small_corpus, tmp_path, isolated_home):
    run = tmp_path / "run"
    args = ["--train", str(small_corpus / "train.tsv"), "--dev", str(small_corpus / "dev.tsv")]
    result = _distill(
        tiny_models, *args, "--negatives", "12", "--hard-negatives", "2", "--max-steps", "3", "-o", str(run)
    )
    assert result.exit_code == 0, result.output
    config = _config(run)["config"]
    assert config["negatives"] == 12 and config["hard_negatives"] == 2
    losses = [json.loads(line).get("loss") for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(math.isfinite(loss) for loss in losses if loss is not None)


def test_an_extra_dev_set_called_dev_does_not_clash_with_the_first():
    from xlingual.data.clean import CleanStats
    from xlingual.data.readers import ParallelCorpus
    from xlingual.distillation.inputs import TeacherVectors, TrainingData
    from xlingual.distillation.run import _dev_set

    pairs = ParallelCorpus(["a b"], ["あ"], "x.tsv", [1])
    vectors = np.ones((1, 4), dtype=np.float32) / 2
    data = TrainingData(pairs, CleanStats(), pairs, (("other/dev.tsv", pairs), ("more/dev.tsv.gz", pairs)))
    dev = _dev_set(data, TeacherVectors(vectors, vectors, (vectors, vectors)))
    assert [name for name, _ in dev.extra] == ["dev_2", "dev_3"]
