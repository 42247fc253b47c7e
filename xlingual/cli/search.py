"""``xlingual index build/add/info``, ``xlingual search`` and ``xlingual serve``: semantic search over documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, XlingualGroup, echo_json, setup_logging
from xlingual.cli.options import (
    INDEX_TYPES,
    build,
    device_option,
    json_option,
    model_option,
    query_model_option,
    quiet_option,
    stack,
)
from xlingual.config import IndexConfig, SearchConfig, ServeConfig

_I = IndexConfig
_QUIET_HELP = "No progress bar or messages."

_index_path = click.argument("index_path", metavar="INDEX", type=click.Path(file_okay=False, path_type=Path))

_reader_options = stack(
    click.option("--id-key", default=_I.id_key, show_default=True, help="JSONL/Parquet field of the document id."),
    click.option("--text-key", default=_I.text_key, show_default=True, help="JSONL/Parquet field of the text."),
    click.option(
        "-b",
        "--batch-size",
        type=click.IntRange(min=1),
        default=_I.batch_size,
        show_default=True,
        help="Passages per batch.",
    ),
    device_option(_I.device),
)

_splitting_options = stack(
    click.option(
        "-t",
        "--index-type",
        type=INDEX_TYPES,
        default=_I.index_type,
        show_default=True,
        help=f"auto: flat (exact) up to {_I.flat_max:,} passages, {_I.auto_approximate} above.",
    ),
    click.option(
        "--max-tokens",
        type=click.IntRange(min=1),
        default=_I.max_tokens,
        show_default=True,
        help="Longest passage in model tokens (capped by the model's own limit).",
    ),
    click.option(
        "--max-chars",
        type=click.IntRange(min=1),
        default=_I.max_chars,
        show_default=True,
        help="Longest passage in characters, for models without a tokenizer.",
    ),
    click.option(
        "--target-recall",
        type=click.FloatRange(0.0, 1.0, min_open=True),
        default=_I.target_recall,
        show_default=True,
        help="recall@10 the approximate indexes are tuned to at build time.",
    ),
)


_hubness_options = stack(
    query_model_option(
        "The model that will embed queries (a student of --model): store each passage's hubness for CSLS ranking."
    ),
    click.option(
        "--hubness-k",
        type=click.IntRange(min=1),
        default=_I.hubness_k,
        show_default=True,
        help="Nearest reference queries averaged into each passage's hubness r(d).",
    ),
    click.option(
        "--hubness-queries",
        type=click.Path(dir_okay=False, exists=True),
        help=f"Reference queries, one per line (default: the query model's embeddings of ≤ {_I.hubness_sample:,} "
        "passages).",
    ),
)

_csls_option = click.option(
    "--csls/--no-csls",
    default=SearchConfig.csls,
    show_default=True,
    help="Rank by CSLS (cosine less each passage's hubness) when the index was built for the query model.",
)


@click.group("index", cls=XlingualGroup, context_settings=CONTEXT_SETTINGS)
def index_group() -> None:
    """Build, extend and inspect semantic search indexes over document corpora."""


@index_group.command("build", context_settings=CONTEXT_SETTINGS)
@click.argument("corpus", type=click.Path(dir_okay=False, path_type=Path), required=False)
@model_option("Model spec that embeds the passages.", default=_I.model, show_default=True)
@click.option(
    "--vectors",
    "vectors_file",
    metavar="FILE",
    help="Build from precomputed vectors and their texts instead of a CORPUS (no model): an xlingual embed file, "
    "Parquet/JSONL with --text-key/--id-key and a vector column (--vector-key), or .npy with FILE.texts.txt.",
)
@click.option("--vector-key", default=None, help="With --vectors: the vector column (default: embedding/vector).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Index folder to create.")
@_splitting_options
@_hubness_options
@_reader_options
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --out.")
@quiet_option(_QUIET_HELP)
@json_option("Print the manifest as one JSON object.")
def index_build(
    corpus: Path | None,
    out: Path,
    vectors_file: str | None,
    vector_key: str | None,
    quiet: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Split a corpus into passages, embed them and write a search index (or index existing vectors).

    \b
    Example:
        xlingual index build docs.jsonl --model runs/distill/model --out idx
        xlingual index build news.txt.gz -m builtin:minilm-en -o idx-en --index-type hnsw
        xlingual index build en.jsonl -m builtin:minilm-en -Q runs/distill/model -o idx-en   # CSLS for ja queries
        xlingual index build --vectors en.parquet -Q runs/from-vectors/model -o idx-en   # vectors made elsewhere

    CORPUS: a text file (one document per line, id FILE:LINE), JSONL (id, text, other fields kept as
    metadata) or Parquet with the same columns; gzip allowed. Documents are split at sentence ends
    (。！？ and line breaks) into passages of at most --max-tokens tokens. With --vectors, each row of the
    file is one passage, and the index is searched with -Q STUDENT (distill --teacher vectors:FILE).
    """
    from xlingual.search.index import Index

    setup_logging(quiet or as_json)
    config = build(IndexConfig, params, show_progress=not (quiet or as_json))
    if (corpus is None) == (vectors_file is None):
        raise click.UsageError("give a CORPUS to embed, or --vectors FILE to index existing vectors (one of them)")
    if corpus is not None:
        built = Index.build(corpus, out, config=config)
    else:
        built = Index.from_vectors(_vectors_spec(str(vectors_file), config, vector_key), out, config=config)
    if as_json:
        echo_json(built.info())
    elif not quiet:
        click.echo(f"{built.path}: {len(built):,} passages, {built.spec.factory_string()} index")


