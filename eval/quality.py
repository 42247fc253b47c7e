"""Quality table behind the README's results: untouched student, teacher and distilled run(s) on one pairs file.

Usage:
    python eval/quality.py --pairs ../shared/data/small_parallel_enja/test --detokenize --run runs/tanaka
    python eval/quality.py --pairs builtin:dev --run runs/demo --json

Every model is evaluated on the same pairs with the teacher as reference (cross-model columns), through
``xlingual.evaluation.evaluator`` (exact FAISS retrieval; cached embeddings are reused).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from pathlib import Path

from xlingual.config import DEFAULT_STUDENT, DEFAULT_TEACHER, DataConfig, EvalConfig
from xlingual.evaluation.evaluator import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", required=True, help="any data spec (TSV, EN,JA files, prefix, builtin:dev)")
    parser.add_argument("--run", action="append", default=[], help="a distillation run directory (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="another model spec to compare (repeatable)")
    parser.add_argument("--student", default=DEFAULT_STUDENT, help="the untouched student")
    parser.add_argument("--teacher", default=DEFAULT_TEACHER)
    parser.add_argument("--detokenize", action="store_true", help="undo word tokenisation (Tanaka corpus)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    parser.add_argument("--out", type=Path, default=None, help="also write metrics.json and histograms here")
    args = parser.parse_args()

    models = {"untouched student": args.student, "teacher": args.teacher}
    for run in args.run:
        models[f"distilled ({Path(run).name})"] = str(Path(run) / "model")
    for spec in args.model:
        models[spec] = spec
    report = evaluate(
        models,
        args.pairs,
        args.teacher,
        config=EvalConfig(show_progress=False),
        data_config=DataConfig(detokenize=args.detokenize),
        out_dir=args.out,
    )
    if args.json:
        print(report.to_json_lines())
        return
    print(f"pairs: {args.pairs}; reference teacher for cross_*/mse: {args.teacher}")
    print(report.format_table())
    print(f"{dt.date.today()} · {platform.machine()} · {os.cpu_count()} CPUs · {platform.python_version()}")


if __name__ == "__main__":
    main()
