"""Hubness correction (CSLS) at query time: r(d) stored at build, extended by add, ranking, damage, old indexes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeEncoder, TableEncoder
from tests.search.helpers import DOCS, brute_force_csls, fake_config, hits_key, hub_space, unit
from xlingual import _io
from xlingual.config import SearchConfig
from xlingual.errors import DataError, DiskFullError, SearchIndexError
from xlingual.search import faiss_ops, hubness
from xlingual.search.index import Index

pytestmark = pytest.mark.usefixtures("one_faiss_thread")

N_DOCS = 40


def _docs(names):
    return [{"id": name, "text": name} for name in names]


@pytest.fixture()
def space(student_space):
    teacher, student = hub_space(N_DOCS)
    student_space["fake"], student_space["fake-student"] = TableEncoder(teacher), TableEncoder(student)
    return {"teacher": teacher, "student": student, "encoders": student_space}


def _build(space, path, **config):
    return Index.build(_docs(space["teacher"]), path, config=fake_config(query_model="fake-student", **config))


def _doc_ids(index):
    return index.passages.table.column("doc_id").to_pylist()


def _reference(path):
    return np.load(path / "hubness-queries.npy")


# --------------------------------------------------------------------------- ranking


def test_csls_on_a_flat_index_equals_numpy_brute_force(space, tmp_path):
    index = _build(space, tmp_path / "idx")
    assert index.spec.type.value == "flat"
    ids = _doc_ids(index)
    doc_emb = np.stack([space["teacher"][name] for name in ids])
    reference = np.stack([space["student"][name] for name in sorted(space["student"])])  # every passage, any order
    r, expected = brute_force_csls(np.stack([space["student"][name] for name in ids]), doc_emb, reference, k=4)
    np.testing.assert_allclose(Index.load(tmp_path / "idx").hubness, r, atol=1e-6)

    queries = [f"doc{i}" for i in range(N_DOCS)]
    found = Index.load(tmp_path / "idx").search(queries, k=5, query_model="fake-student")
    query_rows = [ids.index(q) for q in queries]
    for row, hits in zip(query_rows, found, strict=True):
        best = np.argsort(-expected[row], kind="stable")[:5]
        assert [h.doc_id for h in hits] == [ids[i] for i in best]
        np.testing.assert_allclose([h.csls for h in hits], expected[row, best], atol=1e-5)
        cosine = space["student"][ids[row]] @ np.stack([space["teacher"][h.doc_id] for h in hits]).T
        np.testing.assert_allclose([h.score for h in hits], cosine, atol=1e-5)  # score stays the cosine
    # The planted hub is every query's nearest by cosine, and CSLS puts each query's own document first.
    plain = Index.load(tmp_path / "idx", config=SearchConfig(csls=False)).search(
        queries, k=1, query_model="fake-student"
    )
    assert {hits[0].doc_id for hits in plain} == {"hub0"}
    assert [hits[0].doc_id for hits in found] == queries


def test_no_csls_gives_the_cosine_ranking(space, tmp_path):
    _build(space, tmp_path / "idx")
    queries = ["doc1", "doc7", "hub0"]
    off = Index.load(tmp_path / "idx", config=SearchConfig(csls=False))
    assert not off.uses_csls("fake-student") and Index.load(tmp_path / "idx").uses_csls("fake-student")
    hits = off.search(queries, k=6, query_model="fake-student")
    vectors = np.stack([space["student"][q] for q in queries])
    scores, ids = faiss_ops.knn(vectors, np.stack([space["teacher"][n] for n in _doc_ids(off)]), 6)
    assert [[h.passage_id for h in row] for row in hits] == ids.tolist()
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, atol=1e-6)
    assert all(h.csls is None for row in hits for h in row)
    # The index's own model (not the query model it was built for) searches by cosine, csls on or not.
    own = Index.load(tmp_path / "idx")
    assert not own.uses_csls() and all(h.csls is None for h in own.search("doc1", k=3))


def test_csls_search_is_exact_beyond_the_first_candidates():
    rng = np.random.default_rng(1)
    database = unit(rng.standard_normal((200, 8)))
    queries = unit(database[:5] * 0.9 + database[5:10] * 0.1)
    r = np.full(200, 0.9, np.float32)
    r[150:] = -0.9  # far documents with a low hubness win by CSLS from deep in the cosine order
    flat = faiss_ops.build_flat_index(database)
    calls = []

    def search(vectors, depth):
        calls.append(depth)
        return faiss_ops.search(flat, vectors, depth)

    cos, csls, ids = hubness.csls_search(search, queries, 3, r, candidates=2, exact=True)
    full = 2 * queries @ database.T - r[None, :]
    expected = np.argsort(-full, axis=1, kind="stable")[:, :3]
    assert ids.tolist() == expected.tolist() and calls[0] == 6 and len(calls) > 1
    np.testing.assert_allclose(csls, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    np.testing.assert_allclose(cos, np.take_along_axis(queries @ database.T, expected, axis=1), atol=1e-5)
    _, _, shallow = hubness.csls_search(search, queries, 3, r, candidates=2, exact=False)
    assert calls[-1] == 6 and shallow.tolist() != ids.tolist()  # re-ranks only the 6 candidates


@pytest.mark.parametrize("kind", ["hnsw", "ivf-pq"])
def test_approximate_reranking_has_the_exact_top1(kind, student_space, tmp_path):
    teacher, student = hub_space(1100, dim=32, n_hubs=3, seed=2)
    student_space["fake"], student_space["fake-student"] = TableEncoder(teacher), TableEncoder(student)
    built = Index.build(
        _docs(teacher), tmp_path / kind, config=fake_config(index_type=kind, query_model="fake-student")
    )
    assert built.spec.type.value == kind
    ids = _doc_ids(built)
    queries = [f"doc{i}" for i in range(0, 1100, 37)]
    doc_emb = np.stack([teacher[name] for name in ids])
    r, expected = brute_force_csls(np.stack([student[q] for q in queries]), doc_emb, _reference(tmp_path / kind), k=4)
    np.testing.assert_allclose(built.hubness, r, atol=1e-5)
    loaded = Index.load(tmp_path / kind, config=SearchConfig(csls_candidates=20))
    found = loaded.search(queries, k=1, query_model="fake-student")
    assert [hits[0].doc_id for hits in found] == [ids[int(i)] for i in expected.argmax(axis=1)]
    plain = Index.load(tmp_path / kind, config=SearchConfig(csls=False)).search(
        queries, k=1, query_model="fake-student"
    )
    assert sum(hits[0].doc_id.startswith("hub") for hits in plain) > len(queries) // 2  # the hubs win by cosine


# --------------------------------------------------------------------------- build and add


def test_manifest_records_the_query_model_and_the_hubness_files(space, tmp_path):
    index = _build(space, tmp_path / "idx", hubness_sample=10)
    block, files = index.manifest["hubness"], index.manifest["files"]
    assert block["k"] == 4 and block["source"] == "passages" and block["source_sha256"] is None
    assert block["references"] == 10 and block["query_model"]["spec"] == "fake-student"
    assert block["query_model"]["teacher_fingerprint"] == "T" * 64
    assert files["hubness_queries"] == "hubness-queries.npy" and files["hubness"] == ["hubness-00000.npy"]
    for name in ("hubness-queries.npy", "hubness-00000.npy"):
        assert index.manifest["checksums"][name]["sha256"] == _io.sha256_file(tmp_path / "idx" / name)
    reference = _reference(tmp_path / "idx")
    assert reference.dtype == np.float32 and reference.shape == (10, 64)
    r = np.load(tmp_path / "idx" / "hubness-00000.npy")
    assert r.dtype == np.float32 and r.shape == (len(index),)
    again = _build(space, tmp_path / "again", hubness_sample=10)  # the sample is seeded
    np.testing.assert_array_equal(_reference(tmp_path / "again"), reference)
    assert again.manifest["hubness"] == block


def test_hubness_queries_file(space, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("doc3\n\n  doc5  \nhub0\n", encoding="utf-8")
    index = _build(space, tmp_path / "idx", hubness_queries=str(queries), hubness_k=2)
    block = index.manifest["hubness"]
    assert block["source"] == str(queries) and block["source_sha256"] == _io.sha256_file(queries)
    assert block["references"] == 3 and block["k"] == 2
    reference = np.stack([space["student"][q] for q in ("doc3", "doc5", "hub0")])
    np.testing.assert_allclose(_reference(tmp_path / "idx"), reference, atol=1e-7)
    doc_emb = np.stack([space["teacher"][name] for name in _doc_ids(index)])
    r, _ = brute_force_csls(doc_emb[:1], doc_emb, reference, k=2)
    np.testing.assert_allclose(index.hubness, r, atol=1e-6)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt holds no queries"):
        _build(space, tmp_path / "other", hubness_queries=str(empty))
    with pytest.raises(SearchIndexError, match="--hubness-queries needs --query-model"):
        Index.build(DOCS, tmp_path / "other", config=fake_config(hubness_queries=str(queries)))


def test_add_extends_r_without_changing_old_values(space, tmp_path):
    path = tmp_path / "idx"
    extra_teacher, _ = hub_space(5, seed=9)
    new_names = [f"new{i}" for i in range(5)]
    for name, old in zip(new_names, sorted(k for k in extra_teacher if k.startswith("doc")), strict=True):
        space["encoders"]["fake"].table[name] = extra_teacher[old]
    _build(space, path, hubness_sample=12)
    before = Index.load(path)
    old_r = before.hubness.copy()
    assert before.add(_docs(new_names), config=fake_config()) == 5
    reloaded = Index.load(path)
    np.testing.assert_array_equal(reloaded.hubness[: len(old_r)], old_r)
    np.testing.assert_array_equal(reloaded.hubness, before.hubness)
    new_emb = np.stack([space["encoders"]["fake"].table[name] for name in new_names])
    r, _ = brute_force_csls(new_emb[:1], new_emb, _reference(path), k=4)
    np.testing.assert_allclose(reloaded.hubness[len(old_r) :], r, atol=1e-6)
    assert reloaded.manifest["files"]["hubness"] == ["hubness-00000.npy", "hubness-00001.npy"]
    assert reloaded.manifest["hubness"]["references"] == 12
    assert reloaded.search("doc4", k=1, query_model="fake-student")[0].csls is not None


def test_failed_add_leaves_no_hubness_part(space, tmp_path, monkeypatch):
    from xlingual.search import storage

    path = tmp_path / "idx"
    space["encoders"]["fake"].table["late"] = space["teacher"]["doc1"]
    _build(space, path)

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "commit_manifest", disk_full)
    index = Index.load(path)
    with pytest.raises(DiskFullError, match="intact, without the new documents"):
        index.add(_docs(["late"]), config=fake_config())
    assert not (path / "hubness-00001.npy").exists()  # written, then discarded with the uncommitted add
    assert len(Index.load(path).hubness) == len(index.hubness) == N_DOCS + 1


def test_an_incompatible_query_model_is_refused_at_build(student_space, tmp_path):
    with pytest.raises(SearchIndexError, match=r"Query model fake-other does not share the index's vector space"):
        Index.build(DOCS, tmp_path / "idx", config=fake_config(query_model="fake-other"))
    assert not (tmp_path / "idx").exists()  # refused before any model was loaded (none is registered)


# --------------------------------------------------------------------------- old indexes, damage


def test_an_index_without_hubness_loads_and_searches_as_before(built, tmp_path):
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))
    assert "hubness" not in manifest and not any(key.startswith("hubness") for key in manifest["files"])
    loaded = Index.load(tmp_path / "idx", encoder=FakeEncoder(256))
    cosine = Index.load(tmp_path / "idx", config=SearchConfig(csls=False), encoder=FakeEncoder(256))
    queries = ["京都のお寺", "coffee at eight"]
    assert loaded.hubness is None and not loaded.uses_csls()
    assert [hits_key(h) for h in loaded.search(queries, k=4)] == [hits_key(h) for h in cosine.search(queries, k=4)]
    assert all(h.csls is None and h.as_dict()["csls"] is None for h in loaded.search("東京", k=3))
    with pytest.raises(SearchIndexError, match="stores no hubness for CSLS; build it with --query-model"):
        loaded.search_vectors(loaded.embed_queries(["東京"]), 2, csls=True)


def _damage(path: Path, how: str) -> None:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    part, reference = path / "hubness-00000.npy", path / "hubness-queries.npy"
    if how == "flip-byte":
        data = bytearray(part.read_bytes())
        data[-3] ^= 0xFF
        part.write_bytes(bytes(data))
    elif how == "truncate-reference":
        reference.write_bytes(reference.read_bytes()[:-8])
    elif how == "delete":
        part.unlink()
    elif how in ("wrong-shape", "not-npy"):
        data = hubness.npy_bytes(np.zeros((3, 2))) if how == "wrong-shape" else b"not a numpy file"
        part.write_bytes(data)
        manifest["checksums"][part.name] = {"bytes": len(data), "sha256": _io.sha256_bytes(data)}
    elif how == "block":
        manifest["hubness"]["k"] = 0
        manifest["files"]["hubness"] = []
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("flip-byte", r"hubness-00000.npy is corrupt: its sha256 differs"),
        ("truncate-reference", r"hubness-queries.npy has [\d,]+ bytes, not [\d,]+: the index is damaged"),
        ("delete", r"hubness-00000.npy is missing"),
        ("wrong-shape", r"hubness-00000.npy is damaged: it holds float32 of shape \(3, 2\)"),
        ("not-npy", r"hubness-00000.npy is damaged: it is not a readable .npy file"),
        ("block", r"is damaged: hubness.k=0, expected a positive integer; files.hubness=\[\], expected one file"),
    ],
)
def test_a_damaged_hubness_file_is_refused(space, tmp_path, how, message):
    path = tmp_path / "idx"
    _build(space, path)
    _damage(path, how)
    with pytest.raises(SearchIndexError, match=message) as info:
        Index.load(path)
    assert str(path) in str(info.value)
    assert "xlingual index build" in str(info.value) and "--query-model fake-student" in str(info.value)


def test_a_damaged_reference_is_refused_by_add(space, tmp_path):
    path = tmp_path / "idx"
    space["encoders"]["fake"].table["late"] = space["teacher"]["doc1"]
    _build(space, path)
    data = bytearray((path / "hubness-queries.npy").read_bytes())
    data[-1] ^= 0x01
    (path / "hubness-queries.npy").write_bytes(bytes(data))
    index = Index.load(path)  # the reference is read (and its sha256 checked) when an add needs it
    with pytest.raises(SearchIndexError, match=r"hubness-queries.npy is corrupt: its sha256 differs"):
        index.add(_docs(["late"]), config=fake_config())


def test_npy_bytes_round_trip():
    array = np.linspace(-1, 1, 7, dtype=np.float32)
    np.testing.assert_array_equal(np.load(io.BytesIO(hubness.npy_bytes(array))), array)
