"""Distilling from a teacher given as vectors (``--teacher vectors:FILE``), and from a teacher with a prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.distillation.helpers import PAIRS, distill_config, weights
from xlingual.distillation.run import distill
from xlingual.errors import ConfigError, DataError, ModelError
from xlingual.models.specs import encode, load_model
from xlingual.search.compat import ModelInfo, shared_space


def _teacher_vectors(teacher: str, out: Path, texts: list[str], rotate_to: int | None = None) -> Path:
    """The teacher's vectors of ``texts`` as a plain Parquet file (text, embedding), optionally rotated up."""
    emb = encode(load_model(teacher), texts)
    if rotate_to is not None:  # a fixed semi-orthogonal map: every cosine kept, another dimension
        q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(rotate_to, emb.shape[1])))
        emb = emb @ q.T
    pq.write_table(pa.table({"text": texts, "embedding": emb.astype(np.float32).tolist()}), out)
    return out


@pytest.fixture()
def all_vectors(tiny_models, tmp_path):
    return _teacher_vectors(tiny_models["teacher"], tmp_path / "en.parquet", [en for en, _ in PAIRS])


def test_vectors_of_the_teacher_train_like_the_teacher(tiny_models, corpus, tmp_path, all_vectors):
    from_model = distill(distill_config(tiny_models, corpus, tmp_path / "model"))
    from_vectors = distill(distill_config(tiny_models, corpus, tmp_path / "vectors", teacher=f"vectors:{all_vectors}"))
    assert from_vectors.after == pytest.approx(from_model.after, abs=1e-4)
    a, b = weights(from_model.model_dir), weights(from_vectors.model_dir)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-4)
    record = json.loads((tmp_path / "vectors" / "config.json").read_text())
    fingerprint = record["teacher_fingerprint"]
    assert fingerprint.startswith("vectors-") and record["teacher_vectors"]["rows"] == len(PAIRS)
    meta = json.loads((from_vectors.model_dir / "xlingual_distill.json").read_text())
    assert meta["teacher_fingerprint"] == fingerprint
    # the compatibility rule links the student to the file it was distilled from
    reason = shared_space(
        ModelInfo.from_spec(f"vectors:{all_vectors}"), ModelInfo.from_spec(str(from_vectors.model_dir))
    )
    assert reason is not None and "distilled from" in reason


def test_a_teacher_of_another_dimension_gets_a_head_of_that_dimension(tiny_models, corpus, tmp_path):
    wide = _teacher_vectors(tiny_models["teacher"], tmp_path / "wide.parquet", [e for e, _ in PAIRS], rotate_to=48)
    result = distill(distill_config(tiny_models, corpus, tmp_path / "wide", teacher=f"vectors:{wide}"))
    student = load_model(str(result.model_dir))
    assert student.get_embedding_dimension() == 48
    assert 0.0 <= result.after["cross_ja2en_acc"] <= 1.0


def test_missing_vectors_are_refused_before_anything_is_written(tiny_models, corpus, tmp_path):
    some = _teacher_vectors(tiny_models["teacher"], tmp_path / "some.parquet", [en for en, _ in PAIRS[2:]])
    out = tmp_path / "run"
    with pytest.raises(
        DataError,
        match=r"2 of the 8 English sentences of the training pairs have no vector in .*"
        r"\(first: 'The weather is nice today.'.*pass --missing-teacher drop",
    ):
        distill(distill_config(tiny_models, corpus, out, teacher=f"vectors:{some}"))
    assert not out.exists()
    # an existing run is not touched either, even with --overwrite
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(DataError):
        distill(distill_config(tiny_models, corpus, out, teacher=f"vectors:{some}", overwrite=True))
    assert (out / "config.json").read_text() == "{}"