def _vectors_spec(file: str, config: IndexConfig, vector_key: str | None) -> str:
    """``--vectors FILE`` with ``--text-key/--id-key/--vector-key`` → ``vectors:FILE?text=…&id=…&vector=…``."""
    from urllib.parse import urlencode

    if file.startswith("vectors:"):
        return file
    keys = {"text": config.text_key, "id": config.id_key, "vector": vector_key}
    defaults = {"text": _I.text_key, "id": _I.id_key, "vector": None}
    query = urlencode({k: v for k, v in keys.items() if v != defaults[k]})
    return f"vectors:{file}" + (f"?{query}" if query else "")


@index_group.command("add", context_settings=CONTEXT_SETTINGS)
@_index_path
@click.argument("corpus", type=click.Path(dir_okay=False, path_type=Path))
@_reader_options
@quiet_option(_QUIET_HELP)
@json_option("Print the updated manifest as one JSON object.")
def index_add(index_path: Path, corpus: Path, quiet: bool, as_json: bool, **params: Any) -> None:
    """Append the documents of CORPUS to an index, without rebuilding it.

    \b
    Example:
        xlingual index add idx more-docs.jsonl

    The index's model and splitting settings apply. Document ids must not already be in the index.
    """
    from xlingual.search.index import Index

    setup_logging(quiet or as_json)
    loaded = Index.load(index_path, config=SearchConfig(device=params["device"]))
    added = loaded.add(corpus, config=build(IndexConfig, params, show_progress=not (quiet or as_json)))
    if as_json:
        echo_json(loaded.info())
    elif not quiet:
        click.echo(f"{loaded.path}: added {added:,} passages, {len(loaded):,} in all")


@index_group.command("info", context_settings=CONTEXT_SETTINGS)
@_index_path
@click.option("--no-verify", is_flag=True, help="Skip the sha256 check of the files (sizes are still checked).")
@json_option("Print the manifest and size as one JSON object.")
def index_info(index_path: Path, no_verify: bool, as_json: bool) -> None:
    """Print an index's manifest: model, dimension, index type and parameters, counts, dates, size.

    \b
    Example:
        xlingual index info idx
    """
    from xlingual.search.display import format_info
    from xlingual.search.index import Index

    setup_logging(quiet=True)
    info = Index.load(index_path, config=SearchConfig(verify=not no_verify)).info()
    if as_json:
        echo_json(info)
    else:
        click.echo(format_info(info))


