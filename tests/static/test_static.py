"""The static student: built from a distilled student, loadable by sentence-transformers and model2vec, in the
teacher's space for every command; bad starts refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.distillation.helpers import PAIRS, distill_config, write_corpus
from xlingual.cli import cli
from xlingual.config import StaticConfig
from xlingual.distillation.run import distill
from xlingual.errors import ConfigError, ModelError
from xlingual.models.specs import encode, load_model
from xlingual.search.compat import ModelInfo, shared_space
from xlingual.static import distill_static

DOCS = ["東京は日本の首都です。", "大阪はたこ焼きで有名です。", "札幌の冬はとても寒い。"]


@pytest.fixture(scope="module")
def distilled(tiny_models, tmp_path_factory):
    """A tiny distilled student (32-d, head onto the 16-d teacher), its pairs and a Japanese corpus."""
    root = tmp_path_factory.mktemp("static-src")
    corpus = write_corpus(root)
    run = distill(distill_config(tiny_models, corpus, root / "run"))
    docs = root / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    return {"model": str(run.model_dir), "train": str(corpus[0]), "dev": str(corpus[1]), "docs": str(docs)}


@pytest.fixture(scope="module")
def static_dir(distilled, tmp_path_factory):
    out = tmp_path_factory.mktemp("static") / "model"
    config = StaticConfig(
        source=distilled["model"], train=[distilled["train"]], corpus=[distilled["docs"]], out=out, epochs=3,
        batch_size=4, negatives=8, quiet=True,
    )  # fmt: skip
    result = distill_static(config)
    assert result.model_dir == out and result.dim == 16 and len(result.losses) == 3
    return out


def test_loads_in_sentence_transformers_and_model2vec_alike(static_dir):
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer

    texts = [*DOCS, "The weather is nice today.", "Where is the station?"]
    st = SentenceTransformer(str(static_dir), device="cpu").encode(texts)
    m2v = StaticModel.from_pretrained(str(static_dir)).encode(texts)
    assert st.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(st, axis=1), 1.0, atol=1e-5)
    m2v = m2v / np.linalg.norm(m2v, axis=1, keepdims=True)
    # identical where every piece is known; model2vec leaves [UNK] pieces out of the mean, sentence-transformers not
    np.testing.assert_allclose(st[3:], m2v[3:], atol=1e-5)
    assert (np.sum(st * m2v, axis=1) > 0.99).all()


def test_shares_the_teacher_space_and_records_its_source(static_dir, distilled, tiny_models):
    record = json.loads((static_dir / "xlingual_distill.json").read_text())
    assert record["kind"] == "static" and record["source"] == distilled["model"]
    teacher = ModelInfo.from_spec(tiny_models["teacher"])
    assert "distilled from" in (shared_space(teacher, ModelInfo.from_spec(str(static_dir))) or "")
    assert shared_space(ModelInfo.from_spec(distilled["model"]), ModelInfo.from_spec(str(static_dir))) is not None


def test_every_command_takes_it(static_dir, distilled, tiny_models, tmp_path):
    runner = CliRunner()
    static = str(static_dir)
    english = tmp_path / "en.txt"
    english.write_text("".join(f"{en}\n" for en, _ in PAIRS), encoding="utf-8")
    idx = tmp_path / "idx"
    built = runner.invoke(
        cli, ["index", "build", str(english), "-m", tiny_models["teacher"], "-Q", static, "-o", str(idx), "-q"]
    )
    assert built.exit_code == 0, built.output
    found = runner.invoke(cli, ["search", str(idx), "駅はどこですか。", "-Q", static, "--json", "-k", "2"])
    assert found.exit_code == 0 and len(json.loads(found.output)["results"]) == 2, found.output
    own = runner.invoke(cli, ["index", "build", distilled["docs"], "-m", static, "-o", str(tmp_path / "own"), "-q"])
    assert own.exit_code == 0, own.output
    emb = tmp_path / "emb.npy"
    embedded = runner.invoke(cli, ["embed", distilled["docs"], "-m", static, "-o", str(emb), "-q"])
    assert embedded.exit_code == 0 and np.load(emb).shape == (3, 16), embedded.output
    scored = runner.invoke(
        cli, ["evaluate", "-m", static, "-p", distilled["dev"], "-t", tiny_models["teacher"], "--json", "-q"]
    )
    assert scored.exit_code == 0 and "cross_ja2en_acc" in json.loads(scored.output), scored.output


def test_a_unigram_vocabulary_is_trimmed_to_the_pieces_used(tiny_models, tiny_unigram_student, tmp_path):
    corpus = write_corpus(tmp_path)
    run = distill(
        distill_config({**tiny_models, "student": tiny_unigram_student}, corpus, tmp_path / "run", max_steps=2)
    )
    out = tmp_path / "static"
    result = distill_static(StaticConfig(source=str(run.model_dir), train=[str(corpus[0])], out=out, epochs=1,
                                         batch_size=4, negatives=0, quiet=True))  # fmt: skip
    assert 5 < result.pieces < 50_000  # e5's 250,002 pieces → the used ones, specials and single characters
    vectors = encode(load_model(str(out)), ["今日はいい天気です。"])
    assert vectors.shape == (1, 16) and np.isfinite(vectors).all()


def test_bad_starts_are_refused_before_writing(distilled, tiny_models, tmp_path):
    with pytest.raises(ConfigError, match="a vectors file has no word pieces"):
        StaticConfig(source="vectors:en.parquet")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"does not say which teacher .*--teacher SPEC"):
        distill_static(StaticConfig(source=tiny_models["student"], train=[distilled["train"]], out=out, quiet=True))
    with pytest.raises(ModelError, match=r"embeds in 32 dimensions, its teacher .* in 16"):
        distill_static(StaticConfig(source=tiny_models["student"], teacher=tiny_models["teacher"],
                                    train=[distilled["train"]], out=out, quiet=True))  # fmt: skip
    assert not out.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not a static student folder"):
        distill_static(StaticConfig(source=distilled["model"], train=[distilled["train"]], out=other, quiet=True))
    assert (other / "notes.txt").read_text() == "mine"


def test_cli_json_and_overwrite(distilled, tmp_path):
    runner = CliRunner()
    out = tmp_path / "s"
    args = ["distill-static", "--from", distilled["model"], "--train", distilled["train"], "-o", str(out)]
    args += ["--epochs", "1", "-b", "4", "--negatives", "0", "--json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["dim"] == 16 and Path(json.loads(first.output)["model_dir"]) == out
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "already holds a model; pass --overwrite" in again.output
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0


def test_static_encoder_gives_sentence_transformers_vectors(static_dir):
    """load_model returns the NumPy encoder for a static folder: the same vectors as StaticEmbedding, no torch."""
    from sentence_transformers import SentenceTransformer

    from xlingual.static.encoder import StaticEncoder

    texts = [*DOCS, "The weather is nice today.", "", "   ", "🦜🦜", "Where is the station?" * 50]
    encoder = load_model(str(static_dir))
    assert isinstance(encoder, StaticEncoder) and encoder.get_embedding_dimension() == 16
    reference = SentenceTransformer(str(static_dir), device="cpu").encode(texts)
    for batch_size in (1, 3, 1024):  # empty texts inside a batch, at its start and alone
        np.testing.assert_allclose(encoder.encode(texts, batch_size=batch_size), reference, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts[0]), reference[0], atol=1e-5)
    assert not encoder.encode([""]).any()  # no piece: a zero vector, like EmbeddingBag
    assert isinstance(load_model(str(static_dir), pytorch=True), SentenceTransformer)
    assert isinstance(load_model(str(static_dir), device="cpu"), StaticEncoder)
    with pytest.raises(ModelError, match="a static model has no prompts"):
        encoder.encode(["x"], prompt_name="query")


def test_static_encoder_refuses_other_folders(static_dir, distilled, tmp_path):
    import shutil

    from xlingual.static.encoder import StaticEncoder, is_static_folder

    assert not is_static_folder(distilled["model"])  # a transformer student
    with pytest.raises(ModelError, match=r"is not a static model folder.*xlingual distill-static"):
        StaticEncoder(distilled["model"])
    broken = tmp_path / "broken"
    shutil.copytree(static_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match=r"model\.safetensors cannot be read"):
        StaticEncoder(broken)


def test_static_encoder_without_torch(static_dir, tmp_path):
    import subprocess
    import sys
    import textwrap

    reference = load_model(str(static_dir)).encode(DOCS)
    np.save(tmp_path / "reference.npy", reference)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "sentence_transformers"):
                    raise ImportError(name + " is blocked in this test")
                return None

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from xlingual.models.specs import load_model

        emb = load_model({str(static_dir)!r}).encode({DOCS!r})
        assert np.allclose(emb, np.load({str(tmp_path / "reference.npy")!r}), atol=1e-6)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-3000:]
