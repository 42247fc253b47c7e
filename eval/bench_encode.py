"""Encoding speed and accuracy: sentence-transformers vs ONNX and OpenVINO (float32, int8), same model, one run.

    python eval/bench_encode.py                                   # builtin:me5-small, Tanaka test set if present
    python eval/bench_encode.py --model runs/tanaka/model --export-dir exported --sentences 2000
    python eval/bench_encode.py --pairs builtin:dev --threads 1 --threads 2 --rounds 5
    python eval/bench_encode.py --model runs/t/model --static runs/static --teacher builtin:minilm-en  # + static

The model is exported once (``xlingual export -f onnx -f openvino --quantize int8``, OpenVINO when its extra
is installed; ``--export-dir`` reuses or keeps an export). Each ``--threads`` value gets its own speed table
(torch, onnxruntime and OpenVINO limited to that many threads). Speed: the same sentences (English and
Japanese halves of the pairs file, cycled to ``--sentences``), the same batch size, each engine timed
``--rounds`` times in turn; the best round is reported (other processes on the machine only ever slow a
round down) with the median beside it. ONNX and OpenVINO rows also show the share of time spent in the
tokenizer. Accuracy: translation retrieval on the pairs (``xlingual.evaluation.evaluator``: en→ja, ja→en
top-1, exact search), every engine on every pair.
Targets: ONNX int8 ≥ 2.5× sentence-transformers with ≤ 1 point of mean accuracy lost (issue 6); OpenVINO
int8 ≥ 4× with ≤ 0.5 lost, the static student ≥ 100× (issue 17). ``--static DIR`` adds a static student
(``xlingual distill-static``) as one more engine; ``--teacher`` adds the cross-model accuracy (student ja →
teacher en) of every engine.
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
from xlingual.models.openvino_encoder import OpenVinoEncoder

BENCH_DATA = Path(os.environ.get("XLINGUAL_BENCH_DATA", "../shared/data/small_parallel_enja"))


def default_pairs() -> tuple[str, bool]:
    """The Tanaka test set (word-tokenised, so detokenised) when present, else the bundled dev pairs."""
    if (BENCH_DATA / "test.en").is_file() and (BENCH_DATA / "test.ja").is_file():
        return str(BENCH_DATA / "test"), True
    return "builtin:dev", False


def has_openvino() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_export(model: str, export_dir: Path | None) -> Path:
    from xlingual.export.model_export import export_model

    formats = ["onnx", "openvino"] if has_openvino() else ["onnx"]
    wanted = ["onnx-int8/model.onnx"] + (["openvino-int8/openvino_model.xml"] if "openvino" in formats else [])
    if export_dir is not None and all((export_dir / name).is_file() for name in wanted):
        print(f"reusing the export in {export_dir}")
        return export_dir
    target = export_dir or Path(tempfile.mkdtemp(prefix="bench-encode-")) / "exported"
    started = time.perf_counter()
    export_model(model, target, ExportConfig(formats=formats, quantize="int8", overwrite=True))
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


def build_engines(args: argparse.Namespace, export_dir: Path, st_path: Path | None, threads: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    engines: dict[str, Any] = {
        "sentence-transformers": SentenceTransformer(str(st_path or args.model), device="cpu"),
        "onnx float32": OnnxEncoder(export_dir / "onnx", threads=threads),
        "onnx int8": OnnxEncoder(export_dir / "onnx-int8", threads=threads),
    }
    if (export_dir / "openvino-int8").is_dir():
        engines["openvino float32"] = OpenVinoEncoder(export_dir / "openvino", threads=threads)
        engines["openvino int8"] = OpenVinoEncoder(export_dir / "openvino-int8", threads=threads)
    if args.static is not None:
        engines["static"] = SentenceTransformer(str(args.static), device="cpu")
    return engines


def model_size(name: str, encoder: Any, args: argparse.Namespace, st_path: Path | None) -> str:
    if isinstance(encoder, OnnxEncoder):  # OpenVINO folders too: the graph file and its weights
        files = [encoder.path / str(encoder.info["model_file"]), encoder.path / "openvino_model.bin"]
        return f"{sum(f.stat().st_size for f in files if f.is_file()) / 2**20:.0f} MB"
    folder = args.static if name == "static" else st_path
    if folder is None:
        return "-"
    return f"{sum(p.stat().st_size for p in Path(folder).rglob('*.safetensors')) / 2**20:.0f} MB"


def print_table(
    engines: dict[str, Any], seconds: dict[str, list[float]], accuracy: dict[str, Any], n: int, args: argparse.Namespace
) -> dict[str, float]:
    """One row per engine; returns each engine's speed-up over sentence-transformers."""
    from xlingual.models.specs import resolve_model_path

    st_path = resolve_model_path(args.model)
    base_rate = n / min(seconds["sentence-transformers"])
    base_acc = float(accuracy["sentence-transformers"]["mean_acc"])
    header = (
        f"{'engine':<22} {'sent/s best':>11} {'median':>8} {'speed-up':>8} {'tokenizer':>9} "
        f"{'en2ja':>6} {'ja2en':>6} {'mean':>6} {'Δ mean':>7} {'cross':>6}  size"
    )
    print(header)
    speedups = {}
    for name, encoder in engines.items():
        best = n / min(seconds[name])
        speedups[name] = best / base_rate
        median = n / statistics.median(seconds[name])
        row = accuracy[name]
        share = "-"
        if isinstance(encoder, OnnxEncoder):
            share = f"{tokenizer_seconds(encoder, args.timed, args.batch_size) / min(seconds[name]):.0%}"
        cross = f"{100 * row['cross_ja2en_acc']:>6.2f}" if "cross_ja2en_acc" in row else f"{'-':>6}"
        delta = 100 * (float(row["mean_acc"]) - base_acc)
        print(
            f"{name:<22} {best:>11.1f} {median:>8.1f} {best / base_rate:>7.2f}× {share:>9} "
            f"{100 * row['en2ja_acc']:>6.2f} {100 * row['ja2en_acc']:>6.2f} {100 * row['mean_acc']:>6.2f} "
            f"{delta:>+7.2f} {cross}  {model_size(name, encoder, args, st_path)}"
        )
    return speedups