def test_drop_trains_on_the_pairs_that_have_vectors(tiny_models, corpus, tmp_path, caplog):
    some = _teacher_vectors(tiny_models["teacher"], tmp_path / "some.parquet", [en for en, _ in PAIRS[2:]])
    result = distill(
        distill_config(tiny_models, corpus, tmp_path / "run", teacher=f"vectors:{some}", missing_teacher="drop")
    )
    assert "2 of the 8 training pairs have no teacher vector" in caplog.text
    record = json.loads((result.run_dir / "config.json").read_text())
    assert record["train_pairs"] == 6 and record["config"]["missing_teacher"] == "drop"


def test_vectors_that_match_nothing_are_refused(tiny_models, corpus, tmp_path):
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"text": ["Something else."], "embedding": [[0.1] * 16]}), other)
    with pytest.raises(DataError, match=r"none of the 8 English sentences of the training pairs has a vector in"):
        distill(
            distill_config(tiny_models, corpus, tmp_path / "run", teacher=f"vectors:{other}", missing_teacher="drop")
        )


def test_resume_refuses_a_rewritten_vectors_file(tiny_models, corpus, tmp_path, all_vectors):
    out = tmp_path / "run"
    distill(distill_config(tiny_models, corpus, out, teacher=f"vectors:{all_vectors}", max_steps=3))
    _teacher_vectors(tiny_models["student"], all_vectors, [en for en, _ in PAIRS])  # other vectors, same path
    with pytest.raises(ConfigError, match=r"the teacher vectors:.* changed \(fingerprint vectors-"):
        distill(distill_config(tiny_models, corpus, out, teacher=f"vectors:{all_vectors}", max_steps=6, resume=True))


def test_a_vectors_file_is_no_student_and_has_no_prompt(tiny_models, corpus, tmp_path, all_vectors):
    with pytest.raises(ConfigError, match=r"--student vectors:.*: a vectors file cannot be trained"):
        distill_config(tiny_models, corpus, tmp_path / "run", student=f"vectors:{all_vectors}")
    with pytest.raises(ConfigError, match=r"--teacher-prompt passage: a vectors: teacher is fixed"):
        distill_config(
            tiny_models, corpus, tmp_path / "run", teacher=f"vectors:{all_vectors}", teacher_prompt="passage"
        )


def test_teacher_prompt_is_used_and_recorded(tiny_models, tiny_unigram_student, corpus, tmp_path):
    from xlingual.distillation.inputs import embed_with_teacher, load_teacher

    config = distill_config(
        tiny_models, corpus, tmp_path / "run", teacher=tiny_unigram_student, teacher_prompt="passage", max_steps=2
    )
    teacher = load_teacher(config, "cpu")
    texts = [en for en, _ in PAIRS[:4]]
    with_prompt = embed_with_teacher(teacher, texts, quiet=True)
    model = load_model(tiny_unigram_student)
    np.testing.assert_allclose(with_prompt, encode(model, texts, prompt_name="passage"), atol=1e-6)
    assert not np.allclose(with_prompt, encode(model, texts), atol=1e-3)  # the default prompt is "query: "
    result = distill(config)
    assert json.loads((result.run_dir / "config.json").read_text())["teacher_prompt"] == "passage: "
    provenance = json.loads((result.model_dir / "xlingual_distill.json").read_text())
    assert provenance["teacher_prompt_name"] == "passage"
    # a static student built from it trains on the same prompted teacher vectors
    from xlingual.config import StaticConfig
    from xlingual.static import distill_static

    static = distill_static(StaticConfig(source=str(result.model_dir), train=[str(corpus[0])], out=tmp_path / "static",
                                         epochs=1, batch_size=4, negatives=0, quiet=True))  # fmt: skip
    assert json.loads((static.model_dir / "xlingual_distill.json").read_text())["teacher_prompt_name"] == "passage"
    with pytest.raises(ModelError, match=r"prompt name 'heading' is not one of the model's prompts"):
        distill(
            distill_config(
                tiny_models, corpus, tmp_path / "bad", teacher=tiny_unigram_student, teacher_prompt="heading"
            )
        )
    assert not (tmp_path / "bad").exists()
