import errno
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xlingual import _io
from xlingual.cli import cli
from xlingual.config import DistillConfig, TrimConfig
from xlingual.errors import ConfigError, DataError, DiskFullError, ModelError
from xlingual.models.trim import KEPT_IDS_FILE, TRIM_INFO_FILE, trim_vocab
from xlingual.models.vocab import is_japanese_char

CORPUS = [
    "The weather is nice today.",
    "今日はいい天気です。",
    "Where is the station?",
    "駅はどこですか。",
    "Please close the window.",
    "窓を閉めてください。",
]
#: Japanese text not in the corpus: its characters exist in the vocabulary, its multi-character pieces may not.
UNSEEN_JA = "猫は静かに眠っている。昨日の会議は長かった。"


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _tokenizer(folder):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _embed(model_dir, texts):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu").encode(texts, convert_to_numpy=True)


@pytest.fixture(scope="module")
def trimmed(tiny_unigram_student, tmp_path_factory):
    root = tmp_path_factory.mktemp("trim")
    corpus = _write(root / "corpus.txt", CORPUS)
    result = trim_vocab(tiny_unigram_student, [str(corpus)], root / "trimmed")
    return result


def test_trimmed_model_embeds_kept_texts_exactly_as_before(tiny_unigram_student, trimmed):
    out = trimmed.out_dir
    assert (out / "modules.json").is_file()
    before = _embed(tiny_unigram_student, CORPUS)
    after = _embed(out, CORPUS)
    np.testing.assert_allclose(after, before, atol=1e-6)
    # The saved folder is a self-consistent sentence-transformers model.
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == trimmed.vocab_after == _tokenizer(out).get_vocab_size()
    assert trimmed.vocab_after < trimmed.vocab_before == 250002
    assert trimmed.params_after < trimmed.params_before
    assert trimmed.min_cosine > 0.9999


