"""``xlingual embed`` (texts → embeddings file), ``xlingual export`` (ST folder / ONNX) and ``xlingual trim``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, echo_json, setup_logging
from xlingual.cli.options import (
    EMBED_DTYPES,
    EXPORT_FORMATS,
    QUANTIZE,
    build,
    data_config,
    data_options,
    device_option,
    json_option,
    model_option,
    quiet_option,
    stack,
)
from xlingual.config import EmbedConfig, ExportConfig, TrimConfig

_E = EmbedConfig

_embedding_options = stack(
    click.option(
        "--dtype",
        type=EMBED_DTYPES,
        default=_E.dtype,
        show_default=True,
        help="Stored precision; int8 ranges and the binary threshold are recorded in the metadata.",
    ),
    click.option("--normalize/--no-normalize", default=_E.normalize, show_default=True, help="L2-normalise vectors."),
    click.option(
        "-b",
        "--batch-size",
        type=click.IntRange(min=1),
        default=_E.batch_size,
        show_default=True,
        help="Texts per batch.",
    ),
    click.option(
        "--chunk-size",
        type=click.IntRange(min=1),
        default=_E.chunk_size,
        show_default=True,
        help="Rows held in memory and committed to disk at a time (int8 is calibrated on the first chunk).",
    ),
    click.option(
        "--prompt-name", default=_E.prompt_name, help="Model prompt to prepend (e.g. passage); default: its own."
    ),
    click.option("--id-key", default=_E.id_key, show_default=True, help="JSONL/Parquet field of the row id."),
    click.option("--text-key", default=_E.text_key, show_default=True, help="JSONL/Parquet field of the text."),
)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@model_option("Model spec (onnx:DIR runs without PyTorch).", default=_E.model, show_default=True)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .npy (+ .ids.txt, .meta.json beside it), .parquet or .jsonl (+ .meta.json).",
)
@_embedding_options
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (or an interrupted run's partial files).")
@device_option(_E.device)
@quiet_option()
@json_option()
def embed(input_path: Path, out: Path, quiet: bool, as_json: bool, **params: Any) -> None:
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

    setup_logging(quiet or as_json)
    config = build(EmbedConfig, params, show_progress=not (quiet or as_json))
    result = embed_lib.embed_file(input_path, out, config)
    if as_json:
        echo_json(result.as_dict())
    elif not quiet:
        click.echo(result.summary())


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.argument("model")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Export folder.")
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=EXPORT_FORMATS,
    help="st: sentence-transformers folder with a model card; onnx: ONNX + tokenizer; openvino: OpenVINO + "
    f"tokenizer (pip install 'xlingual[openvino]'). Repeatable. Default: {' and '.join(ExportConfig().formats)}.",
)
@click.option(
    "--quantize",
    type=QUANTIZE,
    default=ExportConfig.quantize,
    help="Also write an int8 model of each graph format (ONNX: dynamic; OpenVINO: static, calibrated).",
)
@click.option(
    "--calibration",
    multiple=True,
    help="Texts calibrating the OpenVINO int8 model: .txt (one per line), JSONL/Parquet documents or parallel "
    "data (both sides). Repeatable. Default: the bundled training pairs, English and Japanese.",
)
@click.option(
    "--calibration-size",
    type=click.IntRange(min=1),
    default=ExportConfig.calibration_size,
    show_default=True,
    help="Calibration sentences used (a seeded sample).",
)
@click.option("--opset", type=click.IntRange(min=14), default=ExportConfig.opset, show_default=True, help="ONNX opset.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@quiet_option()
@json_option()
def export_command(
    model: str,
    out: Path,
    formats: tuple[str, ...],
    calibration: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Export a model as a sentence-transformers folder, ONNX and/or OpenVINO (optionally int8) for downstream apps.

    \b
    Example:
        xlingual export runs/distill/model -o exported -f st -f onnx --quantize int8
        xlingual export runs/distill/model -o exported-ov -f openvino --quantize int8
        xlingual evaluate -m openvino:exported-ov/openvino-int8 -p builtin:dev   # no PyTorch needed to encode

    The folder gets st/, onnx/ (and onnx-int8/), openvino/ (and openvino-int8/), config.json and
    metrics.json. Each graph holds the whole pipeline (transformer, pooling, normalisation, dense head);
    export fails unless PyTorch and the graph agree (cosine >= 0.999 on English and Japanese sentences), or
    an int8 model loses more than 2 points of accuracy on the bundled dev pairs.
    """
    from xlingual.export import model_export as export_lib

    setup_logging(quiet or as_json)
    config = build(ExportConfig, params, formats=list(formats) or ExportConfig().formats, calibration=list(calibration))
    result = export_lib.export_model(model, out, config)
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(result.summary())


@click.command("trim", context_settings=CONTEXT_SETTINGS)
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
@data_options("Undo word tokenisation of parallel corpora (e.g. Tanaka).")
@click.option("--overwrite", is_flag=True, help="Replace an existing trimmed folder.")
@quiet_option()
@json_option()
def trim_command(model: str, corpora: tuple[str, ...], out: Path, quiet: bool, as_json: bool, **params: Any) -> None:
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

    setup_logging(quiet or as_json)
    config = build(TrimConfig, params, data=data_config(params))
    result = trim_lib.trim_vocab(model, list(corpora), out, config)
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(result.summary())
