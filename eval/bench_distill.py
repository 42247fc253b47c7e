"""Distil one student from one teacher twice, on the same pairs and steps, and compare speed and quality.

(a) ``st``: sentence-transformers' own multilingual recipe (``make_multilingual.py``): teacher labels by
    ``Dataset.map`` (``teacher.encode`` of the English side), ``losses.MSELoss(student)``,
    ``SentenceTransformerTrainer`` with lr 2e-5, 10% warm-up, one epoch, max_seq_length 128; every
    English and every Japanese sentence is a training row labelled with the teacher's English vector.
(b) ``xlingual``: ``xlingual.distillation.run.distill(DistillConfig(...))`` with its defaults (closed-form
    Procrustes head, its own lr), no dev set, a cold teacher-embedding cache.

Both see the same pairs and the same number of sentences per optimiser step: the recipe's batch of
``--batch-size`` rows holds that many sentences (= half as many pairs); xlingual's batch counts pairs
(an English and a Japanese sentence each), so it gets ``--batch-size / 2``. Each system trains in its
own child process, so the wall time and peak RSS it reports are its own. The parent then scores the
untouched student and both trained students on the ``test`` pairs (top-1 retrieval, student alone and
against the teacher's English vectors) and prints one Markdown table.

    python eval/bench_distill.py                        # 20,000 pairs (~30+ min on 2 cores)
    python eval/bench_distill.py --pairs 128 --out /tmp/bd   # smoke test
    python eval/bench_distill.py --systems xlingual --lr-ours 1e-4
    python eval/bench_distill.py --pairs 5000 --variant default: \
        --variant fast:trim_vocab=true,freeze_layers=8          # several xlingual settings, one table

``--variant LABEL:key=value,...`` (repeatable) runs xlingual once per variant, with those
``DistillConfig`` fields changed (values are JSON: ``true``, ``8``, ``1e-4``, or plain strings).

Data: ``--data DIR`` (default ``$XLINGUAL_BENCH_DATA`` or ``../shared/data/small_parallel_enja``) holds
``train``/``test`` ``.en``/``.ja`` aligned files, detokenised with ``xlingual.data.readers``; training pairs
sharing a sentence with the test set are dropped before the first ``--pairs`` are taken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SYSTEMS = ("st", "xlingual")
LABELS = {"st": "ST recipe", "xlingual": "xlingual"}
DEFAULT_DATA = os.environ.get("XLINGUAL_BENCH_DATA", "../shared/data/small_parallel_enja")


# --------------------------------------------------------------------------- child processes


def _peak_rss_gib() -> float:
    """Peak resident memory of this process (and any children it waited for), in GiB."""
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    try:  # VmHWM is the same high-water mark; prefer it where /proc exists
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                kib = max(kib, int(line.split()[1]))
    except OSError:
        pass
    return kib / 2**20


def _set_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def run_st(args: argparse.Namespace) -> dict[str, Any]:
    """The sentence-transformers recipe; returns timings and where the model went."""
    started = time.perf_counter()
    threads = _set_threads(args.threads)
    import transformers
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses  # `sentence_transformers.losses` is deprecated

    out = Path(args.out) / "st"
    device = None if args.device == "auto" else args.device
    en = _read_lines(Path(args.train_prefix + ".en"))
    ja = _read_lines(Path(args.train_prefix + ".ja"))
    teacher = SentenceTransformer(args.teacher, device=device)
    student = SentenceTransformer(args.student, device=device)
    student.max_seq_length = args.max_seq_length

    # Labels as in make_multilingual.py: Dataset.map over the pairs, teacher.encode of the English side.
    def prepare(batch: dict[str, list[str]]) -> dict[str, Any]:
        label = teacher.encode(batch["english"], batch_size=64, show_progress_bar=False, convert_to_numpy=True)
        return {"english": batch["english"], "non_english": batch["non_english"], "label": label}

    pairs = Dataset.from_dict({"english": en, "non_english": ja})
    pairs = pairs.map(prepare, batched=True, batch_size=30000, remove_columns=pairs.column_names)
    if args.st_layout == "rows":
        # One row per sentence (the ParallelSentencesDataset form): en → label and ja → label.
        def to_rows(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            return {"sentence": batch["english"] + batch["non_english"], "label": batch["label"] + batch["label"]}

        train = pairs.map(to_rows, batched=True, batch_size=30000, remove_columns=pairs.column_names)
        rows_per_step = args.batch_size
    else:
        # One row per pair (english, non_english, label), as make_multilingual.py for sentence-transformers ≥ 3.
        train = pairs
        rows_per_step = args.batch_size // 2
    label_seconds = time.perf_counter() - started

    warmup: dict[str, float] = (
        {"warmup_steps": 0.1} if int(transformers.__version__.split(".")[0]) >= 5 else {"warmup_ratio": 0.1}
    )
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=1,
        max_steps=args.steps,
        per_device_train_batch_size=rows_per_step,
        learning_rate=2e-5,
        **warmup,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=max(1, args.steps // 20),
        report_to="none",
        seed=args.seed,
        use_cpu=args.device == "cpu",
        prompts=student.prompts.get(student.default_prompt_name or "") if args.st_prompt else None,
    )
    trainer = SentenceTransformerTrainer(
        model=student, args=training_args, train_dataset=train, loss=losses.MSELoss(student)
    )
    train_started = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - train_started
    model_dir = out / "model"
    student.save(str(model_dir))
    wall = time.perf_counter() - started
    pairs_seen = args.steps * args.batch_size // 2
    return {
        "system": "st",
        "steps": output.global_step,
        "pairs_seen": pairs_seen,
        "rows_per_step": rows_per_step,
        "layout": args.st_layout,
        "train_seconds": train_seconds,
        "pairs_per_s": pairs_seen / train_seconds,
        "label_seconds": label_seconds,
        "wall_seconds": wall,
        "final_loss": output.training_loss,
        "optimizer": str(training_args.optim),
        "model_dir": str(model_dir),
        "torch_threads": threads,
    }


def run_xlingual(args: argparse.Namespace) -> dict[str, Any]:
    """``xlingual.distillation.run`` with its defaults; returns timings and where the model went."""
    started = time.perf_counter()
    threads = _set_threads(args.threads)
    from xlingual.config import DistillConfig
    from xlingual.distillation.run import distill

    overrides: dict[str, Any] = {} if args.lr_ours is None else {"lr": args.lr_ours}
    overrides.update(json.loads(args.variant_json or "{}"))
    label = args.variant_label or "xlingual"
    config = DistillConfig(
        teacher=args.teacher,
        student=args.student,
        train=[args.train_prefix],
        dev=None,
        out=Path(args.out) / ("xlingual" if label == "xlingual" else f"xlingual-{label}"),
        max_steps=args.steps,
        batch_size=args.batch_size // 2,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
        save_every=0,
        keep_checkpoints=1,
        overwrite=True,
        device=args.device,
        **overrides,
    )
    result = distill(config)
    wall = time.perf_counter() - started
    return {
        "system": "xlingual",
        "variant": label,
        "overrides": overrides,
        "steps": result.steps,
        "pairs_seen": result.pairs_seen,
        "pairs_per_step": config.batch_size,
        "lr": config.lr,
        "init": config.init,
        "train_seconds": result.seconds,
        "pairs_per_s": result.pairs_per_second,
        "wall_seconds": wall,
        "model_dir": str(result.model_dir),
        "torch_threads": threads,
    }


def child_main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    result = run_st(args) if args.system == "st" else run_xlingual(args)
    result["peak_rss_gib"] = _peak_rss_gib()
    Path(args.result).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- parent


def prepare_data(data_dir: Path, n: int, out: Path) -> tuple[str, dict[str, int]]:
    """Write the first ``n`` detokenised, cleaned training pairs (none sharing a test sentence) to ``out``."""
    from xlingual.config import DataConfig
    from xlingual.data.clean import load_pairs

    config = DataConfig(detokenize=True, exclude=[str(data_dir / "test")])
    corpus, stats = load_pairs([str(data_dir / "train")], config)
    if len(corpus) < n:
        raise SystemExit(f"--pairs {n}: only {len(corpus)} training pairs in {data_dir}/train after cleaning")
    picked = corpus.select(range(n))
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "train"
    Path(str(prefix) + ".en").write_text("".join(s + "\n" for s in picked.en), encoding="utf-8")
    Path(str(prefix) + ".ja").write_text("".join(s + "\n" for s in picked.ja), encoding="utf-8")
    return str(prefix), stats.as_dict()


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"fast:trim_vocab=true,freeze_layers=8"`` → ``("fast", {"trim_vocab": True, "freeze_layers": 8})``."""
    from dataclasses import fields

    from xlingual.config import DistillConfig

    label, _, settings = text.partition(":")
    if not label.strip() or not label.replace("-", "").replace("_", "").isalnum():
        raise SystemExit(f"--variant {text!r}: start with a label of letters, digits, - or _, then ':'")
    known = {f.name for f in fields(DistillConfig)}
    overrides: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in settings.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            raise SystemExit(f"--variant {text!r}: {item!r} is not KEY=VALUE with a DistillConfig field as KEY")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return label, overrides


