"""Search index speed and accuracy: build time, memory, queries per second and recall@10 per index type.

For each corpus size (default 100k and 1M vectors of dimension 384) and each index type (flat, hnsw,
ivf-pq) the index is built exactly as `xlingual index build` builds it (`xlingual.search.ann.choose_index`,
`build_calibrated`: recall@10 ≥ 0.95 on held-out vectors), then 1,000 fresh queries (not in
the index) are searched: all at once (throughput, "QPS") and one by one (latency, as a server sees
them). Recall@10 is measured against exact search on the same queries, ties tolerated.

Data (``--data``):
- ``clustered`` (default): embedding-like synthetic vectors — 2,000 topic centres in a 24-dimensional
  subspace, points scattered around them, a shared mean direction (sentence embeddings are
  anisotropic) and a little isotropic noise; L2-normalised, tuned to the local intrinsic dimension and
  neighbour similarities of real MiniLM embeddings (see `clustered`). Queries come from the same
  distribution. Encoding a million real passages would take hours on 2 CPU cores.
- ``random``: uniform random unit vectors — the worst case for every approximate index (no structure).
- ``path.npy``: real embeddings, ``(n, dim)`` float32; the last ``--queries`` rows are the queries.

Each approximate type gets two rows: the knob setting `calibrate` chose at build time (what a user
gets, tuned on held-out corpus vectors without seeing the queries) and, marked "(swept)", the cheapest setting
that reaches the target recall on these very queries (what the index can do; FAISS's own benchmarks
report this frontier). Build time (calibration included) and memory are shared by both rows.

Each (size, type) runs in its own process, so the peak RSS it reports is its own. Exact neighbours of
the queries are computed once per size and cached in a temporary folder.

    python eval/bench_search.py                                   # 100k and 1M, every type (~30 min on 2 cores)
    python eval/bench_search.py --sizes 20000 --types flat hnsw   # a quick look
    python eval/bench_search.py --data random --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.config import IndexConfig as IndexConfigDefaults

CHUNK = 100_000


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` embedding-like unit vectors (see the module docstring); row ``i`` depends only on ``seed`` and ``i``.

    Tuned to the neighbourhood statistics of real embeddings: all-MiniLM-L6-v2 on 20,000 English
    sentences of the Tanaka corpus has local intrinsic dimension 13.8 (MLE, k=20), median top-1 cosine
    0.73, top-10 0.57 and mean cosine 0.11 between random pairs; these vectors, at 20,000, have 15.1,
    0.80, 0.71 and 0.11.
    """
    shape_rng = np.random.default_rng(1234)  # the "model": subspace, spectrum, topics, mean — shared by all rows
    intrinsic, topics, spread, noise = 24, 2000, 0.8, 0.1
    basis, _ = np.linalg.qr(shape_rng.standard_normal((dim, intrinsic)))
    spectrum = (np.arange(1, intrinsic + 1) ** -0.3).astype(np.float32)
    centres = (shape_rng.standard_normal((topics, intrinsic)) * spectrum).astype(np.float32)
    mean = shape_rng.standard_normal(dim).astype(np.float32)
    mean *= 0.35 / np.linalg.norm(mean)
    basis = basis.astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        rng = np.random.default_rng([seed, start])
        topic = rng.integers(topics, size=stop - start)
        latent = centres[topic] + spread * rng.standard_normal((stop - start, intrinsic), dtype=np.float32) * spectrum
        block = latent @ basis.T
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        block += mean + (noise / np.sqrt(dim)) * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def uniform(n: int, dim: int, seed: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        block = np.random.default_rng([seed, start]).standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def load_data(data: str, n: int, n_queries: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(database (n, dim), queries (n_queries, dim))``, float32, L2-normalised, disjoint."""
    if data == "clustered":
        return clustered(n, dim, seed=1), clustered(n_queries, dim, seed=2)
    if data == "random":
        return uniform(n, dim, seed=1), uniform(n_queries, dim, seed=2)
    vectors = np.load(data, mmap_mode="r")
    if vectors.shape[0] < n + n_queries:
        raise SystemExit(f"{data} has {vectors.shape[0]} rows; need {n + n_queries} for --sizes {n}")
    database = np.array(vectors[:n], dtype=np.float32)  # a copy: the memory map is read-only
    queries = np.array(vectors[-n_queries:], dtype=np.float32)
    for array in (database, queries):
        array /= np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
    return database, queries


def params_text(spec: object) -> str:
    from xlingual.search.ann import IndexSpec, IndexType

    assert isinstance(spec, IndexSpec)
    if spec.type is IndexType.HNSW:
        return f"M={spec.hnsw_m} efC={spec.ef_construction} efS={spec.ef_search}"
    if spec.type is IndexType.IVF_PQ:
        return f"nlist={spec.nlist} PQ{spec.pq_m}x4 nprobe={spec.nprobe} rerank×{spec.refine_factor}"
    return "exact"


def measure(
    built: Any, queries: np.ndarray, exact_scores: np.ndarray, params: object, args: argparse.Namespace
) -> dict:
    """QPS of one batch call, median latency of single-query calls, recall@k against exact search."""
    from xlingual.search import calibration, faiss_ops

    faiss_ops.search(built, queries[:10], args.k, params=params)  # warm-up
    started = time.perf_counter()
    scores, ids = faiss_ops.search(built, queries, args.k, params=params)
    batch_s = time.perf_counter() - started
    latencies = []
    for row in range(min(args.single, len(queries))):
        one = time.perf_counter()
        faiss_ops.search(built, queries[row : row + 1], args.k, params=params)
        latencies.append(time.perf_counter() - one)
    return {
        "qps": round(len(queries) / batch_s),
        "p50_ms": round(1000 * float(np.median(latencies)), 2),
        "recall@10": round(calibration.recall_at_k(exact_scores, scores, ids), 4),
    }


def sweep(built: Any, spec: Any, queries: np.ndarray, exact_scores: np.ndarray, args: argparse.Namespace) -> Any:
    """The cheapest knob setting (same order as `calibrate`) whose recall on *these* queries reaches the target."""
    from dataclasses import replace

    from xlingual.search import ann, calibration, faiss_ops
    from xlingual.search.ann import IndexType

    if spec.type is IndexType.HNSW:
        candidates = [replace(spec, ef_search=ef) for ef in calibration.EF_SEARCH_GRID]
    else:
        factor = IndexConfigDefaults.refine_factor
        probes = sorted({min(spec.nlist, 2**p) for p in range(int(spec.nlist).bit_length() + 1)})
        candidates = [replace(spec, nprobe=p, refine_factor=factor * m) for p in probes for m in (1, 2, 4)]
    for candidate in candidates:
        scores, ids = faiss_ops.search(built, queries, args.k, params=ann.search_params(candidate))
        if calibration.recall_at_k(exact_scores, scores, ids) >= args.target_recall:
            return candidate
    return candidates[-1]


def run_one(args: argparse.Namespace, n: int, kind: str) -> list[dict[str, object]]:
    import faiss

    from xlingual.config import IndexConfig
    from xlingual.search import ann, calibration, faiss_ops

    threads = faiss_ops.set_num_threads(args.threads)
    database, queries = load_data(args.data, n, args.queries, args.dim)
    truth_path = Path(args.cache) / f"truth-{Path(args.data).name}-{n}-{args.queries}-{args.dim}.npy"
    if truth_path.is_file():
        exact_scores = np.load(truth_path)
    else:
        exact_scores, _ = faiss_ops.knn(queries, database, args.k)
        np.save(truth_path, exact_scores)
    config = IndexConfig(index_type=kind, target_recall=args.target_recall)
    spec = ann.choose_index(n, args.dim, config)
    started = time.perf_counter()
    # As `xlingual index build` does it: the last rows (a random sample here: the rows are i.i.d.) are held
    # out while the index is built, calibrate the search knob, and are added afterwards.
    built, spec = calibration.build_calibrated(database, spec, target_recall=args.target_recall)
    build_s = time.perf_counter() - started
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # before serialising a copy
    common = {
        "n": n,
        "threads": threads,
        "build_s": round(build_s, 1),
        "index_mb": round(faiss.serialize_index(built).nbytes / 2**20),
        "peak_rss_mb": peak_rss_mb,
    }
    rows = [
        {
            **common,
            "type": kind,
            "params": params_text(spec),
            **measure(built, queries, exact_scores, ann.search_params(spec), args),
        }
    ]
    if kind != "flat" and not args.no_sweep:
        best = sweep(built, spec, queries, exact_scores, args)
        rows.append(
            {
                **common,
                "type": f"{kind} (swept)",
                "params": params_text(best),
                **measure(built, queries, exact_scores, ann.search_params(best), args),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--types", nargs="+", default=["flat", "hnsw", "ivf-pq"], choices=["flat", "hnsw", "ivf-pq"])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000, help="fresh queries (batch QPS and recall)")
    parser.add_argument("--single", type=int, default=200, help="queries timed one at a time (latency)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data", default="clustered", help="clustered, random or a .npy file of embeddings")
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=None, help="FAISS threads (default: CPUs available)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row instead of a table")
    parser.add_argument("--no-sweep", action="store_true", help="skip the swept rows (see the module docstring)")
    parser.add_argument("--one", nargs=2, metavar=("N", "TYPE"), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(run_one(args, int(args.one[0]), args.one[1])))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as cache:
        for n in args.sizes:
            for kind in args.types:
                cmd = [sys.executable, __file__, "--one", str(n), kind, "--cache", cache]
                for flag in ("dim", "queries", "single", "k", "data", "target_recall", "threads"):
                    value = getattr(args, flag)
                    if value is not None:
                        cmd += [f"--{flag.replace('_', '-')}", str(value)]
                if args.no_sweep:
                    cmd.append("--no-sweep")
                started = time.perf_counter()
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
                rows.extend(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"done n={n:,} {kind} in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    flat_qps = {row["n"]: row["qps"] for row in rows if row["type"] == "flat"}
    for row in rows:
        base = flat_qps.get(row["n"])
        row["x_flat"] = round(float(row["qps"]) / float(base), 1) if base else None  # type: ignore[arg-type]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    header = [
        "n",
        "type",
        "params",
        "build_s",
        "index_mb",
        "peak_rss_mb",
        "qps",
        "x_flat",
        "p50_ms",
        "recall@10",
    ]
    print(f"data: {args.data}, dim {args.dim}, {args.queries} queries, k={args.k}, threads {rows[0]['threads']}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{row[h]:,}" if isinstance(row[h], int) and h == "n" else str(row[h]) for h in header]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
