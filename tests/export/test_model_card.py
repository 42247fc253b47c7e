"""The model card: true metadata and sections, the same from `export -f st` and from the distilled folder."""

import json

import pytest

from xlingual.config import ExportConfig
from xlingual.export.model_card import model_card, read_distill_meta, run_metrics
from xlingual.export.model_export import export_model


@pytest.fixture(scope="module")
def distilled_model(tiny_models, tmp_path_factory):
    """A run folder like `xlingual distill` writes: model/ (5 modules, with the head), metrics.jsonl beside it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    torch.manual_seed(0)
    student = SentenceTransformer(tiny_models["student"], device="cpu")
    modules = [*student, Dense(32, 16, bias=True, activation_function=torch.nn.Identity()), Normalize()]
    model = SentenceTransformer(modules=modules, device="cpu")
    run = tmp_path_factory.mktemp("run")
    model.save(str(run / "model"))
    meta = {
        "teacher": "builtin:minilm-en",
        "teacher_fingerprint": "cd" * 32,
        "student": "builtin:me5-small",
        "train": ["corpus/train", "extra.tsv"],
        "max_seq_length": 64,
    }
    (run / "model" / "xlingual_distill.json").write_text(json.dumps(meta), encoding="utf-8")
    records = [
        {"step": 0, "untouched": 1.0, "en2ja_acc": 0.5, "ja2en_acc": 0.25, "dev_mse": 8.0},
        {"step": 0, "en2ja_acc": 0.625, "ja2en_acc": 0.5, "dev_mse": 4.0},
        {"step": 12, "final": 1.0, "en2ja_acc": 0.875, "ja2en_acc": 0.75, "dev_mse": 2.0},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return run


def test_run_metrics_reads_the_run_folder(distilled_model):
    metrics = run_metrics(distilled_model)  # the RUN folder, not RUN/model
    assert metrics == {
        "step": 12,
        "after": {"en2ja_acc": 0.875, "ja2en_acc": 0.75, "dev_mse": 2.0},
        "before": {"en2ja_acc": 0.625, "ja2en_acc": 0.5, "dev_mse": 4.0},
        "untouched": {"en2ja_acc": 0.5, "ja2en_acc": 0.25, "dev_mse": 8.0},
    }
    assert run_metrics(distilled_model / "model") == {} and run_metrics(None) == {}


def test_card_of_a_distilled_model_is_true_and_complete(distilled_model):
    from sentence_transformers import SentenceTransformer

    model_dir = distilled_model / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    card = model_card(str(model_dir), model, read_distill_meta(model_dir), run_metrics(distilled_model), None)
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert front.splitlines() == [
        "base_model: intfloat/multilingual-e5-small",
        "language: [en, ja]",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, sentence-similarity, knowledge-distillation, xlingual]",
    ]
    assert "| teacher | `builtin:minilm-en` (fingerprint `cdcdcdcdcdcd`) |" in body
    assert "| student | `builtin:me5-small` (base model `intfloat/multilingual-e5-small`) |" in body
    assert "| training data | `corpus/train`, `extra.tsv` |" in body
    assert "| modules | Transformer → Pooling → Normalize → Dense → Normalize |" in body  # 5: the head is there
    assert "4. Dense (32 → 16, Identity)" in body and "2. Pooling (mean)" in body
    assert "| en2ja_acc | 0.5000 | 0.6250 | 0.8750 |" in body and "After training at step 12." in body
    assert 'SentenceTransformer("path/to/this/folder")' in body
    assert 'xlingual search INDEX "日本語" -Q path/to/this/folder' in body
    assert "xlingual index build docs.jsonl -m builtin:minilm-en -o INDEX" in body


def test_export_st_writes_the_same_card(distilled_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    model_dir = distilled_model / "model"
    result = export_model(str(model_dir), tmp_path / "exported", ExportConfig(formats=["st"]))
    model = SentenceTransformer(str(model_dir), device="cpu")
    from xlingual.models.specs import fingerprint

    expected = model_card(
        str(model_dir), model, read_distill_meta(model_dir), run_metrics(distilled_model), fingerprint(model_dir)
    )
    assert (result.folders["st"] / "README.md").read_text(encoding="utf-8") == expected


def test_card_of_a_plain_model_claims_no_distillation(tiny_models):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_models["student"], device="cpu")
    card = model_card("builtin:me5-small", model, {}, {}, None)
    assert "base_model: intfloat/multilingual-e5-small" in card and "language:" not in card
    assert "teacher" not in card and "## Dev metrics" not in card and "## Architecture" in card