def run_child(
    system: str, args: argparse.Namespace, common: list[str], out: Path, variant: tuple[str, dict[str, Any]] | None
) -> dict[str, Any]:
    key = system if variant is None else f"{system}-{variant[0]}"
    result_path = out / f"result-{key}.json"
    cmd = [sys.executable, __file__, "--system", system, "--result", str(result_path), *common]
    if variant is not None:
        cmd += ["--variant-label", variant[0], "--variant-json", json.dumps(variant[1])]
    env = os.environ.copy()
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    if system == "xlingual" and not args.warm_cache:
        # A fresh XLINGUAL_HOME: the teacher runs, as it does for the recipe (the student is passed as a folder).
        env["XLINGUAL_HOME"] = str(out / "xlingual_home")
    print(f"[bench] {system}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # The child's stdout (the Trainer prints its logs there) goes to stderr: stdout stays the table.
    subprocess.run(cmd, check=True, env=env, stdout=sys.stderr)
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result["process_seconds"] = time.perf_counter() - started
    return result


def evaluate_models(models: dict[str, str], test_prefix: str, teacher: str, out: Path) -> dict[str, dict[str, float]]:
    """Top-1 accuracies per model name: ja2en, en2ja, cross_ja2en (student ja → teacher en), cross_en2ja."""
    from xlingual.config import DataConfig

    data_config = DataConfig(detokenize=True)
    try:
        from xlingual.evaluation.evaluator import evaluate
    except ImportError:
        evaluate = None
    if evaluate is not None:
        report = evaluate(models, test_prefix, teacher=teacher, data_config=data_config, out_dir=out / "eval")
        keep = ("n_pairs", "ja2en_acc", "en2ja_acc", "cross_ja2en_acc", "cross_en2ja_acc")
        return {str(row["model"]): {k: float(row[k]) for k in keep if k in row} for row in report.metrics}

    import numpy as np

    from xlingual.data.readers import read_corpus
    from xlingual.models.specs import encode, load_model
    from xlingual.search.faiss_ops import knn

    def top1(queries: np.ndarray, database: np.ndarray) -> float:
        return float(np.mean(knn(queries, database, 1)[1][:, 0] == np.arange(len(queries))))

    test = read_corpus(test_prefix, data_config)
    teacher_en = encode(load_model(teacher), list(test.en))
    scores = {}
    for name, spec in models.items():
        model = load_model(spec)
        en, ja = encode(model, list(test.en)), encode(model, list(test.ja))
        scores[name] = {
            "ja2en_acc": top1(ja, en),
            "en2ja_acc": top1(en, ja),
            "cross_ja2en_acc": top1(ja, teacher_en),
            "cross_en2ja_acc": top1(teacher_en, ja),
            "n_pairs": len(test),
        }
    return scores


def print_table(
    results: dict[str, dict[str, Any]], scores: dict[str, dict[str, float]], names: dict[str, str], n_test: int
) -> None:
    header = [
        "model",
        "pairs/s (train)",
        "wall s",
        "peak RSS GiB",
        "ja2en",
        "en2ja",
        "cross ja→teacher-en",
        "cross teacher-en→ja",
    ]
    print(f"\nTop-1 retrieval accuracy (%) on {n_test} test pairs.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for key, name in names.items():
        run = results.get(key, {})
        acc = scores.get(name, {})
        cells = [
            name,
            f"{run['pairs_per_s']:.1f}" if run else "—",
            f"{run['wall_seconds']:.0f}" if run else "—",
            f"{run['peak_rss_gib']:.2f}" if run else "—",
        ]
        for metric in ("ja2en_acc", "en2ja_acc", "cross_ja2en_acc", "cross_en2ja_acc"):
            cells.append(f"{100 * acc[metric]:.1f}" if metric in acc else "—")
        print("| " + " | ".join(cells) + " |")


def parent_main(args: argparse.Namespace) -> None:
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise SystemExit(f"--systems {args.systems!r}: choose from {', '.join(SYSTEMS)}")
    if args.batch_size < 2 or args.batch_size % 2:
        raise SystemExit(f"--batch-size {args.batch_size}: sentences per step must be even (an en and a ja each)")
    pairs_per_step = args.batch_size // 2
    steps = args.pairs // pairs_per_step
    if steps < 1:
        raise SystemExit(f"--pairs {args.pairs}: fewer than one step of {pairs_per_step} pairs")

    from xlingual.models.specs import resolve_model_path

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_distill-"))
    out.mkdir(parents=True, exist_ok=True)
    # Resolve built-ins once here (me5-small is converted once per machine), so no child pays for it.
    teacher = str(resolve_model_path(args.teacher) or args.teacher)
    student = str(resolve_model_path(args.student) or args.student)
    data_dir = Path(args.data).expanduser()
    train_prefix, cleaning = prepare_data(data_dir, args.pairs, out / "data")
    print(f"[bench] out={out}  training pairs: first {args.pairs} of the cleaned set {cleaning}", file=sys.stderr)

    common = [
        "--out",
        str(out),
        "--train-prefix",
        train_prefix,
        "--teacher",
        teacher,
        "--student",
        student,
        "--steps",
        str(steps),
        "--batch-size",
        str(args.batch_size),
        "--max-seq-length",
        str(args.max_seq_length),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--st-layout",
        args.st_layout,
    ]
    if args.lr_ours is not None:
        common += ["--lr-ours", repr(args.lr_ours)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    if args.st_prompt:
        common.append("--st-prompt")
    variants = [parse_variant(v) for v in args.variant] or [("xlingual", {})]
    results: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for system in systems:
        if system == "st":
            results["st"], labels["st"] = run_child("st", args, common, out, None), LABELS["st"]
            continue
        for label, overrides in variants:
            key = "xlingual" if label == "xlingual" else f"xlingual-{label}"
            results[key] = run_child("xlingual", args, common, out, None if label == "xlingual" else (label, overrides))
            settings = ", ".join(f"{k}={v}" for k, v in overrides.items())
            labels[key] = (
                "xlingual" if key == "xlingual" else f"xlingual {label}" + (f" ({settings})" if settings else "")
            )
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    names = {"untouched": "untouched student", **labels}
    models = {"untouched student": student, **{labels[k]: r["model_dir"] for k, r in results.items()}}
    print("[bench] evaluating on the test pairs", file=sys.stderr, flush=True)
    test_prefix = str(data_dir / "test")
    scores = evaluate_models(models, test_prefix, teacher, out)
    print_table(results, scores, names, int(scores["untouched student"]["n_pairs"]))

    import torch

    threads = _set_threads(args.threads)
    parts = []
    if "st" in results:
        rows = f"{args.batch_size} one-sentence rows" if args.st_layout == "rows" else f"{pairs_per_step} (en, ja) rows"
        prompt = ", with the default prompt" if args.st_prompt else ", no prompt"
        parts.append(f"ST recipe {rows} per step (lr 2e-5, warm-up 10%{prompt})")
    for key, run in results.items():
        if key != "st":
            parts.append(f"{labels[key]} {pairs_per_step} pairs per step (lr {run['lr']:g}, init {run['init']})")
    print(
        f"\nSame {args.pairs} pairs, {steps} steps of {args.batch_size} sentences: {'; '.join(parts)}. "
        "pairs/s: training loop only (xlingual's includes its end-of-run checkpoint); wall s: whole child "
        "process (loading, teacher labels, xlingual's closed-form head fit, saving the model)."
    )
    if "st" in results:
        for key, run in results.items():
            if key == "st":
                continue
            speed = run["pairs_per_s"] / results["st"]["pairs_per_s"]
            wall = results["st"]["wall_seconds"] / run["wall_seconds"]
            memory = run["peak_rss_gib"] / results["st"]["peak_rss_gib"]
            print(
                f"{labels[key]} / ST recipe: {speed:.2f}× pairs/s (training), {wall:.2f}× by wall time, "
                f"{memory:.2f}× peak memory."
            )
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{dt.datetime.now().isoformat(timespec='seconds')}; {cpus} CPUs available ({os.cpu_count()} on the machine); "
        f"{platform.platform()}, {platform.processor() or platform.machine()}; Python {platform.python_version()}, "
        f"torch {torch.__version__} with {threads} threads; device {args.device}; models and results in {out}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20_000, help="training pairs (one pass)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with train/test .en/.ja files")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per step (xlingual: half as pairs)")
    parser.add_argument("--lr-ours", type=float, default=None, help="xlingual's lr (default: DistillConfig's)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: st, xlingual")
    parser.add_argument("--out", default=None, help="where data, models and results go (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads (default: torch's choice)")
    parser.add_argument("--teacher", default="builtin:minilm-en")
    parser.add_argument("--student", default="builtin:me5-small")
    parser.add_argument("--max-seq-length", type=int, default=128, help="student token limit (both systems)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (both systems)")
    parser.add_argument(
        "--st-layout",
        choices=("rows", "columns"),
        default="rows",
        help="recipe rows: one sentence each (ParallelSentencesDataset form, default) or (en, ja) pairs "
        "(make_multilingual.py for sentence-transformers >= 3); sentences per step are equal either way",
    )
    parser.add_argument(
        "--st-prompt",
        action="store_true",
        help="train the recipe with the student's default prompt (e5: 'query: '), which encode() applies anyway",
    )
    parser.add_argument(
        "--warm-cache", action="store_true", help="let xlingual reuse cached teacher vectors (default: cold)"
    )
    # Child-process arguments.
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE,...",
        help="run xlingual with these DistillConfig fields changed (repeatable; 'default:' for none)",
    )
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--variant-label", help=argparse.SUPPRESS)
    parser.add_argument("--variant-json", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--train-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
