"""A teacher given as vectors (``vectors:FILE``): every file form reads back, every bad file is named and refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xlingual.errors import DataError, ModelError
from xlingual.models.specs import load_model
from xlingual.models.vectors import VectorsSpec, VectorTeacher, file_fingerprint

TEXTS = ["The weather is nice today.", "Where is the station?", "It started to rain."]


def _vectors(dim: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(len(TEXTS), dim)).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _parquet(path: Path, texts: list[str], vectors: list, text_col: str = "text", vector_col: str = "embedding"):
    pq.write_table(pa.table({text_col: texts, vector_col: vectors, "id": [f"d{i}" for i in range(len(texts))]}), path)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_generic_parquet_named_columns_and_lookup(tmp_path):
    v = _vectors()
    file = _parquet(tmp_path / "en.parquet", TEXTS, v.tolist(), "title", "emb")
    teacher = VectorTeacher(f"vectors:{file}?text=title&vector=emb")
    assert teacher.get_embedding_dimension() == 6 and len(teacher) == 3
    np.testing.assert_allclose(teacher.encode(TEXTS[::-1]), _unit(v)[::-1], rtol=1e-6)
    # matched by normalised text: extra spaces and NFD forms find the same row
    np.testing.assert_allclose(teacher.encode(["  Where  is the station? "]), _unit(v)[1:2], rtol=1e-6)
    assert teacher.missing(["Where is the station?", "Unknown sentence."]) == [1]


def test_jsonl_npy_and_load_model_agree(tmp_path):
    v = _vectors(dim=5)
    jsonl = _jsonl(
        tmp_path / "en.jsonl", [{"text": t, "vector": row} for t, row in zip(TEXTS, v.tolist(), strict=True)]
    )
    npy = tmp_path / "en.npy"
    np.save(npy, v)
    (tmp_path / "en.npy.texts.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    for spec in (f"vectors:{jsonl}", f"vectors:{npy}"):
        model = load_model(spec)
        assert isinstance(model, VectorTeacher)
        np.testing.assert_allclose(model.encode(TEXTS), _unit(v), rtol=1e-6)


def test_an_xlingual_embed_file_is_read_and_checked(tmp_path, tiny_models):
    from xlingual.config import EmbedConfig
    from xlingual.export.embeddings import embed_file
    from xlingual.models.specs import encode

    src = tmp_path / "en.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "en.parquet"
    embed_file(src, out, EmbedConfig(model=tiny_models["teacher"]))
    teacher = VectorTeacher(f"vectors:{out}")
    expected = encode(load_model(tiny_models["teacher"]), TEXTS)
    np.testing.assert_allclose(teacher.encode(TEXTS), expected, atol=1e-6)
    # a damaged file fails its own checksum
    table = pq.read_table(out)
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    vectors[1, 0] += 0.5
    column = pa.array(vectors.tolist(), type=table.schema.field("embedding").type)
    pq.write_table(table.set_column(table.column_names.index("embedding"), "embedding", column), out)
    with pytest.raises(DataError, match=r"checksum|sha256"):
        VectorTeacher(f"vectors:{out}")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda v: v.__setitem__((1, 2), np.nan), r"row 2 \('Where is the station\?'\): the vector holds NaN"),
        (lambda v: v.__setitem__((2, 0), np.inf), r"row 3 .*NaN or infinity; recompute that row or remove it"),
        (lambda v: v.__setitem__(0, 0.0), r"row 1 .*a zero vector has no direction"),
    ],
)
def test_bad_values_name_the_row(tmp_path, bad, message):
    v = _vectors()
    bad(v)
    file = _parquet(tmp_path / "en.parquet", TEXTS, v.tolist())
    with pytest.raises(DataError, match=message):
        VectorTeacher(f"vectors:{file}")


def test_mixed_dimensions_name_the_row(tmp_path):
    rows = [{"text": t, "embedding": [0.1] * (4 if i < 2 else 3)} for i, t in enumerate(TEXTS)]
    file = _jsonl(tmp_path / "en.jsonl", rows)
    with pytest.raises(DataError, match=r"row 3: 3 values where the rows before have 4; every vector must have"):
        VectorTeacher(f"vectors:{file}")


def test_duplicate_texts_must_agree(tmp_path):
    v = _vectors()
    same = _parquet(tmp_path / "same.parquet", [*TEXTS, TEXTS[0]], [*v.tolist(), (2 * v[0]).tolist()])
    assert len(VectorTeacher(f"vectors:{same}")) == 3  # the same direction twice is fine
    other = _parquet(tmp_path / "other.parquet", [*TEXTS, TEXTS[0]], [*v.tolist(), v[1].tolist()])
    with pytest.raises(DataError, match=r"rows 1 and 4 hold the same text 'The weather is nice today.' with different"):
        VectorTeacher(f"vectors:{other}")


@pytest.mark.parametrize(
    ("setup", "spec_suffix", "message"),
    [
        ("npy-no-texts", "", r"holds no texts: put them, one per line in row order, in .*en.npy.texts.txt"),
        ("csv", "", r"unknown extension '.csv'; use .parquet, .jsonl or .npy"),
        ("parquet", "?vector=nope", r"has no column 'nope' \(columns: "),
        ("parquet", "?text=title", r"has no column 'title' .*name the text column: vectors:FILE\?text=COLUMN"),
        ("parquet", "?colour=red", r"unknown option colour; use vectors:FILE\?text=COLUMN&vector=COLUMN"),
        ("missing", "", r"does not exist"),
        ("empty-text", "", r"row 2: the text is empty; remove that row"),
    ],
)
def test_unusable_files_are_refused_with_the_fix(tmp_path, setup, spec_suffix, message):
    v = _vectors()
    if setup == "npy-no-texts":
        file = tmp_path / "en.npy"
        np.save(file, v)
    elif setup == "csv":
        file = tmp_path / "en.csv"
        file.write_text("text,vector\n", encoding="utf-8")
    elif setup == "missing":
        file = tmp_path / "nowhere.parquet"
    elif setup == "empty-text":
        file = _parquet(tmp_path / "en.parquet", [TEXTS[0], " ", TEXTS[2]], v.tolist())
    else:
        file = _parquet(tmp_path / "en.parquet", TEXTS, v.tolist())
    with pytest.raises((DataError, ModelError), match=message):
        VectorTeacher(f"vectors:{file}{spec_suffix}")


def test_unknown_texts_are_refused_at_encode(tmp_path):
    file = _parquet(tmp_path / "en.parquet", TEXTS, _vectors().tolist())
    with pytest.raises(ModelError, match=r"holds no vector for 1 of 2 texts \(first: 'Not in the file.'\)"):
        VectorTeacher(f"vectors:{file}").encode([TEXTS[0], "Not in the file."])


def test_fingerprint_follows_content_and_columns(tmp_path):
    file = _parquet(tmp_path / "en.parquet", TEXTS, _vectors().tolist())
    first = file_fingerprint(VectorsSpec.parse(f"vectors:{file}"))
    assert first == file_fingerprint(VectorsSpec.parse(f"vectors:{file}"))
    assert first != file_fingerprint(VectorsSpec.parse(f"vectors:{file}?vector=embedding"))
    _parquet(file, TEXTS, _vectors(seed=1).tolist())
    assert first != file_fingerprint(VectorsSpec.parse(f"vectors:{file}"))
