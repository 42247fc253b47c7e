"""Tests for xlingual.data: readers, specs, normalisation, validation, cleaning, splits, inspection."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from pathlib import Path

import pytest

from xlingual.config import DataConfig
from xlingual.data.clean import CleanStats, clean, load_pairs, split
from xlingual.data.inspect import format_inspect, inspect_corpus
from xlingual.data.readers import ParallelCorpus, read_corpus
from xlingual.data.sources import ACCEPTED_FORMATS, bundled_data_dir
from xlingual.data.text import detokenize_en, detokenize_ja, normalize_text
from xlingual.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DATA = Path(os.environ.get("XLINGUAL_BENCH_DATA") or REPO_ROOT / ".." / "shared" / "data" / "small_parallel_enja")

PAIRS = [
    ("Hello.", "こんにちは。"),
    ("Thank you.", "ありがとう。"),
    ("I like cats.", "私は猫が好きです。"),
    ("Good night.", "おやすみなさい。"),
]


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def write_text(path: Path, text: str) -> str:
    return write_bytes(path, text.encode("utf-8"))


def write_tsv(path: Path, rows: list[tuple[str, ...]], header: str | None = None) -> str:
    lines = ([header] if header else []) + ["\t".join(row) for row in rows]
    return write_text(path, "\n".join(lines) + "\n")


def error_text(spec: str, config: DataConfig | None = None) -> str:
    with pytest.raises(DataError) as info:
        read_corpus(spec, config)
    return str(info.value)


def corpus_of(pairs: list[tuple[str, str]], source: str = "mem") -> ParallelCorpus:
    return ParallelCorpus([en for en, _ in pairs], [ja for _, ja in pairs], source)


# --------------------------------------------------------------------------------------------------
# The corpus type


def test_parallel_corpus_select_concat_iter():
    a = ParallelCorpus(["a1", "a2", "a3"], ["あ1", "あ2", "あ3"], "a.tsv", [2, 3, 5])
    b = ParallelCorpus(["b1"], ["び1"], "b.tsv", [7])
    picked = a.select([2, 0])
    assert list(picked) == [("a3", "あ3"), ("a1", "あ1")]
    assert picked.lines == [5, 2] and picked.source == "a.tsv"
    joined = ParallelCorpus.concat([a, b])
    assert len(joined) == 4
    assert joined.en == ["a1", "a2", "a3", "b1"] and joined.ja[-1] == "び1"
    assert joined.lines == [2, 3, 5, 7]
    assert joined.source == "a.tsv + b.tsv"


def test_parallel_corpus_rejects_unequal_sides():
    with pytest.raises(DataError, match="2 English sentences, 1 Japanese sentences"):
        ParallelCorpus(["a", "b"], ["あ"], "x.tsv")


# --------------------------------------------------------------------------------------------------
# Readers on good files


def test_tsv_reads_pairs_normalises_and_numbers_lines(tmp_path):
    decomposed = "か\u3099"  # か + combining dakuten; NFC composes it to が
    text = f"Hello  world.\t こんにちは。\n\nGood \u00a0 night.\tおやすみ\u3000なさい。 \n{decomposed}\t a  b \n"
    corpus = read_corpus(write_text(tmp_path / "pairs.tsv", text), DataConfig(check_scripts=False))
    assert list(corpus) == [
        ("Hello world.", "こんにちは。"),
        ("Good night.", "おやすみ\u3000なさい。"),  # the ideographic space inside is kept
        ("が", "a b"),
    ]
    assert corpus.lines == [1, 3, 4]
    assert corpus.source == str(tmp_path / "pairs.tsv")
    assert normalize_text("\u3000a\u3000 ") == "a"


@pytest.mark.parametrize(
    ("header", "config"),
    [
        ("en\tja", None),
        ("English\tJapanese", None),
        ("EN\tJA", None),
        ("source_text\ttarget_text", DataConfig(en_key="source_text", ja_key="target_text")),
    ],
)
def test_tsv_header_row_is_skipped(tmp_path, header, config):
    spec = write_tsv(tmp_path / "pairs.tsv", PAIRS[:2], header=header)
    corpus = read_corpus(spec, config)
    assert list(corpus) == PAIRS[:2]
    assert corpus.lines == [2, 3]


def test_tsv_reversed_header_is_an_error_with_the_fix(tmp_path):
    spec = write_tsv(tmp_path / "pairs.tsv", [(ja, en) for en, ja in PAIRS], header="ja\ten")
    message = error_text(spec)
    assert f"{spec}:1: the header says ja<TAB>en; xlingual expects en<TAB>ja — swap the columns" in message


def test_txt_extension_is_read_as_tsv(tmp_path):
    assert list(read_corpus(write_tsv(tmp_path / "pairs.txt", PAIRS))) == PAIRS


@pytest.mark.parametrize("name", ["pairs.tsv.gz", "pairs.tsv"])
def test_gzip_detected_by_suffix_and_by_magic_bytes(tmp_path, name):
    data = gzip.compress("\n".join(f"{en}\t{ja}" for en, ja in PAIRS).encode())
    corpus = read_corpus(write_bytes(tmp_path / name, data))
    assert list(corpus) == PAIRS


def test_truncated_gzip_is_a_clear_error(tmp_path):
    data = gzip.compress(("Hello.\tこんにちは。\n" * 50).encode())[:-12]
    spec = write_bytes(tmp_path / "pairs.tsv.gz", data)
    message = error_text(spec)
    assert re.match(rf"{re.escape(spec)}: corrupt gzip data( after line \d+)? \(Compressed file ended", message)
    assert message.endswith("re-download or re-compress the file")


def test_aligned_files_by_comma_spec(tmp_path):
    en = write_text(tmp_path / "a.en", "".join(f"{en}\n" for en, _ in PAIRS))
    ja = write_text(tmp_path / "a.ja", "".join(f"{ja}\n" for _, ja in PAIRS) + "\n\n")  # trailing blanks ok
    corpus = read_corpus(f"{en},{ja}")
    assert list(corpus) == PAIRS
    assert corpus.lines == [1, 2, 3, 4]
    assert corpus.source == f"{en},{ja}"


def test_aligned_files_by_prefix_also_gzipped(tmp_path):
    (tmp_path / "train.en.gz").write_bytes(gzip.compress("\n".join(en for en, _ in PAIRS).encode()))
    (tmp_path / "train.ja").write_text("\n".join(ja for _, ja in PAIRS), encoding="utf-8")
    corpus = read_corpus(tmp_path / "train")
    assert list(corpus) == PAIRS
    assert corpus.source == f"{tmp_path / 'train.en.gz'},{tmp_path / 'train.ja'}"


def test_aligned_files_with_different_line_counts(tmp_path):
    en = write_text(tmp_path / "a.en", "one\ntwo\nthree\n")
    ja = write_text(tmp_path / "a.ja", "一\n二\n")
    message = error_text(f"{en},{ja}")
    assert f"{en} has 3 lines but {ja} has 2" in message
    assert "one sentence per line on both sides" in message


def test_aligned_prefix_with_one_side_missing(tmp_path):
    write_text(tmp_path / "train.en", "one\n")
    message = error_text(str(tmp_path / "train"))
    assert f"found {tmp_path / 'train.en'} but not {tmp_path / 'train'}.ja" in message


def test_jsonl_flat_nested_and_custom_keys(tmp_path):
    lines = [
        json.dumps({"en": PAIRS[0][0], "ja": PAIRS[0][1], "id": 7}, ensure_ascii=False),
        "",
        json.dumps({"translation": {"en": PAIRS[1][0], "ja": PAIRS[1][1]}}, ensure_ascii=False),
    ]
    corpus = read_corpus(write_text(tmp_path / "pairs.jsonl", "\n".join(lines)))
    assert list(corpus) == PAIRS[:2]
    assert corpus.lines == [1, 3]

    custom = json.dumps({"english": PAIRS[2][0], "japanese": PAIRS[2][1]}, ensure_ascii=False)
    spec = write_text(tmp_path / "pairs.json", custom + "\n")
    assert list(read_corpus(spec, DataConfig(en_key="english", ja_key="japanese"))) == [PAIRS[2]]


def test_jsonl_bad_json_names_file_and_line(tmp_path):
    spec = write_text(tmp_path / "pairs.jsonl", '{"en": "Hi.", "ja": "やあ。"}\n{"en": "Hi.", "ja": \n')
    message = error_text(spec)
    assert message.startswith(f"{spec}:2: not valid JSON (Expecting value at column")
    assert 'each line must be one object like {"en": "...", "ja": "..."}' in message


def test_jsonl_missing_key_names_file_line_and_keys(tmp_path):
    spec = write_text(tmp_path / "pairs.jsonl", '{"en": "Hi.", "ja": "やあ。"}\n{"en": "Yes.", "jp": "はい。"}\n')
    message = error_text(spec)
    expected = f"{spec}:2: no key 'ja' for the Japanese side (keys: 'en', 'jp'); set ja_key (--ja-key) to the right key"
    assert expected in message


def test_jsonl_non_object_and_non_string_values(tmp_path):
    spec = write_text(tmp_path / "a.jsonl", '["Hi.", "やあ。"]\n')
    assert "a JSON array; xlingual reads JSON Lines" in error_text(spec)
    spec = write_text(tmp_path / "b.jsonl", '{"en": "Hi.", "ja": "やあ。"}\n"just text"\n')
    assert f"{spec}:2: a JSON string, expected an object like" in error_text(spec)
    spec = write_text(tmp_path / "c.jsonl", '{"en": 5, "ja": "五"}\n')
    assert f"{spec}:1: 'en' is a number, expected text" in error_text(spec)


def test_hf_save_to_disk_round_trip(tmp_path):
    import datasets  # a core dependency: a broken install must fail here, not skip

    flat = datasets.Dataset.from_dict({"en": [en for en, _ in PAIRS], "ja": [ja for _, ja in PAIRS]})
    flat.save_to_disk(str(tmp_path / "flat"))
    corpus = read_corpus(tmp_path / "flat")
    assert list(corpus) == PAIRS
    assert corpus.lines == [1, 2, 3, 4]

    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"translation": [{"en": en, "ja": ja} for en, ja in PAIRS[:3]]}),
            "test": datasets.Dataset.from_dict({"translation": [{"en": PAIRS[3][0], "ja": PAIRS[3][1]}]}),
        }
    )
    splits.save_to_disk(str(tmp_path / "dd"))
    assert list(read_corpus(tmp_path / "dd")) == PAIRS[:3]
    assert list(read_corpus(f"{tmp_path / 'dd'}@test")) == [PAIRS[3]]
    assert "no split 'dev' (splits: train, test)" in error_text(f"{tmp_path / 'dd'}@dev")

    datasets.Dataset.from_dict({"a": ["x"], "b": ["y"]}).save_to_disk(str(tmp_path / "other"))
    message = error_text(str(tmp_path / "other"))
    assert "no columns 'en' and 'ja' and no 'translation' column (columns: a, b)" in message


def test_hf_hub_offline_is_a_clear_error(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    before = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    started = time.perf_counter()
    message = error_text("hf:someone/enja-pairs@train")
    assert time.perf_counter() - started < 10  # offline honoured even if set after import: no retries
    assert "hf:someone/enja-pairs@train: cannot load dataset 'someone/enja-pairs' (split 'train')" in message
    assert "use a local copy: a TSV/JSONL file or a folder saved with save_to_disk" in message
    # The offline switch is only held for the call; the libraries' own setting is restored.
    assert before == (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)


def test_builtin_specs_read_the_bundled_tsv():
    folder = bundled_data_dir()
    assert folder.is_dir()
    assert (folder / "train.tsv").is_file(), f"the bundled {folder / 'train.tsv'} is committed; it must be there"
    corpus = read_corpus("builtin:train")
    assert len(corpus) > 0
    assert corpus.source == str(folder / "train.tsv")


def test_unknown_builtin_name():
    assert (
        "builtin:test: unknown built-in corpus; use one of builtin:train, builtin:dev, builtin:long-dev"
        in error_text("builtin:test")
    )


# --------------------------------------------------------------------------------------------------
# Errors with file, line and fix


def test_missing_path_names_path_and_accepted_formats(tmp_path):
    spec = str(tmp_path / "nope.tsv")
    assert error_text(spec) == f"{spec}: no such file or folder. Accepted: {ACCEPTED_FORMATS}"


def test_unknown_extension_and_single_aligned_side(tmp_path):
    spec = write_text(tmp_path / "pairs.csv", "a,b\n")
    assert f"{spec}: unknown file type '.csv'. Accepted:" in error_text(spec)
    spec = write_text(tmp_path / "train.en", "a\n")
    stem = str(tmp_path / "train")
    assert f"pass both as '{stem}.en,{stem}.ja' or the prefix '{stem}'" in error_text(spec)


def test_folder_that_is_not_a_saved_dataset(tmp_path):
    assert "not a dataset saved with datasets' save_to_disk" in error_text(str(tmp_path))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("a\tb\tc", "3 columns, expected 2 (en<TAB>ja); remove tabs inside the sentences"),
        ("just one column", "1 column, expected 2 (en<TAB>ja); separate the English and the Japanese"),
    ],
)
def test_wrong_column_count_names_file_and_line(tmp_path, row, expected):
    text = "Hello.\tこんにちは。\n\nThanks.\tありがとう。\n" + row + "\n"
    spec = write_text(tmp_path / "pairs.tsv", text)
    assert error_text(spec).startswith(f"{spec}:4: {expected}")


def test_undecodable_bytes_name_file_line_and_iconv(tmp_path):
    data = "Hello.\tこんにちは。\n".encode() + "Thanks.\tありがとう。\n".encode("shift_jis")
    spec = write_bytes(tmp_path / "pairs.tsv", data)
    message = error_text(spec)
    assert message.startswith(f"{spec}:2: not valid UTF-8 (byte 0x82 at byte 9)")
    assert "convert it to UTF-8, e.g. iconv -f SHIFT_JIS -t UTF-8 pairs.tsv" in message


def test_nul_byte_and_utf16(tmp_path):
    spec = write_bytes(tmp_path / "a.tsv", "Hello.\tこんにちは。\nHi\x00.\tやあ。\n".encode())
    assert error_text(spec).startswith(f"{spec}:2: NUL byte at byte 3; the file looks binary or UTF-16")
    spec = write_bytes(tmp_path / "b.tsv", "Hello.\tこんにちは。\n".encode("utf-16"))
    assert f"{spec}: the file is UTF-16 encoded; convert it to UTF-8" in error_text(spec)


def test_bom_and_mixed_line_endings(tmp_path):
    data = b"\xef\xbb\xbfen\tja\r\n" + "Hello.\tこんにちは。\r\nThanks.\tありがとう。\rBye.\tさようなら。\n".encode()
    corpus = read_corpus(write_bytes(tmp_path / "pairs.tsv", data))
    assert list(corpus) == [("Hello.", "こんにちは。"), ("Thanks.", "ありがとう。"), ("Bye.", "さようなら。")]
    assert corpus.lines == [2, 3, 4]


def test_empty_sides_name_file_and_line(tmp_path):
    spec = write_tsv(tmp_path / "pairs.tsv", [PAIRS[0], ("Thanks.", "   "), PAIRS[2]])
    message = error_text(spec)
    assert message == (f"{spec}:2: empty Japanese side (English: 'Thanks.'); add the translation or delete the pair")
    spec = write_tsv(tmp_path / "pairs2.tsv", [PAIRS[0], PAIRS[1], ("", "やあ。")])
    assert error_text(spec).startswith(f"{spec}:3: empty English side (Japanese: 'やあ。')")
    en = write_text(tmp_path / "b.en", "Hello.\n\n")
    ja = write_text(tmp_path / "b.ja", "こんにちは。\nはい。\n")
    assert error_text(f"{en},{ja}").startswith(f"{en}:2: empty English side")


def test_swapped_columns_are_detected(tmp_path):
    spec = write_tsv(tmp_path / "pairs.tsv", [(ja, en) for en, ja in PAIRS])
    message = error_text(spec)
    assert message.startswith(f"{spec}: the columns look swapped — 4 of 4 Japanese-side sentences")
    assert f"e.g. {spec}:1: en='こんにちは。' ja='Hello.'" in message
    assert "put English first (en<TAB>ja)" in message
    assert len(read_corpus(spec, DataConfig(check_scripts=False))) == 4


def test_non_japanese_side_is_detected(tmp_path):
    spec = write_tsv(tmp_path / "ende.tsv", [("Hello.", "Hallo."), ("Thanks.", "Danke."), ("Yes.", "Ja.")])
    message = error_text(spec)
    assert f"{spec}: the Japanese side does not look Japanese — 3 of 3 sentences have no hiragana" in message


def test_script_check_tolerates_a_minority_and_tiny_corpora(tmp_path):
    half = [PAIRS[0], PAIRS[1], ("OK.", "OK."), ("PC", "PC")]
    assert len(read_corpus(write_tsv(tmp_path / "half.tsv", half))) == 4
    assert len(read_corpus(write_tsv(tmp_path / "two.tsv", [PAIRS[0], ("OK.", "OK.")]))) == 2
    one = write_tsv(tmp_path / "one.tsv", [("OK.", "OK.")])
    assert "does not look Japanese — 1 of 1 sentences" in error_text(one)


# --------------------------------------------------------------------------------------------------
# Cleaning


def test_clean_dedupes_keeping_the_first_and_its_line():
    corpus = ParallelCorpus(["a", "b", "a", "a"], ["あ", "び", "あ", "え"], "x.tsv", [10, 11, 12, 13])
    kept, stats = clean(corpus, DataConfig())
    assert list(kept) == [("a", "あ"), ("b", "び"), ("a", "え")]
    assert kept.lines == [10, 11, 13]
    assert stats == CleanStats(n_in=4, n_out=3, duplicates=1)
    kept, stats = clean(corpus, DataConfig(dedupe=False))
    assert len(kept) == 4 and stats.duplicates == 0


def test_clean_length_limits_and_empty_sides():
    corpus = corpus_of(
        [
            ("ok sentence", "よい文です"),
            ("x", "短すぎない文"),  # en too short
            ("fine here", "短"),  # ja too short
            ("a" * 21, "長い"),  # en too long
            ("long ja", "あ" * 21),  # ja too long
            ("", "空"),  # empty
            ("edge", "あ" * 20),  # exactly max_chars: kept
        ]
    )
    kept, stats = clean(corpus, DataConfig(min_chars=2, max_chars=20))
    assert kept.en == ["ok sentence", "edge"]
    assert stats.as_dict() == {
        "n_in": 7,
        "n_out": 2,
        "duplicates": 0,
        "too_short": 2,
        "too_long": 2,
        "empty": 1,
        "leaked": 0,
    }
    with pytest.raises(ConfigError, match="min_chars=5, max_chars=3"):
        clean(corpus, DataConfig(min_chars=5, max_chars=3))


def test_leakage_filter_drops_either_side_and_keeps_alignment():
    train = corpus_of(
        [
            ("Keep me.", "残して。"),
            ("I like cats.", "猫は好きではない。"),  # English side is in the eval set
            ("Something else.", "おやすみなさい。"),  # Japanese side is in the eval set
            ("Also keep.", "これも残す。"),
            ("i can 't swim .", "泳げない。"),  # same sentence, other case/tokenisation
            ("Last one.", "最後。"),
        ]
    )
    evaluation = corpus_of(
        [
            ("I like cats.", "私は猫が好きです。"),
            ("Good night.", "おやすみ なさい"),
            ("I can't swim.", "全然泳げない。"),
        ]
    )
    kept, stats = clean(train, DataConfig(), exclude=[evaluation])
    assert kept.en == ["Keep me.", "Also keep.", "Last one."]
    for en, ja in kept:
        assert dict(train)[en] == ja
    assert kept.lines == [1, 4, 6]
    assert stats.leaked == 3 and stats.n_out == 3


def test_load_pairs_concatenates_and_excludes(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", PAIRS[:2])
    b = write_text(
        tmp_path / "b.jsonl",
        "\n".join(json.dumps({"en": en, "ja": ja}, ensure_ascii=False) for en, ja in [*PAIRS[2:], PAIRS[0]]),
    )
    held_out = write_tsv(tmp_path / "test.tsv", [PAIRS[1]])
    corpus, stats = load_pairs([a, b], DataConfig(exclude=[held_out]))
    assert list(corpus) == [PAIRS[0], PAIRS[2], PAIRS[3]]
    assert corpus.source == f"{a} + {b}"
    assert stats.as_dict() == {
        "n_in": 5,
        "n_out": 3,
        "duplicates": 1,
        "too_short": 0,
        "too_long": 0,
        "empty": 0,
        "leaked": 1,
    }
    with pytest.raises(DataError, match="no parallel data given"):
        load_pairs([])


# --------------------------------------------------------------------------------------------------
# Detokenisation


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        ("i can 't tell who will arrive first .", "i can't tell who will arrive first."),
        ("no . i 'm sorry , i 've got to go back early .", "no. i'm sorry, i've got to go back early."),
        ("you 're right ; they 'll see what we 'd do .", "you're right; they'll see what we'd do."),
        ("it 's nine o 'clock .", "it's nine o'clock."),
        ("here 's $ 5 .", "here's $5."),
        ("he said , '' it 's nine o 'clock . ''", "he said, \"it's nine o'clock.\""),
        ("'' you 'd better come in , '' the man said .", '"you\'d better come in," the man said.'),
        ("read '' gone with the wind '' .", 'read "gone with the wind".'),
        ("it is ten minutes ' walk from here .", "it is ten minutes' walk from here."),
        ("we 're goin ' home .", "we're goin' home."),
        ("say ' ahhh ' .", "say 'ahhh'."),
        ("he ( the boss ) left !", "he (the boss) left!"),
        ("I do n't know ; ca n't say .", "I don't know; can't say."),
        ('`` Hello , " she said .', '"Hello," she said.'),
        ("it costs 1 , 000 yen .", "it costs 1,000 yen."),
        ("a well @-@ known fact", "a well-known fact"),
        ("i 'm gon na go .", "i'm gonna go."),
        ("AT&amp;T &apos;s plan", "AT&T's plan"),
        ("wait ... what ?!", "wait... what?!"),
        ("yes - no", "yes - no"),
        ("the '90s", "the '90s"),
    ],
)
def test_detokenize_en(tokens, text):
    assert detokenize_en(tokens) == text


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        ("彼 は つら い 人生 を 送 っ た 。", "彼はつらい人生を送った。"),
        ("私 は ５ 時 に 彼 を 迎え に 行 く つもり で す 。", "私は５時に彼を迎えに行くつもりです。"),
        ("私 は iPhone 15 を 買 っ た 。", "私はiPhone 15を買った。"),
        ("Windows 10 と Office 365 を 使 う", "Windows 10とOffice 365を使う"),
        ("Mr . Smith は 来 た 。", "Mr. Smithは来た。"),
        ("「 はい 」 と 言 っ た 。", "「はい」と言った。"),
        ("１０ ％ 引き", "１０％引き"),
        ("彼女 は  12 歳 に な っ た", "彼女は12歳になった"),
    ],
)
def test_detokenize_ja(tokens, text):
    assert detokenize_ja(tokens) == text


def test_read_corpus_detokenizes_when_asked(tmp_path):
    spec = write_tsv(tmp_path / "tok.tsv", [("i can 't swim .", "私 は 泳げ な い 。")])
    assert list(read_corpus(spec)) == [("i can 't swim .", "私 は 泳げ な い 。")]
    assert list(read_corpus(spec, DataConfig(detokenize=True))) == [("i can't swim.", "私は泳げない。")]


# --------------------------------------------------------------------------------------------------
# Splits


def test_split_is_deterministic_disjoint_and_sized():
    corpus = corpus_of([(f"sentence {i}", f"文 {i}") for i in range(200)])
    train, dev = split(corpus, 0.1, seed=1)
    again_train, again_dev = split(corpus, 0.1, seed=1)
    _, other_dev = split(corpus, 0.1, seed=2)
    assert (train.en, dev.en) == (again_train.en, again_dev.en)
    assert dev.en != other_dev.en
    assert len(dev) == 20 and len(train) == 180
    assert not set(train.lines) & set(dev.lines)
    assert sorted(train.lines + dev.lines) == list(range(1, 201))
    assert train.lines == sorted(train.lines)  # corpus order is kept
    for en, ja in dev:
        assert en.split()[1] == ja.split()[1]


def test_split_keeps_same_english_on_one_side():
    corpus = corpus_of([(f"Sentence {i // 2}.", f"文{i}") for i in range(40)])  # each English twice
    for seed in range(5):
        train, dev = split(corpus, 0.25, seed=seed)
        assert not {en.lower() for en in train.en} & {en.lower() for en in dev.en}
        assert len(dev) == 10


def test_split_rejects_bad_fraction_and_tiny_corpora():
    corpus = corpus_of(PAIRS)
    for fraction in (0.0, 1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match=r"must lie strictly between 0 and 1"):
            split(corpus, fraction, seed=0)
    with pytest.raises(DataError, match="1 pair\\(s\\); need at least 2"):
        split(corpus_of(PAIRS[:1]), 0.5, seed=0)
    train, dev = split(corpus_of(PAIRS[:2]), 0.01, seed=0)
    assert len(train) == 1 and len(dev) == 1


# --------------------------------------------------------------------------------------------------
# Inspection


def test_inspect_corpus_counts_and_lists_every_problem(tmp_path):
    data = (
        (
            "en\tja\n"  # 1 header
            "Hello there.\tこんにちは。\n"  # 2
            "Hello there.\tこんにちは。\n"  # 3 duplicate
            "one\ttwo\tthree\n"  # 4 three columns
            "Thanks.\t\n"  # 5 empty Japanese side
        ).encode()
        + b"caf\xe9\tcafe\n"
        + "こんにちは\tHello\nOK\tOK\n".encode()
    )  # 6 Latin-1, 7 swapped, 8
    spec = write_bytes(tmp_path / "crafted.tsv", data)
    missing = str(tmp_path / "missing.tsv")
    report = inspect_corpus([spec, missing], DataConfig())
    json.dumps(report)  # JSON-serialisable

    entry = report["files"][0]
    assert entry["source"] == spec
    assert entry["n_pairs"] == 5
    assert entry["duplicates"] == 1
    assert entry["en_with_japanese"] == 1
    assert entry["ja_script"] == {"hiragana": 0.4, "katakana": 0.0, "kanji": 0.0, "latin_only": 0.4, "none": 0.2}
    assert entry["en_chars"] == {"min": 2, "mean": 7.6, "median": 7, "p95": 12, "max": 12}
    assert entry["en_tokens"]["max"] == 2
    assert entry["problems"] == [
        f"{spec}:4: 3 columns, expected 2 (en<TAB>ja); remove tabs inside the sentences "
        "or keep only two columns (e.g. cut -f1,2)",
        f"{spec}:6: not valid UTF-8 (byte 0xe9 at byte 4); convert it to UTF-8, "
        "e.g. iconv -f CP1252 -t UTF-8 crafted.tsv > crafted.tsv.utf8",  # Latin-1 bytes: not Japanese
        f"{spec}:5: empty Japanese side (English: 'Thanks.'); add the translation or delete the pair",
        f"{spec}:7: looks swapped (Japanese script on the en side, none on the ja)",
    ]
    assert entry["n_problems"] == 4

    gone = report["files"][1]
    assert gone["n_pairs"] == 0 and gone["en_chars"]["min"] is None
    assert gone["problems"] == [f"{missing}: no such file or folder. Accepted: {ACCEPTED_FORMATS}"]

    total = report["total"]
    assert total["n_pairs"] == 5 and total["n_problems"] == 5 and len(total["problems"]) == 5


def test_inspect_reports_a_swapped_file_instead_of_raising(tmp_path):
    spec = write_tsv(tmp_path / "swapped.tsv", [(ja, en) for en, ja in PAIRS])
    report = inspect_corpus([spec])
    problems = report["files"][0]["problems"]
    assert problems[0].startswith(f"{spec}: the columns look swapped — 4 of 4")
    assert problems[1:] == [
        f"{spec}:{n}: looks swapped (Japanese script on the en side, none on the ja)" for n in range(1, 5)
    ]


def test_format_inspect_is_readable_text(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", [*PAIRS, PAIRS[0]])
    b = write_tsv(tmp_path / "b.tsv", [PAIRS[1], ("x\ty", "z")])
    text = format_inspect(inspect_corpus([a, b]))
    assert text.splitlines()[0] == a
    assert "  pairs                 5\n" in text
    assert "  duplicate pairs       1\n" in text
    assert "  Japanese script       hiragana 100.0%  katakana 0.0%  kanji 20.0%" in text
    assert f"    {b}:2: 3 columns, expected 2 (en<TAB>ja)" in text
    assert "total (2 files)\n  pairs                 6\n" in text
    assert text.rstrip().endswith("problems              1")


# --------------------------------------------------------------------------------------------------
# Scale and the shared benchmark corpus


def test_reads_fifty_thousand_pairs_quickly(tmp_path):
    rows = "".join(f"this is english sentence number {i} .\tこれ は 日本語 の 文 {i} です 。\n" for i in range(50_000))
    spec = write_text(tmp_path / "big.tsv", rows)
    started = time.perf_counter()
    corpus, stats = load_pairs([spec], DataConfig(detokenize=True))
    elapsed = time.perf_counter() - started
    assert len(corpus) == 50_000 and stats.duplicates == 0
    assert corpus.en[7] == "this is english sentence number 7." and corpus.ja[7] == "これは日本語の文7です。"
    assert elapsed < 6.0, f"reading 50,000 pairs took {elapsed:.1f} s"


@pytest.mark.skipif(not (BENCH_DATA / "dev.en").is_file(), reason="shared small_parallel_enja corpus absent")
def test_shared_tokenised_corpus_detokenises_to_natural_text():
    corpus = read_corpus(BENCH_DATA / "dev", DataConfig(detokenize=True))
    assert len(corpus) == 500
    assert corpus.en[:3] == [
        "show your own business.",
        "he lived a hard life.",
        "no. i'm sorry, i've got to go back early.",
    ]
    assert corpus.ja[:2] == ["自分の事をしろ。", "彼はつらい人生を送った。"]
    for en, ja in corpus:
        assert " ." not in en and " 's" not in en and " ," not in en and " 't" not in en
        assert " " not in ja
