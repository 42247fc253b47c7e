"""``xlingual classify fit | predict | evaluate``: a head fitted on English labels, read in Japanese."""

from __future__ import annotations

from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, XlingualGroup, echo_json, setup_logging
from xlingual.cli.options import build, device_option, json_option, model_option, quiet_option, stack
from xlingual.config import ClassifyConfig

_LABELLED = (
    "label<TAB>text TSV, JSONL/Parquet with --label-key/--text-key, a saved dataset (DIR[@split]), hf:NAME@split "
    "or builtin:topics-{train,test}-{en,ja}; gzip allowed"
)

_read_options = stack(
    click.option("--text-key", default=ClassifyConfig.text_key, show_default=True, help="Field holding the text."),
    click.option("--label-key", default=ClassifyConfig.label_key, show_default=True, help="Field holding the label."),
    click.option("--detokenize", is_flag=True, help="Rejoin pre-tokenised text (e.g. the Tanaka corpus)."),
    click.option(
        "-b", "--batch-size", type=click.IntRange(min=1), default=ClassifyConfig.batch_size, show_default=True
    ),
    device_option(ClassifyConfig.device),
)


@click.group("classify", cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
def classify() -> None:
    """Fit a classifier on English labelled texts and label Japanese with a distilled student.

    \b
    Example:
        xlingual classify fit --train builtin:topics-train-en --model builtin:minilm-en --out clf
        xlingual classify evaluate clf --test builtin:topics-test-ja -m builtin:me5-small -m runs/distill/model
        xlingual classify predict clf questions.txt --model runs/distill/model --json
    """


@classify.command("fit", context_settings=CONTEXT_SETTINGS)
@click.option("--train", required=True, help=f"Labelled training texts: {_LABELLED}.")
@model_option("The model whose vectors the head reads (the teacher).", default=ClassifyConfig.model, show_default=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="The classifier folder to write.")
@click.option("--cv-folds", type=click.IntRange(min=2), default=ClassifyConfig.cv_folds, show_default=True)
@click.option("--seed", type=int, default=ClassifyConfig.seed, show_default=True)
@_read_options
@click.option("--no-cache", is_flag=True, help="Re-embed even when the embeddings are cached on disk.")
@click.option("--overwrite", is_flag=True, help="Replace an existing classifier folder at --out.")
@json_option("Print the metrics as one JSON object.")
@quiet_option()
def fit(as_json: bool, quiet: bool, **params: Any) -> None:
    """Fit a logistic-regression head on MODEL's embeddings of the training texts (C by cross-validation).

    \b
    Example:
        xlingual classify fit --train builtin:topics-train-en -m builtin:minilm-en -o clf

    Writes OUT/config.json, OUT/head.safetensors (weights only: loading runs no code) and OUT/metrics.json.
    """
    from xlingual.transfer.classifier import fit_classifier

    setup_logging(quiet or as_json)
    config = build(ClassifyConfig, params, show_progress=not quiet, cache=not params["no_cache"])
    classifier = fit_classifier(params["train"], params["model"], config)
    out = classifier.save(params["out"], overwrite=params["overwrite"])
    metrics = classifier.metrics
    if as_json:
        echo_json({"out": str(out), "labels": list(classifier.labels), **metrics})
        return
    click.echo(
        f"{out}: {len(classifier.labels)} labels, {metrics['n_train']:,} texts; cross-validated accuracy "
        f"{100 * metrics['cv_accuracy']:.1f}% ({metrics['cv_folds']} folds, C={metrics['C']:g})"
    )


@classify.command("predict", context_settings=CONTEXT_SETTINGS)
@click.argument("classifier_dir", metavar="CLASSIFIER", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@model_option(
    "Model that embeds the texts: the head's model, a student distilled from it, or an export (default: the head's)."
)
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Write the labels here (default: stdout).")
@click.option(
    "--top", type=click.IntRange(min=1), default=ClassifyConfig.top, show_default=True, help="Labels listed per text."
)
@click.option("--id-key", default="id", show_default=True, help="JSONL/Parquet field holding the id (else FILE:LINE).")
@_read_options
@json_option("One JSON object per text: id, text, label, probability, top.")
@quiet_option()
def predict(classifier_dir: str, input_path: str, as_json: bool, quiet: bool, **params: Any) -> None:
    """Label every line (text file) or record (JSONL, Parquet) of INPUT, in input order.

    \b
    Example:
        xlingual classify predict clf questions.txt -m runs/demo/model --json

    Output: id<TAB>label<TAB>probability<TAB>top<TAB>text lines (a header first), or JSON lines with --json.
    """
    from xlingual.transfer.classifier import Classifier
    from xlingual.transfer.predict import predict_file

    setup_logging(quiet or params["out"] is None)
    classifier = Classifier.load(classifier_dir)
    config = build(ClassifyConfig, params, show_progress=not quiet and params["out"] is not None)
    stats = predict_file(
        classifier,
        input_path,
        params["model"],
        out=params["out"],
        as_json=as_json,
        config=config,
        id_key=params["id_key"],
    )
    if params["out"] is not None and not quiet:
        skipped = f" ({stats.skipped_blank:,} blank skipped)" if stats.skipped_blank else ""
        click.echo(f"{params['out']}: {stats.labelled:,} texts labelled{skipped}", err=True)


@classify.command("evaluate", context_settings=CONTEXT_SETTINGS)
@click.argument("classifier_dir", metavar="CLASSIFIER", type=click.Path(exists=True, file_okay=False))
@click.option("--test", "tests", required=True, multiple=True, help=f"Labelled test texts (repeatable): {_LABELLED}.")
@model_option("Model that embeds the test texts; repeat to compare (default: the head's own).", "models", multiple=True)
@click.option(
    "-o", "--out", type=click.Path(file_okay=False), help="Also write metrics.json and confusion-matrix PNGs here."
)
@_read_options
@click.option("--no-cache", is_flag=True, help="Re-embed even when the embeddings are cached on disk.")
@json_option("One JSON object per model and test set, one per line (fractions 0-1).")
@quiet_option()
def evaluate_command(classifier_dir: str, as_json: bool, quiet: bool, **params: Any) -> None:
    """Accuracy, macro-F1, per-class precision/recall and confusion matrices of every model on every test set.

    \b
    Example:
        xlingual classify evaluate clf --test builtin:topics-test-ja -m builtin:me5-small -m runs/demo/model

    A model outside the head's vector space (e.g. the untouched student) is scored too, marked as a baseline.
    """
    from xlingual.transfer.classifier import Classifier
    from xlingual.transfer.evaluate import evaluate_classifier

    setup_logging(quiet or as_json)
    classifier = Classifier.load(classifier_dir)
    config = build(ClassifyConfig, params, show_progress=not quiet, cache=not params["no_cache"])
    models = list(params["models"]) or [classifier.model.spec]
    report = evaluate_classifier(classifier, list(params["tests"]), models, config, name=classifier_dir)
    if params["out"]:
        report.write(params["out"])
    if as_json:
        for result in report.results:
            echo_json(result.as_dict())
    else:
        click.echo(report.format_table())
