"""``xlingual search --ef-search/--nprobe`` reach FAISS's per-call search parameters."""

import json

import pytest
from click.testing import CliRunner

from xlingual.cli import cli


@pytest.fixture(scope="module")
def hnsw_index(tiny_models, tmp_path_factory):
    from xlingual.data.readers import read_corpus

    root = tmp_path_factory.mktemp("hnsw")
    corpus = root / "docs.txt"
    corpus.write_text("\n".join(read_corpus("builtin:dev").en[:120]) + "\n", encoding="utf-8")
    args = ["index", "build", str(corpus), "-m", tiny_models["teacher"], "-o", str(root / "idx"), "-t", "hnsw"]
    result = CliRunner().invoke(cli, [*args, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    return root / "idx"


def test_ef_search_and_nprobe_reach_faiss(hnsw_index, monkeypatch):
    from xlingual.search import ann

    seen = []
    original = ann.search_params

    def spy(spec, **overrides):
        seen.append(overrides)
        return original(spec, **overrides)

    monkeypatch.setattr(ann, "search_params", spy)
    exact = CliRunner().invoke(cli, ["search", str(hnsw_index), "a cat", "-k", "5", "--json", "--ef-search", "1024"])
    assert exact.exit_code == 0, exact.output
    assert seen[-1] == {"ef_search": 1024, "nprobe": None}
    result = CliRunner().invoke(cli, ["search", str(hnsw_index), "a cat", "-k", "5", "--json", "--nprobe", "3"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == {"ef_search": None, "nprobe": 3}
    assert len(json.loads(exact.stdout)["results"]) == 5


def test_ef_search_is_validated(hnsw_index):
    result = CliRunner().invoke(cli, ["search", str(hnsw_index), "a cat", "--ef-search", "0"])
    assert result.exit_code == 2 and "--ef-search" in result.output


def _student_of(teacher_dir, out, teacher_fp):
    """A model folder that claims (xlingual_distill.json) to be distilled from the model with ``teacher_fp``."""
    import shutil

    shutil.copytree(teacher_dir, out)
    meta = {"teacher": teacher_dir, "teacher_fingerprint": teacher_fp, "student": "tiny"}
    (out / "xlingual_distill.json").write_text(json.dumps(meta), encoding="utf-8")
    return str(out)


def test_query_model_at_build_and_csls_at_search(tiny_models, tmp_path):
    from pathlib import Path

    from xlingual.data.readers import read_corpus
    from xlingual.models.specs import fingerprint

    runner = CliRunner()
    teacher = tiny_models["teacher"]
    student = _student_of(teacher, tmp_path / "student", fingerprint(Path(teacher)))
    corpus, queries, out = tmp_path / "docs.txt", tmp_path / "queries.txt", tmp_path / "idx"
    corpus.write_text("\n".join(read_corpus("builtin:dev").en[:40]) + "\n", encoding="utf-8")
    queries.write_text("a cat\nthe train station\nit is cold today\n", encoding="utf-8")
    args = ["index", "build", str(corpus), "-m", teacher, "-o", str(out), "--device", "cpu", "-q"]
    refused = runner.invoke(cli, [*args, "-Q", tiny_models["student"]])
    assert refused.exit_code == 1 and "does not share the index's vector space" in refused.output
    built = runner.invoke(cli, [*args, "-Q", student, "--hubness-queries", str(queries), "--hubness-k", "2"])
    assert built.exit_code == 0, built.output

    info = runner.invoke(cli, ["index", "info", str(out)])
    assert info.exit_code == 0, info.output
    assert f"CSLS, k=2, 3 reference queries from {queries}" in info.output and student in info.output
    manifest = json.loads(runner.invoke(cli, ["index", "info", str(out), "--json"]).output)
    assert manifest["hubness"]["query_model"]["spec"] == student and manifest["hubness"]["source_sha256"]

    def search(*extra):
        result = runner.invoke(cli, ["search", str(out), "a cat", "-k", "5", "--json", "--device", "cpu", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["results"]

    ranked = search("-Q", student)
    assert all(hit["csls"] is not None for hit in ranked)
    assert [hit["csls"] for hit in ranked] == sorted((hit["csls"] for hit in ranked), reverse=True)
    for plain in (search("-Q", student, "--no-csls"), search()):  # turned off, or the index's own model
        assert all(hit["csls"] is None for hit in plain)
        assert [hit["score"] for hit in plain] == sorted((hit["score"] for hit in plain), reverse=True)
    shown = runner.invoke(cli, ["search", str(out), "a cat", "-k", "2", "-Q", student, "--device", "cpu"])
    assert shown.exit_code == 0 and "csls" in shown.output


def test_csls_options_are_documented_and_reach_the_configs(monkeypatch, tmp_path):
    from xlingual.search import serve as serve_lib

    runner = CliRunner()
    build_help = runner.invoke(cli, ["index", "build", "-h"]).output
    for option in ("--query-model", "--hubness-k", "--hubness-queries"):
        assert option in build_help
    for command in ("search", "serve"):
        assert "--csls / --no-csls" in runner.invoke(cli, [command, "-h"]).output
    seen = []
    monkeypatch.setattr(serve_lib, "serve", lambda path, config, search_config: seen.append(search_config))
    assert runner.invoke(cli, ["serve", str(tmp_path), "--no-csls"]).exit_code == 0
    assert runner.invoke(cli, ["serve", str(tmp_path)]).exit_code == 0
    assert [config.csls for config in seen] == [False, True]
