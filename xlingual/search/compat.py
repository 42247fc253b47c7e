"""Which models may embed queries for an index: :class:`ModelInfo` and the rule, :func:`check_compatible`.

Two models share a vector space when they are the same model (equal fingerprints; an ONNX export counts
as its source), when one was distilled from the other, or when both were distilled from one teacher.
The headline use: Japanese queries embedded by a student distilled from the teacher that built an
English index.

Example::

    check_compatible(ModelInfo.from_spec("builtin:minilm-en"), ModelInfo.from_spec("runs/distill/model"))
    # → "runs/distill/model was distilled from builtin:minilm-en"
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlingual.errors import SearchIndexError


@dataclass(frozen=True)
class ModelInfo:
    """Who embeds: a model spec, its content fingerprint and, for a distilled student, its teacher's.

    ``fingerprint`` is :func:`xlingual.models.specs.fingerprint` of the model folder (``None`` for a hub id);
    ``teacher_fingerprint`` comes from the folder's ``xlingual_distill.json``; ``source_fingerprint``,
    for an ONNX or OpenVINO export (``onnx:DIR``, ``openvino:DIR``), is the fingerprint of the model it was
    exported from (``xlingual_onnx.json``, ``xlingual_openvino.json``): the export embeds like its source,
    checked at export time.
    """

    spec: str
    fingerprint: str | None = None
    teacher: str | None = None
    teacher_fingerprint: str | None = None
    source_fingerprint: str | None = None

    @classmethod
    def from_spec(cls, spec: str) -> ModelInfo:
        """Resolve ``spec`` (converting a built-in if needed) and read its fingerprints."""
        from xlingual.models.specs import fingerprint, resolve_model_path
        from xlingual.models.vectors import VectorsSpec, file_fingerprint, is_vectors_spec

        if is_vectors_spec(spec):  # a teacher given as vectors: the file's checksum is its identity
            return cls(spec, file_fingerprint(VectorsSpec.parse(spec)))
        path = resolve_model_path(spec)
        if path is None:
            return cls(spec)
        distill = _read_json(path / "xlingual_distill.json")
        graph = _read_json(path / "xlingual_onnx.json") or _read_json(path / "xlingual_openvino.json")
        source = graph.get("source") or {}
        return cls(
            spec,
            fingerprint(path),
            distill.get("teacher"),
            distill.get("teacher_fingerprint"),
            source.get("fingerprint") if isinstance(source, dict) else None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Read the ``model`` block of a manifest."""
        return cls(
            str(data.get("spec", "")),
            data.get("fingerprint"),
            data.get("teacher"),
            data.get("teacher_fingerprint"),
            data.get("source_fingerprint"),
        )

    @property
    def identities(self) -> set[str]:
        """The fingerprints this model embeds like: its own and, for an export, its source's."""
        return {fp for fp in (self.fingerprint, self.source_fingerprint) if fp}

    def short(self) -> str:
        """``spec (fingerprint 1a2b3c4d5e6f)`` for messages."""
        return f"{self.spec} (fingerprint {self.fingerprint[:12]})" if self.fingerprint else self.spec


def _read_json(path: Path) -> dict[str, Any]:
    """A model folder's xlingual metadata file, or ``{}`` when there is none."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SearchIndexError(f"{path} cannot be read ({exc}); re-save or re-export the model.") from exc
    return data if isinstance(data, dict) else {}


def same_model(first: ModelInfo, second: ModelInfo) -> bool:
    """Whether two models embed alike: equal fingerprints (an ONNX export counts as its source), or equal hub ids."""
    if first.identities or second.identities:
        return bool(first.identities & second.identities)
    return first.spec == second.spec


def shared_space(base: ModelInfo, other: ModelInfo) -> str | None:
    """Why ``other`` embeds in ``base``'s vector space (``"same model"``, ``"… was distilled from …"``), or None.

    Two models share a vector space when they are the same model (equal fingerprints — an ONNX export
    counts as its source; for hub ids, equal specs), when one was distilled from the other (its
    ``xlingual_distill.json`` records the other's fingerprint as ``teacher_fingerprint``), or when both
    were distilled from the same teacher. ``base`` is the model that built what is searched or read.
    """
    q, i = other, base
    if same_model(q, i):
        return "same model" if q.identities else "same model id"
    if q.teacher_fingerprint and q.teacher_fingerprint in i.identities:
        return f"{q.spec} was distilled from {i.spec}"
    if i.teacher_fingerprint and i.teacher_fingerprint in q.identities:
        return f"{i.spec} was distilled from {q.spec}"
    if q.teacher_fingerprint and q.teacher_fingerprint == i.teacher_fingerprint:
        return "both were distilled from the same teacher"
    return None


def why_not_shared(base: ModelInfo, other: ModelInfo) -> str:
    """Why ``other`` does not share ``base``'s vector space, in one clause for a message."""
    q, i = other, base
    if q.teacher_fingerprint:
        return (
            f"{q.spec} was distilled from {q.teacher or 'a teacher'} (fingerprint {q.teacher_fingerprint[:12]}), "
            f"not from {i.short()}"
        )
    if not q.identities or not i.identities:
        return f"{q.spec} and {i.spec} are different models and no fingerprints link them"
    return (
        f"{q.short()} is a different model from {i.short()} and has no xlingual_distill.json naming it as its teacher"
    )


def check_compatible(index_model: ModelInfo, query_model: ModelInfo) -> str:
    """Return why ``query_model`` may embed queries for an index built by ``index_model``, or raise.

    The rule is :func:`shared_space`'s; anything else raises :class:`SearchIndexError` saying why and what to use.
    """
    reason = shared_space(index_model, query_model)
    if reason is not None:
        return reason
    q, i = query_model, index_model
    raise SearchIndexError(
        f"Query model {q.spec} does not share the index's vector space: {why_not_shared(i, q)}. A query model must "
        f"be the index's model or a student distilled from it (xlingual distill --teacher {i.spec}). Search without "
        f"--query-model, or build the index with {q.spec}."
    )


def model_dim(model: Any) -> int | None:
    """The dimension ``model`` reports it embeds in (``None`` when it does not say)."""
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        method = getattr(model, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                value = method()
                if value:
                    return int(value)
    return None
