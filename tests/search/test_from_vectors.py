"""The worked example of the README at toy scale: vectors made "elsewhere" → a student → an index → Japanese queries."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.distillation.helpers import PAIRS, write_corpus
from xlingual.cli import cli

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_vectors_to_student_to_index_to_japanese_queries(tiny_models, tmp_path):
    runner = CliRunner()
    train, dev = write_corpus(tmp_path)
    english = tmp_path / "en.txt"
    english.write_text("".join(f"{en}\n" for en, _ in PAIRS), encoding="utf-8")
    vectors = tmp_path / "en.parquet"
    # the teacher's vectors, exported once: from here on the run never sees the teacher model
    _ok(runner.invoke(cli, ["embed", str(english), "-m", tiny_models["teacher"], "-o", str(vectors), "-q"]))
    run = tmp_path / "run"
    distill = [
        *("distill", "--teacher", f"vectors:{vectors}", "-s", tiny_models["student"], "--train", str(train)),
        *("--dev", str(dev), "--max-steps", "4", "-b", "4", "--device", "cpu", "-o", str(run), "-q"),
    ]
    _ok(runner.invoke(cli, distill))
    student = str(run / "model")
    idx = tmp_path / "idx"
    _ok(runner.invoke(cli, ["index", "build", "--vectors", str(vectors), "-Q", student, "-o", str(idx), "-q"]))
    manifest = json.loads(_ok(runner.invoke(cli, ["index", "info", str(idx), "--json"])).output)
    assert manifest["model"]["spec"] == f"vectors:{vectors}" and manifest["counts"]["passages"] == len(PAIRS)
    assert manifest["model"]["fingerprint"].startswith("vectors-") and "hubness" in manifest

    found = _ok(runner.invoke(cli, ["search", str(idx), "駅はどこですか。", "-Q", student, "--json", "-k", "3"]))
    hits = json.loads(found.output)["results"]
    assert len(hits) == 3 and {h["doc_id"] for h in hits} <= {f"en.txt:{i}" for i in range(1, len(PAIRS) + 1)}
    assert all(h["text"] in {en for en, _ in PAIRS} for h in hits)

    no_model = runner.invoke(cli, ["search", str(idx), "駅はどこですか。"])
    assert no_model.exit_code == 1 and "is a vectors file, not a model: it cannot embed a query" in no_model.output
    more = tmp_path / "more.txt"
    more.write_text("A new document.\n", encoding="utf-8")
    added = runner.invoke(cli, ["index", "add", str(idx), str(more)])
    assert added.exit_code == 1 and "rebuild the index with index build --vectors" in added.output

    from fastapi.testclient import TestClient

    from xlingual.config import ServeConfig
    from xlingual.search.index import Index
    from xlingual.search.serve import create_app

    with TestClient(create_app(Index.load(idx), ServeConfig(), query_model=student)) as client:
        answer = client.post("/search", json={"query": "駅はどこですか。", "k": 2})
        assert answer.status_code == 200 and len(answer.json()["results"][0]["hits"]) == 2
    with pytest.raises(Exception, match="is a vectors file, not a model"):
        create_app(Index.load(idx), ServeConfig())

    scored = _ok(
        runner.invoke(cli, ["evaluate", "-m", student, "-p", str(dev), "-t", f"vectors:{vectors}", "--json", "-q"])
    )
    assert 0.0 <= json.loads(scored.output)["cross_ja2en_acc"] <= 1.0


def test_an_index_from_a_plain_parquet_with_named_columns(tmp_path):
    runner = CliRunner()
    file = tmp_path / "mine.parquet"
    emb = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    pq.write_table(pa.table({"key": ["a", "b", "c"], "title": ["x", "y", "z"], "emb": emb.tolist()}), file)
    idx = tmp_path / "idx"
    build = ["index", "build", "--vectors", str(file), "--text-key", "title", "--id-key", "key", "--vector-key", "emb"]
    _ok(runner.invoke(cli, [*build, "-o", str(idx), "-q"]))
    manifest = json.loads(_ok(runner.invoke(cli, ["index", "info", str(idx), "--json"])).output)
    assert manifest["model"]["spec"] == f"vectors:{file}?text=title&id=key&vector=emb" and manifest["dim"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vectors", "{dup}"], "rows 1 and 2 have the same id 'a'; ids must be unique"),
        ([], "give a CORPUS to embed, or --vectors FILE to index existing vectors"),
        (["{corpus}", "--vectors", "{dup}"], "give a CORPUS to embed, or --vectors FILE"),
    ],
)
def test_bad_vector_builds_are_refused(tmp_path, args, message):
    dup = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": ["a", "a"], "text": ["x", "y"], "embedding": [[1.0, 0.0], [0.0, 1.0]]}), dup)
    corpus = tmp_path / "docs.txt"
    corpus.write_text("hello\n", encoding="utf-8")
    filled = [a.format(dup=dup, corpus=corpus) for a in args]
    result = CliRunner().invoke(cli, ["index", "build", *filled, "-o", str(tmp_path / "idx")])
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "idx").exists()
