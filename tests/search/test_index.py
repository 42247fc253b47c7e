"""Index: build → save → load → search, add, atomic writes, corrupt or incomplete indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import xlingual
from tests.fakes import FakeEncoder
from tests.search.helpers import DOCS, fake_config, hits_key
from xlingual import _io
from xlingual.config import IndexConfig, SearchConfig
from xlingual.errors import DataError, SearchIndexError
from xlingual.search import index as search_lib
from xlingual.search import passages as passages_lib
from xlingual.search.index import Index

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


# --------------------------------------------------------------------------- build → save → load → search


def test_build_save_load_search_round_trip(built, tmp_path):
    queries = ["金閣寺は京都にあります", "札幌の冬は寒い", "a cup of coffee"]
    before = built.search(queries, k=3)
    loaded = Index.load(tmp_path / "idx", encoder=FakeEncoder(256))
    after = loaded.search(queries, k=3)
    assert [hits_key(h) for h in after] == [hits_key(h) for h in before]
    assert after[0][0].doc_id == "kyoto" and after[1][0].doc_id == "sapporo" and after[2][0].doc_id == "coffee"
    top = after[2][0]
    assert top.rank == 1 and top.metadata == {"lang": "en"} and isinstance(top.score, float)
    # The FAISS index and the passages are bit-identical after the round trip.
    import faiss

    np.testing.assert_array_equal(faiss.serialize_index(built.faiss_index), faiss.serialize_index(loaded.faiss_index))
    assert built.passages.table.equals(loaded.passages.table)


def test_hits_point_back_to_their_documents(built):
    texts = {d["id"]: d["text"] for d in DOCS}
    assert len(built) > len(DOCS)  # max_chars=30 split the longer documents
    for hit in built.search("京都", k=len(built)):
        assert texts[hit.doc_id][hit.start : hit.end] == hit.text
        assert len(hit.text) <= 30
    assert [h.rank for h in built.search("京都", k=4)] == [1, 2, 3, 4]


def test_manifest_records_model_counts_and_checksums(built, tmp_path):
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "xlingual-index" and manifest["xlingual_version"] == xlingual.__version__
    assert manifest["model"]["spec"] == "fake" and manifest["dim"] == 256 and manifest["normalised"] is True
    assert manifest["index"]["type"] == "flat" and manifest["index"]["factory"] == "Flat"
    assert manifest["counts"] == {"documents": 5, "passages": len(built), "skipped_blank": 0}
    assert manifest["splitting"]["unit"] == "characters" and manifest["splitting"]["max_chars"] == 30
    for name, entry in manifest["checksums"].items():
        assert (tmp_path / "idx" / name).stat().st_size == entry["bytes"]
    assert set(manifest["checksums"]) == {"index-000000.faiss", "passages-00000.parquet", "config.json"}
    config = json.loads((tmp_path / "idx" / "config.json").read_text(encoding="utf-8"))
    assert config["config"]["max_chars"] == 30


def test_k_is_capped_and_validated(built):
    assert len(built.search("東京", k=1000)) == len(built)
    assert built.search([], k=3) == []
    with pytest.raises(SearchIndexError, match="k=0 is not positive"):
        built.search("東京", k=0)
    with pytest.raises(SearchIndexError, match="Query 1 is empty"):
        built.search(["東京", "  "], k=1)


@pytest.mark.parametrize("kind", ["hnsw", "ivf-pq"])
def test_approximate_index_round_trip_and_add(kind, tmp_path):
    docs = [f"文書{i}番は{'春夏秋冬'[i % 4]}の話題で、番号{i * 7919 % 1000}を含みます。" for i in range(1100)]
    config = fake_config(index_type=kind)
    built = Index.build(docs, tmp_path / kind, config=config, encoder=FakeEncoder(32))
    assert built.spec.type.value == kind and built.spec.calibrated_recall is not None
    queries = ["文書17番は秋の話題", "番号500を含みます"]
    loaded = Index.load(tmp_path / kind, encoder=FakeEncoder(32))
    assert [hits_key(h) for h in loaded.search(queries, k=5)] == [hits_key(h) for h in built.search(queries, k=5)]
    added = loaded.add(["追加された新しい文書です。"], config=config)
    assert added == 1 and len(loaded) == 1101
    reloaded = Index.load(tmp_path / kind, encoder=FakeEncoder(32))
    assert reloaded.search("追加された新しい文書です。", k=1)[0].doc_id == "1100"
    assert reloaded.manifest["index"]["type"] == kind and reloaded.manifest["generation"] == 1


# --------------------------------------------------------------------------- add


def test_add_appends_and_keeps_ids_unique(built, tmp_path):
    path = tmp_path / "idx"
    before = len(built)
    more = tmp_path / "more.jsonl"
    more.write_text(
        json.dumps({"id": "nagoya", "text": "名古屋は味噌カツが有名です。"}, ensure_ascii=False) + "\n", "utf-8"
    )
    assert built.add(more) == 1
    loaded = Index.load(path, encoder=FakeEncoder(256))
    assert len(loaded) == before + 1 and loaded.manifest["counts"]["documents"] == 6
    assert loaded.search("名古屋は味噌カツが有名", k=1)[0].doc_id == "nagoya"
    assert [s["path"] for s in loaded.manifest["sources"]] == ["<python>", str(more)]
    # The earlier index file is gone; the new one and both passage parts are listed and present.
    names = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    assert names == [
        "config.json",
        "index-000001.faiss",
        "manifest.json",
        "passages-00000.parquet",
        "passages-00001.parquet",
    ]
    with pytest.raises(SearchIndexError, match=r"1 document ids of .*more.jsonl are already in .*'nagoya'"):
        loaded.add(more)
    assert len(Index.load(path, encoder=FakeEncoder(256))) == before + 1


def test_add_refuses_a_stale_copy(built, tmp_path):
    other = Index.load(tmp_path / "idx", encoder=FakeEncoder(256))
    built.add(["一つ目の追加。"])
    with pytest.raises(SearchIndexError, match="changed by another process"):
        other.add(["二つ目の追加。"])


def test_failed_add_leaves_the_index_as_it_was(built, tmp_path, monkeypatch):
    before = built.search("東京", k=3)
    n = len(built)

    def broken(table):
        raise OSError("disk full")

    monkeypatch.setattr(passages_lib.PassageStore, "to_parquet", staticmethod(broken))
    with pytest.raises(OSError, match="disk full"):
        built.add(["失敗する追加。"])
    monkeypatch.undo()
    assert len(built) == n  # the in-memory index went back to what is on disk
    loaded = Index.load(tmp_path / "idx", encoder=FakeEncoder(256))
    assert len(loaded) == n and hits_key(loaded.search("東京", k=3)) == hits_key(before)


# --------------------------------------------------------------------------- atomic writes, corrupt indexes


def test_existing_folder_needs_overwrite(built, tmp_path):
    with pytest.raises(SearchIndexError, match="already exists; pass --overwrite"):
        Index.build(DOCS, tmp_path / "idx", config=fake_config(), encoder=FakeEncoder(256))
    rebuilt = Index.build(DOCS[:2], tmp_path / "idx", config=fake_config(overwrite=True), encoder=FakeEncoder(256))
    assert Index.load(tmp_path / "idx", encoder=FakeEncoder(256)).manifest["counts"]["documents"] == 2
    assert len(rebuilt) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(SearchIndexError, match="exists and is not an xlingual index; choose another --out"):
        Index.build(DOCS, precious, config=fake_config(overwrite=True), encoder=FakeEncoder(256))
    assert (precious / "keep.txt").read_text() == "mine"


def test_missing_corpus_fails_before_the_model_loads(tmp_path, monkeypatch):
    def no_model(spec, device=None):
        raise AssertionError("the model must not be loaded for a missing corpus")

    monkeypatch.setattr(search_lib, "_load_model", no_model)
    with pytest.raises(DataError, match=r"missing.jsonl does not exist"):
        Index.build(tmp_path / "missing.jsonl", tmp_path / "idx", config=fake_config())


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = _io.atomic_write_bytes

    def dies_on_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(_io, "atomic_write_bytes", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        Index.build(DOCS, tmp_path / "idx", config=fake_config(), encoder=FakeEncoder(256))
    assert list(tmp_path.iterdir()) == []


def _corrupt(path: Path, how: str) -> None:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    index_file = path / manifest["files"]["index"]
    part = path / manifest["files"]["passages"][0]
    if how == "flip-byte":
        data = bytearray(index_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_file.write_bytes(bytes(data))
    elif how == "truncate":
        part.write_bytes(part.read_bytes()[:-10])
    elif how == "delete-part":
        part.unlink()
    elif how == "no-manifest":
        (path / "manifest.json").unlink()
    elif how == "garbled-manifest":
        (path / "manifest.json").write_text('{"format": "xlingual-index", ', encoding="utf-8")
    elif how == "bad-index-block":
        manifest["index"]["type"] = "annoy"
        (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("flip-byte", r"index-000000.faiss is corrupt: its sha256 differs"),
        ("truncate", r"passages-00000.parquet has [\d,]+ bytes, the manifest says [\d,]+: the file is truncated"),
        ("delete-part", r"passages-00000.parquet is missing: the index is incomplete"),
        ("no-manifest", r"is not a complete xlingual index: manifest.json is missing"),
        ("garbled-manifest", r"manifest.json is corrupt"),
        ("bad-index-block", r"manifest.json has a bad model or index block \(Unknown index type 'annoy'"),
    ],
)
def test_corrupt_or_incomplete_index_is_detected(built, tmp_path, how, message):
    path = tmp_path / "idx"
    _corrupt(path, how)
    with pytest.raises(SearchIndexError, match=message) as info:
        Index.load(path)
    assert str(path) in str(info.value)
    assert "xlingual index build" in str(info.value) and "--overwrite" in str(info.value)


def test_size_is_checked_even_without_verify(built, tmp_path):
    _corrupt(tmp_path / "idx", "truncate")
    with pytest.raises(SearchIndexError, match="truncated"):
        Index.load(tmp_path / "idx", config=SearchConfig(verify=False))


def test_not_an_index(tmp_path):
    with pytest.raises(SearchIndexError, match="does not exist; build it with"):
        Index.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SearchIndexError, match="is a file"):
        Index.load(tmp_path / "file")


def test_empty_corpus_is_refused(tmp_path):
    with pytest.raises(DataError, match="holds no text"):
        Index.build(["", "  "], tmp_path / "idx", config=fake_config(), encoder=FakeEncoder(8))


def test_python_api_export():
    assert xlingual.Index is Index and "Index" in xlingual.__all__


@pytest.mark.slow
def test_real_english_model_ranks_the_relevant_document_first(tmp_path):
    config = IndexConfig(model="builtin:minilm-en", show_progress=False, device="cpu")
    english = [d for d in DOCS if d["lang"] == "en"] + [
        {"id": "trains", "text": "The express train to Osaka leaves from platform three."},
        {"id": "weather", "text": "Heavy snow is expected in the mountains tonight."},
    ]
    built = Index.build(english, tmp_path / "idx", config=config)
    assert built.manifest["splitting"]["unit"] == "tokens"
    assert built.search("Where can I get a coffee in the morning?", k=1)[0].doc_id == "coffee"
    assert built.search("Will it snow?", k=1)[0].doc_id == "weather"


def test_search_config_overrides_the_calibrated_knobs(tmp_path, monkeypatch):
    docs = [f"文書{i}番は{'春夏秋冬'[i % 4]}の話題です。" for i in range(300)]
    Index.build(docs, tmp_path / "idx", config=fake_config(index_type="hnsw"), encoder=FakeEncoder(32))
    used = []
    real_search = search_lib.faiss_ops.search

    def spy(index, queries, k, **kwargs):
        used.append(kwargs["params"].efSearch)
        return real_search(index, queries, k, **kwargs)

    monkeypatch.setattr(search_lib.faiss_ops, "search", spy)
    calibrated = Index.load(tmp_path / "idx", encoder=FakeEncoder(32))
    overridden = Index.load(tmp_path / "idx", config=SearchConfig(ef_search=300), encoder=FakeEncoder(32))
    exact = [h.doc_id for h in overridden.search("文書7番は冬の話題です。", k=5)]
    calibrated.search("文書7番は冬の話題です。", k=5)
    assert used == [300, calibrated.spec.ef_search] and exact[0] == "7"
