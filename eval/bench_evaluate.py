"""Time `retrieval_metrics` (accuracy, recall@5/10, exact MRR, margin accuracy; both directions) on random pairs.

No models: English vectors are random unit vectors in 384-D, each "Japanese" partner is the English
vector plus noise (cosine 1/sqrt(1 + noise²) with its partner), so the task has realistic misses.
Each size runs in its own process so that the peak RSS it reports is that size's alone.

    python eval/bench_evaluate.py                    # 10,000 and 100,000 pairs
    python eval/bench_evaluate.py --sizes 2000 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def run_one(n: int, dim: int, noise: float, threads: int | None) -> dict[str, float | int]:
    from xlingual.evaluation.metrics import retrieval_metrics
    from xlingual.search import faiss_ops as index

    used = index.set_num_threads(threads)
    rng = np.random.default_rng(0)
    en = rng.standard_normal((n, dim), dtype=np.float32)
    en /= np.linalg.norm(en, axis=1, keepdims=True)
    step = rng.standard_normal((n, dim), dtype=np.float32)
    step *= noise / np.linalg.norm(step, axis=1, keepdims=True)
    ja = en + step
    ja /= np.linalg.norm(ja, axis=1, keepdims=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    metrics = retrieval_metrics(en, ja)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "n": n,
        "dim": dim,
        "threads": used,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "peak_rss_mb": round(peak_mb),
        "mean_acc": round(metrics["mean_acc"], 4),
        "en2ja_mrr": round(metrics["en2ja_mrr"], 4),
        "margin_ja2en_acc": round(metrics["margin_ja2en_acc"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--noise", type=float, default=3.5, help="noise norm added to each partner")
    parser.add_argument("--threads", type=int, default=None, help="FAISS threads (default: CPUs available)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size, JSON out
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(run_one(args.one, args.dim, args.noise, args.threads)))
        return

    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--noise", str(args.noise)]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done n={n}", file=sys.stderr)

    header = [
        "n",
        "dim",
        "threads",
        "seconds",
        "cpu_seconds",
        "peak_rss_mb",
        "dense n×n MB",
        "mean_acc",
        "en2ja_mrr",
        "margin_ja2en_acc",
    ]
    print(" ".join(f"{h:>12}" for h in header))
    for row in rows:
        dense = row["n"] ** 2 * 4 / 2**20
        cells = [row["n"], row["dim"], row["threads"], row["seconds"], row["cpu_seconds"], row["peak_rss_mb"]]
        cells.append(f"{dense:.0f}")
        cells += [row["mean_acc"], row["en2ja_mrr"], row["margin_ja2en_acc"]]
        print(" ".join(f"{c!s:>12}" for c in cells))


if __name__ == "__main__":
    main()
