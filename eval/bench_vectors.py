"""Distilling from a teacher given as vectors: the cross-model accuracy of the teacher model, at any dimension.

The built-in teacher's vectors of the English side are exported once (``xlingual embed``: the runs below never
load the teacher), then copied through fixed random semi-orthogonal maps to wider spaces (every cosine kept,
the coordinates mixed: a stand-in for a provider's 768/1,536-d vectors). One ``xlingual distill`` per teacher
on the same Tanaka pairs (``--exclude`` of the test pairs), then ``xlingual evaluate`` of each student against
its own teacher on the Tanaka test pairs and ``builtin:long-dev``. Prints one Markdown table; the last column
is the difference from the run on the teacher model (target: within ±0.5 points).

    python eval/bench_vectors.py --pairs 5000
    python eval/bench_vectors.py --pairs 50000 --dims 384,768,1536     # the issue's scale: ~1 h per run on 2 cores

Everything runs offline; ``--data`` is a folder with train/dev/test ``.en``/``.ja`` files (the Tanaka corpus).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEACHER = "builtin:minilm-en"
KEYS = ("cross_ja2en_acc", "cross_en2ja_acc", "ja2en_acc")


def rotate(src: Path, out: Path, dim: int, seed: int = 0) -> Path:
    """Write ``out``: ``src``'s texts with their vectors mapped to ``dim`` dimensions by a fixed semi-orthogonal map."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xlingual.models.vectors import VectorsSpec, read_vectors

    texts, vectors, _ = read_vectors(VectorsSpec.parse(f"vectors:{src}"))
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, vectors.shape[1])))
    wide = (vectors @ basis.T).astype(np.float32)
    pq.write_table(pa.table({"text": texts, "embedding": pa.array(list(wide), type=pa.list_(pa.float32(), dim))}), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5000, help="training pairs (the first N after cleaning)")
    parser.add_argument("--dims", default="384,768,1536", help="dimensions of the vectors teachers (384: no rotation)")
    parser.add_argument("--data", default=os.environ.get("XLINGUAL_BENCH_DATA", "../shared/data/small_parallel_enja"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from xlingual import data
    from xlingual.config import DataConfig, DistillConfig, EmbedConfig, EvalConfig
    from xlingual.distillation.run import distill
    from xlingual.evaluation.evaluator import evaluate
    from xlingual.export.embeddings import embed_file

    root = args.out or Path(tempfile.mkdtemp(prefix="xlingual-vectors-"))
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(args.data)
    test = data.read_corpus(str(folder / "test"), DataConfig(detokenize=True))
    train, _ = data.load_pairs(
        [str(folder / "train")], DataConfig(detokenize=True, exclude=[str(folder / "dev"), str(folder / "test")])
    )
    train = train.select(range(min(args.pairs, len(train))))
    train_tsv, test_tsv = root / "train.tsv", root / "test.tsv"
    train_tsv.write_text("".join(f"{en}\t{ja}\n" for en, ja in train), encoding="utf-8")
    test_tsv.write_text("".join(f"{en}\t{ja}\n" for en, ja in test), encoding="utf-8")
    long_dev = data.read_corpus("builtin:long-dev")
    english = root / "en.txt"
    english.write_text("".join(f"{t}\n" for t in [*train.en, *test.en, *long_dev.en]), encoding="utf-8")
    exported = root / "en384.parquet"
    if not exported.exists():
        embed_file(english, exported, EmbedConfig(model=TEACHER))

    teachers = [("teacher model", TEACHER)]
    for dim in (int(d) for d in args.dims.split(",")):
        file = exported if dim == 384 else rotate(exported, root / f"en{dim}.parquet", dim)
        teachers.append((f"vectors, {dim} d" + ("" if dim == 384 else " (rotated)"), f"vectors:{file}"))

    rows = []
    for label, teacher in teachers:
        started = time.perf_counter()
        name = label.split(",")[0].replace(" ", "-") + ("" if teacher == TEACHER else teacher.split("/en")[-1])
        config = DistillConfig(
            teacher=teacher, train=[str(train_tsv)], dev=None, exclude=[str(test_tsv)], out=root / name,
            overwrite=True, quiet=True, save_every=0, keep_checkpoints=1,
        )  # fmt: skip
        result = distill(config)
        seconds = time.perf_counter() - started
        scores = {}
        for set_name, pairs in (("tanaka", str(test_tsv)), ("long", "builtin:long-dev")):
            report = evaluate([str(result.model_dir)], pairs, teacher, config=EvalConfig(cache=False))
            scores[set_name] = report.metrics[0]
        rows.append((label, scores, seconds))
        print(f"done {label}: {seconds:.0f} s", flush=True)

    print(
        f"\n{len(train)} Tanaka training pairs, one pass, default settings; {dt.date.today()}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    print(
        "| teacher | Tanaka test: cross ja→en | cross en→ja | own ja→en | long-dev: cross ja→en | cross en→ja | "
        "own ja→en | Δ cross ja→en (Tanaka / long) | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0][1]
    for label, scores, seconds in rows:
        cells = [f"{100 * scores[s][k]:.1f}" for s in ("tanaka", "long") for k in KEYS]
        delta = " / ".join(
            f"{100 * (scores[s]['cross_ja2en_acc'] - base[s]['cross_ja2en_acc']):+.1f}" for s in ("tanaka", "long")
        )
        print(f"| {label} | {' | '.join(cells)} | {delta} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
