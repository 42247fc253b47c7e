"""The model card (README.md) of a sentence-transformers folder: what the model is, how it was made, how to use it.

The same card is written by ``xlingual export -f st`` and, at publish time, into a distillation run's own
``RUN/model`` folder. Example::

    card = model_card(spec, model, read_distill_meta(model_dir), run_metrics(model_dir.parent), fingerprint)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlingual import __version__
from xlingual.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DISTILL_META", "hub_id", "model_card", "read_distill_meta", "run_metrics"]

#: What a distilled model folder records about its making (teacher, student, data).
DISTILL_META = "xlingual_distill.json"

#: Hugging Face Hub ids of the built-in models, for ``base_model`` in the card's metadata.
_BUILTIN_HUB_IDS = {
    "builtin:me5-small": "intfloat/multilingual-e5-small",
    "builtin:minilm-en": "sentence-transformers/all-MiniLM-L6-v2",
}


def hub_id(spec: str) -> str:
    """The Hub id a model spec stands for (built-in models map to their upstream), else the spec itself.

    Example: ``hub_id("builtin:me5-small") == "intfloat/multilingual-e5-small"``.
    """
    return _BUILTIN_HUB_IDS.get(spec, spec)


def read_distill_meta(model_dir: Path | None) -> dict[str, Any]:
    """The ``xlingual_distill.json`` of a distilled model folder; ``{}`` for any other folder (or None)."""
    if model_dir is None or not (model_dir / DISTILL_META).is_file():
        return {}
    try:
        meta = json.loads((model_dir / DISTILL_META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{model_dir / DISTILL_META} cannot be read ({exc}); re-save the distilled model") from exc
    return meta if isinstance(meta, dict) else {}


def run_metrics(run_dir: Path | None) -> dict[str, Any]:
    """The dev metrics of a distillation run (``run_dir/metrics.jsonl``): untouched, before and after training.

    Returns ``{"step", "after", "before", "untouched"}`` (metric name → value) or ``{}`` without evaluated
    records. Example: ``run_metrics(Path("runs/ja"))["after"]["en2ja_acc"]``.
    """
    if run_dir is None:
        return {}
    from xlingual.distillation.report import read_metrics

    records = read_metrics(run_dir)
    evaluated = [r for r in records if any(k.endswith("_acc") or k == "dev_mse" for k in r)]
    untouched = next((r for r in evaluated if r.get("untouched")), None)
    trained = [r for r in evaluated if not r.get("untouched")]
    if not trained:
        return {}
    first, last = trained[0], trained[-1]
    keys = [k for k in last if k.endswith("_acc") or k == "dev_mse"]
    return {
        "step": last.get("step"),
        "after": {k: last[k] for k in keys},
        "before": {k: first[k] for k in keys if k in first and first is not last},
        "untouched": {k: untouched[k] for k in keys if untouched and k in untouched},
    }


def _module_line(module: Any) -> str:
    """One module of the pipeline with what matters about it, e.g. ``Dense (384 → 384, Identity)``."""
    name = type(module).__name__
    if name == "Transformer":
        auto = getattr(module, "auto_model", None)
        return f"{name} ({type(auto).__name__ if auto is not None else 'unknown'})"
    get_config = getattr(module, "get_config_dict", None)
    config = get_config() if callable(get_config) else {}
    if name == "Pooling":
        return f"{name} ({config.get('pooling_mode', 'unknown')})"
    if name == "Dense":
        activation = type(getattr(module, "activation_function", None)).__name__
        dims = f"{config.get('in_features')} → {config.get('out_features')}"
        return f"{name} ({dims}, {activation})"
    return name


def _front_matter(spec: str, distill: dict[str, Any]) -> list[str]:
    if not distill:
        return [
            "---",
            f"base_model: {hub_id(spec)}",
            "library_name: sentence-transformers",
            "pipeline_tag: sentence-similarity",
            "tags: [sentence-transformers]",
            "---",
            "",
        ]
    return [
        "---",
        f"base_model: {hub_id(str(distill.get('student') or spec))}",
        "language: [en, ja]",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, sentence-similarity, knowledge-distillation, xlingual]",
        "---",
        "",
    ]


def _facts(spec: str, model: SentenceTransformer, distill: dict[str, Any], source_fp: str | None) -> list[str]:
    dim = model.get_embedding_dimension()
    prompt_name = getattr(model, "default_prompt_name", None)
    prompt = (getattr(model, "prompts", None) or {}).get(prompt_name) if prompt_name else None
    if distill:
        lines = [
            "# Japanese–English sentence encoder (distilled with xlingual)",
            "",
            f"A multilingual student distilled from an English teacher (Reimers & Gurevych, 2020): the student's "
            f"embeddings of English sentences and of their Japanese translations are trained onto the teacher's "
            f"embedding of the English sentence, so Japanese and English text share the teacher's {dim}-d space.",
            "",
            "| | |",
            "|---|---|",
            f"| teacher | `{distill.get('teacher')}` (fingerprint `{str(distill.get('teacher_fingerprint'))[:12]}`) |",
            f"| student | `{distill.get('student')}` (base model `{hub_id(str(distill.get('student')))}`) |",
            f"| training data | {', '.join(f'`{t}`' for t in distill.get('train') or []) or 'unknown'} |",
            f"| max sequence length | {distill.get('max_seq_length', model.max_seq_length)} tokens |",
        ]
    else:
        lines = [
            f"# Sentence encoder exported from `{spec}`",
            "",
            "| | |",
            "|---|---|",
            f"| source | `{spec}` |",
            f"| max sequence length | {model.max_seq_length} tokens |",
        ]
    lines += [
        f"| dimension | {dim} (cosine similarity) |",
        f"| modules | {' → '.join(type(module).__name__ for module in model)} |",
        f"| default prompt | {repr(prompt) if prompt else 'none'} (prepended to every text by `encode`) |",
    ]
    if source_fp:
        lines.append(f"| source fingerprint | `{source_fp[:12]}` |")
    return [*lines, ""]


def _architecture(model: SentenceTransformer) -> list[str]:
    lines = ["## Architecture", "", "The modules of this folder (`modules.json`), in the order `encode` runs them:", ""]
    lines += [f"{n}. {_module_line(module)}" for n, module in enumerate(model, start=1)]
    return [*lines, ""]


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    if not metrics.get("after"):
        return []
    lines = [
        "## Dev metrics of the run",
        "",
        "| metric | untouched | before fine-tuning | after |",
        "|---|---:|---:|---:|",
    ]
    for key, value in metrics["after"].items():
        untouched = metrics.get("untouched", {}).get(key)
        before = metrics.get("before", {}).get(key)
        lines.append(
            f"| {key} | {'' if untouched is None else f'{untouched:.4f}'} | "
            f"{'' if before is None else f'{before:.4f}'} | {value:.4f} |"
        )
    step = f" at step {metrics['step']}" if metrics.get("step") is not None else ""
    note = "Accuracies are fractions of the dev pairs (translation retrieval); dev_mse is ×100."
    return [*lines, "", f"After training{step}. {note}", ""]


def _usage(distill: dict[str, Any]) -> list[str]:
    lines = [
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/folder")',
        'embeddings = model.encode(["東京の天気はどうですか", "How is the weather in Tokyo?"])',
        "print(model.similarity(embeddings[:1], embeddings[1:]))",
        "```",
        "",
        "With xlingual: `xlingual evaluate -m path/to/this/folder -p pairs.tsv`, "
        "`xlingual index build docs.jsonl -m path/to/this/folder -o idx`, "
        "`xlingual export path/to/this/folder -f onnx -o exported` (PyTorch-free inference).",
        "",
    ]
    if distill:
        lines += [
            "## Query an index built by the teacher",
            "",
            f"This model embeds into the space of its teacher `{distill.get('teacher')}`, so Japanese queries can "
            "search an index of English documents that the teacher embedded, without re-embedding them:",
            "",
            "```sh",
            f"xlingual index build docs.jsonl -m {distill.get('teacher')} -o INDEX",
            'xlingual search INDEX "日本語" -Q path/to/this/folder',
            "```",
            "",
            "`xlingual search` accepts the model as a query model because `xlingual_distill.json` names the "
            "teacher's fingerprint.",
            "",
        ]
    return lines


def model_card(
    spec: str, model: SentenceTransformer, distill: dict[str, Any], metrics: dict[str, Any], source_fp: str | None
) -> str:
    """The README.md of a sentence-transformers folder (YAML front matter + Markdown).

    ``model``: the model as loaded from that folder (its modules are the card's architecture); ``distill``:
    :func:`read_distill_meta` of the folder (``{}`` for a model that was not distilled); ``metrics``:
    :func:`run_metrics` of its run (``{}``: no metrics section); ``source_fp``: the folder's fingerprint.
    Example: ``model_card("runs/ja/model", model, read_distill_meta(d), run_metrics(d.parent), None)``.
    """
    lines = _front_matter(spec, distill) + _facts(spec, model, distill, source_fp)
    lines += _architecture(model) + _metrics_table(metrics) + _usage(distill)
    lines += [f"Written by xlingual {__version__}.", ""]
    return "\n".join(lines)
