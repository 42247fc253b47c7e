"""Zero-shot transfer of an English-trained classifier to Japanese: how much of the in-language accuracy survives.

One head is fitted on the teacher's vectors of the English training texts (``fit_classifier``, C by
cross-validation) and applied to the test texts through:

1. the teacher reading the English test texts — the in-language ceiling;
2. the teacher reading the Japanese test texts;
3. the untouched student reading Japanese (another vector space: what the head gives without distillation);
4. the distilled student reading Japanese — the zero-shot transfer xlingual is for;

and, for comparison, 5. a head fitted on the distilled student's vectors of the *Japanese* training texts
(what Japanese labels would buy). The last column is accuracy as a share of the ceiling (target for row 4:
at least 95%).

    python eval/bench_transfer.py --student runs/tanaka50k/model
    python eval/bench_transfer.py --student runs/demo/model --train-en my_train_en.tsv --train-ja my_train_ja.tsv \\
        --test-en my_test_en.tsv --test-ja my_test_ja.tsv

Defaults: the bundled topic set (``builtin:topics-{train,test}-{en,ja}``), ``builtin:minilm-en`` as the
teacher and ``builtin:me5-small`` as the untouched student. Everything runs offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True, help="the distilled student (a run's model folder)")
    parser.add_argument("--teacher", default="builtin:minilm-en")
    parser.add_argument("--untouched", default="builtin:me5-small", help="the student before distillation")
    parser.add_argument("--train-en", default="builtin:topics-train-en")
    parser.add_argument("--train-ja", default="builtin:topics-train-ja")
    parser.add_argument("--test-en", default="builtin:topics-test-en")
    parser.add_argument("--test-ja", default="builtin:topics-test-ja")
    parser.add_argument("--text-key", default="text")
    parser.add_argument("--label-key", default="label")
    args = parser.parse_args()

    from xlingual.config import ClassifyConfig
    from xlingual.transfer.classifier import fit_classifier
    from xlingual.transfer.evaluate import evaluate_classifier

    config = ClassifyConfig(show_progress=False, text_key=args.text_key, label_key=args.label_key)
    started = time.perf_counter()
    head = fit_classifier(args.train_en, args.teacher, config)
    rows = [
        ("head on teacher(en) → teacher(en) test (ceiling)", head, args.teacher, args.test_en),
        ("→ teacher(ja)", head, args.teacher, args.test_ja),
        ("→ untouched student(ja) (another space)", head, args.untouched, args.test_ja),
        ("→ distilled student(ja) (zero-shot transfer)", head, args.student, args.test_ja),
    ]
    ja_head = fit_classifier(args.train_ja, args.student, config)
    rows.append(
        ("head on distilled student(ja) labels → student(ja) (Japanese labels)", ja_head, args.student, args.test_ja)
    )
    results = []
    for label, classifier, model, test in rows:
        (result,) = evaluate_classifier(classifier, [test], [model], config).results
        results.append((label, result))
    ceiling = results[0][1].accuracy
    print(f"Transfer benchmark, {dt.date.today()}, {platform.machine()} {os.cpu_count()} CPUs")
    print(
        f"train: {args.train_en} ({head.metrics['n_train']} texts, {len(head.labels)} labels); "
        f"test: {args.test_en}, {args.test_ja}"
    )
    print(f"teacher {args.teacher}; untouched {args.untouched}; distilled {args.student}")
    print(
        f"English head: cross-validated accuracy {100 * head.metrics['cv_accuracy']:.1f}% (C={head.metrics['C']:g})\n"
    )
    print("| | accuracy | macro-F1 | × ceiling |")
    print("|---|---:|---:|---:|")
    for label, result in results:
        print(
            f"| {label} | {100 * result.accuracy:.1f} | {100 * result.macro_f1:.1f} | {result.accuracy / ceiling:.3f} |"
        )
    transfer = results[3][1].accuracy / ceiling
    verdict = "meets" if transfer >= 0.95 else "misses"
    print(
        f"\nZero-shot transfer keeps {100 * transfer:.1f}% of the in-language accuracy ({verdict} the 95% target); "
        f"{time.perf_counter() - started:.0f} s in all."
    )


if __name__ == "__main__":
    main()
