"""Search indexes: index choice, approximate vs exact search, save/load, add, corruption, query models, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xlingual
from tests.fakes import FakeEncoder
from xlingual.cli import cli
from xlingual.config import IndexConfig, SearchConfig
from xlingual.errors import DataError, SearchIndexError
from xlingual.search import faiss_ops
from xlingual.search import index as search_lib
from xlingual.search.faiss_ops import IndexType
from xlingual.search.index import Index, ModelInfo, check_compatible

DOCS = [
    {"id": "tokyo", "text": "東京は日本の首都です。人口がとても多い都市です。", "lang": "ja"},
    {"id": "osaka", "text": "大阪はたこ焼きとお好み焼きで有名です。", "lang": "ja"},
    {"id": "kyoto", "text": "京都には古いお寺がたくさんあります。金閣寺は京都にあります。", "lang": "ja"},
    {"id": "sapporo", "text": "札幌の冬はとても寒く、雪がたくさん降ります。", "lang": "ja"},
    {"id": "coffee", "text": "I would like a cup of coffee. The cafe opens at eight.", "lang": "en"},
]


@pytest.fixture(autouse=True)
def one_faiss_thread():
    # Two cores shared with other work: OpenMP spin-waiting makes FAISS training crawl when oversubscribed.
    faiss_ops.set_num_threads(1)
    yield
    faiss_ops.set_num_threads(None)


def unit_rows(rng, n, dim):
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fake_config(**kw):
    return IndexConfig(model="fake", show_progress=False, **kw)


@pytest.fixture()
def built(tmp_path):
    return Index.build(DOCS, tmp_path / "idx", config=fake_config(max_chars=30), encoder=FakeEncoder(256))


def hits_key(hits):
    return [(h.doc_id, h.passage, round(h.score, 5)) for h in hits]


# --------------------------------------------------------------------------- index choice (FAISS guidance)


def test_auto_choice_by_size():
    config = IndexConfig()
    assert faiss_ops.choose_index(50_000, 384, config).type is IndexType.FLAT
    assert faiss_ops.choose_index(config.flat_max, 384, config).type is IndexType.FLAT
    above = faiss_ops.choose_index(config.flat_max + 1, 384, config)
    assert above.type is IndexType.IVF_PQ and "auto" in above.reason
    hnsw = faiss_ops.choose_index(config.flat_max + 1, 384, IndexConfig(auto_approximate="hnsw"))
    assert hnsw.type is IndexType.HNSW and hnsw.hnsw_m == 32
    ivf = faiss_ops.choose_index(4_000_000, 384, config)
    assert ivf.type is IndexType.IVF_PQ
    assert ivf.nlist == 8000  # 4·sqrt(N)
    assert ivf.pq_m == 192 and ivf.factory_string() == "IVF8000,PQ192x4fs,RFlat"
    assert 30 * ivf.nlist <= ivf.train_size <= 256 * ivf.nlist  # FAISS: 30·K to 256·K training vectors


def test_nlist_follows_faiss_guidance():
    assert faiss_ops.ivf_nlist(1_000_000) == 4000
    assert faiss_ops.ivf_nlist(10**9) == 65_536
    assert faiss_ops.ivf_nlist(3000) == 3000 // 39  # ≥ 39 training points per list
    assert faiss_ops.ivf_nlist(10) == 1


def test_bad_index_choices():
    with pytest.raises(SearchIndexError, match="Unknown index type 'annoy'; choose auto, flat, hnsw, ivf-pq"):
        faiss_ops.choose_index(10, 8, IndexConfig(index_type="annoy"))
    with pytest.raises(SearchIndexError, match="ivf-pq needs at least 1,024 vectors"):
        faiss_ops.choose_index(500, 8, IndexConfig(index_type="ivf-pq"))
    with pytest.raises(SearchIndexError, match="hnsw_m=1"):
        faiss_ops.choose_index(500, 8, IndexConfig(index_type="hnsw", hnsw_m=1))


def test_spec_round_trips_through_json():
    spec = faiss_ops.choose_index(200_000, 16, IndexConfig())
    again = faiss_ops.IndexSpec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again == spec


# --------------------------------------------------------------------------- each index type against exact search


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf-pq"])
def test_index_types_against_exact_search(kind):
    rng = np.random.default_rng(7)
    database = unit_rows(rng, 3000, 32)
    queries = unit_rows(rng, 200, 32)  # fresh random queries, not in the index
    exact_scores, exact_ids = faiss_ops.knn(queries, database, 10)
    spec = faiss_ops.choose_index(len(database), 32, IndexConfig(index_type=kind))
    built, spec = faiss_ops.build_calibrated(database, spec, target_recall=0.95)  # as Index.build does
    assert built.ntotal == len(database)
    np.testing.assert_array_equal(faiss_ops.exact_view(built, spec).reconstruct_n(0, 3000), database)  # ids = rows
    scores, ids = faiss_ops.search(built, queries, 10, params=faiss_ops.search_params(spec))
    recall = faiss_ops.recall_at_k(exact_scores, scores, ids)
    if kind == "flat":
        np.testing.assert_array_equal(ids, exact_ids)
        assert recall == 1.0
    else:
        assert recall >= 0.9, (kind, recall, spec)
        assert spec.calibrated_recall is not None and spec.calibrated_recall >= 0.9
    # Scores are exact inner products of the returned ids, best first.
    valid = ids >= 0
    np.testing.assert_allclose(
        scores[valid], np.einsum("qd,qkd->qk", queries, database[np.where(valid, ids, 0)])[valid], atol=1e-5
    )
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_probe_queries_calibrate_without_held_out_vectors():
    rng = np.random.default_rng(5)
    database = unit_rows(rng, 3000, 32)
    queries = unit_rows(rng, 200, 32)
    spec = faiss_ops.choose_index(3000, 32, IndexConfig(index_type="hnsw"))
    built = faiss_ops.build_index(database, spec)
    spec = faiss_ops.calibrate(built, spec)  # no held-out queries: synthetic probes near the corpus
    exact_scores, _ = faiss_ops.knn(queries, database, 10)
    scores, ids = faiss_ops.search(built, queries, 10, params=faiss_ops.search_params(spec))
    assert faiss_ops.recall_at_k(exact_scores, scores, ids) >= 0.9
    probes = faiss_ops.probe_queries(faiss_ops.exact_view(built, spec), 50)
    assert probes.shape == (50, 32) and np.allclose(np.linalg.norm(probes, axis=1), 1, atol=1e-5)
    assert faiss_ops.holdout_size(3000, spec) == 256 and faiss_ops.holdout_size(200, spec) == 0


def test_calibration_picks_the_cheapest_setting_reaching_the_target():
    rng = np.random.default_rng(3)
    database = unit_rows(rng, 2000, 16)
    spec = faiss_ops.choose_index(2000, 16, IndexConfig(index_type="hnsw"))
    built = faiss_ops.build_index(database, spec)
    low = faiss_ops.calibrate(built, spec, target_recall=0.5)
    high = faiss_ops.calibrate(built, spec, target_recall=0.99)
    assert low.ef_search is not None and high.ef_search is not None
    assert low.ef_search <= high.ef_search
    assert high.calibrated_recall >= 0.99 or high.ef_search == faiss_ops.EF_SEARCH_GRID[-1]
    with pytest.raises(SearchIndexError, match=r"target_recall=1\.5"):
        faiss_ops.calibrate(built, spec, target_recall=1.5)


def test_recall_tolerates_ties():
    exact = np.array([[0.9, 0.5, 0.5]], np.float32)
    # id 8 ties with the exact 3rd neighbour: it counts; an id of -1 (not found) does not.
    assert faiss_ops.recall_at_k(exact, np.array([[0.9, 0.5, 0.5]], np.float32), np.array([[1, 2, 8]])) == 1.0
    assert faiss_ops.recall_at_k(exact, np.array([[0.9, 0.5, -np.inf]], np.float32), np.array([[1, 2, -1]])) == 2 / 3


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

    monkeypatch.setattr(search_lib.PassageStore, "to_parquet", staticmethod(broken))
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
    real = search_lib._write_atomic

    def dies_on_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(search_lib, "_write_atomic", dies_on_second)
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


# --------------------------------------------------------------------------- query models: the compatibility rule


def _info(spec, fp=None, teacher_fp=None):
    return ModelInfo(spec, fp, "teacher" if teacher_fp else None, teacher_fp)


def test_compatibility_rule():
    teacher = _info("teacher", "T")
    assert check_compatible(teacher, _info("teacher-copy", "T")) == "same model"
    assert "distilled from the index's model" in check_compatible(teacher, _info("student", "S", "T"))
    assert "the index's model was distilled from teacher" in check_compatible(_info("student", "S", "T"), teacher)
    assert "same teacher" in check_compatible(_info("a", "A", "T"), _info("b", "B", "T"))
    assert check_compatible(_info("org/name"), _info("org/name")) == "same model id"
    exported = ModelInfo("onnx:exported/onnx", "X", source_fingerprint="T")  # an ONNX export of the teacher
    assert check_compatible(teacher, exported) == "same model"
    assert "distilled from the index's model" in check_compatible(exported, _info("student", "S", "T"))
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


# --------------------------------------------------------------------------- CLI and Python API


def test_python_api_export():
    assert xlingual.Index is Index and "Index" in xlingual.__all__


def test_cli_build_info_add_search(tiny_models, tmp_path):
    runner = CliRunner()
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in DOCS) + "\n", encoding="utf-8")
    out = tmp_path / "idx"
    build = runner.invoke(
        cli, ["index", "build", str(corpus), "--model", tiny_models["teacher"], "--out", str(out), "-q"]
    )
    assert build.exit_code == 0, build.output
    again = runner.invoke(cli, ["index", "build", str(corpus), "--model", tiny_models["teacher"], "--out", str(out)])
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.output

    info = runner.invoke(cli, ["index", "info", str(out)])
    assert info.exit_code == 0, info.output
    for text in ("model", tiny_models["teacher"], "flat: Flat, exact", "documents  5", "size"):
        assert text in info.output
    manifest = json.loads(runner.invoke(cli, ["index", "info", str(out), "--json"]).output)
    assert manifest["counts"]["documents"] == 5 and manifest["size_bytes"] > 0

    more = tmp_path / "more.txt"
    more.write_text("名古屋は味噌カツが有名です。\n", encoding="utf-8")
    add = runner.invoke(cli, ["index", "add", str(out), str(more)])
    assert add.exit_code == 0, add.output and "added 1 passages" in add.output

    plain = runner.invoke(cli, ["search", str(out), "名古屋は味噌カツが有名です。", "-k", "2"])
    assert plain.exit_code == 0, plain.output
    first = plain.output.splitlines()[0]
    assert first.split()[0] == "1" and "more.txt:1" in first and "名古屋は味噌カツ" in first

    queries = tmp_path / "queries.txt"
    queries.write_text("東京は日本の首都です。\n\n大阪はたこ焼きとお好み焼きで有名です。\n", encoding="utf-8")
    batch = runner.invoke(cli, ["search", str(out), "--queries", str(queries), "--json", "-k", "1"])
    assert batch.exit_code == 0, batch.output
    rows = [json.loads(line) for line in batch.output.splitlines()]
    assert [r["query"] for r in rows] == ["東京は日本の首都です。", "大阪はたこ焼きとお好み焼きで有名です。"]
    assert [r["results"][0]["doc_id"] for r in rows] == ["tokyo", "osaka"]
    assert rows[1]["results"][0]["metadata"] == {"lang": "ja"} and rows[1]["results"][0]["rank"] == 1
    piped = runner.invoke(
        cli,
        ["search", str(out), "-f", "-", "--json", "-k", "1"],
        input="札幌の冬はとても寒く、雪がたくさん降ります。\n",
    )
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.output)["results"][0]["doc_id"] == "sapporo"


def test_cli_errors_are_clean(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["search", str(tmp_path / "nope"), "東京"])
    assert missing.exit_code == 1 and "does not exist; build it with" in missing.output
    assert "Traceback" not in missing.output
    neither = runner.invoke(cli, ["search", str(tmp_path / "nope")])
    assert neither.exit_code == 2 and "Pass either QUERY or --queries FILE" in neither.output
    for args in (["index", "build"], ["index", "add"], ["index", "info"], ["search"], ["serve"]):
        helped = runner.invoke(cli, [*args, "-h"])
        assert helped.exit_code == 0 and "Example" in helped.output, args


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
