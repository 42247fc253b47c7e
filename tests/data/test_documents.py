"""Document readers and Japanese passage splitting (xlingual.data.documents)."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlingual.data.documents import (
    CorpusFormat,
    ReadStats,
    detect_format,
    passage_spans,
    read_documents,
    sentence_spans,
    to_passages,
    tokenizer_counter,
)
from xlingual.errors import DataError


def sentences(text):
    return [text[s:e] for s, e in sentence_spans(text)]


# --------------------------------------------------------------------------- sentences


def test_japanese_sentence_boundaries():
    text = "東京は晴れです。大阪は雨！京都は？\n札幌は雪でした"
    assert sentences(text) == ["東京は晴れです。", "大阪は雨！", "京都は？", "札幌は雪でした"]


def test_terminator_runs_and_fullwidth_period():
    assert sentences("本当ですか！？はい．そうです。。") == ["本当ですか！？", "はい．", "そうです。。"]


def test_brackets_keep_quoted_sentences_whole():
    # 。 inside 「」 or （） ends no sentence; a closed quote followed by more text is one sentence.
    assert sentences("彼は「はい。行きます！」と言った。次の文。") == ["彼は「はい。行きます！」と言った。", "次の文。"]
    assert sentences("これは（注：長い。）文です。") == ["これは（注：長い。）文です。"]
    # A quote that ends a sentence and is followed by another quote: two sentences.
    assert sentences("「はい。」「いいえ。」") == ["「はい。」", "「いいえ。」"]


def test_unbalanced_bracket_does_not_swallow_the_document():
    text = "「" + "あ。" * 400
    assert len(sentences(text)) > 100


def test_english_periods_only_before_whitespace():
    text = "Pi is 3.14 today. See e.g.the docs! Done?"
    assert sentences(text) == ["Pi is 3.14 today.", "See e.g.the docs!", "Done?"]


def test_line_breaks_end_sentences_and_blank_lines_vanish():
    assert sentences("一行目\n\n\n  二行目  \r\n") == ["一行目", "二行目", ""][:2]


# --------------------------------------------------------------------------- passages


def test_passages_pack_whole_sentences_up_to_the_char_budget():
    text = "あいうえお。" * 10  # 10 sentences of 6 characters
    spans = passage_spans(text, max_chars=20)
    assert [text[s:e] for s, e in spans] == ["あいうえお。" * 3] * 3 + ["あいうえお。"]


def test_over_long_sentence_is_cut_at_soft_breaks():
    long_sentence = "、".join(["かきくけこ"] * 20) + "。"
    spans = passage_spans(long_sentence, max_chars=25)
    pieces = [long_sentence[s:e] for s, e in spans]
    assert all(len(p) <= 25 for p in pieces)
    assert all(p.endswith(("、", "。")) for p in pieces)  # cut after 、 where one exists
    assert "".join(pieces) == long_sentence


def test_sentence_without_any_break_is_cut_hard():
    text = "あ" * 95
    assert [e - s for s, e in passage_spans(text, max_chars=30)] == [30, 30, 30, 5]


def test_token_budget_uses_the_counter():
    # A counter where every character is 2 tokens: 6-character sentences are 12 tokens.
    def count(texts):
        return [2 * len(t) for t in texts]

    text = "あいうえお。" * 6
    spans = passage_spans(text, max_tokens=24, count_tokens=count, max_chars=10_000)
    assert [e - s for s, e in spans] == [12, 12, 12]


def test_real_tokenizer_counter_limits_tokens():
    from transformers import AutoTokenizer

    from xlingual.models.specs import minilm_dir

    class Model:
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))

    counter = tokenizer_counter(Model())
    assert counter is not None and counter(["hello world"]) == [2]
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    spans = passage_spans(text, max_tokens=30, count_tokens=counter)
    assert len(spans) > 1
    assert all(n <= 30 for n in counter([text[s:e] for s, e in spans]))
    assert tokenizer_counter(object()) is None


def test_to_passages_points_back_to_documents():
    from xlingual.data.documents import Document

    docs = [Document("a", "一文目。二文目。", {"src": "x"}), Document("b", "短い。")]
    parts = list(to_passages(docs, max_chars=5))
    assert [(p.doc_id, p.number, p.text) for p in parts] == [
        ("a", 0, "一文目。"),
        ("a", 1, "二文目。"),
        ("b", 0, "短い。"),
    ]
    assert all(docs[0 if p.doc_id == "a" else 1].text[p.start : p.end] == p.text for p in parts)
    assert parts[0].metadata == {"src": "x"}


def test_zero_budget_is_refused():
    with pytest.raises(DataError, match="at least 1"):
        passage_spans("テキスト。", max_chars=0)


_JA_TEXT = st.text(alphabet=st.sampled_from(list("あいう漢字カナ。、！？「」（）\n .abc")), max_size=300)


@settings(max_examples=150, deadline=None)
@given(text=_JA_TEXT, limit=st.integers(min_value=1, max_value=40))
def test_passages_cover_the_text_in_order_within_the_budget(text, limit):
    spans = passage_spans(text, max_chars=limit)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(e - s <= limit for s, e in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    # Nothing but whitespace is lost between passages.
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())


# --------------------------------------------------------------------------- readers


def test_detect_format():
    assert detect_format("a.jsonl.gz") is CorpusFormat.JSONL
    assert detect_format("a.NDJSON") is CorpusFormat.JSONL
    assert detect_format("x/b.parquet") is CorpusFormat.PARQUET
    assert detect_format("c.txt.gz") is CorpusFormat.TEXT
    assert detect_format("README") is CorpusFormat.TEXT


def test_text_file_one_document_per_line(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\ufeff一つ目の文書。\n\n  \n三つ目\u3000です。\r\n", encoding="utf-8")
    stats = ReadStats()
    docs = list(read_documents(path, stats=stats))
    assert [(d.id, d.text) for d in docs] == [("docs.txt:1", "一つ目の文書。"), ("docs.txt:4", "三つ目\u3000です。")]
    assert stats.documents == 2 and stats.skipped_blank == 2


def test_jsonl_ids_text_metadata_and_gzip(tmp_path):
    rows = [
        {"id": "n1", "text": "ニュース。", "title": "見出し", "year": 2024},
        {"id": 7, "text": "整数のid。"},
        {"text": "idなし。"},
    ]
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    docs = list(read_documents(path))
    assert [d.id for d in docs] == ["n1", "7", "docs.jsonl.gz:3"]
    assert docs[0].metadata == {"title": "見出し", "year": 2024}
    assert docs[1].metadata == {}


def test_custom_keys(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"doc": "x", "body": "本文。"}\n', encoding="utf-8")
    (doc,) = read_documents(path, id_key="doc", text_key="body")
    assert (doc.id, doc.text) == ("x", "本文。")


def test_parquet_and_gzipped_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["a", "b"], "text": ["一。", "二。"], "lang": ["ja", "ja"]})
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path)
    docs = list(read_documents(path))
    assert [(d.id, d.text, d.metadata) for d in docs] == [("a", "一。", {"lang": "ja"}), ("b", "二。", {"lang": "ja"})]
    gz = tmp_path / "docs.parquet.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [d.id for d in read_documents(gz)] == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": \n', r"bad.jsonl:2: not valid JSON"),
        ("list.jsonl", '["a"]\n', r"list.jsonl:1: a JSON list"),
        ("notext.jsonl", '{"id": "a", "body": "x"}\n', r"notext.jsonl:1: no 'text' field \(fields: body, id\)"),
        ("num.jsonl", '{"id": "a", "text": 5}\n', r"'text' is int"),
        ("badid.jsonl", '{"id": [1], "text": "x"}\n', r"'id' is list"),
        (
            "dup.jsonl",
            '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            r"dup.jsonl:2: document id 'a' already used at .*dup.jsonl:1",
        ),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        list(read_documents(path))


def test_undecodable_and_missing_files(tmp_path):
    path = tmp_path / "sjis.txt"
    path.write_bytes("正しい行\n".encode() + "シフトJIS".encode("shift_jis") + b"\n")
    with pytest.raises(DataError, match=r"sjis.txt:2: not valid UTF-8.*iconv -f SHIFT_JIS"):
        list(read_documents(path))
    with pytest.raises(DataError, match="does not exist"):
        list(read_documents(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="is a folder"):
        list(read_documents(tmp_path))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list(read_documents(broken))
