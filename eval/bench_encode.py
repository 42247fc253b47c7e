"""Encoding speed and accuracy: sentence-transformers vs ONNX float32 vs ONNX int8, same model, one run.

    python eval/bench_encode.py                                   # builtin:me5-small, Tanaka test set if present
    python eval/bench_encode.py --model runs/tanaka/model --export-dir exported --sentences 2000
    python eval/bench_encode.py --pairs builtin:dev --threads 2 --rounds 5
    python eval/bench_encode.py --model runs/t/model --static runs/static --teacher builtin:minilm-en  # + static

The model is exported once (``xlingual export --format onnx --quantize int8``; ``--export-dir`` reuses or
keeps an export). Speed: the same sentences (English and Japanese halves of the pairs file, cycled to
``--sentences``), the same batch size, each engine timed ``--rounds`` times in turn; the best round is
reported (other processes on the machine only ever slow a round down) with the median beside it.
ONNX rows also show the share of time spent in the tokenizer. Accuracy: translation retrieval on the
pairs (``xlingual.evaluation.evaluator``: en→ja, ja→en top-1, exact search), every engine on every pair.
Target (issue 6): int8 ≥ 2.5× sentence-transformers with ≤ 1 point of mean accuracy lost. ``--static DIR`` adds a
static student (``xlingual distill-static``) as one more engine; ``--teacher`` adds the cross-model accuracy
(student ja → teacher en) of every engine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from xlingual.config import DEFAULT_STUDENT, DataConfig, EvalConfig, ExportConfig
from xlingual.data.readers import read_corpus
from xlingual.evaluation.evaluator import evaluate
from xlingual.models.onnx_encoder import OnnxEncoder

BENCH_DATA = Path(os.environ.get("XLINGUAL_BENCH_DATA", "../shared/data/small_parallel_enja"))


def default_pairs() -> tuple[str, bool]:
    """The Tanaka test set (word-tokenised, so detokenised) when present, else the bundled dev pairs."""
    if (BENCH_DATA / "test.en").is_file() and (BENCH_DATA / "test.ja").is_file():
        return str(BENCH_DATA / "test"), True
    return "builtin:dev", False


def ensure_export(model: str, export_dir: Path | None) -> Path:
    from xlingual.export.model_export import export_model

    if export_dir is not None and (export_dir / "onnx-int8" / "model.onnx").is_file():
        print(f"reusing the export in {export_dir}")
        return export_dir
    target = export_dir or Path(tempfile.mkdtemp(prefix="bench-encode-")) / "exported"
    started = time.perf_counter()
    export_model(model, target, ExportConfig(formats=["onnx"], quantize="int8", overwrite=True))
    print(f"exported {model} to {target} in {time.perf_counter() - started:.0f} s")
    return target


def time_rounds(engines: dict[str, Any], sentences: list[str], batch_size: int, rounds: int) -> dict[str, list[float]]:
    for encoder in engines.values():  # warm-up: first-call allocations, thread pools, lazy init
        encoder.encode(sentences[: 2 * batch_size], batch_size=batch_size, show_progress_bar=False)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, encoder in engines.items():
            started = time.perf_counter()
            encoder.encode(sentences, batch_size=batch_size, show_progress_bar=False)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def tokenizer_seconds(encoder: OnnxEncoder, sentences: list[str], batch_size: int) -> float:
    """Time of the tokenizer alone on the batches ``encode`` would make (sorted by length)."""
    ordered = sorted(sentences, key=len, reverse=True)
    started = time.perf_counter()
    for start in range(0, len(ordered), batch_size):
        encoder.tokenize(ordered[start : start + batch_size])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_STUDENT, help="PyTorch model spec (default: %(default)s)")
    parser.add_argument("--pairs", help="pairs for accuracy and the timed sentences (default: Tanaka test or dev)")
    parser.add_argument("--detokenize", action="store_true", help="undo word tokenisation of --pairs")
    parser.add_argument("--export-dir", type=Path, help="reuse (or keep) the ONNX export here")
    parser.add_argument("--sentences", type=int, default=1000, help="sentences per timed round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (default: all)")
    parser.add_argument("--static", type=Path, help="a static student's folder, timed and scored beside the others")
    parser.add_argument("--teacher", help="teacher spec: adds cross-model accuracy (student ja → teacher en)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from xlingual.models.specs import resolve_model_path

    pairs, detokenize = (args.pairs, args.detokenize) if args.pairs else default_pairs()
    corpus = read_corpus(pairs, DataConfig(detokenize=detokenize))
    pool = [s for pair in zip(corpus.en, corpus.ja, strict=True) for s in pair]
    sentences = [pool[i % len(pool)] for i in range(args.sentences)]
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)

    export_dir = ensure_export(args.model, args.export_dir)
    st_path = resolve_model_path(args.model)
    engines: dict[str, Any] = {
        "sentence-transformers": SentenceTransformer(str(st_path or args.model), device="cpu"),
        "onnx float32": OnnxEncoder(export_dir / "onnx", threads=threads),
        "onnx int8": OnnxEncoder(export_dir / "onnx-int8", threads=threads),
    }
    if args.static is not None:
        engines["static"] = SentenceTransformer(str(args.static), device="cpu")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {threads} threads, "
        f"load average {os.getloadavg()[0]:.1f}; {len(sentences)} sentences from {pairs}, batch {args.batch_size}"
    )
    seconds = time_rounds(engines, sentences, args.batch_size, args.rounds)
    report = evaluate(engines, corpus, args.teacher, config=EvalConfig(batch_size=args.batch_size, cache=False))
    accuracy = {row["model"]: row for row in report.metrics}

    base_rate = len(sentences) / min(seconds["sentence-transformers"])
    base_acc = float(accuracy["sentence-transformers"]["mean_acc"])
    header = (
        f"{'engine':<22} {'sent/s best':>11} {'median':>8} {'speed-up':>8} {'tokenizer':>9} "
        f"{'en2ja':>6} {'ja2en':>6} {'mean':>6} {'Δ mean':>7} {'cross':>6}  size"
    )
    print(f"\n{len(corpus.en)} pairs for accuracy (%), {args.rounds} timed rounds\n{header}")
    for name, encoder in engines.items():
        best = len(sentences) / min(seconds[name])
        median = len(sentences) / statistics.median(seconds[name])
        row = accuracy[name]
        share = "-"
        size = "-"
        if isinstance(encoder, OnnxEncoder):
            share = f"{tokenizer_seconds(encoder, sentences, args.batch_size) / min(seconds[name]):.0%}"
            size = f"{(encoder.path / 'model.onnx').stat().st_size / 2**20:.0f} MB"
        else:
            folder = args.static if name == "static" else st_path
            if folder is not None:
                size = f"{sum(p.stat().st_size for p in Path(folder).rglob('*.safetensors')) / 2**20:.0f} MB"
        cross = f"{100 * row['cross_ja2en_acc']:>6.2f}" if "cross_ja2en_acc" in row else f"{'-':>6}"
        delta = 100 * (float(row["mean_acc"]) - base_acc)
        print(
            f"{name:<22} {best:>11.1f} {median:>8.1f} {best / base_rate:>7.2f}× {share:>9} "
            f"{100 * row['en2ja_acc']:>6.2f} {100 * row['ja2en_acc']:>6.2f} {100 * row['mean_acc']:>6.2f} "
            f"{delta:>+7.2f} {cross}  {size}"
        )
    int8_speedup = min(seconds["sentence-transformers"]) / min(seconds["onnx int8"])
    int8_loss = 100 * (base_acc - float(accuracy["onnx int8"]["mean_acc"]))
    verdict = "met" if int8_speedup >= 2.5 and int8_loss <= 1.0 else "NOT met"
    print(f"\ntarget int8 ≥ 2.5× and ≤ 1 point lost: {verdict} ({int8_speedup:.2f}×, {int8_loss:+.2f} points lost)")


if __name__ == "__main__":
    main()
