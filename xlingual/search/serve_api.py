"""What the HTTP search service accepts and answers: request and response models, and the request checks.

Every refusal is an ``HTTPException`` whose detail names the limit and the ``xlingual serve`` option that
raises it; validation errors never echo the request's values (see :func:`validation_errors`). ``/info``
shows names, not server paths (:func:`public_info`).

Example::

    check_queries(["東京の天気"], ServeConfig())        # fine; 413 / 422 HTTPException otherwise
    request_k(None, ServeConfig(max_k=5))              # 5: the default k capped by max_k
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from xlingual.config import SearchConfig, ServeConfig

#: Characters refused in a query: C0 controls other than tab, LF and CR, DEL, and surrogates (a JSON
#: ``"\ud800"`` escape decodes to one; no tokenizer or UTF-8 encoder accepts it).
BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: The refusals ``POST /search`` documents in its OpenAPI schema (besides 400 and 422).
RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"description": "The body did not arrive in time"},
    413: {"description": "A size limit was exceeded"},
    415: {"description": "The body is not JSON"},
    503: {"description": "The search did not finish in time"},
}
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


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
    csls: float | None = Field(
        default=None, description="CSLS score 2·cos − r(d) when the index's hubness ranked the hits, else null."
    )


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


class ClassifyRequest(BaseModel):
    """Body of ``POST /classify``: exactly these fields, strictly typed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | list[str] = Field(description="One text, or a list of texts labelled as one batch.")


class LabelOut(BaseModel):
    """One label and its probability."""

    label: str
    probability: float


class Classification(BaseModel):
    """The predicted label of one text, its probability and the top labels (best first)."""

    text: str
    label: str
    probability: float
    top: list[LabelOut]


class ClassifyResponse(BaseModel):
    """Body of a successful ``POST /classify``."""

    model: str = Field(description="The model that embedded the texts.")
    labels: list[str] = Field(description="Every label the classifier knows.")
    took_ms: float
    results: list[Classification]


def _check_query(number: int, query: str, config: ServeConfig) -> None:
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


def check_queries(queries: Sequence[str], config: ServeConfig) -> None:
    """Refuse an empty batch (422), too many queries or too long a query (413), bad characters or blanks (422)."""
    if not queries:
        raise HTTPException(422, "The query list is empty; send at least one query.")
    if len(queries) > config.max_batch:
        raise HTTPException(
            413,
            f"{len(queries)} queries in one request; the limit is {config.max_batch} (xlingual serve --max-batch).",
        )
    for number, query in enumerate(queries):
        _check_query(number, query, config)


def request_k(k: int | None, config: ServeConfig) -> int:
    """The ``k`` of a request: the default capped by ``max_k`` when absent, else ``k`` up to ``max_k`` (422 above)."""
    if k is None:
        return min(SearchConfig.k, config.max_k)
    if k > config.max_k:
        shown_k = str(k) if k < 10**12 else f"{str(k)[:12]}… ({len(str(k))} digits)"
        raise HTTPException(422, f"k={shown_k} is above the limit {config.max_k} (xlingual serve --max-k).")
    return k


def _safe_text(value: Any, limit: int = 100) -> Any:
    """A string cut to ``limit`` characters with unpaired surrogates escaped (JSON encoders refuse them)."""
    if not isinstance(value, str):
        return value
    return value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
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


def public_name(value: str) -> str:
    """``value``, with an absolute path (or one with ``~`` or ``..``) cut to its last component.

    Example: ``public_name("onnx:/home/me/exported/onnx") == "onnx:onnx"``; hub ids and ``builtin:`` specs
    are kept: ``public_name("intfloat/multilingual-e5-small")`` is unchanged.
    """
    prefix = next((p for p in ("onnx:", "openvino:") if value.startswith(p)), "")
    rest = value.removeprefix(prefix)
    parts = [part for part in re.split(r"[\\/]", rest) if part]
    local = rest.startswith(("/", "\\", "~")) or bool(_DRIVE.match(rest)) or ".." in parts
    return prefix + parts[-1] if local and parts else value


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return public_name(value)
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def public_info(info: Mapping[str, Any], *, show_paths: bool = False) -> dict[str, Any]:
    """What ``GET /info`` shows of :meth:`Index.info`: the folder's name, not its path; see :func:`public_name`."""
    if show_paths:
        return dict(info)
    out: dict[str, Any] = _scrub(info)
    if isinstance(info.get("path"), str):
        out["path"] = Path(info["path"]).name
    return out
