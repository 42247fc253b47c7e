"""Stored vector types of embeddings files: float32, float16, int8 (calibrated per dimension) and packed bits.

Example: ``cal = Int8Calibration.fit(emb); q, clipped = cal.quantize(emb); approx = cal.dequantize(q)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xlingual.choices import EmbedDtype
from xlingual.errors import ConfigError

__all__ = [
    "BINARY_THRESHOLD",
    "Int8Calibration",
    "binarize",
    "numpy_dtype",
    "store_vectors",
    "to_float32",
    "unpack_binary",
    "vector_width",
]


@dataclass
class Int8Calibration:
    """Per-dimension ranges mapping floats onto int8: ``q = round((x − lo) / step) − 128``, ``step = (hi − lo) / 255``.

    Example: ``cal = Int8Calibration.fit(emb); q, clipped = cal.quantize(emb); approx = cal.dequantize(q)``.
    """

    lo: np.ndarray  # (dim,) float32
    hi: np.ndarray  # (dim,) float32
    rows: int

    @classmethod
    def fit(cls, emb: np.ndarray) -> Int8Calibration:
        """Ranges of ``emb`` ``(n, dim)``, per dimension."""
        return cls(emb.min(axis=0).astype(np.float32), emb.max(axis=0).astype(np.float32), int(emb.shape[0]))

    @property
    def step(self) -> np.ndarray:
        """``(dim,)`` float32 width of one int8 level (a constant dimension gets a tiny positive step)."""
        return np.maximum((self.hi - self.lo) / np.float32(255.0), np.float32(1e-12)).astype(np.float32)

    def quantize(self, emb: np.ndarray) -> tuple[np.ndarray, int]:
        """``(n, dim)`` float → ``(n, dim)`` int8, and how many values fell outside the ranges (clipped)."""
        levels = np.rint((emb - self.lo) / self.step) - 128.0
        clipped = int(np.count_nonzero((levels < -128) | (levels > 127)))
        return np.clip(levels, -128, 127).astype(np.int8), clipped

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """``(n, dim)`` int8 → ``(n, dim)`` float32 (each value within half a step of the original, if not clipped)."""
        return (self.lo + (q.astype(np.float32) + 128.0) * self.step).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        """The metadata block that lets any reader dequantise."""
        return {
            "scheme": "per-dimension affine: x ≈ lo + (q + 128) * (hi - lo) / 255",
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
            "calibration_rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Int8Calibration:
        """Inverse of :meth:`as_dict`."""
        return cls(
            np.asarray(data["lo"], dtype=np.float32),
            np.asarray(data["hi"], dtype=np.float32),
            int(data.get("calibration_rows", 0)),
        )


#: Bit ``j`` of a binary vector is ``x_j > BINARY_THRESHOLD``.
BINARY_THRESHOLD = 0.0


def binarize(emb: np.ndarray) -> np.ndarray:
    """``(n, dim)`` float → ``(n, ceil(dim / 8))`` uint8: bits ``x > 0``, packed big-endian along each row."""
    return np.packbits(emb > BINARY_THRESHOLD, axis=1)


def unpack_binary(packed: np.ndarray, dim: int) -> np.ndarray:
    """``(n, ceil(dim / 8))`` uint8 → ``(n, dim)`` uint8 of 0/1 bits."""
    return np.unpackbits(packed, axis=1, count=dim)


def to_float32(vectors: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Stored vectors → ``(n, dim)`` float32: float16 widened, int8 dequantised, binary as ±1."""
    dtype = EmbedDtype(meta["dtype"])
    if dtype is EmbedDtype.INT8:
        return Int8Calibration.from_dict(meta["int8"]).dequantize(np.asarray(vectors))
    if dtype is EmbedDtype.BINARY:
        return unpack_binary(np.asarray(vectors), int(meta["dim"])).astype(np.float32) * 2.0 - 1.0
    return np.asarray(vectors, dtype=np.float32)


def store_vectors(emb: np.ndarray, dtype: EmbedDtype, calibration: Int8Calibration | None) -> tuple[np.ndarray, int]:
    """``(n, dim)`` float32 → the stored ``(n, width)`` array of ``dtype``, and how many int8 values were clipped."""
    if dtype is EmbedDtype.FLOAT16:
        return emb.astype(np.float16), 0
    if dtype is EmbedDtype.INT8:
        if calibration is None:  # pragma: no cover - fitted on the first chunk before this is called
            raise ConfigError("int8 needs a calibration")
        return calibration.quantize(emb)
    if dtype is EmbedDtype.BINARY:
        return binarize(emb), 0
    return emb.astype(np.float32, copy=False), 0


def numpy_dtype(dtype: EmbedDtype) -> np.dtype[Any]:
    """The little-endian NumPy dtype a stored vector has: ``<f4``, ``<f2``, ``i1`` or ``u1`` (binary)."""
    return np.dtype({"float32": "<f4", "float16": "<f2", "int8": "i1", "binary": "u1"}[dtype.value])


def vector_width(dtype: EmbedDtype, dim: int) -> int:
    """Stored values per vector: ``dim``, or ``ceil(dim / 8)`` bytes for ``binary``."""
    return (dim + 7) // 8 if dtype is EmbedDtype.BINARY else dim
