"""The ``xlingual`` command line. The only module that imports click.

Each command parses options into a config from :mod:`xlingual.config`, calls one stage, and turns
:class:`~xlingual.errors.XlingualError` into a one-line message with exit code 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from xlingual import __version__
from xlingual.config import (
    DataConfig,
    DistillConfig,
    EmbedConfig,
    EvalConfig,
    ExportConfig,
    IndexConfig,
    MineConfig,
    SearchConfig,
    ServeConfig,
    TrimConfig,
)
from xlingual.errors import XlingualError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _quiet_third_party() -> None:
    """Keep library chatter (weight-loading bars, load reports) off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("transformers", "sentence_transformers", "datasets", "huggingface_hub", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    _quiet_third_party()


class XlingualGroup(click.Group):
    """A click group that reports library errors as clean messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; an :class:`XlingualError` becomes ``Error: <message>`` and exit code 1."""
        try:
            return super().invoke(ctx)
        except XlingualError as exc:
            raise click.ClickException(str(exc)) from exc


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group(cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="xlingual")
def cli() -> None:
    """Make an English sentence-embedding model speak Japanese, then evaluate, search and export it.

    \b
    Start with:
        xlingual models            # the built-in offline models
        xlingual demo              # a short end-to-end run on the built-ins
        xlingual COMMAND -h        # help for one command
    """


# --------------------------------------------------------------------------- models


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--convert", is_flag=True, help="Convert builtin:me5-small now if it is not yet converted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per built-in.")
def models(convert: bool, as_json: bool) -> None:
    """List the built-in models: installed, converted, size and dimension.

    \b
    Example:
        xlingual models --convert
    """
    from xlingual.models import specs as model_lib

    _setup_logging(quiet=as_json)
    if convert:
        model_lib.ensure_me5_small()
    statuses = model_lib.builtin_status()
    if as_json:
        for status in statuses:
            _echo_json(status.as_dict())
        return
    header = f"{'spec':<20} {'role':<8} {'installed':<10} {'converted':<10} {'dim':>4} {'size':>9}  source"
    click.echo(header)
    for s in statuses:
        converted = "-" if s.converted is None else ("yes" if s.converted else "no")
        size = f"{s.size_mb:.0f} MB" if s.size_mb is not None else "-"
        click.echo(
            f"{s.spec:<20} {s.role:<8} {'yes' if s.installed else 'no':<10} {converted:<10} "
            f"{s.dim:>4} {size:>9}  {s.package}"
        )
    if any(s.converted is False for s in statuses):
        click.echo("\nbuiltin:me5-small is converted on first use (about 30 s), or now with: xlingual models --convert")


# --------------------------------------------------------------------------- data


@cli.group(cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
def data() -> None:
    """Inspect parallel corpora (TSV, aligned files, JSONL, Hugging Face datasets)."""


@data.command("inspect", context_settings=CONTEXT_SETTINGS)
@click.argument("specs", nargs=-1, required=True)
@click.option("--detokenize", is_flag=True, help="Undo word tokenisation (e.g. the Tanaka corpus).")
@click.option("--en-key", default=DataConfig.en_key, show_default=True, help="English column / JSON key.")
@click.option("--ja-key", default=DataConfig.ja_key, show_default=True, help="Japanese column / JSON key.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def data_inspect(specs: tuple[str, ...], detokenize: bool, en_key: str, ja_key: str, as_json: bool) -> None:
    """Print counts, length statistics, duplicates, script mix and every problem found.

    \b
    Example:
        xlingual data inspect builtin:train
        xlingual data inspect pairs.tsv corpus.en,corpus.ja --json

    SPECS: a TSV file (en<TAB>ja), two aligned files as EN_FILE,JA_FILE (or a prefix P with P.en and
    P.ja), a JSONL file, a saved Hugging Face dataset folder, hf:NAME[@split], or builtin:train /
    builtin:dev. Any of them may be gzip-compressed.
    """
    from xlingual.data import inspect as data_lib

    _setup_logging(quiet=True)
    config = DataConfig(detokenize=detokenize, en_key=en_key, ja_key=ja_key)
    report = data_lib.inspect_corpus(list(specs), config)
    if as_json:
        _echo_json(report)
    else:
        click.echo(data_lib.format_inspect(report))


# --------------------------------------------------------------------------- distill

_D = DistillConfig


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("-t", "--teacher", default=_D.teacher, show_default=True, help="English teacher model spec.")
@click.option("-s", "--student", default=_D.student, show_default=True, help="Multilingual student model spec.")
@click.option(
    "--train",
    "train_specs",
    multiple=True,
    help="Training pairs (any data spec; repeatable). Default: the bundled pairs (builtin:train).",
)
@click.option("--dev", default=_D.dev, show_default=True, help="Dev pairs for the curves; 'none' to skip.")
@click.option(
    "--exclude",
    "exclude_specs",
    multiple=True,
    help="Evaluation pairs (data spec) whose sentences must not be trained on; repeatable. The dev set always is.",
)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=_D.out, show_default=True, help="Run directory.")
@click.option("--epochs", type=int, default=_D.epochs, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Train exactly this many steps (overrides --epochs).")
@click.option("-b", "--batch-size", type=int, default=_D.batch_size, show_default=True, help="Pairs per step.")
@click.option("--lr", type=float, default=_D.lr, show_default=True, help="Peak learning rate (AdamW).")
@click.option(
    "--contrastive-weight",
    type=float,
    default=_D.contrastive_weight,
    show_default=True,
    help="Add an in-batch contrastive term (student-ja vs teacher-en) with this weight to the MSE loss.",
)
@click.option("--temperature", type=float, default=_D.temperature, show_default=True, help="Of the contrastive term.")
@click.option("--warmup-ratio", type=float, default=_D.warmup_ratio, show_default=True)
@click.option("--max-seq-length", type=int, default=_D.max_seq_length, show_default=True, help="Student tokens.")
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option("--eval-every", type=int, default=_D.eval_every, show_default=True, help="Dev evaluation every N steps.")
@click.option("--save-every", type=int, default=_D.save_every, show_default=True, help="Checkpoint every N steps.")
@click.option("--keep-checkpoints", type=int, default=_D.keep_checkpoints, show_default=True)
@click.option(
    "--init",
    type=click.Choice(["procrustes", "lstsq", "none"]),
    default=_D.init,
    show_default=True,
    help="Closed-form start of the alignment head before fine-tuning.",
)
@click.option(
    "--group-by-length/--no-group-by-length",
    default=_D.group_by_length,
    show_default=True,
    help="Batch pairs of similar length (less padding).",
)
@click.option("--freeze-embeddings", is_flag=True, help="Keep the word-embedding matrix fixed (faster steps).")
@click.option(
    "--freeze-layers",
    type=int,
    default=_D.freeze_layers,
    show_default=True,
    help="Keep the lowest N transformer layers (and the embeddings) fixed: cheaper steps.",
)
@click.option(
    "--trim-vocab", is_flag=True, help="Trim the student's vocabulary to the pieces of the train/dev sentences first."
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=_D.device, show_default=True)
@click.option("--detokenize", is_flag=True, help="Undo word tokenisation of the corpora (e.g. the Tanaka corpus).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; only the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def distill(
    teacher: str,
    student: str,
    train_specs: tuple[str, ...],
    dev: str,
    exclude_specs: tuple[str, ...],
    out: Path,
    epochs: int,
    max_steps: int | None,
    batch_size: int,
    lr: float,
    contrastive_weight: float,
    temperature: float,
    warmup_ratio: float,
    max_seq_length: int,
    seed: int,
    eval_every: int,
    save_every: int,
    keep_checkpoints: int,
    init: str,
    group_by_length: bool,
    freeze_embeddings: bool,
    freeze_layers: int,
    trim_vocab: bool,
    resume: bool,
    overwrite: bool,
    device: str,
    detokenize: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Distil the teacher into the student on parallel English–Japanese pairs.

    \b
    Example:
        xlingual distill --max-steps 20 --out runs/quick
        xlingual distill --train ../corpus/train --detokenize --dev ../corpus/dev --epochs 2 -o runs/tanaka
        xlingual distill -o runs/tanaka --resume        # after a crash or Ctrl-C

    Every option has a default: with none, the built-in teacher and student train on the bundled pairs.
    The run directory gets config.json, metrics.jsonl, checkpoints/, model/, curves.png and report.md.
    Multi-process: torchrun --nproc_per_node=2 -m xlingual distill ...
    """
    from xlingual.distillation import run as distill_lib

    _setup_logging(quiet or as_json)
    config = DistillConfig(
        teacher=teacher,
        student=student,
        train=list(train_specs) or DistillConfig().train,
        dev=None if dev.lower() == "none" else dev,
        exclude=list(exclude_specs),
        out=out,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        contrastive_weight=contrastive_weight,
        temperature=temperature,
        warmup_ratio=warmup_ratio,
        max_seq_length=max_seq_length,
        seed=seed,
        eval_every=eval_every,
        save_every=save_every,
        keep_checkpoints=keep_checkpoints,
        init=init,
        group_by_length=group_by_length,
        freeze_embeddings=freeze_embeddings,
        freeze_layers=freeze_layers,
        trim_vocab=trim_vocab,
        resume=resume,
        overwrite=overwrite,
        device=device,
        detokenize=detokenize,
        quiet=quiet or as_json,
    )
    result = distill_lib.distill(config)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        _echo_json(
            {
                "run_dir": str(result.run_dir),
                "model_dir": str(result.model_dir),
                "steps": result.steps,
                "pairs_seen": result.pairs_seen,
                "seconds": round(result.seconds, 2),
                "pairs_per_second": round(result.pairs_per_second, 2),
                "untouched": result.untouched,
                "before": result.before,
                "after": result.after,
            }
        )
    else:
        click.echo(result.summary())


# --------------------------------------------------------------------------- evaluate


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Model spec or folder; repeat to compare models side by side.",
)
@click.option(
    "-p",
    "--pairs",
    required=True,
    help="Evaluation pairs: any corpus spec `xlingual data inspect` reads (pairs.tsv, EN,JA, builtin:dev).",
)
@click.option("-t", "--teacher", help="Teacher spec: adds cross_ja2en_acc, cross_en2ja_acc, mse and mse_en.")
@click.option(
    "--sts",
    type=click.Path(exists=True, dir_okay=False),
    help="Scored pairs sentence1<TAB>sentence2<TAB>score: adds sts_spearman.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    help="Also write metrics.json, config.json and similarity_histograms.png into this folder.",
)
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=EvalConfig.batch_size,
    show_default=True,
    help="Sentences per encoder batch.",
)
@click.option(
    "--margin-k",
    type=click.IntRange(min=1),
    default=EvalConfig.margin_k,
    show_default=True,
    help="Neighbours each side in the ratio margin.",
)
@click.option("--device", default=EvalConfig.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("--detokenize", is_flag=True, help="Undo word tokenisation of the pairs (e.g. the Tanaka corpus).")
@click.option("--no-cache", is_flag=True, help="Re-embed even when the embeddings are cached on disk.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, one per line (fractions 0-1).")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages or bars.")
def evaluate(
    models: tuple[str, ...],
    pairs: str,
    teacher: str | None,
    sts: str | None,
    out: str | None,
    batch_size: int,
    margin_k: int,
    device: str | None,
    detokenize: bool,
    no_cache: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Score models on translation retrieval, margin retrieval and alignment with a teacher.

    \b
    Example:
        xlingual evaluate -m builtin:me5-small -m runs/student -p builtin:dev -t builtin:minilm-en

    Each sentence queries all sentences of the other language (exact FAISS search). The table shows
    accuracy, recall@5/10 and MRR in percent; --json and metrics.json hold them as fractions.
    """
    from xlingual.evaluation import evaluator as eval_lib

    _setup_logging(quiet or as_json)
    config = EvalConfig(
        batch_size=batch_size, margin_k=margin_k, device=device, show_progress=not quiet, cache=not no_cache
    )
    report = eval_lib.evaluate(
        list(models),
        pairs,
        teacher,
        config=config,
        data_config=DataConfig(detokenize=detokenize),
        sts=sts,
        out_dir=out,
    )
    click.echo(report.to_json_lines() if as_json else report.format_table())


# --------------------------------------------------------------------------- mine


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("-m", "--model", required=True, help="Model spec or folder (a multilingual student).")
@click.option(
    "-s",
    "--src",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Source sentences, one per line (e.g. ja.txt).",
)
@click.option(
    "-t",
    "--tgt",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Target sentences, one per line (e.g. en.txt).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write score<TAB>src<TAB>tgt lines here (default: stdout)."
)
@click.option(
    "--threshold",
    type=float,
    default=MineConfig.threshold,
    show_default=True,
    help="Keep pairs whose ratio margin is at least this.",
)
@click.option(
    "-k",
    "--neighbours",
    "k",
    type=click.IntRange(min=1),
    default=MineConfig.k,
    show_default=True,
    help="Neighbours each side in the ratio margin.",
)
@click.option(
    "--mode",
    type=click.Choice(["forward", "backward", "intersect", "max"]),
    default=MineConfig.mode,
    show_default=True,
    help="forward/backward: best match of each line; intersect: mutual best; "
    "max: both directions, one-to-one by score.",
)
@click.option(
    "-g",
    "--gold",
    type=click.Path(exists=True, dir_okay=False),
    help="Gold pairs src<TAB>tgt (texts): report precision, recall and F1.",
)
@click.option("--tune", is_flag=True, help="With --gold: use the F1-optimal threshold instead of --threshold.")
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=MineConfig.batch_size,
    show_default=True,
    help="Sentences per encoder batch.",
)
@click.option("--device", default=MineConfig.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary (threshold, counts, precision/recall/F1) as one JSON object; needs --output.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages or bars.")
def mine(
    model: str,
    src: str,
    tgt: str,
    output: str | None,
    threshold: float,
    k: int,
    mode: str,
    gold: str | None,
    tune: bool,
    batch_size: int,
    device: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Find translation pairs between two unaligned files with margin scoring (Artetxe & Schwenk, 2019).

    \b
    Example:
        xlingual mine -m runs/student -s ja.txt -t en.txt -o mined.tsv
        xlingual mine -m runs/student -s ja.txt -t en.txt -o mined.tsv -g gold.tsv --tune

    The default threshold 1.06 is CCMatrix's; with --gold and --tune the F1-optimal one is used.
    """
    from xlingual.evaluation import mining as eval_lib

    if tune and not gold:
        raise click.UsageError("--tune needs --gold: pairs to tune the threshold on.")
    if as_json and not output:
        raise click.UsageError("--json prints a summary on stdout; pass --output FILE for the mined pairs.")
    _setup_logging(quiet or as_json)
    src_texts, tgt_texts = eval_lib.read_lines(src), eval_lib.read_lines(tgt)
    config = MineConfig(
        threshold=float("-inf") if tune else threshold,
        k=k,
        mode=mode,
        batch_size=batch_size,
        device=device,
        show_progress=not quiet,
    )
    mined = eval_lib.mine(model, src_texts, tgt_texts, config=config)
    summary: dict[str, Any] = {"threshold": threshold, "n_src": len(src_texts), "n_tgt": len(tgt_texts)}
    if gold:
        gold_pairs = eval_lib.read_gold(gold)
        if tune:
            threshold, scores = eval_lib.best_threshold(mined, gold_pairs, src_texts, tgt_texts)
            mined = [pair for pair in mined if pair.score >= threshold]
        else:
            scores = eval_lib.mine_scores_vs_gold(mined, gold_pairs, src_texts, tgt_texts)
        summary.update(
            threshold=threshold,
            precision=scores.precision,
            recall=scores.recall,
            f1=scores.f1,
            n_gold=scores.n_gold,
            n_correct=scores.n_correct,
        )
    summary["n_mined"] = len(mined)
    if output:
        eval_lib.write_mined(output, mined, src_texts, tgt_texts)
    else:
        for line in eval_lib.mined_tsv_lines(mined, src_texts, tgt_texts):
            click.echo(line)
    if as_json:
        _echo_json(summary)
    elif not quiet or gold:
        message = f"mined {len(mined)} pairs (threshold {threshold:.4f})"
        if gold:
            message += (
                f"; precision {summary['precision']:.1%}, recall {summary['recall']:.1%}, "
                f"F1 {summary['f1']:.1%} on {summary['n_gold']} gold pairs"
            )
        click.echo(message, err=True)


# --------------------------------------------------------------------------- index / search / serve

_I = IndexConfig


@cli.group("index", cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
def index_group() -> None:
    """Build, extend and inspect semantic search indexes over document corpora."""


@index_group.command("build", context_settings=CONTEXT_SETTINGS)
@click.argument("corpus", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--model", default=_I.model, show_default=True, help="Model spec that embeds the passages.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Index folder to create.")
@click.option(
    "-t",
    "--index-type",
    type=click.Choice(["auto", "flat", "hnsw", "ivf-pq"]),
    default=_I.index_type,
    show_default=True,
    help=f"auto: flat (exact) up to {_I.flat_max:,} passages, {_I.auto_approximate} above.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=_I.max_tokens,
    show_default=True,
    help="Longest passage in model tokens (capped by the model's own limit).",
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=1),
    default=_I.max_chars,
    show_default=True,
    help="Longest passage in characters, for models without a tokenizer.",
)
@click.option(
    "--target-recall",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=_I.target_recall,
    show_default=True,
    help="recall@10 the approximate indexes are tuned to at build time.",
)
@click.option("--id-key", default=_I.id_key, show_default=True, help="JSONL/Parquet field of the document id.")
@click.option("--text-key", default=_I.text_key, show_default=True, help="JSONL/Parquet field of the text.")
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=_I.batch_size,
    show_default=True,
    help="Passages per batch.",
)
@click.option("--device", default=_I.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON object.")
def index_build(
    corpus: Path,
    model: str,
    out: Path,
    index_type: str,
    max_tokens: int,
    max_chars: int,
    target_recall: float,
    id_key: str,
    text_key: str,
    batch_size: int,
    device: str | None,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Split a corpus into passages, embed them and write a search index.

    \b
    Example:
        xlingual index build docs.jsonl --model runs/distill/model --out idx
        xlingual index build news.txt.gz -m builtin:minilm-en -o idx-en --index-type hnsw

    CORPUS: a text file (one document per line, id FILE:LINE), JSONL (id, text, other fields kept as
    metadata) or Parquet with the same columns; gzip allowed. Documents are split at sentence ends
    (。！？ and line breaks) into passages of at most --max-tokens tokens.
    """
    from xlingual.search.index import Index

    _setup_logging(quiet or as_json)
    config = IndexConfig(
        model=model,
        index_type=index_type,
        max_tokens=max_tokens,
        max_chars=max_chars,
        target_recall=target_recall,
        id_key=id_key,
        text_key=text_key,
        batch_size=batch_size,
        device=device,
        overwrite=overwrite,
        show_progress=not (quiet or as_json),
    )
    built = Index.build(corpus, out, config=config)
    if as_json:
        _echo_json(built.info())
    elif not quiet:
        click.echo(f"{built.path}: {len(built):,} passages, {built.spec.factory_string()} index")


@index_group.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("index_path", metavar="INDEX", type=click.Path(file_okay=False, path_type=Path))
@click.argument("corpus", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id-key", default=_I.id_key, show_default=True, help="JSONL/Parquet field of the document id.")
@click.option("--text-key", default=_I.text_key, show_default=True, help="JSONL/Parquet field of the text.")
@click.option(
    "-b",
    "--batch-size",
    type=click.IntRange(min=1),
    default=_I.batch_size,
    show_default=True,
    help="Passages per batch.",
)
@click.option("--device", default=_I.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the updated manifest as one JSON object.")
def index_add(
    index_path: Path,
    corpus: Path,
    id_key: str,
    text_key: str,
    batch_size: int,
    device: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Append the documents of CORPUS to an index, without rebuilding it.

    \b
    Example:
        xlingual index add idx more-docs.jsonl

    The index's model and splitting settings apply. Document ids must not already be in the index.
    """
    from xlingual.search.index import Index

    _setup_logging(quiet or as_json)
    loaded = Index.load(index_path, config=SearchConfig(device=device))
    config = IndexConfig(id_key=id_key, text_key=text_key, batch_size=batch_size, show_progress=not (quiet or as_json))
    added = loaded.add(corpus, config=config)
    if as_json:
        _echo_json(loaded.info())
    elif not quiet:
        click.echo(f"{loaded.path}: added {added:,} passages, {len(loaded):,} in all")


@index_group.command("info", context_settings=CONTEXT_SETTINGS)
@click.argument("index_path", metavar="INDEX", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-verify", is_flag=True, help="Skip the sha256 check of the files (sizes are still checked).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and size as one JSON object.")
def index_info(index_path: Path, no_verify: bool, as_json: bool) -> None:
    """Print an index's manifest: model, dimension, index type and parameters, counts, dates, size.

    \b
    Example:
        xlingual index info idx
    """
    from xlingual.search.display import format_info
    from xlingual.search.index import Index

    _setup_logging(quiet=True)
    info = Index.load(index_path, config=SearchConfig(verify=not no_verify)).info()
    click.echo(json.dumps(info, ensure_ascii=False) if as_json else format_info(info))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("index_path", metavar="INDEX", type=click.Path(file_okay=False, path_type=Path))
@click.argument("query", required=False)
@click.option(
    "-k",
    "--top-k",
    "k",
    type=click.IntRange(min=1),
    default=SearchConfig.k,
    show_default=True,
    help="Results per query.",
)
@click.option(
    "-f",
    "--queries",
    "queries_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Search every line of this file ('-': standard input) instead of QUERY.",
)
@click.option(
    "-Q",
    "--query-model",
    help="Embed queries with this model (it must share the index's vector space, e.g. a student of its teacher).",
)
@click.option("--ef-search", type=click.IntRange(min=1), help="HNSW: override the calibrated efSearch.")
@click.option("--nprobe", type=click.IntRange(min=1), help="IVF-PQ: override the calibrated nprobe.")
@click.option("--device", default=SearchConfig.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query: {query, results: [...]}.")
def search(
    index_path: Path,
    query: str | None,
    k: int,
    queries_file: str | None,
    query_model: str | None,
    ef_search: int | None,
    nprobe: int | None,
    device: str | None,
    as_json: bool,
) -> None:
    """Search an index: rank, score, document id, passage text and metadata of the best passages.

    \b
    Example:
        xlingual search idx "京都の古いお寺" -k 5
        xlingual search idx-en "猫が好きです" --query-model runs/distill/model   # Japanese → English index
        xlingual search idx --queries questions.txt --json
    """
    from xlingual.search.display import format_hits
    from xlingual.search.index import Index

    if (query is None) == (queries_file is None):
        raise click.UsageError("Pass either QUERY or --queries FILE.")
    _setup_logging(quiet=True)
    if queries_file is not None:
        stream = click.open_file(queries_file, encoding="utf-8")
        with stream:
            queries = [line.strip() for line in stream if line.strip()]
        if not queries:
            raise click.UsageError(f"{queries_file} has no queries (one per line).")
    else:
        queries = [query or ""]
    config = SearchConfig(k=k, query_model=query_model, ef_search=ef_search, nprobe=nprobe, device=device)
    loaded = Index.load(index_path, config=config)
    results = loaded.search(queries, k)
    for text, hits in zip(queries, results, strict=True):
        if as_json:
            _echo_json({"query": text, "results": [hit.as_dict() for hit in hits]})
        else:
            click.echo(format_hits(text if len(queries) > 1 else None, hits))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("index_path", metavar="INDEX", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host", default=ServeConfig.host, show_default=True, help="Address to bind (loopback: this machine only)."
)
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=ServeConfig.port, show_default=True)
@click.option("-Q", "--query-model", help="Embed queries with this model (it must share the index's vector space).")
@click.option("--max-k", type=click.IntRange(min=1), default=ServeConfig.max_k, show_default=True, help="Largest k.")
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=ServeConfig.max_batch,
    show_default=True,
    help="Queries per request.",
)
@click.option(
    "--max-query-chars",
    type=click.IntRange(min=1),
    default=ServeConfig.max_query_chars,
    show_default=True,
    help="Longest query in characters.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=ServeConfig.max_body_bytes,
    show_default=True,
    help="Largest request body.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=ServeConfig.request_timeout_s,
    show_default=True,
    help="Seconds per request (408 for a late body, 503 for a late search).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let web pages from ORIGIN (scheme://host[:port]) call the service; repeatable. Default: CORS off.",
)
@click.option("--log-queries", is_flag=True, help="Put query texts in the per-request log lines.")
@click.option("--show-paths", is_flag=True, help="Show full filesystem paths in /info (default: names only).")
@click.option("--device", default=SearchConfig.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings only (no per-request log lines).")
def serve(
    index_path: Path,
    host: str,
    port: int,
    query_model: str | None,
    max_k: int,
    max_batch: int,
    max_query_chars: int,
    max_body_bytes: int,
    request_timeout: float,
    cors_origins: tuple[str, ...],
    log_queries: bool,
    show_paths: bool,
    device: str | None,
    quiet: bool,
) -> None:
    """Serve an index over HTTP: POST /search, GET /health, GET /info, a search page at /.

    \b
    Example:
        xlingual serve idx                       # http://127.0.0.1:8000/
        curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "東京の天気", "k": 3}'

    The model and the index are loaded once. OpenAPI docs: /docs and /openapi.json. Each request is
    logged to stderr as one JSON line (method, path, status, latency_ms, client, n_queries, k; the query
    texts only with --log-queries).
    """
    from xlingual.search import serve as serve_lib

    _setup_logging(quiet)
    config = ServeConfig(
        host=host,
        port=port,
        max_k=max_k,
        max_batch=max_batch,
        max_query_chars=max_query_chars,
        max_body_bytes=max_body_bytes,
        request_timeout_s=request_timeout,
        cors_origins=cors_origins,
        log_queries=log_queries,
        show_paths=show_paths,
        log_level="warning" if quiet else ServeConfig.log_level,
    )
    serve_lib.serve(index_path, config, search_config=SearchConfig(query_model=query_model, device=device))


# --------------------------------------------------------------------------- embed / export

_E = EmbedConfig


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--model", default=_E.model, show_default=True, help="Model spec (onnx:DIR runs without PyTorch).")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .npy (+ .ids.txt, .meta.json beside it), .parquet or .jsonl (+ .meta.json).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "int8", "binary"]),
    default=_E.dtype,
    show_default=True,
    help="Stored precision; int8 ranges and the binary threshold are recorded in the metadata.",
)
@click.option("--normalize/--no-normalize", default=_E.normalize, show_default=True, help="L2-normalise vectors.")
@click.option(
    "-b", "--batch-size", type=click.IntRange(min=1), default=_E.batch_size, show_default=True, help="Texts per batch."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=_E.chunk_size,
    show_default=True,
    help="Rows held in memory and committed to disk at a time (int8 is calibrated on the first chunk).",
)
@click.option("--prompt-name", default=_E.prompt_name, help="Model prompt to prepend (e.g. passage); default: its own.")
@click.option("--id-key", default=_E.id_key, show_default=True, help="JSONL/Parquet field of the row id.")
@click.option("--text-key", default=_E.text_key, show_default=True, help="JSONL/Parquet field of the text.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (or an interrupted run's partial files).")
@click.option("--device", default=_E.device, help="Torch device (cpu, cuda, mps); default: automatic.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def embed(
    input_path: Path,
    model: str,
    out: Path,
    dtype: str,
    normalize: bool,
    batch_size: int,
    chunk_size: int,
    prompt_name: str | None,
    id_key: str,
    text_key: str,
    resume: bool,
    overwrite: bool,
    device: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Embed every text of a file into an embeddings file (NumPy, Parquet or JSONL), streaming.

    \b
    Example:
        xlingual embed docs.jsonl -m runs/distill/model -o emb.parquet
        xlingual embed sentences.txt.gz -m onnx:exported/onnx-int8 -o emb.npy --dtype int8
        xlingual embed sentences.txt.gz -m onnx:exported/onnx-int8 -o emb.npy --dtype int8 --resume

    INPUT: a text file (one text per line, id FILE:LINE), JSONL or Parquet (id, text); gzip allowed.
    Memory holds one --chunk-size of rows; after a crash or Ctrl-C, --resume continues where it stopped.
    The output file appears, atomically, only when every row is written.
    """
    from xlingual.export import embeddings as embed_lib

    _setup_logging(quiet or as_json)
    config = EmbedConfig(
        model=model,
        dtype=dtype,
        normalize=normalize,
        batch_size=batch_size,
        chunk_size=chunk_size,
        prompt_name=prompt_name,
        id_key=id_key,
        text_key=text_key,
        resume=resume,
        overwrite=overwrite,
        device=device,
        show_progress=not (quiet or as_json),
    )
    result = embed_lib.embed_file(input_path, out, config)
    if as_json:
        _echo_json(result.as_dict())
    elif not quiet:
        click.echo(result.summary())


@cli.command("export", context_settings=CONTEXT_SETTINGS)
@click.argument("model")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Export folder.")
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["st", "onnx"]),
    help="st: sentence-transformers folder with a model card; onnx: ONNX + tokenizer. Repeatable. "
    f"Default: {' and '.join(ExportConfig().formats)}.",
)
@click.option(
    "--quantize", type=click.Choice(["int8"]), default=ExportConfig.quantize, help="Also write an int8 ONNX model."
)
@click.option("--opset", type=click.IntRange(min=14), default=ExportConfig.opset, show_default=True, help="ONNX opset.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def export_command(
    model: str,
    out: Path,
    formats: tuple[str, ...],
    quantize: str | None,
    opset: int,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Export a model as a sentence-transformers folder and/or ONNX (optionally int8) for downstream apps.

    \b
    Example:
        xlingual export runs/distill/model -o exported -f st -f onnx --quantize int8
        xlingual evaluate -m onnx:exported/onnx-int8 -p builtin:dev      # no PyTorch needed to encode

    The folder gets st/, onnx/ (and onnx-int8/), config.json and metrics.json. The ONNX graph holds the
    whole pipeline (transformer, pooling, normalisation, dense head); export fails unless PyTorch and ONNX
    agree (cosine >= 0.999 on English and Japanese sentences).
    """
    from xlingual.export import model_export as export_lib

    _setup_logging(quiet or as_json)
    config = ExportConfig(
        formats=list(formats) or ExportConfig().formats, quantize=quantize, opset=opset, overwrite=overwrite
    )
    result = export_lib.export_model(model, out, config)
    if as_json:
        _echo_json(result.as_dict())
    else:
        click.echo(result.summary())


# --------------------------------------------------------------------------- trim


@cli.command("trim", context_settings=CONTEXT_SETTINGS)
@click.argument("model")
@click.option(
    "-c",
    "--corpus",
    "corpora",
    multiple=True,
    required=True,
    help="Texts the model must keep serving: .txt (one per line), JSONL/Parquet documents, or any parallel-data "
    "spec (both sides). Repeatable.",
)
@click.option(
    "-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Trimmed model folder."
)
@click.option(
    "--keep-top",
    type=click.IntRange(min=0),
    default=TrimConfig.keep_top,
    show_default=True,
    help="Also keep the N most probable pieces by the tokenizer's scores (robustness for unseen text).",
)
@click.option("--detokenize", is_flag=True, help="Undo word tokenisation of parallel corpora (e.g. Tanaka).")
@click.option("--overwrite", is_flag=True, help="Replace an existing trimmed folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def trim_command(
    model: str,
    corpora: tuple[str, ...],
    out: Path,
    keep_top: int,
    detokenize: bool,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Shrink a multilingual model's vocabulary to the pieces your corpora use.

    \b
    Example:
        xlingual trim builtin:me5-small -c builtin:train -c builtin:dev -o models/me5-enja
        xlingual trim runs/distill/model -c docs.jsonl --keep-top 20000 -o runs/distill/model-small

    Keeps special tokens, every piece the corpora produce and every single character of the Japanese
    scripts and of ASCII (so none becomes unknown); rewrites tokenizer.json and the embedding matrix
    together. Texts whose pieces are all kept embed exactly as before; this is checked before the folder
    is written.
    """
    from xlingual.models import trim as trim_lib

    _setup_logging(quiet or as_json)
    config = TrimConfig(keep_top=keep_top, data=DataConfig(detokenize=detokenize), overwrite=overwrite)
    result = trim_lib.trim_vocab(model, list(corpora), out, config)
    if as_json:
        _echo_json(result.as_dict())
    else:
        click.echo(result.summary())


# --------------------------------------------------------------------------- demo


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("-q", "--quiet", is_flag=True, help="Only the final summary.")
def demo(quiet: bool) -> None:
    """Run the main job end to end on the built-in models and the bundled data.

    \b
    Example:
        xlingual demo
    """
    from xlingual.demo import run_demo

    _setup_logging(quiet)
    click.echo(run_demo(log=lambda msg: None if quiet else click.echo(msg, err=True), quiet=quiet))


def main() -> None:
    """Entry point of the ``xlingual`` console script."""
    cli(prog_name="xlingual")
