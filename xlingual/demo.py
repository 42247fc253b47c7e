"""The main job behind ``xlingual demo``: distil the built-in student on the bundled pairs, report, then transfer.

The transfer at the end is the payoff: a classifier fitted on the teacher's vectors of English sentences labels
Japanese sentences through the just-distilled student, printed beside the untouched student.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xlingual.config import DistillConfig

#: Where ``xlingual demo`` writes its run (replaced on every demo).
DEMO_RUN_DIR = Path("runs/demo")


def run_demo(log: Callable[[str], None] = lambda msg: None, *, out: Path = DEMO_RUN_DIR, quiet: bool = False) -> str:
    """Distil ``builtin:me5-small`` from ``builtin:minilm-en`` on the bundled pairs; return the summary.

    Example: ``print(run_demo(log=print))``.
    """
    from xlingual import data
    from xlingual.distillation.run import distill

    config = DistillConfig(out=out, overwrite=True, quiet=quiet)
    train = data.read_corpus(config.train[0])
    dev = data.read_corpus(config.dev) if config.dev else None
    log(
        f"xlingual demo: distilling {config.student} from {config.teacher} on {len(train)} bundled pairs "
        f"({len(dev) if dev is not None else 0} dev pairs held out), run directory {out}"
    )
    result = distill(config)
    log(f"evaluating the untouched and the distilled student on {config.dev} against the teacher")
    from xlingual.config import EvalConfig
    from xlingual.evaluation.evaluator import evaluate

    report = evaluate(
        {"untouched student": config.student, "distilled student": str(result.model_dir)},
        config.dev or "builtin:dev",
        config.teacher,
        config=EvalConfig(show_progress=False),
        out_dir=out / "eval",
    )
    lines = [
        result.summary(),
        "",
        report.format_table(),
        "",
        "cross_ja2en_acc: a Japanese sentence embedded by the student finds the teacher's embedding of its",
        "English translation first, among all dev sentences. Untouched, it is near zero: the two spaces are",
        "unrelated. Distillation puts the student's Japanese into the teacher's space.",
        f"Report with curves: {result.run_dir / 'report.md'}; evaluation: {out / 'eval' / 'metrics.json'}",
        "",
        *_transfer(config, str(result.model_dir), out, log, quiet),
    ]
    return "\n".join(lines)


def _transfer(config: DistillConfig, student: str, out: Path, log: Callable[[str], None], quiet: bool) -> list[str]:
    """Fit a head on the teacher's English topic sentences; label the Japanese test sentences with each student."""
    from xlingual.config import ClassifyConfig
    from xlingual.transfer.classifier import fit_classifier
    from xlingual.transfer.evaluate import evaluate_classifier

    settings = ClassifyConfig(model=config.teacher, show_progress=not quiet)
    log(f"transfer: fitting a topic classifier on {config.teacher}'s vectors of the English training sentences")
    classifier = fit_classifier("builtin:topics-train-en", config.teacher, settings)
    classifier.save(out / "classifier", overwrite=True)
    report = evaluate_classifier(
        classifier,
        ["builtin:topics-test-en", "builtin:topics-test-ja"],
        [config.teacher, config.student, student],
        settings,
        name=str(out / "classifier"),
    )
    report.results = [r for r in report.results if r.model == config.teacher or r.test.endswith("-ja")]
    report.write(out / "classifier-eval")
    return [
        "Transfer: a topic classifier fitted on the teacher's vectors of English sentences only "
        f"(cross-validated {100 * classifier.metrics['cv_accuracy']:.1f}%), applied to Japanese test sentences:",
        report.format_table(),
        "The distilled student puts Japanese where the English head expects it; no Japanese label was used.",
        f"Classifier: {out / 'classifier'}; try: xlingual classify predict {out / 'classifier'} FILE -m {student}",
    ]
