"""The HTTP search service: a FastAPI app over one :class:`~xlingual.search.index.Index`, served by uvicorn.

Endpoints (JSON unless said otherwise; OpenAPI schema at ``/openapi.json``, Swagger UI at ``/docs``):

- ``POST /search`` ``{"query": "東京の天気" | ["…", "…"], "k": 10}`` → ``{"k", "model", "took_ms",
  "results": [{"query", "hits": [{rank, score, doc_id, passage, text, metadata, passage_id, start, end, csls}]}]}``;
- ``POST /classify`` ``{"text": "明日は雨" | ["…"]}`` (with ``ServeConfig.classifier``) → ``{"model", "labels",
  "took_ms", "results": [{text, label, probability, top: [{label, probability}]}]}``, the same limits as a search;
- ``GET /health`` → ``{"status": "ok", "passages": n, "documents": n}``;
- ``GET /info`` → the index manifest, its size, the query model and the request limits;
- ``GET /`` → a small search page (plain HTML and JavaScript, no build step).

The model and index are loaded once, before the port opens. Searches run in a pool of
``search_threads`` threads: FAISS searches run side by side, encoder forward passes one at a time (the
encoder uses every core).

Hardening (options in :class:`~xlingual.config.ServeConfig`, flags of ``xlingual serve``). Every refusal
is a JSON ``{"detail": …}`` naming the limit and the option that raises it; no request can cause a 500
with a traceback in the response:

- **Size.** A body over ``max_body_bytes`` → 413, refused from its ``Content-Length`` before it is read,
  or, for a chunked body, as soon as the bytes received pass the limit (never buffered beyond it). More
  than ``max_batch`` queries or a query over ``max_query_chars`` characters → 413.
- **Values.** The body must be JSON (``Content-Type: application/json``, else 415) holding exactly
  ``query`` and optionally ``k``: any other field → 422, so no request names a file, model or index.
  ``k`` is a JSON integer from 1 to ``max_k`` (a string, float or boolean → 422); an empty query or one
  with a control character (other than tab and line breaks) or an unpaired surrogate (``"\\ud800"``)
  → 422; malformed JSON → 422 saying where. Validation errors never echo the request's values.
- **Time.** Each request has ``request_timeout_s`` seconds: a body still arriving then → 408, a search
  not finished then → 503 with ``Retry-After``. The server keeps serving: a search still queued for a
  thread is dropped; one already running finishes in its thread and its result is dropped (a hung model
  holds at most ``search_threads`` threads, and later requests still get their 503 in time).
- **Paths.** ``/info`` shows the index folder's name, not its path, and cuts absolute paths (model
  folders, corpus files) to their last component, unless ``show_paths``.
- **CORS** is off: no ``Access-Control-Allow-*`` header, so a web page from another origin cannot read
  answers. ``cors_origins`` allows the origins listed, for ``GET`` and ``POST`` only.
- **Address.** Loopback (``127.0.0.1``) unless ``host`` says otherwise; another address logs a warning
  (there is no authentication).
- **Logs.** One JSON line per request on the logger ``xlingual.search.serve.access`` (INFO): ``method``,
  ``path``, ``status``, ``latency_ms``, ``client`` (address), ``n_queries`` and ``k``; the query texts
  (``queries``) only with ``log_queries``.

This module builds the app and its routes; the request models and value checks are in
:mod:`~xlingual.search.serve_api`, the size, time, content-type and logging guard in
:mod:`~xlingual.search.serve_guard`.

Example::

    index = Index.load("idx")
    uvicorn.run(create_app(index, ServeConfig(max_k=50)), host="127.0.0.1", port=8000, access_log=False)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse

from xlingual import __version__
from xlingual.choices import check_origins
from xlingual.config import SearchConfig, ServeConfig
from xlingual.errors import XlingualError
from xlingual.search.index import Index
from xlingual.search.serve_api import (
    RESPONSES,
    ClassifyRequest,
    ClassifyResponse,
    SearchRequest,
    SearchResponse,
    check_queries,
    public_info,
    public_name,
    request_k,
    validation_errors,
)
from xlingual.search.serve_guard import STATE_KEY, Guard
from xlingual.transfer.classifier import Classifier

__all__ = ["check_origins", "create_app", "is_loopback", "public_info", "public_name", "search_page", "serve"]

logger = logging.getLogger(__name__)


def search_page() -> str:
    """The HTML of the search page served at ``/``."""
    return resources.files("xlingual.search").joinpath("static/search.html").read_text(encoding="utf-8")


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_errors(exc)}, status_code=422)


def _lifespan(pool: ThreadPoolExecutor) -> Callable[[FastAPI], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    return lifespan


async def _in_pool(pool: ThreadPoolExecutor, deadline: float, work: Callable[[], Any]) -> Any:
    """``work()`` in the pool, given up at ``deadline`` (``TimeoutError``); a library error is a 400."""
    future = pool.submit(work)
    try:
        # On timeout wait_for cancels the future: a search still queued never runs; a running one (or
        # one waiting for the encoder) finishes in its thread and is dropped.
        return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
    except XlingualError as exc:
        raise HTTPException(400, str(exc)) from exc


def _add_search_route(
    app: FastAPI, index: Index, config: ServeConfig, pool: ThreadPoolExecutor, query_model: str | None, shown: str
) -> None:
    @app.post("/search", response_model=SearchResponse, responses=RESPONSES)
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        queries = [body.query] if isinstance(body.query, str) else list(body.query)
        check_queries(queries, config)
        k = request_k(body.k, config)
        state = request.scope.setdefault(STATE_KEY, {})
        state.update(n_queries=len(queries), k=k)
        if config.log_queries:
            state["queries"] = queries
        deadline = state.get("deadline", time.monotonic() + config.request_timeout_s)
        started = time.perf_counter()
        try:
            results = await _in_pool(pool, deadline, lambda: index.search(queries, k, query_model=query_model))
        except TimeoutError:
            raise _late("search", config) from None
        return {
            "k": k,
            "model": shown,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": [
                {"query": query, "hits": [hit.as_dict() for hit in hits]}
                for query, hits in zip(queries, results, strict=True)
            ],
        }


def _late(what: str, config: ServeConfig) -> HTTPException:
    return HTTPException(
        503,
        f"The {what} did not finish within {config.request_timeout_s:g} s (xlingual serve --request-timeout); "
        "the server is busy or the batch is large: retry later or send fewer texts.",
        headers={"Retry-After": "1"},
    )


def _add_classify_route(
    app: FastAPI, index: Index, classifier: Classifier, routing: tuple[ServeConfig, ThreadPoolExecutor, str | None, str]
) -> None:
    config, pool, query_model, shown = routing

    def label(texts: list[str]) -> list[Any]:
        vectors = index.embed_queries(texts, query_model=query_model)
        return classifier.predict_embeddings(vectors, top=min(3, len(classifier.labels)))

    @app.post("/classify", response_model=ClassifyResponse, responses=RESPONSES)
    async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
        texts = [body.text] if isinstance(body.text, str) else list(body.text)
        check_queries(texts, config)
        state = request.scope.setdefault(STATE_KEY, {})
        state.update(n_queries=len(texts))
        if config.log_queries:
            state["queries"] = texts
        deadline = state.get("deadline", time.monotonic() + config.request_timeout_s)
        started = time.perf_counter()
        try:
            predictions = await _in_pool(pool, deadline, lambda: label(texts))
        except TimeoutError:
            raise _late("classification", config) from None
        return {
            "model": shown,
            "labels": list(classifier.labels),
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": [{"text": t, **p.as_dict()} for t, p in zip(texts, predictions, strict=True)],
        }


def _add_read_routes(
    app: FastAPI, index: Index, config: ServeConfig, shown: str, classifier: Classifier | None
) -> None:
    page = search_page()
    limits = {
        "max_k": config.max_k,
        "max_batch": config.max_batch,
        "max_query_chars": config.max_query_chars,
        "max_body_bytes": config.max_body_bytes,
        "request_timeout_s": config.request_timeout_s,
    }

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": len(index), "documents": index.manifest["counts"]["documents"]}

    @app.get("/info")
    def info() -> dict[str, Any]:
        labels = list(classifier.labels) if classifier is not None else None
        return {
            **public_info(index.info(), show_paths=config.show_paths),
            "query_model": shown,
            "limits": limits,
            "classifier": None if labels is None else {"labels": labels},
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page


def create_app(
    index: Index,
    config: ServeConfig | None = None,
    *,
    query_model: str | None = None,
    classifier: Classifier | None = None,
) -> Any:
    """The FastAPI app serving ``index``; ``query_model`` embeds queries instead of the index's model.

    The query model is loaded and checked here, so a bad model fails before the server starts; so is
    ``classifier`` (it must share the query model's space), which adds ``POST /classify``.
    Example: ``uvicorn.run(create_app(Index.load("idx")), port=8000)``.
    """
    config = config or ServeConfig()
    origins = check_origins(config.cors_origins)
    model_name = query_model or index.config.query_model or index.model.spec
    shown_model = model_name if config.show_paths else public_name(model_name)
    index.prepare(query_model)
    if classifier is not None:
        logger.info("classifier accepted: %s", classifier.check_model(model_name))
    # A search (encoding included) runs in whichever thread is free: one dedicated encoder thread measured
    # 3-6x slower on 2 busy cores (eval/bench_serve.py), its OpenMP team starved by the scheduler.
    search_pool = ThreadPoolExecutor(max_workers=config.search_threads, thread_name_prefix="xlingual-search")
    app = FastAPI(
        title="xlingual search",
        version=__version__,
        description=f"Semantic search over {len(index):,} passages of {index.path.name}, embedded by {shown_model}.",
        lifespan=_lifespan(search_pool),
    )
    app.exception_handler(RequestValidationError)(_invalid_request)
    _add_search_route(app, index, config, search_pool, query_model, shown_model)
    if classifier is not None:
        _add_classify_route(app, index, classifier, (config, search_pool, query_model, shown_model))
    _add_read_routes(app, index, config, shown_model, classifier)
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["Content-Type"]
        )
    app.add_middleware(Guard, config=config)  # added last: outermost, so it logs even CORS preflights
    return app


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    index_path: str | Path,
    config: ServeConfig | None = None,
    *,
    search_config: SearchConfig | None = None,
) -> None:
    """Load the index and its query model once, then serve until Ctrl-C. Example: ``serve("idx")``."""
    import uvicorn

    config = config or ServeConfig()
    search_config = search_config or SearchConfig()
    check_origins(config.cors_origins)  # before the model loads: a typo should not cost a minute
    classifier = Classifier.load(config.classifier) if config.classifier else None
    index = Index.load(index_path, config=search_config)
    app = create_app(index, config, query_model=search_config.query_model, classifier=classifier)
    if not is_loopback(config.host):
        logger.warning(
            "serving on %s: the service has no authentication; anyone who can reach this address can query it",
            config.host,
        )
    if "*" in config.cors_origins:
        logger.warning("CORS allows every origin (*): any web page a visitor opens can query this service")
    if config.log_queries:
        logger.warning("query texts are logged (--log-queries)")
    logger.info("http://%s:%d/ — %s (%d passages)", config.host, config.port, index.path, len(index))
    # access_log=False: the Guard middleware writes one JSON line per request instead of uvicorn's line.
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level, access_log=False)
