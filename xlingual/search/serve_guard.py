"""The search service's outermost ASGI middleware: each request's deadline, body size, content type and log line.

:class:`Guard` refuses a body over ``max_body_bytes`` (413: from its ``Content-Length`` before it is read,
or as soon as a chunked body passes the limit), a POST that is not JSON (415) and a body still arriving at
the deadline (408); it answers an unexpected error with a JSON 500 without a traceback, and writes one
JSON line per request on the logger ``xlingual.search.serve.access``.

Example::

    app.add_middleware(Guard, config=ServeConfig(max_body_bytes=10_000))
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio

from xlingual.config import ServeConfig

#: Errors are logged under the service's own name (``xlingual serve``'s logging shows them).
logger = logging.getLogger("xlingual.search.serve")
#: One JSON line per request (see :meth:`Guard._log`).
access_logger = logging.getLogger("xlingual.search.serve.access")

#: The scope key under which :class:`Guard` keeps a request's deadline and what its log line reports.
STATE_KEY = "xlingual.request"
INTERNAL_ERROR = "Internal error while answering the request; the server log has the details."


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def _reject(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Outermost ASGI middleware: deadline, body size and content type of each request, and its log line.

    Checks ``content-length`` up front, then reads the body (at most ``max_body_bytes``, before the
    deadline) before the app runs, and logs one JSON line per request just before its last body chunk
    is sent.
    """

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app = app
        self.config = config

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
            await _reject(send_and_log, 500, INTERNAL_ERROR)
        finally:
            if not logged:  # an error, or the client went away before the answer
                self._log(scope, state, started)

    def _header_refusal(self, scope: Any) -> tuple[int, str] | None:
        """A 413 for a declared body over the limit, a 415 for a POST that is not JSON; None when fine."""
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.config.max_body_bytes:
            return 413, self._too_big(int(declared))
        if scope["method"] == "POST":
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if not _is_json(content_type):
                got = f"Content-Type {content_type[:100]!r}" if content_type else "no Content-Type"
                return 415, f"The request has {got}; send a JSON body with Content-Type: application/json."
        return None

    async def _read_body(self, receive: Any, deadline: float) -> tuple[list[bytes], int, bool, bool]:
        """The body's chunks, their size, whether the deadline passed, and whether the client went away."""
        chunks: list[bytes] = []
        received = 0
        # Only receive() runs under the timer: a cancelled send would leave half an answer.
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as timer:
            while received <= self.config.max_body_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return chunks, received, False, True
                chunk = message.get("body", b"")
                received += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        return chunks, received, timer.cancelled_caught, False

    async def _guarded(self, scope: Any, receive: Any, send: Any, state: dict[str, Any]) -> None:
        refusal = self._header_refusal(scope)
        if refusal is not None:
            await _reject(send, *refusal)
            return
        # Buffer the body here (it is small by definition): an error raised while the app reads it would be
        # turned into a 400 by FastAPI's body parsing, and the client should learn which limit it hit.
        chunks, received, late, gone = await self._read_body(receive, state["deadline"])
        if gone:
            return
        if received > self.config.max_body_bytes:
            await _reject(send, 413, self._too_big(None))
            return
        if late:
            await _reject(
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
        """Write the request's JSON line: method, path, status, latency_ms, client, n_queries, k (and queries)."""
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
