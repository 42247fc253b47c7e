"""The HTTP search service: a FastAPI app over one :class:`~xlingual.search.Index`, served by uvicorn.

Endpoints (JSON unless said otherwise; OpenAPI schema at ``/openapi.json``, Swagger UI at ``/docs``):

- ``POST /search`` ``{"query": "東京の天気" | ["…", "…"], "k": 10}`` → ``{"k", "model", "took_ms",
  "results": [{"query", "hits": [{rank, score, doc_id, passage, text, metadata, passage_id, start, end}]}]}``;
- ``GET /health`` → ``{"status": "ok", "passages": n, "documents": n}``;
- ``GET /info`` → the index manifest, its size, the query model and the request limits;
- ``GET /`` → a small search page (plain HTML and JavaScript, no build step).

The model and index are loaded once, before the port opens. Requests run in uvicorn's thread pool:
FAISS searches run side by side, encoder forward passes one at a time (the encoder uses every core).
Limits (:class:`~xlingual.config.ServeConfig`) answer with a message saying which limit and how to
raise it: a body over ``max_body_bytes``, more than ``max_batch`` queries or a query over
``max_query_chars`` characters → 413; ``k`` over ``max_k``, an empty or malformed query → 422.

Example::

    index = Index.load("idx")
    uvicorn.run(create_app(index, ServeConfig(max_k=50)), host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from xlingual import __version__
from xlingual.config import SearchConfig, ServeConfig
from xlingual.errors import XlingualError
from xlingual.search import Index

logger = logging.getLogger(__name__)


class SearchRequest(BaseModel):
    """Body of ``POST /search``."""

    model_config = ConfigDict(extra="forbid")

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


class BodyLimit:
    """ASGI middleware: answer 413 when a request body exceeds ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: int | None) -> bytes:
        got = f"{size:,} bytes" if size is not None else f"more than {self.max_bytes:,} bytes"
        detail = f"The request body has {got}; the limit is {self.max_bytes:,} (xlingual serve --max-body-bytes)."
        return json.dumps({"detail": detail}).encode()

    async def _reject(self, send: Any, size: int | None) -> None:
        body = self._message(size)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Check ``content-length`` up front, then read the body (at most ``max_bytes``) before the app runs."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, int(declared))
            return
        # Buffer the body here (it is small by definition): an error raised while the app reads it would be
        # turned into a 400 by FastAPI's body parsing, and the client should learn which limit it hit.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._reject(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Any:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def search_page() -> str:
    """The HTML of the search page served at ``/``."""
    return resources.files("xlingual").joinpath("static/search.html").read_text(encoding="utf-8")


def create_app(index: Index, config: ServeConfig | None = None, *, query_model: str | None = None) -> Any:
    """The FastAPI app serving ``index``; ``query_model`` embeds queries instead of the index's model.

    The query model is loaded and checked here, so a bad model fails before the server starts.
    """
    config = config or ServeConfig()
    model_name = query_model or index.config.query_model or index.model.spec
    index.prepare(query_model)
    page = search_page()
    app = FastAPI(
        title="xlingual search",
        version=__version__,
        description=f"Semantic search over {len(index):,} passages of {index.path.name}, embedded by {model_name}.",
    )

    @app.post("/search", response_model=SearchResponse, responses={413: {"description": "A limit was exceeded"}})
    def search(request: SearchRequest) -> dict[str, Any]:
        queries = [request.query] if isinstance(request.query, str) else list(request.query)
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
            if not query.strip():
                raise HTTPException(422, f"Query {number} is empty; send some text to search for.")
        k = min(SearchConfig.k, config.max_k) if request.k is None else request.k
        if k > config.max_k:
            raise HTTPException(422, f"k={k} is above the limit {config.max_k} (xlingual serve --max-k).")
        started = time.perf_counter()
        try:
            results = index.search(queries, k, query_model=query_model)
        except XlingualError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {
            "k": k,
            "model": model_name,
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
        }
        return {**index.info(), "query_model": model_name, "limits": limits}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
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
    index = Index.load(index_path, config=search_config)
    app = create_app(index, config, query_model=search_config.query_model)
    if not is_loopback(config.host):
        logger.warning(
            "serving on %s: the service has no authentication; anyone who can reach this address can query it",
            config.host,
        )
    logger.info("http://%s:%d/ — %s (%d passages)", config.host, config.port, index.path, len(index))
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level)
