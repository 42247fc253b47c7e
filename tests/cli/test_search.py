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
