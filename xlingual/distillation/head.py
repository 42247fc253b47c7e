"""The alignment head: a closed-form affine map from the student's space onto the teacher's, as modules.

The student gets ``Normalize → Dense(head) → Normalize`` after its pooling (standard sentence-transformers
modules, so the saved model loads anywhere). The Dense layer starts from a closed-form fit on student and
teacher vectors of the training pairs (``--init procrustes|lstsq``) or, when the dimensions differ and
``--init none``, from a random projection.

Example::

    weight, bias = fit_alignment_head(student_emb, teacher_emb, "procrustes")
    insert_head(student, weight, bias, out_dim=teacher_emb.shape[1])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xlingual.choices import InitMethod
from xlingual.errors import ConfigError, XlingualError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def fit_alignment_head(student_emb: np.ndarray, teacher_emb: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form affine map from student space to teacher space: ``y ≈ W (x − mean_x) + mean_y``.

    ``student_emb``: ``(m, d_s)`` float32 (student vectors of English and Japanese sentences),
    ``teacher_emb``: ``(m, d_t)`` float32 (the teacher vector each should land on). Both sides are
    centred; "procrustes" solves scaled orthogonal Procrustes (``W = s·(U Vᵀ)ᵀ`` from the SVD
    ``U S Vᵀ`` of ``Xcᵀ Yc``, ``s = trace(S) / ‖Xc‖²``), "lstsq" ordinary least squares.
    Returns ``(weight (d_t, d_s), bias (d_t,))`` float32 for a Dense layer ``y = weight @ x + bias``.
    Example: ``w, b = fit_alignment_head(student_emb, teacher_emb, "procrustes")``.
    """
    x = np.asarray(student_emb, dtype=np.float64)
    y = np.asarray(teacher_emb, dtype=np.float64)
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mean_x, y - mean_y
    if method == InitMethod.PROCRUSTES:
        u, sing, vt = np.linalg.svd(xc.T @ yc, full_matrices=False)
        scale = sing.sum() / max(float((xc**2).sum()), 1e-12)
        w = scale * (u @ vt)  # (d_s, d_t)
    elif method == InitMethod.LSTSQ:
        w = np.linalg.lstsq(xc, yc, rcond=None)[0]
    else:
        choices = ", ".join((InitMethod.PROCRUSTES, InitMethod.LSTSQ, InitMethod.NONE))
        raise ConfigError(f"--init {method!r}: choose one of {choices}")
    weight = np.ascontiguousarray(w.T, dtype=np.float32)  # C order: fused optimiser kernels expect it
    bias = np.ascontiguousarray(mean_y - mean_x @ w, dtype=np.float32)
    return weight, bias


def insert_head(student: SentenceTransformer, weight: np.ndarray | None, bias: np.ndarray | None, out_dim: int) -> None:
    """Append ``Normalize → Dense(head) → Normalize`` after pooling; ``None`` weights start at random."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    while len(student) and isinstance(student[len(student) - 1], Normalize):
        student.pop(len(student) - 1)
    in_dim = student.get_embedding_dimension()
    if in_dim is None:
        raise XlingualError("the student does not report its embedding dimension; it cannot get a head")
    dense = Dense(
        in_dim,
        out_dim,
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=torch.tensor(np.ascontiguousarray(weight)) if weight is not None else None,
        init_bias=torch.tensor(np.ascontiguousarray(bias)) if bias is not None else None,
    )
    student.append(Normalize())
    student.append(dense)
    student.append(Normalize())


def build_head(
    student: SentenceTransformer,
    en: Sequence[str],
    ja: Sequence[str],
    teacher_en: np.ndarray,
    init: str,
    *,
    show_progress: bool,
) -> str:
    """Give ``student`` its head, fitted on the pairs ``(en, ja)`` and the teacher's ``(n, d_t)`` vectors of ``en``.

    Returns what was done, as recorded in config.json: ``"none"`` (same dimensions, ``--init none``),
    ``"random projection"`` or ``"procrustes on 8 pairs"``. Pass only the pairs to fit on (``--init-max-pairs``).
    """
    from xlingual.models.specs import encode

    teacher_dim = int(teacher_en.shape[1])
    if init == InitMethod.NONE:
        if student.get_embedding_dimension() == teacher_dim:
            return "none"
        insert_head(student, None, None, teacher_dim)
        return "random projection"
    n = len(en)
    logger.info("fitting the %s head on %d pairs (student encodes %d sentences)", init, n, 2 * n)
    student.eval()
    started = time.perf_counter()
    student_emb = encode(student, [*en, *ja], batch_size=64, show_progress=show_progress, desc="fitting the head")
    target = np.asarray(teacher_en, dtype=np.float32)
    weight, bias = fit_alignment_head(student_emb, np.concatenate([target, target]), init)
    insert_head(student, weight, bias, teacher_dim)
    logger.info("head fitted in %.0f s", time.perf_counter() - started)
    return f"{init} on {n} pairs"
