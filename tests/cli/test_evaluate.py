"""``xlingual evaluate`` and ``xlingual mine`` through the CLI (fake encoders, and a tiny real model)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fakes import EN, JA
from xlingual.cli import cli


@pytest.fixture()
def fake_models(monkeypatch):
    import xlingual.models.specs as models
    from tests.fakes import FakeEncoder

    monkeypatch.setattr(models, "load_model", lambda spec, device=None: FakeEncoder(32 if spec == "small" else 64))


def _pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{e}\t猫{j}\n" for e, j in zip(EN, JA, strict=True)), encoding="utf-8")
    return path


def _json_row(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_evaluate_table_json_and_out(tmp_path, fake_models):
    pairs = _pairs(tmp_path)
    args = ["evaluate", "-m", "a", "-m", "b", "-p", str(pairs), "-t", "a", "-q", "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["metric", "a", "b"]
    assert (tmp_path / "run" / "metrics.json").exists()
    row = _json_row(CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", str(pairs), "--json"]))
    assert {"mean_acc", "en2ja_acc", "ja2en_mrr", "margin_ja2en_acc", "n_pairs", "model", "seconds"} <= set(row)


def test_evaluate_dimension_mismatch_is_a_clean_error(tmp_path, fake_models):
    result = CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", str(_pairs(tmp_path)), "-t", "small"])
    assert result.exit_code == 1
    assert "Error: The teacher embeds in 32 dimensions but the student in 64" in result.output


def test_evaluate_detokenize(tmp_path, fake_models):
    """--detokenize reaches the pair reader: recorded in config.json, and the tokenised pair reads as plain text."""
    pairs = tmp_path / "tokenized.tsv"
    lines = [*(f"{e}\t猫{j}" for e, j in zip(EN, JA, strict=True)), "I do n't know .\t私 は 知ら ない 。"]
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "eval"
    args = ["evaluate", "-m", "a", "-p", str(pairs), "--json", "--detokenize", "-o", str(out)]
    assert _json_row(CliRunner().invoke(cli, args))["n_pairs"] == len(EN) + 1
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["data_config"]["detokenize"] is True
    from xlingual.config import DataConfig
    from xlingual.data.readers import read_corpus

    corpus = read_corpus(str(pairs), DataConfig(detokenize=True))
    assert ("I don't know.", "私は知らない。") in set(zip(corpus.en, corpus.ja, strict=True))


def test_evaluate_en_ja_keys_with_jsonl(tmp_path, fake_models):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"english": e, "japanese": f"猫{j}"} for e, j in zip(EN, JA, strict=True)]
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", str(pairs), "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    args = ["evaluate", "-m", "a", "-p", str(pairs), "--json", "--en-key", "english", "--ja-key", "japanese"]
    assert _json_row(CliRunner().invoke(cli, args))["n_pairs"] == len(EN)


def test_plain_transformers_folder_as_a_model(tiny_models, tmp_path, isolated_home):
    """A Hugging Face transformers folder (no modules.json) is a model: mean pooling over its tokens."""
    folder = Path(tiny_models["teacher"]).parent / "teacher-hf"
    assert not (folder / "modules.json").exists() and (folder / "config.json").is_file()
    args = ["evaluate", "-m", str(folder), "-p", str(_pairs(tmp_path)), "--json", "--device", "cpu", "--no-cache"]
    row = _json_row(CliRunner().invoke(cli, args))
    assert row["n_pairs"] == len(EN) and 0.0 <= row["mean_acc"] <= 1.0


def test_mine_with_gold_and_tuning(tmp_path, fake_models):
    src, tgt, gold = tmp_path / "ja.txt", tmp_path / "en.txt", tmp_path / "gold.tsv"
    src.write_text("apple pie recipe\nblue sky today\ncold water please\nqqq zzz xxx\n", encoding="utf-8")
    tgt.write_text("cold water please!\napple pie recipe!\nblue sky today!\nkkk vvv www\n", encoding="utf-8")
    gold.write_text(
        "apple pie recipe\tapple pie recipe!\nblue sky today\tblue sky today!\ncold water please\tcold water please!\n",
        encoding="utf-8",
    )
    base = ["mine", "-m", "a", "-s", str(src), "-t", str(tgt), "-k", "2"]
    result = CliRunner().invoke(cli, [*base, "--threshold", "1.0"])
    assert result.exit_code == 0, result.output
    assert "mined" in result.stderr and "threshold 1.0000" in result.stderr
    assert all(len(line.split("\t")) == 3 for line in result.stdout.splitlines())
    result = CliRunner().invoke(cli, [*base, "-g", str(gold), "--tune", "-o", str(tmp_path / "m.tsv"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # progress bars go to stderr
    assert summary["f1"] == 1.0 and summary["n_mined"] == 3 and summary["n_src"] == summary["n_tgt"] == 4
    assert len((tmp_path / "m.tsv").read_text(encoding="utf-8").splitlines()) == 3
    result = CliRunner().invoke(cli, [*base, "--tune"])
    assert result.exit_code == 2 and "--tune needs --gold" in result.output
    result = CliRunner().invoke(cli, [*base, "--json"])
    assert result.exit_code == 2 and "pass --output FILE" in result.output


def test_evaluate_with_the_bundled_sts_set_and_a_missing_one(tmp_path, fake_models):
    pairs = str(_pairs(tmp_path))
    row = _json_row(CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", pairs, "--sts", "builtin:sts-ja", "--json"]))
    from tests.fakes import FakeEncoder
    from xlingual.evaluation.sts import read_sts, sts_spearman
    from xlingual.models.specs import encode

    sts = read_sts("builtin:sts-ja")
    first, second = encode(FakeEncoder(64), sts.first), encode(FakeEncoder(64), sts.second)
    expected = sts_spearman(first, second, sts.scores)  # the same trigram encoder, by hand
    assert row["sts_spearman"] == pytest.approx(expected, abs=1e-9)
    missing = CliRunner().invoke(cli, ["evaluate", "-m", "a", "-p", pairs, "--sts", str(tmp_path / "absent.tsv")])
    assert missing.exit_code == 1 and "absent.tsv: no such file; check the path" in missing.output
    assert "Traceback" not in missing.output
