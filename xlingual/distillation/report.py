"""Run reports: the loss and dev curves as a PNG, and a short Markdown summary with a before/after table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xlingual.distillation.run import RunResult

METRIC_LABELS = {
    "dev_mse": "dev MSE (×100, student ja vs teacher en)",
    "en2ja_acc": "dev en→ja retrieval accuracy",
    "ja2en_acc": "dev ja→en retrieval accuracy",
    "cross_ja2en_acc": "dev cross-model: student ja → teacher en",
}


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


def plot_curves(records: list[dict[str, Any]], out_png: Path) -> Path:
    """Draw training loss (left) and dev metrics (right) against the step; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
    loss = [(r["step"], r["loss"]) for r in records if "loss" in r]
    if loss:
        ax_loss.plot([s for s, _ in loss], [v for _, v in loss], lw=1)
    ax_loss.set(title="training loss (MSE en + MSE ja)", xlabel="step", ylabel="loss")
    ax_loss.set_yscale("log")
    for key in ("en2ja_acc", "ja2en_acc", "cross_ja2en_acc"):
        points = [(r["step"], r[key]) for r in records if key in r and "untouched" not in r]
        if points:
            ax_dev.plot([s for s, _ in points], [v for _, v in points], marker="o", label=key)
    ax_dev.set(title="dev retrieval accuracy", xlabel="step", ylabel="top-1 accuracy", ylim=(0, 1.02))
    if ax_dev.get_legend_handles_labels()[0]:
        ax_dev.legend(loc="lower right")
    fig.tight_layout()
    tmp = out_png.with_name(f".{out_png.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png


def write_run_report(run_dir: Path, result: RunResult) -> Path:
    """Write ``curves.png`` and ``report.md`` (before/after table) into the run directory."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    plot_curves(records, run_dir / "curves.png")
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
    tmp = out.with_name(".report.md.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out
