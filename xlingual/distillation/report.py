"""Run reports: metrics.jsonl read back, the loss and dev curves as ``curves.png``, and ``report.md``.

Example: ``write_run_report(Path("runs/x"), result, contrastive_weight=0.1)`` → ``runs/x/report.md``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual._io import atomic_write_bytes, atomic_write_text
from xlingual.distillation.loss import loss_label

if TYPE_CHECKING:
    from xlingual.distillation.run import RunResult

METRIC_LABELS = {
    "dev_mse": "dev MSE (×100, student ja vs teacher en)",
    "en2ja_acc": "dev en→ja retrieval accuracy",
    "ja2en_acc": "dev ja→en retrieval accuracy",
    "cross_ja2en_acc": "dev cross-model: student ja → teacher en",
}
#: Dev accuracies drawn on the right of curves.png.
CURVE_KEYS = ("en2ja_acc", "ja2en_acc", "cross_ja2en_acc")
#: Room above and below the dev accuracies on their axis (fractions).
ACC_MARGIN = 0.02


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Return the records of ``run_dir/metrics.jsonl`` (torn lines from a crash are skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (fewer at the start): ``(n,)`` float64.

    Example: ``moving_average([1, 3, 5], 2)`` → ``[1, 2, 4]``.
    """
    data = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], data]))
    ends = np.arange(1, len(data) + 1)
    starts = np.maximum(0, ends - max(1, window))
    return (sums[ends] - sums[starts]) / (ends - starts)


def smoothing_window(n_steps: int) -> int:
    """Steps averaged for the loss curve: about 1/20 of the run, at least 2 and at most 100."""
    return int(min(100, max(2, n_steps // 20)))


def accuracy_limits(values: Sequence[float]) -> tuple[float, float]:
    """The dev-accuracy axis: the data ± :data:`ACC_MARGIN`, clipped to [0, 1]; ``(0, 1)`` without data."""
    if not values:
        return 0.0, 1.0
    return max(0.0, min(values) - ACC_MARGIN), min(1.0, max(values) + ACC_MARGIN)


def plot_curves(records: list[dict[str, Any]], out_png: Path, *, contrastive_weight: float) -> Path:
    """Draw training loss (left: raw per step, faint; moving average, bold) and dev accuracies (right, zoomed).

    The loss is labelled by what it holds (``contrastive_weight`` > 0 adds the contrastive term). Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
    label = loss_label(contrastive_weight)
    loss = [(r["step"], r["loss"]) for r in records if "loss" in r]
    if loss:
        steps, values = [s for s, _ in loss], [v for _, v in loss]
        window = smoothing_window(len(values))
        ax_loss.plot(steps, values, lw=0.8, alpha=0.3, color="C0", label="per step")
        ax_loss.plot(steps, moving_average(values, window), lw=2, color="C0", label=f"moving average ({window} steps)")
        ax_loss.legend(loc="upper right")
    ax_loss.set(title=f"training {label}", xlabel="step", ylabel=label)
    ax_loss.set_yscale("log")
    shown: list[float] = []
    for key in CURVE_KEYS:
        points = [(r["step"], r[key]) for r in records if key in r and "untouched" not in r]
        if points:
            ax_dev.plot([s for s, _ in points], [v for _, v in points], marker="o", label=key)
            shown += [v for _, v in points]
    ax_dev.set(title="dev retrieval accuracy", xlabel="step", ylabel="top-1 accuracy", ylim=accuracy_limits(shown))
    if ax_dev.get_legend_handles_labels()[0]:
        ax_dev.legend(loc="lower right")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=110, format="png")
    plt.close(fig)
    atomic_write_bytes(out_png, image.getvalue())
    return out_png


def write_run_report(run_dir: Path, result: RunResult, *, contrastive_weight: float) -> Path:
    """Write ``curves.png`` and ``report.md`` (before/after table) into the run directory."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    plot_curves(records, run_dir / "curves.png", contrastive_weight=contrastive_weight)
    lines = [
        "# Distillation run",
        "",
        f"- model: `{result.model_dir}`",
        f"- steps: {result.steps}, pairs seen: {result.pairs_seen}",
        f"- training time: {result.seconds:.0f} s ({result.pairs_per_second:.1f} pairs/s)",
        "",
        "| dev metric | untouched student | after the closed-form head | distilled |",
        "|---|---:|---:|---:|",
    ]
    for key, label in METRIC_LABELS.items():
        if key in result.before and key in result.after:
            first = f"{result.untouched[key]:.4f}" if key in result.untouched else "–"
            lines.append(f"| {label} | {first} | {result.before[key]:.4f} | {result.after[key]:.4f} |")
    lines += ["", "Accuracies are fractions (1.0 = every dev sentence finds its translation first).", ""]
    lines.append("![loss and dev curves](curves.png)")
    out = run_dir / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out
