"""Reading labelled texts: every format, and a one-line error naming the row and the fix for bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from xlingual.config import ClassifyConfig
from xlingual.errors import ConfigError, DataError
from xlingual.transfer.labelled import BUILTIN_LABELLED, LabelledSet, check_trainable, read_labelled

ROWS = [("sports", "The team won the match."), ("food", "I ate ramen for lunch."), ("sports", "She runs every day.")]


def _tsv(path, rows=ROWS, header=False):
    lines = (["label\ttext"] if header else []) + [f"{label}\t{text}" for label, text in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_tsv_with_and_without_header_and_gzip(tmp_path):
    plain = read_labelled(_tsv(tmp_path / "a.tsv"))
    assert plain.labels == ["sports", "food", "sports"] and plain.texts[1] == "I ate ramen for lunch."
    assert plain.where(2) == f"{tmp_path / 'a.tsv'}:3"
    header = read_labelled(_tsv(tmp_path / "b.tsv", header=True))
    assert header.texts == plain.texts and header.where(0).endswith(":2")
    packed = tmp_path / "c.tsv.gz"
    packed.write_bytes(gzip.compress((tmp_path / "a.tsv").read_bytes()))
    assert read_labelled(packed).labels == plain.labels
    assert plain.counts() == {"sports": 2, "food": 1}


def test_jsonl_parquet_and_keys(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"topic": label, "body": text, "extra": 1} for label, text in ROWS]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    config = ClassifyConfig(label_key="topic", text_key="body")
    assert read_labelled(jsonl, config).labels == ["sports", "food", "sports"]
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    got = read_labelled(parquet, config)
    assert got.texts == [t for _, t in ROWS] and got.where(0) == f"{parquet} row 1"
    with pytest.raises(DataError, match=r"a.jsonl:1: no field 'label' \(fields: body, extra, topic\); .*--label-key"):
        read_labelled(jsonl)


def test_integer_labels_and_saved_dataset_with_class_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"label": datasets.ClassLabel(names=["food", "sports"]), "text": datasets.Value("string")}
    )
    ds = datasets.Dataset.from_dict({"label": [1, 0, 1], "text": [t for _, t in ROWS]}, features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    got = read_labelled(str(tmp_path / "saved"))
    assert got.labels == ["sports", "food", "sports"] and got.where(1) == f"{tmp_path / 'saved'} record 2"
    jsonl = tmp_path / "ints.jsonl"
    jsonl.write_text('{"label": 3, "text": "a"}\n{"label": 4, "text": "b"}\n', encoding="utf-8")
    assert read_labelled(jsonl).labels == ["3", "4"]


def test_builtin_topics_sets():
    en = read_labelled("builtin:topics-train-en")
    ja = read_labelled("builtin:topics-train-ja")
    test_en, test_ja = read_labelled("builtin:topics-test-en"), read_labelled("builtin:topics-test-ja")
    assert en.labels == ja.labels and test_en.labels == test_ja.labels
    assert len(en.counts()) >= 8 and min(en.counts().values()) >= 30 and min(test_en.counts().values()) >= 15
    assert not set(en.texts) & set(test_en.texts) and not set(ja.texts) & set(test_ja.texts)
    assert all(any("\u3040" <= c <= "\u9fff" for c in text) for text in ja.texts + test_ja.texts)
    assert len(BUILTIN_LABELLED) == 4
    with pytest.raises(
        DataError, match="builtin:topics: unknown built-in labelled set; use one of builtin:topics-train-en"
    ):
        read_labelled("builtin:topics")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sports\tA match.\nfood\t\n", r"x.tsv:2: empty text; add the text or delete the row"),
        ("sports\tA match.\n\tRice.\n", r"x.tsv:2: empty label; give every row a label or delete it"),
        ("sports\tA\tmatch.\n", r"x.tsv:1: 3 columns, expected 2 \(label<TAB>text\); remove tabs inside the text"),
        ("just text\n", r"x.tsv:1: 1 column, expected 2 \(label<TAB>text\); separate the label and the text"),
        ("\n\n", r"x.tsv: no labelled texts"),
    ],
)
def test_bad_tsv_rows(tmp_path, content, message):
    path = tmp_path / "x.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_labelled(path)


def test_bad_json_values(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"label": null, "text": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl:1: the label is missing; every row needs a label"):
        read_labelled(path)
    path.write_text('{"label": "a", "text": 5}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl:1: the text is int 5, not a string; check --text-key"):
        read_labelled(path)
    path.write_text('{"label": [1], "text": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.jsonl:1: the label is list \[1\]"):
        read_labelled(path)


def test_swapped_columns_are_refused(tmp_path):
    rows = [(f"This is sentence number {i} about the weather.", "weather") for i in range(20)]
    with pytest.raises(DataError, match=r"20 different labels among 20 rows .*looks like text.*swap the columns"):
        read_labelled(_tsv(tmp_path / "swapped.tsv", rows))
    # Many short labels with few examples each (a small test set) are labels, not text.
    few = [(f"topic{i % 8}", f"Sentence {i} about something.") for i in range(12)]
    assert len(read_labelled(_tsv(tmp_path / "few.tsv", few)).counts()) == 8


def test_check_trainable():
    check_trainable(LabelledSet(["a", "b", "c", "d"], ["x", "x", "y", "y"], "t"))
    with pytest.raises(DataError, match=r"t: every one of the 2 texts has the label 'x'; .*at least two classes"):
        check_trainable(LabelledSet(["a", "b"], ["x", "x"], "t"))
    with pytest.raises(DataError, match=r"t: the label 'y' has a single example \(t row 3\); cross-validation needs"):
        check_trainable(LabelledSet(["a", "b", "c"], ["x", "x", "y"], "t"))


def test_unknown_files_and_config_errors(tmp_path):
    with pytest.raises(DataError, match=r"nope\.tsv: no such file or folder\. Accepted: a TSV file"):
        read_labelled(tmp_path / "nope.tsv")
    odd = tmp_path / "x.csv"
    odd.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x.csv: unknown file type '.csv'"):
        read_labelled(odd)
    with pytest.raises(ConfigError, match="text_key and label_key are both 'x'"):
        ClassifyConfig(text_key="x", label_key="x")
    with pytest.raises(ConfigError, match="cv_folds=1: cross-validation needs at least 2 folds"):
        ClassifyConfig(cv_folds=1)
    with pytest.raises(ConfigError, match=r"c_grid=\(\): give one or more positive C values"):
        ClassifyConfig(c_grid=())
