"""The HTTP search service: a FastAPI app over one :class:`~xlingual.search.index.Index`, served by uvicorn.

Endpoints (JSON unless said otherwise; OpenAPI schema at ``/openapi.json``, Swagger UI at ``/docs``):

- ``POST /search`` ``{"query": "東京の天気" | ["…", "…"], "k": 10}`` → ``{"k", "model", "took_ms",
  "results": [{"query", "hits": [{rank, score, doc_id, passage, text, metadata, passage_id, start, end}]}]}``;
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

Example::

    index = Index.load("idx")
    uvicorn.run(create_app(index, ServeConfig(max_k=50)), host="127.0.0.1", port=8000, access_log=False)
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from xlingual import __version__
from xlingual.config import SearchConfig, ServeConfig
from xlingual.errors import ConfigError, XlingualError
from xlingual.search.index import Index

logger = logging.getLogger(__name__)
#: One JSON line per request (see the module docstring).
access_logger = logging.getLogger("xlingual.search.serve.access")

#: The scope key under which :class:`Guard` keeps a request's deadline and what its log line reports.
STATE_KEY = "xlingual.request"
#: Characters refused in a query: C0 controls other than tab, LF and CR, DEL, and surrogates (a JSON
#: ``"\ud800"`` escape decodes to one; no tokenizer or UTF-8 encoder accepts it).
BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
ORIGIN = re.compile(r"https?://[^/\s?#]+")
INTERNAL_ERROR = "Internal error while answering the request; the server log has the details."


class SearchRequest(BaseModel):
    """Body of ``POST /search``: exactly these fields, strictly typed (``"k": "5"`` is refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    query: str | list[str] = Field(description="One query, or a list of queries searched as one batch.")
    k: int | None = Field(
        default=None, ge=1, description=f"Results per query; default {SearchConfig.k}, or the server's max_k if lower."
    )


class HitOut(BaseModel):
    """One result passage."""

    rank: int
    score: float = Field(description="Cosine similarity of query and passage (higher is closer).")
    doc_id: str
    passage: int = Field(description="Position of the passage within its document (0, 1, …).")
    text: str
    metadata: dict[str, Any]
    passage_id: int
    start: int
    end: int


class QueryResult(BaseModel):
    """The hits of one query."""

    query: str
    hits: list[HitOut]


class SearchResponse(BaseModel):
    """Body of a successful ``POST /search``."""

    k: int
    model: str = Field(description="The model that embedded the queries.")
    took_ms: float
    results: list[QueryResult]


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class Guard:
    """Outermost ASGI middleware: deadline, body size and content type of each request, and its log line.

    Checks ``content-length`` up front, then reads the body (at most ``max_body_bytes``, before the
    deadline) before the app runs, and logs one JSON line per request just before its last body chunk
    is sent.
    """

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app = app
        self.config = config

    async def _reject(self, send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _too_big(self, size: int | None) -> str:
        limit = self.config.max_body_bytes
        got = f"{size:,} bytes" if size is not None else f"more than {limit:,} bytes"
        return f"The request body has {got}; the limit is {limit:,} (xlingual serve --max-body-bytes)."

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one request (HTTP only; lifespan and other scopes pass straight through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"deadline": time.monotonic() + self.config.request_timeout_s, "status": None}
        scope[STATE_KEY] = state
        logged = False

        async def send_and_log(message: Any) -> None:
            nonlocal logged
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not logged:
                # Logged before the last chunk leaves: a client that has its answer finds the line written.
                logged = True
                self._log(scope, state, started)
            await send(message)

        try:
            await self._guarded(scope, receive, send_and_log, state)
        except Exception:
            if state["status"] is not None:
                raise  # the answer has begun: all that is left is to let uvicorn close the connection
            # Answered here rather than by Starlette's error middleware, which re-raises: uvicorn would then
            # drop the keep-alive connection and the client's next request on it would fail.
            logger.exception("internal error answering %s %s", scope.get("method"), str(scope.get("path"))[:200])
            await self._reject(send_and_log, 500, INTERNAL_ERROR)
        finally:
            if not logged:  # an error, or the client went away before the answer
                self._log(scope, state, started)

    async def _guarded(self, scope: Any, receive: Any, send: Any, state: dict[str, Any]) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.config.max_body_bytes:
            await self._reject(send, 413, self._too_big(int(declared)))
            return
        if scope["method"] == "POST":
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if not _is_json(content_type):
                got = f"Content-Type {content_type[:100]!r}" if content_type else "no Content-Type"
                await self._reject(
                    send, 415, f"The request has {got}; send a JSON body with Content-Type: application/json."
                )
                return
        # Buffer the body here (it is small by definition): an error raised while the app reads it would be
        # turned into a 400 by FastAPI's body parsing, and the client should learn which limit it hit.
        chunks: list[bytes] = []
        received = 0
        # Only receive() runs under the timer: a cancelled send would leave half an answer.
        with anyio.move_on_after(max(0.0, state["deadline"] - time.monotonic())) as timer:
            while received <= self.config.max_body_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunk = message.get("body", b"")
                received += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if received > self.config.max_body_bytes:
            await self._reject(send, 413, self._too_big(None))
            return
        if timer.cancelled_caught:
            await self._reject(
                send,
                408,
                f"The request body did not arrive within {self.config.request_timeout_s:g} s "
                f"({received:,} bytes received; xlingual serve --request-timeout).",
            )
            return
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Any:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    def _log(self, scope: Any, state: Mapping[str, Any], started: float) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        line: dict[str, Any] = {
            "event": "request",
            "method": scope.get("method"),
            "path": str(scope.get("path", ""))[:200],
            "status": state.get("status"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": client[0] if client else None,
            "n_queries": state.get("n_queries"),
            "k": state.get("k"),
        }
        if "queries" in state:
            line["queries"] = state["queries"]
        # JSON escapes line breaks: one request is always one line, whatever the query holds.
        access_logger.info(json.dumps(line, ensure_ascii=False))


def search_page() -> str:
    """The HTML of the search page served at ``/``."""
    return resources.files("xlingual.search").joinpath("static/search.html").read_text(encoding="utf-8")


_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def public_name(value: str) -> str:
    """``value``, with an absolute path (or one with ``~`` or ``..``) cut to its last component.

    Example: ``public_name("onnx:/home/me/exported/onnx") == "onnx:onnx"``; hub ids and ``builtin:`` specs
    are kept: ``public_name("intfloat/multilingual-e5-small")`` is unchanged.
    """
    prefix, rest = ("onnx:", value[5:]) if value.startswith("onnx:") else ("", value)
    parts = [part for part in re.split(r"[\\/]", rest) if part]
    local = rest.startswith(("/", "\\", "~")) or bool(_DRIVE.match(rest)) or ".." in parts
    return prefix + parts[-1] if local and parts else value


def public_info(info: Mapping[str, Any], *, show_paths: bool = False) -> dict[str, Any]:
    """What ``GET /info`` shows of :meth:`Index.info`: the folder's name, not its path; see :func:`public_name`."""
    if show_paths:
        return dict(info)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return public_name(value)
        if isinstance(value, Mapping):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    out = scrub(info)
    if isinstance(info.get("path"), str):
        out["path"] = Path(info["path"]).name
    return out


def check_origins(origins: Iterable[str]) -> list[str]:
    """The CORS origins, each ``scheme://host[:port]`` or ``*``; a path or trailing slash is a :class:`ConfigError`."""
    checked = []
    for origin in origins:
        if origin != "*" and not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"--cors-origin {origin!r} is not an origin; write scheme://host[:port] without a path or "
                "trailing slash, e.g. http://localhost:3000"
            )
        checked.append(origin)
    return checked


def _safe_text(value: Any, limit: int = 100) -> Any:
    """A string cut to ``limit`` characters with unpaired surrogates escaped (JSON encoders refuse them)."""
    if not isinstance(value, str):
        return value
    return value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's field-by-field errors without the ``input`` (never echo what was sent: paths, huge values)."""
    errors = []
    for error in exc.errors():
        message = str(error.get("msg", ""))
        context = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and context.get("error"):
            message = f"{message}: {context['error']}"
        errors.append(
            {
                "loc": [_safe_text(part) for part in error.get("loc", ())],
                "msg": _safe_text(message, 300),
                "type": error.get("type", ""),
            }
        )
    return errors


def create_app(index: Index, config: ServeConfig | None = None, *, query_model: str | None = None) -> Any:
    """The FastAPI app serving ``index``; ``query_model`` embeds queries instead of the index's model.

    The query model is loaded and checked here, so a bad model fails before the server starts.
    """
    config = config or ServeConfig()
    origins = check_origins(config.cors_origins)
    model_name = query_model or index.config.query_model or index.model.spec
    shown_model = model_name if config.show_paths else public_name(model_name)
    index.prepare(query_model)
    page = search_page()
    # A search (encoding included) runs in whichever thread is free: one dedicated encoder thread measured
    # 3-6x slower on 2 busy cores (eval/bench_serve.py), its OpenMP team starved by the scheduler.
    search_pool = ThreadPoolExecutor(max_workers=config.search_threads, thread_name_prefix="xlingual-search")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        search_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="xlingual search",
        version=__version__,
        description=f"Semantic search over {len(index):,} passages of {index.path.name}, embedded by {shown_model}.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc)}, status_code=422)

    responses: dict[int | str, dict[str, Any]] = {
        408: {"description": "The body did not arrive in time"},
        413: {"description": "A size limit was exceeded"},
        415: {"description": "The body is not JSON"},
        503: {"description": "The search did not finish in time"},
    }

    @app.post("/search", response_model=SearchResponse, responses=responses)
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        queries = [body.query] if isinstance(body.query, str) else list(body.query)
        if not queries:
            raise HTTPException(422, "The query list is empty; send at least one query.")
        if len(queries) > config.max_batch:
            raise HTTPException(
                413,
                f"{len(queries)} queries in one request; the limit is {config.max_batch} (xlingual serve --max-batch).",
            )
        for number, query in enumerate(queries):
            if len(query) > config.max_query_chars:
                raise HTTPException(
                    413,
                    f"Query {number} has {len(query):,} characters; the limit is {config.max_query_chars:,} "
                    f"(xlingual serve --max-query-chars).",
                )
            bad = BAD_CHARACTER.search(query)
            if bad:
                what = "an unpaired surrogate" if "\ud800" <= bad.group() <= "\udfff" else "the control character"
                raise HTTPException(
                    422,
                    f"Query {number} has {what} U+{ord(bad.group()):04X} at position {bad.start()}; send plain "
                    f"text (tab and line breaks are fine).",
                )
            if not query.strip():
                raise HTTPException(422, f"Query {number} is empty; send some text to search for.")
        k = min(SearchConfig.k, config.max_k) if body.k is None else body.k
        if k > config.max_k:
            shown_k = str(k) if k < 10**12 else f"{str(k)[:12]}… ({len(str(k))} digits)"
            raise HTTPException(422, f"k={shown_k} is above the limit {config.max_k} (xlingual serve --max-k).")
        state = request.scope.setdefault(STATE_KEY, {})
        state.update(n_queries=len(queries), k=k)
        if config.log_queries:
            state["queries"] = queries
        deadline = state.get("deadline", time.monotonic() + config.request_timeout_s)
        started = time.perf_counter()
        future = search_pool.submit(index.search, queries, k, query_model=query_model)
        try:
            # On timeout wait_for cancels the future: a search still queued never runs; a running one (or
            # one waiting for the encoder) finishes in its thread and is dropped.
            results = await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise HTTPException(
                503,
                f"The search did not finish within {config.request_timeout_s:g} s (xlingual serve --request-timeout); "
                "the server is busy or the batch is large: retry later or send fewer queries.",
                headers={"Retry-After": "1"},
            ) from None
        except XlingualError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {
            "k": k,
            "model": shown_model,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": [
                {"query": query, "hits": [hit.as_dict() for hit in hits]}
                for query, hits in zip(queries, results, strict=True)
            ],
        }

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": len(index), "documents": index.manifest["counts"]["documents"]}

    @app.get("/info")
    def info() -> dict[str, Any]:
        limits = {
            "max_k": config.max_k,
            "max_batch": config.max_batch,
            "max_query_chars": config.max_query_chars,
            "max_body_bytes": config.max_body_bytes,
            "request_timeout_s": config.request_timeout_s,
        }
        return {**public_info(index.info(), show_paths=config.show_paths), "query_model": shown_model, "limits": limits}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

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
    index = Index.load(index_path, config=search_config)
    app = create_app(index, config, query_model=search_config.query_model)
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