def verdicts(speedups: dict[str, float], accuracy: dict[str, Any], threads: int) -> None:
    base_acc = float(accuracy["sentence-transformers"]["mean_acc"])
    targets = [("onnx int8", 2.5, 1.0, "issue 6"), ("openvino int8", 4.0, 0.5, "issue 17"), ("static", 100.0, None, "")]
    for name, speed, max_loss, issue in targets:
        if name not in speedups:
            continue
        loss = round(100 * (base_acc - float(accuracy[name]["mean_acc"])), 6)  # 0.5 lost is 0.5, not 0.5000001
        met = speedups[name] >= speed and (max_loss is None or loss <= max_loss)
        limit = f" and ≤ {max_loss} point lost" if max_loss is not None else ""
        print(
            f"{threads} thread(s): {name} ≥ {speed:g}×{limit} {issue}: {'met' if met else 'NOT met'} "
            f"({speedups[name]:.2f}×, {loss:+.2f} points lost)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_STUDENT, help="PyTorch model spec (default: %(default)s)")
    parser.add_argument("--pairs", help="pairs for accuracy and the timed sentences (default: Tanaka test or dev)")
    parser.add_argument("--detokenize", action="store_true", help="undo word tokenisation of --pairs")
    parser.add_argument("--export-dir", type=Path, help="reuse (or keep) the ONNX/OpenVINO export here")
    parser.add_argument("--sentences", type=int, default=1000, help="sentences per timed round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, action="append", help="threads per engine; repeatable (default: all)")
    parser.add_argument("--static", type=Path, help="a static student's folder, timed and scored beside the others")
    parser.add_argument("--teacher", help="teacher spec: adds cross-model accuracy (student ja → teacher en)")
    args = parser.parse_args()

    import torch

    from xlingual.models.specs import resolve_model_path

    pairs, detokenize = (args.pairs, args.detokenize) if args.pairs else default_pairs()
    corpus = read_corpus(pairs, DataConfig(detokenize=detokenize))
    pool = [s for pair in zip(corpus.en, corpus.ja, strict=True) for s in pair]
    args.timed = [pool[i % len(pool)] for i in range(args.sentences)]
    export_dir = ensure_export(args.model, args.export_dir)
    st_path = resolve_model_path(args.model)
    accuracy: dict[str, Any] = {}
    for threads in args.threads or [os.cpu_count() or 1]:
        torch.set_num_threads(threads)
        engines = build_engines(args, export_dir, st_path, threads)
        print(
            f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {threads} thread(s), "
            f"load average {os.getloadavg()[0]:.1f}; {len(args.timed)} sentences from {pairs}, "
            f"batch {args.batch_size}, {args.rounds} timed rounds"
        )
        seconds = time_rounds(engines, args.timed, args.batch_size, args.rounds)
        if not accuracy:  # the same vectors at any thread count: scored once
            config = EvalConfig(batch_size=args.batch_size, cache=False)
            report = evaluate(engines, corpus, args.teacher, config=config)
            accuracy = {row["model"]: row for row in report.metrics}
            print(f"accuracy (%) on {len(corpus.en)} pairs")
        verdicts(print_table(engines, seconds, accuracy, len(args.timed), args), accuracy, threads)


if __name__ == "__main__":
    main()
