"""The evaluation report: metrics of several models side by side, as a table, JSON lines and files.

Example: ``print(evaluate(["builtin:me5-small"], "builtin:dev").format_table())``.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xlingual._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from xlingual.evaluation.metrics import METRIC_KEYS, Metrics

#: Keys shown ×100 in the table (fractions in the files).
_PERCENT_KEYS = frozenset(k for k in METRIC_KEYS if k.endswith(("_acc", "_mrr", "_spearman")) or "_recall@" in k)


@dataclass(frozen=True)
class PairSimilarities:
    """For the histogram plot: Japanese-query cosines with the true partner and the best wrong candidate."""

    model: str
    partner_scores: np.ndarray
    best_wrong_scores: np.ndarray


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class EvalReport:
    """Metrics of one or more models on the same pairs.

    ``metrics[i]`` is one model's dict with keys from :data:`~xlingual.evaluation.metrics.METRIC_KEYS`, in
    that order (fractions; see :mod:`xlingual.evaluation.metrics`). Example: ``print(report.to_json_lines())``.
    """

    metrics: list[Metrics]
    similarities: list[PairSimilarities] = field(default_factory=list, repr=False)
    primary_metric: ClassVar[str] = "mean_acc"

    def to_json_lines(self) -> str:
        """One JSON object per model, one per line (NaN becomes ``null``)."""
        return "\n".join(
            json.dumps({k: _json_safe(v) for k, v in row.items()}, ensure_ascii=False) for row in self.metrics
        )

    def format_table(self) -> str:
        """Models side by side, one metric per line; fractions shown as percent."""
        names = [str(row["model"]) for row in self.metrics]
        keys = [k for k in METRIC_KEYS if k != "model" and any(k in row for row in self.metrics)]
        key_width = max(len(k) for k in keys)
        widths = [max(len(name), 8) for name in names]
        lines = ["  ".join([f"{'metric':<{key_width}}", *(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))])]
        for key in keys:
            cells = [_format_cell(key, row.get(key)) for row in self.metrics]
            lines.append("  ".join([f"{key:<{key_width}}", *(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))]))
        lines.append("acc, recall, MRR and Spearman in %; mse = mean squared error ×100 (sentence-transformers).")
        return "\n".join(lines)

    def save(self, out_dir: str | os.PathLike[str], config: Mapping[str, Any]) -> list[Path]:
        """Write ``metrics.json``, ``config.json`` and ``similarity_histograms.png`` into ``out_dir``.

        Every file is replaced atomically (through :mod:`xlingual._io`). Returns the written paths.
        """
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "primary_metric": self.primary_metric,
            "models": [{k: _json_safe(v) for k, v in row.items()} for row in self.metrics],
        }
        written = [folder / "metrics.json", folder / "config.json"]
        atomic_write_json(written[0], payload)
        # default=str: configs may hold paths; the file is for people and provenance, not read back.
        atomic_write_text(written[1], json.dumps(config, ensure_ascii=False, indent=2, default=str) + "\n")
        if self.similarities:
            written.append(_plot_histograms(self.similarities, folder / "similarity_histograms.png"))
        return written


def _format_cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if key in _PERCENT_KEYS:
        return f"{100 * float(value):.2f}"
    if key in ("mse", "mse_en"):
        return f"{float(value):.4f}"
    if key == "seconds":
        return f"{float(value):.1f}"
    return str(value)


def _plot_histograms(similarities: Sequence[PairSimilarities], path: Path) -> Path:
    # The object API with an explicit Agg canvas: no pyplot, so the caller's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(similarities), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(similarities), squeeze=False)[0]
    for ax, sims in zip(axes, similarities, strict=True):
        wrong = sims.best_wrong_scores[np.isfinite(sims.best_wrong_scores)]
        values = np.concatenate([sims.partner_scores, wrong])
        bins = np.linspace(float(values.min()), float(values.max()) + 1e-6, 51)
        ax.hist(sims.partner_scores, bins=bins, alpha=0.6, label="true pair")
        ax.hist(wrong, bins=bins, alpha=0.6, label="best wrong candidate")
        ax.set_title(sims.model, fontsize=9)
        ax.set_xlabel("cosine (Japanese query → English)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=8)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    atomic_write_bytes(path, png.getbuffer())
    return path