@click.command(context_settings=CONTEXT_SETTINGS)
@_index_path
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
@query_model_option(
    "Embed queries with this model (it must share the index's vector space, e.g. a student of its teacher)."
)
@click.option("--ef-search", type=click.IntRange(min=1), help="HNSW: override the calibrated efSearch.")
@click.option("--nprobe", type=click.IntRange(min=1), help="IVF-PQ: override the calibrated nprobe.")
@_csls_option
@device_option(SearchConfig.device)
@json_option("One JSON object per query: {query, results: [...]}.")
def search(index_path: Path, query: str | None, queries_file: str | None, as_json: bool, **params: Any) -> None:
    """Search an index: rank, score, document id, passage text and metadata of the best passages.

    \b
    Example:
        xlingual search idx "京都の古いお寺" -k 5
        xlingual search idx-en "猫が好きです" --query-model runs/distill/model   # Japanese → English index
        xlingual search idx --queries questions.txt --json
    """
    from xlingual.search.display import format_hits
    from xlingual.search.index import Index

    queries = _queries(query, queries_file)
    setup_logging(quiet=True)
    config = build(SearchConfig, params)
    results = Index.load(index_path, config=config).search(queries, config.k)
    for text, hits in zip(queries, results, strict=True):
        if as_json:
            echo_json({"query": text, "results": [hit.as_dict() for hit in hits]})
        else:
            click.echo(format_hits(text if len(queries) > 1 else None, hits))


def _queries(query: str | None, queries_file: str | None) -> list[str]:
    """QUERY alone, or the non-blank lines of ``--queries FILE`` (``-``: standard input)."""
    if (query is None) == (queries_file is None):
        raise click.UsageError("Pass either QUERY or --queries FILE.")
    if queries_file is None:
        return [query or ""]
    with click.open_file(queries_file, encoding="utf-8") as stream:
        queries = [line.strip() for line in stream if line.strip()]
    if not queries:
        raise click.UsageError(f"{queries_file} has no queries (one per line).")
    return queries


_limit_options = stack(
    click.option(
        "--max-k", type=click.IntRange(min=1), default=ServeConfig.max_k, show_default=True, help="Largest k."
    ),
    click.option(
        "--max-batch",
        type=click.IntRange(min=1),
        default=ServeConfig.max_batch,
        show_default=True,
        help="Queries per request.",
    ),
    click.option(
        "--max-query-chars",
        type=click.IntRange(min=1),
        default=ServeConfig.max_query_chars,
        show_default=True,
        help="Longest query in characters.",
    ),
    click.option(
        "--max-body-bytes",
        type=click.IntRange(min=1),
        default=ServeConfig.max_body_bytes,
        show_default=True,
        help="Largest request body.",
    ),
    click.option(
        "--request-timeout",
        "request_timeout_s",
        type=click.FloatRange(min=0, min_open=True),
        default=ServeConfig.request_timeout_s,
        show_default=True,
        help="Seconds per request (408 for a late body, 503 for a late search).",
    ),
)


@click.command(context_settings=CONTEXT_SETTINGS)
@_index_path
@click.option(
    "--host", default=ServeConfig.host, show_default=True, help="Address to bind (loopback: this machine only)."
)
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=ServeConfig.port, show_default=True)
@query_model_option("Embed queries with this model (it must share the index's vector space).")
@_csls_option
@_limit_options
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let web pages from ORIGIN (scheme://host[:port]) call the service; repeatable. Default: CORS off.",
)
@click.option("--log-queries", is_flag=True, help="Put query texts in the per-request log lines.")
@click.option("--show-paths", is_flag=True, help="Show full filesystem paths in /info (default: names only).")
@click.option(
    "--classifier",
    type=click.Path(exists=True, file_okay=False),
    help="A folder from `xlingual classify fit`: adds POST /classify, and the page shows each query's label.",
)
@device_option(SearchConfig.device)
@quiet_option("Log warnings only (no per-request log lines).")
def serve(index_path: Path, quiet: bool, **params: Any) -> None:
    """Serve an index over HTTP: POST /search (and /classify), GET /health, GET /info, a search page at /.

    \b
    Example:
        xlingual serve idx                       # http://127.0.0.1:8000/
        curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "東京の天気", "k": 3}'

    The model and the index are loaded once. OpenAPI docs: /docs and /openapi.json. Each request is
    logged to stderr as one JSON line (method, path, status, latency_ms, client, n_queries, k; the query
    texts only with --log-queries).
    """
    from xlingual.search import serve as serve_lib

    setup_logging(quiet)
    config = build(ServeConfig, params, log_level="warning" if quiet else ServeConfig.log_level)
    serve_lib.serve(index_path, config, search_config=build(SearchConfig, params))
