"""Ablation of the distillation start and learning rate: which closed-form head, and how fast to fine-tune.

For each variant, one ``xlingual distill`` run on the first ``--pairs`` training pairs of the Tanaka corpus
(one pass) reports dev metrics twice: right after the closed-form head (no gradient step yet: "head
only") and after fine-tuning. Prints one Markdown table.

Usage: python eval/ablation_distill.py [--pairs 2000] [--data DIR] [--variants procrustes:5e-5,lstsq:5e-5]

A variant is ``init:lr`` with optional ``:key=value`` settings of ``DistillConfig`` after it, e.g.
``procrustes:1e-4:contrastive_weight=0.1`` or ``procrustes:5e-5:freeze_layers=8:trim_vocab=true``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from xlingual import data
from xlingual.config import DataConfig, DistillConfig
from xlingual.distillation.dev import dev_set_name
from xlingual.distillation.run import distill

DEFAULT_VARIANTS = "procrustes:5e-5,lstsq:5e-5,none:5e-5,procrustes:2e-5,procrustes:1e-4"
KEYS = ("cross_ja2en_acc", "ja2en_acc", "en2ja_acc", "dev_mse")
#: The second dev set's metrics (``--extra-dev``), after its name's prefix (builtin:long-dev → long_dev_).
EXTRA_KEYS = ("cross_ja2en_acc", "ja2en_acc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--data", default=os.environ.get("XLINGUAL_BENCH_DATA", "../shared/data/small_parallel_enja"))
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated init:lr")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--extra-dev",
        default="builtin:long-dev",
        help="a second dev set, reported beside the Tanaka dev set ('none': only Tanaka; default: %(default)s)",
    )
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="xlingual-ablation-"))
    root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data)
    dev = data.read_corpus(str(data_dir / "dev"), DataConfig(detokenize=True))
    train, _ = data.load_pairs(
        [str(data_dir / "train")],
        DataConfig(detokenize=True, exclude=[str(data_dir / "dev"), str(data_dir / "test")]),
    )
    train = train.select(range(min(args.pairs, len(train))))
    train_tsv, dev_tsv = root / "train.tsv", root / "dev.tsv"
    train_tsv.write_text("".join(f"{en}\t{ja}\n" for en, ja in train), encoding="utf-8")
    dev_tsv.write_text("".join(f"{en}\t{ja}\n" for en, ja in dev), encoding="utf-8")

    rows = []
    for variant in args.variants.split(","):
        init, lr, *settings = variant.split(":")
        extra = {}
        for item in settings:
            key, _, value = item.partition("=")
            try:
                extra[key] = json.loads(value)
            except json.JSONDecodeError:
                extra[key] = value
        started = time.perf_counter()
        config = DistillConfig(
            train=[str(train_tsv)],
            dev=str(dev_tsv),
            out=root / variant.replace(":", "-").replace("=", ""),
            batch_size=args.batch_size,
            lr=float(lr),
            init=init,
            overwrite=True,
            quiet=True,
            save_every=0,
            keep_checkpoints=1,
            extra_dev=[] if args.extra_dev == "none" else [args.extra_dev],
            **extra,
        )
        result = distill(config)
        label = init + "".join(f", {k}={v}" for k, v in extra.items())
        rows.append((label, lr, result, time.perf_counter() - started))
        print(f"done {variant}: {result.after}", flush=True)

    print(f"\n{len(train)} training pairs, one pass, batch {args.batch_size} pairs; dev: {len(dev)} pairs")
    extra = "" if args.extra_dev == "none" else args.extra_dev
    print(
        "| head | lr | stage | cross ja→teacher-en | ja→en | en→ja | dev MSE×100 |"
        + (f" {extra}: cross ja→teacher-en | {extra}: ja→en |" if extra else "")
        + " train pairs/s | wall s |"
    )
    print("|---|---|---|---:|---:|---:|---:|" + ("---:|---:|" if extra else "") + "---:|---:|")
    for init, lr, result, wall in rows:
        for stage, metrics in (("head only", result.before), ("fine-tuned", result.after)):
            prefix = dev_set_name(extra, set()) + "_" if extra else ""
            keys = [*KEYS, *(prefix + key for key in (EXTRA_KEYS if extra else ()))]
            values = " | ".join(_cell(metrics.get(k), k) for k in keys)
            speed = f"{result.pairs_per_second:.1f} | {wall:.0f}" if stage == "fine-tuned" else " | "
            print(f"| {init} | {lr} | {stage} | {values} | {speed} |")


def _cell(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if key.endswith("mse") else f"{100 * value:.1f}"


if __name__ == "__main__":
    main()
