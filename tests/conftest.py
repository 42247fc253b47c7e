"""Shared test set-up: everything runs offline, as in CI."""

from __future__ import annotations

import os

# Set before any Hugging Face library is imported, so no test can reach (or wait on) a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest


def _tiny_sentence_model(out, *, hidden: int, seed: int, tokenizer_dir) -> str:
    """A randomly initialised 2-layer BERT sentence model (mean pooling + Normalize), saved to ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    hf_dir = out.parent / f"{out.name}-hf"
    BertModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(hidden, pooling_mode="mean"), Normalize()], device="cpu")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Two tiny local models sharing MiniLM's tokenizer: a 16-d "teacher" and a 32-d "student"."""
    from xlingual.models.builtins import minilm_dir

    root = tmp_path_factory.mktemp("tiny-models")
    teacher = _tiny_sentence_model(root / "teacher", hidden=16, seed=1, tokenizer_dir=minilm_dir())
    student = _tiny_sentence_model(root / "student", hidden=32, seed=2, tokenizer_dir=minilm_dir())
    return {"teacher": teacher, "student": student}


@pytest.fixture(scope="session")
def tiny_unigram_student(tmp_path_factory):
    """A tiny 32-d BERT with multilingual-e5-small's SentencePiece (Unigram) tokenizer and its e5 prompts."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, XLMRobertaTokenizerFast

    from xlingual.models.builtins import e5_tokenizer_path
    from xlingual.models.e5_convert import E5_PROMPTS

    torch.manual_seed(3)
    root = tmp_path_factory.mktemp("tiny-unigram")
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(e5_tokenizer_path()), model_max_length=512)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    hf_dir = root / "hf"
    BertModel(config, add_pooling_layer=False).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(
        modules=[transformer, Pooling(32, pooling_mode="mean"), Normalize()],
        device="cpu",
        prompts=dict(E5_PROMPTS),
        default_prompt_name="query",
    )
    model.save(str(root / "student"))
    return str(root / "student")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_models, tmp_path_factory):
    """The tiny student exported to ONNX: ``{"root", "onnx", "int8", "source"}`` (folders and the source model)."""
    from xlingual.config import ExportConfig
    from xlingual.export.model_export import export_model

    out = tmp_path_factory.mktemp("tiny-onnx") / "export"
    export_model(tiny_models["student"], out, ExportConfig(formats=["onnx"], quantize="int8"))
    return {"root": out, "onnx": out / "onnx", "int8": out / "onnx-int8", "source": tiny_models["student"]}


@pytest.fixture(scope="session")
def tiny_openvino(tiny_models, tmp_path_factory):
    """The tiny student exported to OpenVINO: ``{"root", "openvino", "int8", "source"}`` (folders, source model).

    Calibrated on 40 sentences of the bundled pairs; the tiny random model's accuracy is noise, so the int8
    accuracy check only reports.
    """
    from xlingual.config import ExportConfig
    from xlingual.export.model_export import export_model

    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install -e '.[openvino]')")
    pytest.importorskip("nncf", reason="the openvino extra is not installed (pip install -e '.[openvino]')")
    out = tmp_path_factory.mktemp("tiny-openvino") / "export"
    config = ExportConfig(formats=["openvino"], quantize="int8", calibration_size=40, int8_max_accuracy_drop=None)
    export_model(tiny_models["student"], out, config)
    return {"root": out, "openvino": out / "openvino", "int8": out / "openvino-int8", "source": tiny_models["student"]}


@pytest.fixture()
def isolated_home(tmp_path, monkeypatch):
    """A private $XLINGUAL_HOME so caches written by a test never leak into another."""
    home = tmp_path / "xlingual-home"
    monkeypatch.setenv("XLINGUAL_HOME", str(home))
    return home
