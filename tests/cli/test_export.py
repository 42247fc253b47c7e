"""``xlingual trim`` through the CLI: --detokenize reaches the corpus reader."""

import json
from pathlib import Path

from click.testing import CliRunner

from xlingual.cli import cli


def test_trim_detokenize(tiny_unigram_student, tmp_path, isolated_home):
    """Pieces kept for "I do n't know ." differ from those of the detokenised "I don't know."."""
    pairs = tmp_path / "tokenized.tsv"
    pairs.write_text("I do n't know .\t私 は 知ら ない 。\n", encoding="utf-8")

    def kept_pieces(*options):
        out = tmp_path / ("detok" if options else "plain")
        args = ["trim", tiny_unigram_student, "-c", str(pairs), "-o", str(out), "--json", *options]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
        return {piece for piece, _score in vocab}

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(tiny_unigram_student) / "tokenizer.json"))
    detok_pieces = set(tokenizer.encode("I don't know.", add_special_tokens=False).tokens)
    plain_pieces = set(tokenizer.encode("I do n't know .", add_special_tokens=False).tokens)
    assert detok_pieces != plain_pieces
    plain, detok = kept_pieces(), kept_pieces("--detokenize")
    assert detok_pieces <= detok and plain_pieces <= plain
    assert not detok_pieces <= plain
