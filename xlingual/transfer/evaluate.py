"""How well a head labels a test set through several models: accuracy, macro-F1, per class, confusion.

One report can hold the teacher reading English, the teacher reading Japanese, the untouched student and
the distilled student side by side; a model outside the head's space is measured too (as a baseline: what
the head gives without distillation) and marked as such.

Example::

    report = evaluate_classifier(Classifier.load("clf"), ["builtin:topics-test-ja"],
                                 ["builtin:me5-small", "runs/distill/model"])
    print(report.format_table())
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import _io
from xlingual.config import ClassifyConfig
from xlingual.errors import ClassifierError
from xlingual.models.encoder import Encoder
from xlingual.transfer.classifier import Classifier, make_embedder
from xlingual.transfer.labelled import LabelledSet, read_labelled

__all__ = ["ClassifierReport", "ClassifierResult", "evaluate_classifier", "score_predictions"]


@dataclass(frozen=True)
class ClassifierResult:
    """One model on one test set."""

    model: str
    test: str
    #: Why the model may feed the head, or ``None`` when it does not share the head's space (a baseline row).
    shared_space: str | None
    n: int
    accuracy: float
    macro_f1: float
    #: label → {"precision", "recall", "f1", "support"}
    per_class: dict[str, dict[str, float]]
    #: Rows: true labels, columns: predicted labels, both in ``labels`` order.
    labels: tuple[str, ...]
    confusion: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "model": self.model,
            "test": self.test,
            "shared_space": self.shared_space,
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": self.per_class,
            "labels": list(self.labels),
            "confusion": self.confusion,
        }


def score_predictions(
    true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> tuple[float, float, dict[str, dict[str, float]], list[list[int]]]:
    """Accuracy, macro-F1 (over ``labels``), per-class precision/recall/F1/support and the confusion matrix.

    A class never predicted has precision 0; macro-F1 averages F1 over the labels that occur in ``true`` or
    ``predicted`` (scikit-learn's ``f1_score(average="macro")``).
    Example: ``score_predictions(["a", "b"], ["a", "a"], ["a", "b"])[0] == 0.5``.
    """
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    tp = np.diag(matrix).astype(np.float64)
    support, predicted_n = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(tp, predicted_n, out=np.zeros_like(tp), where=predicted_n > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    accuracy = float(tp.sum() / max(1, len(true)))
    present = (support > 0) | (predicted_n > 0)  # scikit-learn's convention: labels seen in true or predicted
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    return accuracy, macro_f1, per_class, matrix.tolist()


@dataclass
class ClassifierReport:
    """Every (model, test set) result of one evaluation, in the order given."""

    classifier: str
    results: list[ClassifierResult] = field(default_factory=list)

    def format_table(self) -> str:
        """A plain-text table: one row per model and test set, accuracy and macro-F1 in percent."""
        rows = [("model", "test set", "n", "accuracy", "macro-F1")]
        for r in self.results:
            name = r.model if r.shared_space else f"{r.model} (other space)"
            rows.append((name, r.test, str(r.n), f"{100 * r.accuracy:.1f}", f"{100 * r.macro_f1:.1f}"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if any(not r.shared_space for r in self.results):
            lines.append("(other space): the model does not share the head's vector space; shown as a baseline.")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the classifier and every result."""
        return {"classifier": self.classifier, "results": [r.as_dict() for r in self.results]}

    def write(self, out: str | os.PathLike[str]) -> list[Path]:
        """Write ``metrics.json`` and one confusion-matrix PNG per result into ``out``; returns the files."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "metrics.json"]
        _io.atomic_write_json(written[0], self.as_dict())
        for i, result in enumerate(self.results, start=1):
            path = folder / f"confusion-{i}-{_slug(result.model)}-{_slug(result.test)}.png"
            _io.atomic_write_bytes(path, _confusion_png(result))
            written.append(path)
        return written


def _slug(text: str) -> str:
    name = Path(text.rstrip("/")).name or text
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:40]


def _confusion_png(result: ClassifierResult) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(result.confusion)
    n = len(result.labels)
    fig, ax = plt.subplots(figsize=(2 + 0.6 * n, 1.6 + 0.6 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), result.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), result.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set_title(f"{_slug(result.model)} on {_slug(result.test)}: {100 * result.accuracy:.1f}%", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def evaluate_classifier(
    classifier: Classifier,
    tests: Sequence[str | os.PathLike[str] | LabelledSet],
    models: Sequence[str | Encoder],
    config: ClassifyConfig | None = None,
    *,
    name: str = "",
) -> ClassifierReport:
    """Score ``classifier`` on every test set through every model (test sets embedded through the cache).

    Test labels the head does not know count as errors (they are listed as classes with no predictions).
    Raises :class:`ClassifierError` when a model's dimension differs from the head's.
    """
    config = config or ClassifyConfig()
    if not models:
        raise ClassifierError("no model to evaluate with; pass at least one -m MODEL")
    report = ClassifierReport(name or classifier.model.spec)
    sets = [read_labelled(test, config) for test in tests]
    embedder = make_embedder(config)
    for spec in models:
        shared = _shared(classifier, spec)
        name = spec if isinstance(spec, str) else str(getattr(spec, "spec", "") or type(spec).__name__)
        for labelled in sets:
            emb = embedder(spec, labelled.texts)
            predicted = [p.label for p in classifier.predict_embeddings(emb, top=1)]
            labels = tuple(classifier.labels) + tuple(sorted(set(labelled.labels) - set(classifier.labels)))
            accuracy, macro_f1, per_class, confusion = score_predictions(labelled.labels, predicted, labels)
            report.results.append(
                ClassifierResult(
                    name, labelled.source, shared, len(labelled), accuracy, macro_f1, per_class, labels, confusion
                )
            )
    return report


def _shared(classifier: Classifier, spec: str | Encoder) -> str | None:
    if not isinstance(spec, str):
        return "a loaded model (not checked)"
    try:
        return classifier.check_model(spec)
    except ClassifierError:
        return None
