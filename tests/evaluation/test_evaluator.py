"""evaluate() and TranslationEvaluator with fake and tiny models: keys, teacher handling, files, the cache."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.stats

from tests.fakes import EN, JA, FakeEncoder
from xlingual.config import EvalConfig
from xlingual.errors import ConfigError, DataError
from xlingual.evaluation import evaluator as ev
from xlingual.evaluation.metrics import TIE_ATOL, retrieval_metrics

# --------------------------------------------------------------------------- helpers


@dataclass
class Corpus:
    en: list[str]
    ja: list[str]


class OtherTeacher(FakeEncoder):
    """A teacher that is not the student: FakeEncoder's vectors mixed with a shifted copy (close, not equal)."""

    def encode(self, sentences, *args, **kwargs):
        emb = super().encode(sentences, *args, **kwargs)
        mixed = emb + 0.5 * np.roll(emb, 1, axis=1)
        return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


def brute_top1(query_emb: np.ndarray, doc_emb: np.ndarray) -> float:
    """Reference top-1 accuracy from the full score matrix (ties count against the query)."""
    scores = query_emb.astype(np.float64) @ doc_emb.astype(np.float64).T
    partner = np.diag(scores)
    ahead = (scores >= partner[:, None] - TIE_ATOL) & ~np.eye(len(scores), dtype=bool)
    return float(np.mean(~ahead.any(axis=1)))


# --------------------------------------------------------------------------- evaluate()

BASE_KEYS = [
    "model",
    "n_pairs",
    "en2ja_acc",
    "ja2en_acc",
    "mean_acc",
    "en2ja_recall@5",
    "en2ja_recall@10",
    "ja2en_recall@5",
    "ja2en_recall@10",
    "en2ja_mrr",
    "ja2en_mrr",
    "margin_en2ja_acc",
    "margin_ja2en_acc",
]
CROSS_KEYS = ["cross_ja2en_acc", "cross_en2ja_acc", "csls_cross_ja2en_acc", "csls_cross_en2ja_acc", "mse", "mse_en"]


def test_evaluate_end_to_end_json_keys_exact():
    student, teacher = FakeEncoder(), OtherTeacher()
    report = ev.evaluate({"student": student}, Corpus(EN, JA), teacher=teacher)
    (row,) = [json.loads(line) for line in report.to_json_lines().splitlines()]
    assert list(row) == [*BASE_KEYS, *CROSS_KEYS, "seconds"]
    assert row["model"] == "student" and row["n_pairs"] == 8
    assert row["mean_acc"] == 1.0
    # The cross metrics against a teacher that is not the student, from the full score matrices.
    student_en, student_ja, teacher_en = FakeEncoder().encode(EN), FakeEncoder().encode(JA), OtherTeacher().encode(EN)
    assert row["cross_ja2en_acc"] == pytest.approx(brute_top1(student_ja, teacher_en))
    assert row["cross_en2ja_acc"] == pytest.approx(brute_top1(teacher_en, student_ja))
    assert row["mse"] == pytest.approx(float(((student_ja - teacher_en) ** 2).mean() * 100), rel=1e-5)
    assert row["mse_en"] == pytest.approx(float(((student_en - teacher_en) ** 2).mean() * 100), rel=1e-5)
    assert row["mse_en"] > 0.1  # the teacher really differs from the student
    assert report.primary_metric == "mean_acc"
    assert len(teacher.calls) == 1 and teacher.calls[0] == EN  # teacher embeds English once
    assert student.calls == [EN, JA]


def test_evaluate_without_teacher_has_no_cross_keys_and_several_models_side_by_side():
    report = ev.evaluate([FakeEncoder(64), FakeEncoder(32)], Corpus(EN, JA))
    rows = [json.loads(line) for line in report.to_json_lines().splitlines()]
    assert [list(r) for r in rows] == [[*BASE_KEYS, "seconds"]] * 2
    assert [r["model"] for r in rows] == ["FakeEncoder", "FakeEncoder#2"]
    table = report.format_table()
    assert table.splitlines()[0].split() == ["metric", "FakeEncoder", "FakeEncoder#2"]
    assert "mean_acc" in table and "100.00" in table and "in %" in table


def test_teacher_is_embedded_once_for_several_models():
    teacher = FakeEncoder()
    ev.evaluate({"a": FakeEncoder(), "b": FakeEncoder()}, Corpus(EN, JA), teacher=teacher)
    assert len(teacher.calls) == 1


