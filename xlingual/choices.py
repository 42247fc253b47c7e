"""Every closed choice, as a ``str`` Enum converted at the boundary (``IndexType(value)``), and its parser.

The CLI builds its ``click.Choice`` lists from these, so a new value shows in ``--help`` without a CLI edit;
the configs in :mod:`xlingual.config` convert and validate them in ``__post_init__``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from xlingual.errors import ConfigError, SearchIndexError

E = TypeVar("E", bound=StrEnum)


def parse_choice(cls: type[E], value: str, message: str) -> E:
    """``cls(value)``, or a :class:`ConfigError` from ``message`` (``{value!r}`` and ``{choices}`` filled in).

    Example: ``parse_choice(MineMode, "max", "mode {value!r} is unknown; choose one of: {choices}.")``.
    """
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise ConfigError(message.format(value=value, choices=choices)) from None


class InitMethod(StrEnum):
    """How the alignment head starts (``--init``): a closed-form fit, or none (a random projection if needed)."""

    PROCRUSTES = "procrustes"  # scaled orthogonal map
    LSTSQ = "lstsq"  # ordinary least squares
    NONE = "none"


class MissingTeacher(StrEnum):
    """What ``--missing-teacher`` does with pairs whose English has no vector in a ``vectors:`` teacher."""

    ERROR = "error"  # refuse the run, naming the first sentences without a vector
    DROP = "drop"  # train without those pairs, with a warning that counts them


class Device(StrEnum):
    """Where a distillation runs (``--device``); ``cuda:N`` picks one GPU."""

    AUTO = "auto"  # CUDA when PyTorch sees a GPU, else CPU
    CPU = "cpu"
    CUDA = "cuda"


class MineMode(StrEnum):
    """Which margin matches become pairs (LASER's ``--retrieval``)."""

    FORWARD = "forward"  # the best target of every source
    BACKWARD = "backward"  # the best source of every target
    INTERSECT = "intersect"  # mutual best matches only
    MAX = "max"  # both directions, greedily one-to-one by decreasing score


class IndexType(StrEnum):
    """The FAISS index kinds a search index can use (``--index-type``, besides ``auto``)."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVF_PQ = "ivf-pq"


#: ``--index-type auto``: the type is chosen by corpus size (``IndexConfig.flat_max``).
AUTO_INDEX = "auto"


def parse_index_type(value: str) -> IndexType:
    """``"hnsw"`` → :attr:`IndexType.HNSW`; a :class:`SearchIndexError` naming the choices otherwise."""
    try:
        return IndexType(value)
    except ValueError:
        choices = ", ".join(t.value for t in IndexType)
        raise SearchIndexError(f"Unknown index type {value!r}; choose {AUTO_INDEX}, {choices}.") from None


class LogLevel(StrEnum):
    """uvicorn's log levels (``ServeConfig.log_level``)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


_ORIGIN = re.compile(r"https?://[^/\s?#]+")


def check_origins(origins: Iterable[str]) -> list[str]:
    """The CORS origins, each ``scheme://host[:port]`` or ``*``; a path or trailing slash is a :class:`ConfigError`.

    Example: ``check_origins(["http://localhost:3000"])`` → ``["http://localhost:3000"]``.
    """
    checked = []
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"--cors-origin {origin!r} is not an origin; write scheme://host[:port] without a path or "
                "trailing slash, e.g. http://localhost:3000"
            )
        checked.append(origin)
    return checked


class EmbedDtype(StrEnum):
    """How ``xlingual embed`` stores vectors (:attr:`EmbedConfig.dtype`)."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT8 = "int8"
    BINARY = "binary"


class OutputFormat(StrEnum):
    """Embeddings file formats, chosen by the extension of ``xlingual embed``'s output."""

    NPY = "npy"
    PARQUET = "parquet"
    JSONL = "jsonl"


class ExportFormat(StrEnum):
    """What ``xlingual export`` can write (:attr:`ExportConfig.formats`)."""

    ST = "st"
    ONNX = "onnx"
    OPENVINO = "openvino"


class Quantization(StrEnum):
    """Quantised variants ``xlingual export`` can add (:attr:`ExportConfig.quantize`): onnx-int8, openvino-int8."""

    INT8 = "int8"
