"""OnnxEncoder: parity with PyTorch, torch-free encoding, and the onnx:DIR model spec in every stage."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xlingual.errors import ModelError
from xlingual.models.onnx_encoder import OnnxEncoder, find_onnx_dir

SENTENCES = [
    "The weather in Tokyo is nice today.",
    "東京の今日の天気は良いです。",
    "hi",
    "  leading and trailing spaces  ",
    "word " * 200,  # longer than the tiny model's 64-token limit: truncation must match
    "猫",
]


@pytest.fixture(scope="module")
def torch_reference(tiny_onnx):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_onnx["source"], device="cpu")
    return model.encode(SENTENCES, batch_size=4, show_progress_bar=False)


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_encoder_matches_pytorch_on_every_sentence(tiny_onnx, torch_reference):
    encoder = OnnxEncoder(tiny_onnx["onnx"])
    emb = encoder.encode(SENTENCES, batch_size=4)
    assert emb.shape == (len(SENTENCES), 32) and emb.dtype == np.float32
    assert cosines(emb, torch_reference).min() >= 0.9999
    np.testing.assert_allclose(emb, torch_reference, atol=1e-4)


def test_batching_order_and_single_string(tiny_onnx):
    encoder = OnnxEncoder(tiny_onnx["onnx"])
    one_batch = encoder.encode(SENTENCES, batch_size=64)
    np.testing.assert_allclose(encoder.encode(SENTENCES, batch_size=1), one_batch, atol=1e-5)
    single = encoder.encode(SENTENCES[1])
    assert single.shape == (32,)
    np.testing.assert_allclose(single, one_batch[1], atol=1e-5)
    assert encoder.encode([]).shape == (0, 32)


def test_int8_model_is_close_but_not_identical(tiny_onnx, torch_reference):
    emb = OnnxEncoder(tiny_onnx["int8"]).encode(SENTENCES)
    cos = cosines(emb, torch_reference)
    assert cos.min() >= 0.95
    assert not np.allclose(emb, torch_reference, atol=1e-6)  # it really is the quantised graph


def test_normalize_and_surface(tiny_onnx):
    encoder = OnnxEncoder(tiny_onnx["onnx"])
    assert encoder.get_embedding_dimension() == 32 and encoder.max_seq_length == 64
    emb = encoder.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    counts = encoder.tokenizer(["hello world"], add_special_tokens=False)["input_ids"]
    assert counts == [[7592, 2088]]  # MiniLM's word pieces, untruncated, without [CLS]/[SEP]


def test_prompt_is_prepended(tiny_onnx):
    encoder = OnnxEncoder(tiny_onnx["onnx"])
    plain = encoder.encode(["hello"])
    prompted = encoder.encode(["hello"], prompt="query: ")
    np.testing.assert_allclose(prompted, encoder.encode(["query: hello"]), atol=1e-6)
    assert not np.allclose(plain, prompted)
    with pytest.raises(ModelError, match="'nope' is not one of this model's prompts"):
        encoder.encode(["hello"], prompt_name="nope")


def test_lazy_top_level_export():
    import xlingual

    assert xlingual.OnnxEncoder is OnnxEncoder and "OnnxEncoder" in xlingual.__all__


def test_find_onnx_dir_accepts_the_export_root(tiny_onnx, tmp_path):
    assert find_onnx_dir(tiny_onnx["root"]) == tiny_onnx["onnx"]
    assert find_onnx_dir(tiny_onnx["int8"]) == tiny_onnx["int8"]
    with pytest.raises(ModelError, match="does not exist"):
        find_onnx_dir(tmp_path / "missing")
    with pytest.raises(ModelError, match=r"no xlingual_onnx\.json"):
        find_onnx_dir(tmp_path)


def test_onnx_spec_loads_and_resolves(tiny_onnx):
    from xlingual.models.specs import fingerprint, load_model, resolve_model_path

    encoder = load_model(f"onnx:{tiny_onnx['root']}")
    assert isinstance(encoder, OnnxEncoder) and encoder.precision == "float32"
    assert resolve_model_path(f"onnx:{tiny_onnx['int8']}") == tiny_onnx["int8"]
    # fp32 and int8 are different models to every cache keyed by the folder fingerprint
    assert fingerprint(tiny_onnx["onnx"]) != fingerprint(tiny_onnx["int8"])
    with pytest.raises(ModelError, match="names no folder"):
        load_model("onnx:")


def test_onnx_spec_in_evaluate_matches_pytorch(tiny_onnx, isolated_home):
    from xlingual.evaluation.evaluator import evaluate

    report = evaluate([tiny_onnx["source"], f"onnx:{tiny_onnx['onnx']}", f"onnx:{tiny_onnx['int8']}"], "builtin:dev")
    torch_row, onnx_row, int8_row = report.metrics
    for key in ("en2ja_acc", "ja2en_acc", "en2ja_mrr", "ja2en_mrr"):
        assert onnx_row[key] == pytest.approx(torch_row[key], abs=0.011), key  # at most 2 of 200 ties flip
    assert int8_row["model"].endswith("onnx-int8")
    # The int8 row against accuracy counted by hand from the int8 model's own vectors (brute force, twins correct).
    from xlingual.data.readers import read_corpus
    from xlingual.models.specs import encode

    pairs = read_corpus("builtin:dev")
    int8 = OnnxEncoder(tiny_onnx["int8"])
    en_emb, ja_emb = encode(int8, list(pairs.en)), encode(int8, list(pairs.ja))
    en2ja_acc, en2ja_mrr = _accuracy_and_mrr(en_emb, ja_emb, list(pairs.ja))
    ja2en_acc, ja2en_mrr = _accuracy_and_mrr(ja_emb, en_emb, list(pairs.en))
    assert int8_row["en2ja_acc"] == pytest.approx(en2ja_acc, abs=1e-9)
    assert int8_row["ja2en_acc"] == pytest.approx(ja2en_acc, abs=1e-9)
    assert int8_row["mean_acc"] == pytest.approx((en2ja_acc + ja2en_acc) / 2, abs=1e-9)
    assert int8_row["en2ja_mrr"] == pytest.approx(en2ja_mrr, abs=1e-9)
    assert int8_row["ja2en_mrr"] == pytest.approx(ja2en_mrr, abs=1e-9)


def _accuracy_and_mrr(query_emb, doc_emb, doc_texts):
    """Top-1 accuracy and MRR by brute force: rank = 1 + wrong sentences scoring at least the partner's score.

    A sentence with the partner's text counts as the partner; a tie with a wrong sentence ranks it behind.
    """
    texts = np.array(doc_texts, dtype=object)
    sims = query_emb @ doc_emb.T
    ranks = []
    for i, row in enumerate(sims):
        twin = texts == texts[i]
        ranks.append(1 + int(np.count_nonzero(row[~twin] >= row[twin].max() - 1e-6)))
    ranks = np.array(ranks)
    return float(np.mean(ranks == 1)), float(np.mean(1.0 / ranks))


def test_onnx_spec_in_search(tiny_onnx, tmp_path):
    from xlingual.config import IndexConfig
    from xlingual.search.index import Index

    docs = tmp_path / "docs.txt"
    docs.write_text("東京の天気は晴れです。\n猫がソファーで寝ている。\nI like green tea.\n", encoding="utf-8")
    config = IndexConfig(model=f"onnx:{tiny_onnx['onnx']}", show_progress=False)
    index = Index.build(docs, tmp_path / "idx", config=config)
    hits = Index.load(tmp_path / "idx").search("猫がソファーで寝ている。", k=1)
    assert hits[0].doc_id == "docs.txt:2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert len(index) == 3


def test_encoding_without_torch(tiny_onnx, torch_reference, tmp_path):
    """A process where `import torch` fails can still encode (OnnxEncoder, onnx: specs, embed)."""
    np.save(tmp_path / "reference.npy", torch_reference)
    (tmp_path / "sentences.json").write_text(json.dumps(SENTENCES), encoding="utf-8")
    (tmp_path / "texts.txt").write_text("\n".join(SENTENCES[:3]) + "\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "sentence_transformers"):
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from xlingual.models.onnx_encoder import OnnxEncoder
        from xlingual.models.specs import load_model
        from xlingual.export.embeddings import embed_file
        from xlingual.export.read import read_embeddings
        from xlingual.config import EmbedConfig

        sentences = json.loads(open({str(tmp_path / "sentences.json")!r}, encoding="utf-8").read())
        reference = np.load({str(tmp_path / "reference.npy")!r})
        emb = OnnxEncoder({str(tiny_onnx["onnx"])!r}).encode(sentences)
        cos = (emb * reference).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(reference, axis=1)
        assert cos.min() >= 0.9999, cos
        assert load_model("onnx:{tiny_onnx["root"]}").encode(["x"]).shape == (1, 32)
        config = EmbedConfig(model="onnx:{tiny_onnx["onnx"]}", show_progress=False)
        embed_file({str(tmp_path / "texts.txt")!r}, {str(tmp_path / "out.parquet")!r}, config)
        assert read_embeddings({str(tmp_path / "out.parquet")!r}).vectors.shape == (3, 32)
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules), "torch was imported"
        print("ok", float(cos.min()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
