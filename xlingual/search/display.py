"""What ``xlingual search`` and ``xlingual index info`` print for people: :func:`format_hits`, :func:`format_info`.

Machine output (``--json``) is :meth:`Hit.as_dict` and :meth:`Index.info` as they are; these are the
plain-text views.

Example::

    print(format_hits("京都のお寺", index.search("京都のお寺", k=3)))
    #   1   0.8312  kyoto  京都には古いお寺がたくさんあります。
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from xlingual.search.ann import IndexSpec
from xlingual.search.passages import Hit


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_hits(query: str | None, hits: Sequence[Hit], *, width: int = 160) -> str:
    """Hits as text for people: ``rank  score  [csls SCORE]  doc_id[§passage]  passage`` (+ metadata), one a line."""
    lines = [f"query: {query}"] if query is not None else []
    if not hits:
        lines.append("  (no results)")
    for hit in hits:
        where = hit.doc_id + (f" §{hit.passage}" if hit.passage else "")
        csls = f"csls {hit.csls:>7.4f}  " if hit.csls is not None else ""
        lines.append(f"{hit.rank:>3}  {hit.score:>7.4f}  {csls}{where}  {_one_line(hit.text, width)}")
        if hit.metadata:
            lines.append(f"{'':>14}{_one_line(json.dumps(hit.metadata, ensure_ascii=False, default=str), width)}")
    return "\n".join(lines)


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024  # type: ignore[assignment]
    return f"{n_bytes} B"  # pragma: no cover


def _hubness_rows(block: Any) -> list[tuple[str, str]]:
    """The ``hubness`` line of :func:`format_info` (none for an index built without a query model)."""
    if not isinstance(block, Mapping):
        return []
    query_model = block.get("query_model") or {}
    fingerprint = query_model.get("fingerprint")
    who = query_model.get("spec", "?") + (f" (fingerprint {fingerprint[:12]})" if fingerprint else "")
    source = block.get("source")
    source = f"{source} (sha256 {block['source_sha256'][:12]})" if block.get("source_sha256") else source
    return [
        ("queries", who),
        ("hubness", f"CSLS, k={block.get('k')}, {block.get('references', 0):,} reference queries from {source}"),
    ]


def format_info(info: Mapping[str, Any]) -> str:
    """:meth:`Index.info` as a table for people (``xlingual index info``)."""
    model, spec, counts = info["model"], IndexSpec.from_dict(info["index"]), info["counts"]
    knobs = {
        "hnsw": f"M={spec.hnsw_m}, efConstruction={spec.ef_construction}, efSearch={spec.ef_search}",
        "ivf-pq": f"nlist={spec.nlist}, nprobe={spec.nprobe}, PQ {spec.pq_m}×4 bits, re-rank ×{spec.refine_factor}, "
        f"trained on {spec.train_size:,}"
        if spec.train_size
        else "",
        "flat": "exact",
    }[spec.type.value]
    recall = f", recall@10 {spec.calibrated_recall:.3f}" if spec.calibrated_recall is not None else ""
    split = info["splitting"]
    limit = f"≤ {split['max_tokens']} tokens" if split.get("max_tokens") else f"≤ {split.get('max_chars')} characters"
    rows = [
        ("path", info.get("path", "")),
        ("model", model["spec"] + (f" (fingerprint {model['fingerprint'][:12]})" if model.get("fingerprint") else "")),
    ]
    if model.get("teacher_fingerprint"):
        rows.append(("teacher", f"{model.get('teacher')} (fingerprint {model['teacher_fingerprint'][:12]})"))
    rows += [
        ("dimension", f"{info['dim']} (L2-normalised, inner product)"),
        ("index", f"{spec.type.value}: {spec.factory_string()}, {knobs}{recall}"),
        ("chosen", spec.reason),
        *_hubness_rows(info.get("hubness")),
        (
            "documents",
            f"{counts['documents']:,}"
            + (f" ({counts['skipped_blank']:,} blank skipped)" if counts.get("skipped_blank") else ""),
        ),
        ("passages", f"{counts['passages']:,} ({limit})"),
        ("created", f"{info.get('created_at')}, updated {info.get('updated_at')}"),
        ("xlingual", str(info.get("xlingual_version"))),
        ("size", _size(int(info.get("size_bytes", 0)))),
    ]
    for source in info.get("sources", []):
        rows.append(
            (
                "source",
                f"{source['path']}: {source['documents']:,} documents, {source['passages']:,} passages "
                f"({source.get('added_at')})",
            )
        )
    return "\n".join(f"{key:<10} {value}" for key, value in rows)