def test_kept_ids_map_new_tokens_to_old(tiny_unigram_student, trimmed):
    kept = np.load(trimmed.out_dir / KEPT_IDS_FILE)
    old, new = _tokenizer(Path(tiny_unigram_student)), _tokenizer(trimmed.out_dir)
    for text in [*CORPUS, "query: " + CORPUS[1]]:
        assert kept[new.encode(text).ids].tolist() == old.encode(text).ids
    # Specials keep their ids (they sort first), the mask moves to the end.
    assert [new.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert new.token_to_id("<mask>") == trimmed.vocab_after - 1
    info = json.loads((trimmed.out_dir / TRIM_INFO_FILE).read_text())
    assert info["vocab_after"] == trimmed.vocab_after and info["source"] == tiny_unigram_student


def test_no_japanese_character_becomes_unknown(tiny_unigram_student, trimmed):
    old, new = _tokenizer(Path(tiny_unigram_student)), _tokenizer(trimmed.out_dir)
    unk_old, unk_new = old.token_to_id("<unk>"), new.token_to_id("<unk>")
    assert unk_old not in old.encode(UNSEEN_JA).ids
    assert unk_new not in new.encode(UNSEEN_JA).ids
    # Every kana and every ideograph the original vocabulary has as a piece is still a piece.
    vocab = new.get_vocab()
    for piece in old.get_vocab():
        if len(piece) == 1 and is_japanese_char(piece):
            assert piece in vocab, piece
    # Unseen English letters do not become unknown either.
    assert unk_new not in new.encode("Zyzzyva quixotic jukebox!").ids


def test_keep_top_adds_the_most_probable_pieces(tiny_unigram_student, tmp_path, trimmed):
    corpus = _write(tmp_path / "corpus.txt", CORPUS)
    result = trim_vocab(tiny_unigram_student, [str(corpus)], tmp_path / "top", TrimConfig(keep_top=2000))
    assert trimmed.vocab_after < result.vocab_after <= trimmed.vocab_after + 2000
    assert result.kept["top"] > 0
    vocab = _tokenizer(tmp_path / "top").get_vocab()
    assert "▁the" in vocab and "▁de" in vocab  # among the most probable pieces, "de" is not in the corpus


def test_parallel_corpus_and_prompt_pieces_are_kept(tiny_unigram_student, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Good morning.\tおはようございます。\nThank you.\tありがとう。\n", encoding="utf-8")
    result = trim_vocab(tiny_unigram_student, [str(pairs)], tmp_path / "out")
    texts = ["Good morning.", "おはようございます。", "Thank you.", "ありがとう。"]
    # encode() puts the e5 prompt "query: " in front: identical vectors prove its pieces were kept.
    np.testing.assert_allclose(_embed(result.out_dir, texts), _embed(tiny_unigram_student, texts), atol=1e-6)


def test_errors_name_the_problem(tiny_models, tiny_unigram_student, tmp_path):
    corpus = _write(tmp_path / "corpus.txt", CORPUS)
    with pytest.raises(ModelError, match="WordPiece tokenizer; trimming supports SentencePiece Unigram"):
        trim_vocab(tiny_models["student"], [str(corpus)], tmp_path / "wp")
    with pytest.raises(ModelError, match="not a local model folder"):
        trim_vocab("someone/some-model", [str(corpus)], tmp_path / "hub")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="hold no text"):
        trim_vocab(tiny_unigram_student, [str(empty)], tmp_path / "e")
    sjis = tmp_path / "sjis.txt"
    sjis.write_bytes(b"hello\n" + "今日は\n".encode("shift_jis"))
    with pytest.raises(DataError, match=r"sjis.txt:2: not valid UTF-8 .*iconv -f SHIFT_JIS -t UTF-8 sjis.txt"):
        trim_vocab(tiny_unigram_student, [str(sjis)], tmp_path / "s")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists and is not empty; pass --overwrite"):
        trim_vocab(tiny_unigram_student, [str(corpus)], taken)
    with pytest.raises(ConfigError, match="not a trimmed model folder"):
        trim_vocab(tiny_unigram_student, [str(corpus)], taken, TrimConfig(overwrite=True))
    assert (taken / "notes.txt").read_text(encoding="utf-8") == "mine"  # never deleted
    with pytest.raises(ConfigError, match="--keep-top -1"):
        trim_vocab(tiny_unigram_student, [str(corpus)], tmp_path / "k", TrimConfig(keep_top=-1))


def test_overwrite_replaces_a_trimmed_folder(tiny_unigram_student, tmp_path):
    corpus = _write(tmp_path / "corpus.txt", CORPUS)
    first = trim_vocab(tiny_unigram_student, [str(corpus)], tmp_path / "out")
    second = trim_vocab(tiny_unigram_student, [str(corpus)], tmp_path / "out", TrimConfig(keep_top=100, overwrite=True))
    assert second.vocab_after > first.vocab_after
    assert json.loads((tmp_path / "out" / TRIM_INFO_FILE).read_text())["keep_top"] == 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_full_disk_keeps_the_previous_trimmed_folder(tiny_unigram_student, tmp_path, monkeypatch):
    corpus = _write(tmp_path / "corpus.txt", CORPUS)
    out = tmp_path / "out"
    trim_vocab(tiny_unigram_student, [str(corpus)], out)
    before = {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_write = _io.atomic_write_bytes

    def kept_ids_disk_full(path, data):
        if Path(path).name == KEPT_IDS_FILE:
            disk_full()
        return real_write(path, data)

    monkeypatch.setattr(_io, "atomic_write_bytes", kept_ids_disk_full)  # the kept-ids file, written after the weights
    message = r"no space left on device while writing .*out; the previous folder .* is intact"
    with pytest.raises(DiskFullError, match=message):
        trim_vocab(tiny_unigram_student, [str(corpus)], out, TrimConfig(keep_top=100, overwrite=True))
    assert {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_cli_trim(tiny_unigram_student, tiny_models, tmp_path):
    corpus = _write(tmp_path / "corpus.txt", CORPUS)
    runner = CliRunner()
    result = runner.invoke(cli, ["trim", tiny_unigram_student, "-c", str(corpus), "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["vocab_before"] == 250002 and payload["vocab_after"] < 10_000
    result = runner.invoke(cli, ["trim", tiny_models["student"], "-c", str(corpus), "-o", str(tmp_path / "w")])
    assert result.exit_code == 1
    assert "Unigram" in result.output and "Traceback" not in result.output


def test_distill_trim_vocab(tiny_models, tiny_unigram_student, tmp_path, isolated_home):
    from xlingual.distillation.run import distill
    from xlingual.distillation.run_dir import TRIMMED_STUDENT_DIR

    pairs = [(CORPUS[i], CORPUS[i + 1]) for i in range(0, len(CORPUS), 2)] * 3
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{en}\t{ja}\n" for en, ja in pairs), encoding="utf-8")
    config = DistillConfig(
        teacher=tiny_models["teacher"],
        student=tiny_unigram_student,
        train=[str(train)],
        dev=None,
        out=tmp_path / "run",
        batch_size=2,
        max_steps=3,
        trim_vocab=True,
        device="cpu",
        quiet=True,
    )
    result = distill(config)
    trimmed_info = json.loads((tmp_path / "run" / TRIMMED_STUDENT_DIR / TRIM_INFO_FILE).read_text())
    assert trimmed_info["vocab_after"] < 10_000
    model_config = json.loads((result.model_dir / "config.json").read_text())
    assert model_config["vocab_size"] == trimmed_info["vocab_after"]
    assert _embed(result.model_dir, CORPUS).shape == (len(CORPUS), 16)  # the head maps onto the 16-d teacher
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["trim_vocab"] is True


@pytest.mark.slow
def test_trimmed_me5_small_is_under_40_percent_and_identical(tmp_path):
    from xlingual.data.readers import read_corpus

    dev = read_corpus("builtin:dev")
    texts = [*dev.en, *dev.ja]
    result = trim_vocab("builtin:me5-small", ["builtin:train", "builtin:dev"], tmp_path / "me5-enja")
    assert result.param_ratio <= 0.40, result.summary()
    sample = texts[::10]
    from xlingual.models.specs import resolve_model_path

    np.testing.assert_allclose(
        _embed(result.out_dir, sample), _embed(resolve_model_path("builtin:me5-small"), sample), atol=1e-5
    )