def test_evaluate_refuses_teacher_of_other_dimension():
    with pytest.raises(ConfigError, match="teacher embeds in 32 dimensions but the student in 64"):
        ev.evaluate([FakeEncoder(64)], Corpus(EN, JA), teacher=FakeEncoder(32))


def test_evaluate_refuses_misaligned_and_empty_pairs():
    with pytest.raises(DataError, match="Misaligned pairs: 8 English but 7 Japanese"):
        ev.evaluate([FakeEncoder()], Corpus(EN, JA[:-1]))
    with pytest.raises(DataError, match="empty"):
        ev.evaluate([FakeEncoder()], Corpus([], []))


def test_evaluate_rejects_bad_config():
    with pytest.raises(ConfigError, match=r"EvalConfig\.margin_k=0"):
        ev.evaluate([FakeEncoder()], Corpus(EN, JA), config=EvalConfig(margin_k=0))


def test_evaluate_with_sts_and_out_dir(tmp_path):
    sts = tmp_path / "sts.tsv"
    sts.write_text(
        "The cat sleeps.\tThe cat is sleeping.\t4.5\nThe cat sleeps.\tI like trains.\t0.2\n"
        "It rains.\tIt is raining.\t4.0\nIt rains.\tMy brother works.\t0.5\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    report = ev.evaluate({"fake": FakeEncoder()}, Corpus(EN, JA), teacher=FakeEncoder(), sts=sts, out_dir=out)
    row = report.metrics[0]
    assert list(row)[-2:] == ["sts_spearman", "seconds"]
    first = FakeEncoder().encode(["The cat sleeps.", "The cat sleeps.", "It rains.", "It rains."])
    second = FakeEncoder().encode(["The cat is sleeping.", "I like trains.", "It is raining.", "My brother works."])
    cosines = np.einsum("ij,ij->i", first, second)
    expected = scipy.stats.spearmanr(cosines, [4.5, 0.2, 4.0, 0.5]).statistic
    assert row["sts_spearman"] == pytest.approx(expected, abs=1e-12)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["primary_metric"] == "mean_acc"
    assert metrics["models"][0]["mean_acc"] == row["mean_acc"]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["stage"] == "evaluate" and config["eval_config"]["margin_k"] == 4
    png = (out / "similarity_histograms.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "similarity_histograms.png"]


def test_evaluate_reads_a_pairs_file(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "The cat sleeps.\t猫が寝ている。\nI like trains.\t電車が好きです。\nIt rains.\t雨が降っている。\n",
        encoding="utf-8",
    )
    report = ev.evaluate({"fake": FakeEncoder()}, str(pairs))
    assert report.metrics[0]["n_pairs"] == 3


# --------------------------------------------------------------------------- a real model


@pytest.mark.slow
def test_real_model_against_another_real_teacher_on_fifty_pairs():
    from xlingual.models.specs import encode, load_model

    animals = ["cat", "dog", "horse", "bird", "fish", "rabbit", "mouse", "sheep", "goat", "duck"]
    places = ["garden", "kitchen", "river", "forest", "station"]
    en = [f"The {a} is sleeping in the {p}." for a in animals for p in places]
    other = [f"in the {p}, a {a} sleeps" for a in animals for p in places]  # a paraphrase as the "other side"
    model = load_model("builtin:minilm-en", device="cpu")
    teacher = load_model("builtin:me5-small", device="cpu")  # 384-d too, but another vector space
    report = ev.evaluate({"minilm": model}, Corpus(en, other), teacher=teacher)
    row = report.metrics[0]
    assert row["n_pairs"] == 50
    assert float(row["mean_acc"]) >= 0.9
    model_en, model_other, teacher_en = encode(model, en), encode(model, other), encode(teacher, en)
    assert row["cross_ja2en_acc"] == pytest.approx(brute_top1(model_other, teacher_en))
    assert row["cross_en2ja_acc"] == pytest.approx(brute_top1(teacher_en, model_other))
    assert row["mse_en"] == pytest.approx(float(((model_en - teacher_en) ** 2).mean() * 100), rel=1e-4)
    assert row["mse_en"] > 0.1


def test_cached_embeddings_skip_loading_the_model(tiny_models, isolated_home, monkeypatch):
    import xlingual.models.specs as models
    from xlingual.data.readers import ParallelCorpus

    pairs = ParallelCorpus(en=["one cat", "two dogs", "red sun"], ja=["猫が一匹", "犬が二匹", "赤い太陽"])
    loads = []
    original = models.load_model

    def counting(spec, device=None):
        loads.append(spec)
        return original(spec, device=device)

    monkeypatch.setattr(models, "load_model", counting)
    first = ev.evaluate([tiny_models["student"]], pairs, config=EvalConfig())
    assert loads == [tiny_models["student"]]
    loads.clear()
    second = ev.evaluate([tiny_models["student"]], pairs, config=EvalConfig())
    assert loads == []  # both sides came from the cache: the model was not even loaded
    assert first.metrics[0]["mean_acc"] == second.metrics[0]["mean_acc"]
    ev.evaluate([tiny_models["student"]], pairs, config=EvalConfig(cache=False))
    assert loads == [tiny_models["student"]]


# --------------------------------------------------------------------------- TranslationEvaluator


def _row_metrics(row):
    return {k: v for k, v in row.items() if k not in ("model", "n_pairs", "seconds")}


def test_translation_evaluator_returns_exactly_what_evaluate_reports():
    # Precomputed teacher vectors (embedded as distillation embeds them) and a model in memory.
    teacher_en = ev.embed(OtherTeacher(), EN, batch_size=64, show_progress=False)
    evaluator = ev.TranslationEvaluator(EN, JA, teacher_en_emb=teacher_en)
    metrics = evaluator(FakeEncoder())
    (row,) = ev.evaluate({"student": FakeEncoder()}, Corpus(EN, JA), teacher=OtherTeacher()).metrics
    assert list(metrics) == [*BASE_KEYS[2:], *CROSS_KEYS]
    assert metrics == _row_metrics(row)  # to the last digit
    assert evaluator.primary_metric == "cross_ja2en_acc"


def test_translation_evaluator_without_teacher_and_with_a_name():
    evaluator = ev.TranslationEvaluator(EN, JA, name="dev", batch_size=3, config=EvalConfig(margin_k=2))
    metrics = evaluator(FakeEncoder())
    (row,) = ev.evaluate([FakeEncoder()], Corpus(EN, JA), config=EvalConfig(margin_k=2)).metrics
    assert metrics == {f"dev_{k}": v for k, v in _row_metrics(row).items()}
    assert evaluator.primary_metric == "dev_mean_acc"
    assert evaluator.config.batch_size == 3 and evaluator.config.margin_k == 2


def test_translation_evaluator_applies_the_duplicate_text_policy():
    # ja[0] and ja[1] are one sentence (equal vectors): by index, the partners of en[0] and en[1] tie with
    # their twin and lose (rank 2); by text the twin is as correct as the partner, so every English query hits.
    en = ["cat sleeps", "the cat sleeps", "dog runs"]
    ja = ["「cat sleeps」", "「cat sleeps」", "「dog runs」"]
    metrics = ev.TranslationEvaluator(en, ja)(FakeEncoder())
    (row,) = ev.evaluate([FakeEncoder()], Corpus(en, ja)).metrics
    assert metrics == _row_metrics(row)
    assert metrics["en2ja_acc"] == 1.0
    by_index = retrieval_metrics(FakeEncoder().encode(en), FakeEncoder().encode(ja))
    assert by_index["en2ja_acc"] == pytest.approx(1 / 3)


def test_translation_evaluator_refuses_bad_inputs():
    with pytest.raises(DataError, match="Misaligned pairs: 8 English but 7 Japanese"):
        ev.TranslationEvaluator(EN, JA[:-1])
    with pytest.raises(DataError, match="teacher_en_emb has 7 rows for 8 pairs"):
        ev.TranslationEvaluator(EN, JA, teacher_en_emb=FakeEncoder().encode(EN[:-1]))
    with pytest.raises(ConfigError, match="teacher embeds in 32 dimensions but the student in 64"):
        ev.TranslationEvaluator(EN, JA, teacher_en_emb=FakeEncoder(32).encode(EN))(FakeEncoder(64))
    with pytest.raises(ConfigError, match="has no encode"):
        ev.TranslationEvaluator(EN, JA)(object())


def test_translation_evaluator_on_a_real_model_in_memory(tiny_models):
    from xlingual.data.readers import ParallelCorpus
    from xlingual.models.specs import load_model

    pairs = ParallelCorpus(
        en=["one cat", "two dogs", "red sun", "blue sky"], ja=["猫が一匹", "犬が二匹", "赤い太陽", "青い空"]
    )
    student = load_model(tiny_models["student"], device="cpu")
    metrics = ev.TranslationEvaluator(pairs.en, pairs.ja)(student)
    (row,) = ev.evaluate([tiny_models["student"]], pairs, config=EvalConfig(cache=False, device="cpu")).metrics
    assert metrics == _row_metrics(row)
