"""Query models: which models may embed queries for an index (the compatibility rule), end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.search.helpers import DOCS, hits_key
from xlingual.cli import cli
from xlingual.config import IndexConfig, SearchConfig
from xlingual.errors import SearchIndexError
from xlingual.search.compat import ModelInfo, check_compatible
from xlingual.search.index import Index

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


# --------------------------------------------------------------------------- query models: the compatibility rule


def _info(spec, fp=None, teacher_fp=None):
    return ModelInfo(spec, fp, "teacher" if teacher_fp else None, teacher_fp)


def test_compatibility_rule():
    teacher = _info("teacher", "T")
    assert check_compatible(teacher, _info("teacher-copy", "T")) == "same model"
    assert check_compatible(teacher, _info("student", "S", "T")) == "student was distilled from teacher"
    assert check_compatible(_info("student", "S", "T"), teacher) == "student was distilled from teacher"
    assert "same teacher" in check_compatible(_info("a", "A", "T"), _info("b", "B", "T"))
    assert check_compatible(_info("org/name"), _info("org/name")) == "same model id"
    exported = ModelInfo("onnx:exported/onnx", "X", source_fingerprint="T")  # an ONNX export of the teacher
    assert check_compatible(teacher, exported) == "same model"
    assert check_compatible(exported, _info("student", "S", "T")) == "student was distilled from onnx:exported/onnx"
    with pytest.raises(
        SearchIndexError, match=r"other \(fingerprint O\) is a different model .* no xlingual_distill.json naming it"
    ):
        check_compatible(teacher, _info("other", "O"))
    with pytest.raises(SearchIndexError, match=r"student was distilled from teacher \(fingerprint U\), not from"):
        check_compatible(teacher, _info("student", "S", "U"))
    with pytest.raises(SearchIndexError, match="no fingerprints link them"):
        check_compatible(_info("org/a"), _info("org/b"))


def _student_of(teacher_dir: str, out: Path, teacher_fp: str) -> str:
    """A model folder that claims (xlingual_distill.json) to be distilled from the model with ``teacher_fp``."""
    shutil.copytree(teacher_dir, out)
    meta = {"teacher": teacher_dir, "teacher_fingerprint": teacher_fp, "student": "tiny"}
    (out / "xlingual_distill.json").write_text(json.dumps(meta), encoding="utf-8")
    return str(out)


@pytest.fixture()
def teacher_index(tiny_models, tmp_path):
    config = IndexConfig(model=tiny_models["teacher"], show_progress=False, device="cpu")
    return Index.build(DOCS, tmp_path / "idx", config=config)


def test_tiny_model_index_splits_by_tokens(teacher_index):
    split = teacher_index.manifest["splitting"]
    assert split["unit"] == "tokens" and split["max_tokens"] == 64 - 2  # the tiny model's limit, less specials
    assert teacher_index.manifest["model"]["fingerprint"]


def test_query_model_sharing_the_space_is_accepted(teacher_index, tiny_models, tmp_path):
    from xlingual.models.specs import fingerprint

    student = _student_of(tiny_models["teacher"], tmp_path / "student", fingerprint(Path(tiny_models["teacher"])))
    loaded = Index.load(tmp_path / "idx", config=SearchConfig(device="cpu"))
    own = loaded.search("金閣寺は京都にあります。", k=2)
    via_student = loaded.search("金閣寺は京都にあります。", k=2, query_model=student)
    assert hits_key(via_student) == hits_key(own)  # the "student" here has the teacher's weights


def test_incompatible_query_models_are_refused(teacher_index, tiny_models, tmp_path):
    loaded = Index.load(tmp_path / "idx", config=SearchConfig(device="cpu"))
    with pytest.raises(SearchIndexError, match=r"does not share the index's vector space: .* different model"):
        loaded.search("東京", query_model=tiny_models["student"])
    foreign = _student_of(tiny_models["teacher"], tmp_path / "foreign", "f" * 64)
    with pytest.raises(SearchIndexError, match=r"was distilled from .* \(fingerprint ffffffffffff\), not from"):
        loaded.search("東京", query_model=foreign)


def test_changed_index_model_is_refused(tiny_models, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_models["teacher"], model_dir)
    config = IndexConfig(model=str(model_dir), show_progress=False, device="cpu")
    Index.build(DOCS[:2], tmp_path / "idx", config=config)
    (model_dir / "config_sentence_transformers.json").write_text("{}", encoding="utf-8")
    with pytest.raises(SearchIndexError, match=r"has changed since .* was built"):
        Index.load(tmp_path / "idx").search("東京")


def test_distilled_student_queries_the_teachers_index(tiny_models, tmp_path, isolated_home):
    """The headline use, end to end on tiny models: distil, index English with the teacher, query in Japanese."""
    from xlingual.config import DistillConfig
    from xlingual.distillation import run as distill_lib

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("The cafe opens at eight.\tカフェは八時に開きます。\nIt is cold.\t寒いです。\n", encoding="utf-8")
    config = DistillConfig(
        teacher=tiny_models["teacher"],
        student=tiny_models["student"],
        train=[str(pairs)],
        dev=None,
        out=tmp_path / "run",
        max_steps=1,
        batch_size=2,
        device="cpu",
        quiet=True,
    )
    result = distill_lib.distill(config)
    english = [{"id": d["id"], "text": d["text"]} for d in DOCS if d["lang"] == "en"] + [
        {"id": "cold", "text": "It is very cold in winter."}
    ]
    runner = CliRunner()
    corpus = tmp_path / "en.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in english) + "\n", encoding="utf-8")
    build = runner.invoke(
        cli, ["index", "build", str(corpus), "-m", tiny_models["teacher"], "-o", str(tmp_path / "en-idx"), "-q"]
    )
    assert build.exit_code == 0, build.output
    found = runner.invoke(
        cli, ["search", str(tmp_path / "en-idx"), "寒いです", "-Q", str(result.model_dir), "--json", "-k", "2"]
    )
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.output)["results"]) == 2
    refused = runner.invoke(cli, ["search", str(tmp_path / "en-idx"), "寒いです", "-Q", tiny_models["student"]])
    assert refused.exit_code == 1 and "does not share the index's vector space" in refused.output
    assert "Traceback" not in refused.output
