"""Embeddings files for downstream apps: a text, JSONL or Parquet file in, vectors out, streamed.

Input: any document file :func:`xlingual.data.documents.read_documents` reads (text: one row per line, id
``FILE:LINE``; JSONL / Parquet: ``id`` and ``text`` fields; gzip allowed; blank texts are skipped and
counted). Output, chosen by the extension of ``out``:

- ``emb.npy`` — a ``(n, dim)`` NumPy array (``(n, ceil(dim / 8))`` uint8 for ``binary``), plus
  ``emb.npy.ids.txt`` (one id per line, row order) and ``emb.npy.meta.json`` (the metadata below);
- ``emb.parquet`` — columns ``id`` (string), ``text`` (string), ``embedding`` (fixed-size list of
  float32 / float16 / int8 / uint8); the metadata is the JSON under the schema metadata key ``xlingual``;
- ``emb.jsonl`` — one ``{"id", "text", "embedding": [...]}`` object per line, plus ``emb.jsonl.meta.json``
  (a sidecar rather than a header line, so that every line of the file is a row).

The metadata names the model (spec and content fingerprint), dimension, dtype, count, whether vectors
are L2-normalised, the prompt used, and for lossy dtypes how to read the values back:

- ``int8``: per-dimension ranges ``lo``/``hi`` calibrated on the first chunk; ``x ≈ lo + (q + 128) · (hi − lo) / 255``
  (values beyond a range are clipped, and counted in ``clipped_values``);
- ``binary``: bit ``j`` is ``x_j > threshold`` (threshold 0), packed with ``numpy.packbits`` (big bit order).

**Checksums.** The metadata of ``.npy`` and ``.jsonl`` files holds ``checksums``: size and sha256 of the data
file (``data``) and of the ids file (``ids``); a Parquet file cannot hold its own checksum, so its metadata
holds ``content_sha256``, the sha256 of each column's values (see :class:`_ContentDigest`).
:func:`read_embeddings` checks them and names the file, expected and found values, and the command to rerun.

**Streaming and resume.** Rows are embedded ``chunk_size`` at a time and appended to partial files
beside ``out`` (``emb.npy.partial`` …); after each chunk the partial files are flushed and
``emb.npy.progress.json`` records how far they are valid. Memory holds one chunk, whatever the input
size. After a crash, ``resume=True`` truncates the partial files to the recorded sizes and carries on
from the next row; the final files are renamed into place (``os.replace``) only when every row is done,
after the progress file has recorded the renames, so ``resume=True`` also finishes a publish that a crash
cut short. A previous output stays whole until then, and a full disk (:class:`~xlingual.errors.DiskFullError`)
leaves it whole too, with the rows committed so far kept for ``resume``.

Example::

    embed_file("docs.jsonl", "emb.parquet", EmbedConfig(model="runs/ja/model", dtype="int8"))
    ids, vectors, texts, meta = read_embeddings("emb.parquet")
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

from xlingual import __version__, _io
from xlingual.choices import EmbedDtype, OutputFormat
from xlingual.config import EmbedConfig
from xlingual.data.documents import Document, ReadStats, read_documents
from xlingual.errors import ConfigError, DataError, DiskFullError, ModelError
from xlingual.export.dtypes import BINARY_THRESHOLD, Int8Calibration, store_vectors, vector_width
from xlingual.export.writers import (
    Writer,
    discard_partials,
    ids_path,
    open_writer,
    output_format,
    progress_path,
    publish,
    sweep_temporaries,
)
from xlingual.models.encoder import Encoder, normalize_rows, prompt_text

__all__ = ["EMBED_FORMAT_VERSION", "EmbedResult", "embed_file"]

logger = logging.getLogger(__name__)

#: Version of the progress file and metadata layout.
EMBED_FORMAT_VERSION = 1
#: Settings that must match for ``resume`` to continue a run.
_RESUME_KEYS = (
    "input",
    "input_bytes",
    "input_mtime_ns",
    "model",
    "model_fingerprint",
    "dtype",
    "normalize",
    "prompt_name",
    "id_key",
    "text_key",
    "format",
)


@dataclass
class EmbedResult:
    """What :func:`embed_file` wrote."""

    out: Path
    files: list[Path]
    rows: int
    dim: int
    dtype: str
    skipped_blank: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "out": str(self.out),
            "files": [str(p) for p in self.files],
            "rows": self.rows,
            "dim": self.dim,
            "dtype": self.dtype,
            "skipped_blank": self.skipped_blank,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> str:
        """One line for people."""
        resumed = f", resumed after row {self.resumed_from:,}" if self.resumed_from else ""
        blank = f", {self.skipped_blank:,} blank skipped" if self.skipped_blank else ""
        return f"{self.out}: {self.rows:,} × {self.dim} {self.dtype} vectors in {self.seconds:.1f} s{resumed}{blank}"


@dataclass(frozen=True)
class _Job:
    """One run of :func:`embed_file`: where it writes, what it stores, and the settings ``resume`` compares."""

    out: Path
    fmt: OutputFormat
    dtype: EmbedDtype
    config: EmbedConfig
    settings: dict[str, Any]
    #: Whether ``out`` held a previous output when the run started (for the full-disk message).
    existed: bool
    started: float

    @property
    def progress(self) -> Path:
        """The progress file of ``out``."""
        return progress_path(self.out)


@dataclass(frozen=True)
class _Tally:
    """How far a run is: rows written, the dimension, the int8 calibration and clipped values so far."""

    rows: int = 0
    dim: int = 0
    calibration: Int8Calibration | None = None
    clipped: int = 0

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Tally:
        """The tally an interrupted run recorded in its progress file."""
        calibration = Int8Calibration.from_dict(state["int8"]) if state.get("int8") else None
        return cls(int(state["rows"]), int(state["dim"]), calibration, int(state.get("clipped_values", 0)))

    def record(self, job: _Job, writer: Writer) -> dict[str, Any]:
        """The progress record after a committed chunk."""
        return {
            "version": EMBED_FORMAT_VERSION,
            "settings": job.settings,
            "rows": self.rows,
            "dim": self.dim,
            "writer": writer.state(),
            "int8": self.calibration.as_dict() if self.calibration is not None else None,
            "clipped_values": self.clipped,
        }


def _model_identity(spec: str) -> str | None:
    from xlingual.models.specs import fingerprint, resolve_model_path

    path = resolve_model_path(spec)
    return fingerprint(path) if path is not None else None


def _prompt_of(encoder: Encoder, prompt_name: str | None) -> str | None:
    try:
        return prompt_text(encoder, prompt_name)
    except ModelError as exc:  # a user's option: say which one
        raise ConfigError("--prompt-name " + str(exc).removeprefix("prompt name ")) from None


def _chunks(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    while chunk := list(itertools.islice(docs, size)):
        yield chunk


def _load_progress(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); pass --overwrite to start over") from exc
    previous = state.get("settings", {})
    differ = [key for key in _RESUME_KEYS if previous.get(key) != settings.get(key)]
    if differ:
        detail = "; ".join(f"{key}: {previous.get(key)!r} then, {settings.get(key)!r} now" for key in differ)
        raise ConfigError(
            f"Cannot resume {path.name}: the interrupted run had other settings ({detail}). Pass the same input, "
            "model and options, or --overwrite to start over"
        )
    return dict(state)


def _check_paths(in_path: Path, out_path: Path, config: EmbedConfig) -> None:
    if not in_path.is_file():
        raise DataError(f"{in_path} is not a file; pass a text, JSONL or Parquet file of texts")
    # A run started with --overwrite and then interrupted leaves the previous output in place: --resume continues it.
    if out_path.exists() and not config.overwrite and not (config.resume and progress_path(out_path).exists()):
        if config.resume:
            raise ConfigError(f"{out_path} is already complete; nothing to resume (pass --overwrite to embed again)")
        raise ConfigError(f"{out_path} already exists; pass --overwrite to replace it")


def _settings(in_path: Path, config: EmbedConfig, encoder: Encoder | None, fmt: OutputFormat) -> dict[str, Any]:
    """What produced the file; ``resume`` refuses to continue a run whose settings differ."""
    stat = in_path.stat()
    return {
        "input": str(in_path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "model": config.model if encoder is None else getattr(encoder, "spec", type(encoder).__name__),
        "model_fingerprint": _model_identity(config.model)
        if encoder is None
        else getattr(encoder, "fingerprint", None),
        "dtype": EmbedDtype(config.dtype).value,
        "normalize": config.normalize,
        "prompt_name": config.prompt_name,
        "id_key": config.id_key,
        "text_key": config.text_key,
        "format": fmt.value,
    }


def _previous_state(job: _Job) -> dict[str, Any] | None:
    """The progress of an interrupted run to continue (``resume``), or None after clearing any leftovers."""
    if not job.progress.exists():
        discard_partials(job.out)
        if job.config.resume:
            logger.info("no interrupted run for %s; starting from the first row", job.out)
        return None
    if job.config.resume:
        state = _load_progress(job.progress, job.settings)
        sweep_temporaries(job.out)  # a kill mid-publish can leave a half-written metadata file
        logger.info("resuming %s after row %d", job.out, state["rows"])
        return state
    if job.config.overwrite:
        discard_partials(job.out)
        return None
    raise ConfigError(
        f"An interrupted run left {job.progress}; pass --resume to continue it, or --overwrite to start over"
    )


def _finish_publish(job: _Job, state: dict[str, Any]) -> EmbedResult:
    """Every row was written and the run died renaming the files: finish the renames it recorded."""
    meta = state["publish"]["meta"]
    files = publish(job.out, job.fmt, meta, state["publish"]["renames"])
    job.progress.unlink(missing_ok=True)
    rows, dim = int(state["rows"]), int(state["dim"])
    return EmbedResult(job.out, files, rows, dim, job.dtype.value, resumed_from=rows, meta=meta)


def _resumed_writer(job: _Job, state: dict[str, Any]) -> Writer:
    try:
        return open_writer(job.fmt, job.out, job.dtype, vector_width(job.dtype, int(state["dim"])), state["writer"])
    except (OSError, KeyError) as exc:
        raise ConfigError(
            f"Cannot resume {job.out}: its partial files are missing or damaged ({exc}); pass --overwrite to start over"
        ) from exc


def _encode_chunk(encoder: Encoder, texts: list[str], config: EmbedConfig) -> np.ndarray:
    """``(n, dim)`` float32 embeddings of ``texts``, L2-normalised with ``config.normalize``."""
    emb = np.asarray(
        encoder.encode(
            texts,
            batch_size=config.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=False,
            prompt_name=config.prompt_name,
        ),
        dtype=np.float32,
    )
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise DataError(f"the model returned shape {emb.shape} for {len(texts)} texts")
    return normalize_rows(emb) if config.normalize else emb


def _disk_full(job: _Job, exc: OSError, committed: int) -> DiskFullError:
    intact = f"the previous {job.out.name} is intact" if job.existed else f"nothing was written at {job.out}"
    if committed:
        intact += f", and the first {committed:,} rows are kept for --resume"
    message = _io.disk_full_message(exc.filename or job.out, intact, "run the same command again with --resume")
    return DiskFullError(message)


def _write_rows(
    job: _Job, encoder: Encoder, docs: Iterator[Document], start: _Tally, writer: Writer | None
) -> tuple[Writer, _Tally]:
    """Embed and append ``docs`` chunk by chunk, recording progress after each; return the writer and the tally."""
    tally = start
    try:
        for chunk in _chunks(docs, job.config.chunk_size):
            texts = [doc.text for doc in chunk]
            emb = _encode_chunk(encoder, texts, job.config)
            if writer is None:
                tally = _Tally(tally.rows, int(emb.shape[1]), tally.calibration, tally.clipped)
                writer = open_writer(job.fmt, job.out, job.dtype, vector_width(job.dtype, tally.dim), None)
            calibration = tally.calibration
            if job.dtype is EmbedDtype.INT8 and calibration is None:
                calibration = Int8Calibration.fit(emb)
            stored, clipped = store_vectors(emb, job.dtype, calibration)
            writer.append([doc.id for doc in chunk], texts, stored)
            done = _Tally(tally.rows + len(chunk), tally.dim, calibration, tally.clipped + clipped)
            _io.atomic_write_json(job.progress, done.record(job, writer), indent=None)
            tally = done
            if job.config.show_progress:
                rate = (tally.rows - start.rows) / (time.perf_counter() - job.started)
                logger.info("%s: %d rows (%.0f rows/s)", job.out.name, tally.rows, rate)
        if writer is None:  # an input without a single text
            writer = open_writer(job.fmt, job.out, job.dtype, vector_width(job.dtype, tally.dim), None)
    except OSError as exc:
        if writer is not None:
            writer.close()
        if _io.is_disk_full(exc):
            raise _disk_full(job, exc, tally.rows) from exc
        raise
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    return writer, tally


def _metadata(job: _Job, tally: _Tally, prompt: str | None, stats: ReadStats) -> dict[str, Any]:
    """The metadata of the finished file (see the module docstring)."""
    meta: dict[str, Any] = {
        "format": "xlingual-embeddings",
        "version": EMBED_FORMAT_VERSION,
        "model": job.settings["model"],
        "model_fingerprint": job.settings["model_fingerprint"],
        "dim": tally.dim,
        "dtype": job.dtype.value,
        "count": tally.rows,
        "normalized": job.config.normalize,
        "prompt": prompt,
        "input": job.settings["input"],
        "skipped_blank": stats.skipped_blank,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "xlingual_version": __version__,
    }
    if job.fmt is OutputFormat.NPY:
        meta["ids_file"] = ids_path(job.out).name
    if job.dtype is EmbedDtype.INT8:
        calibration = tally.calibration.as_dict() if tally.calibration else {}
        meta["int8"] = {**calibration, "clipped_values": tally.clipped}
    if job.dtype is EmbedDtype.BINARY:
        meta["binary"] = {
            "threshold": BINARY_THRESHOLD,
            "rule": "bit j is x_j > threshold",
            "packing": "numpy.packbits along each row, big bit order (first dimension = highest bit of byte 0)",
            "bytes_per_vector": vector_width(job.dtype, tally.dim),
        }
    return meta


def _seal_and_publish(job: _Job, writer: Writer, meta: dict[str, Any], tally: _Tally) -> list[Path]:
    """Complete the partial files, record the renames in the progress file, then rename the files into place."""
    try:
        renames = [
            [str(source.relative_to(job.out.parent)), str(target.relative_to(job.out.parent))]
            for source, target in writer.seal(meta)
        ]
        # Recorded before the first rename, so that --resume can finish renaming after a crash midway.
        sealed = {"version": EMBED_FORMAT_VERSION, "settings": job.settings, "rows": tally.rows, "dim": tally.dim}
        _io.atomic_write_json(job.progress, {**sealed, "publish": {"meta": meta, "renames": renames}}, indent=None)
        # os.replace swaps each new file in: an old one is never missing meanwhile
        return publish(job.out, job.fmt, meta, renames)
    except OSError as exc:
        writer.close()
        if _io.is_disk_full(exc):
            raise _disk_full(job, exc, tally.rows) from exc
        raise
    except BaseException:
        writer.close()
        raise


def embed_file(
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: EmbedConfig | None = None,
    *,
    encoder: Encoder | None = None,
) -> EmbedResult:
    """Embed every text of ``input_path`` into ``out`` (``.npy``, ``.parquet`` or ``.jsonl``), chunk by chunk.

    ``encoder``: an already loaded model (otherwise ``config.model`` is loaded). Raises
    :class:`ConfigError` for an existing output or an interrupted run without ``resume``/``overwrite``, and
    :class:`DataError` for unreadable input. Example: ``embed_file("docs.txt", "emb.npy")``.
    """
    config = config or EmbedConfig()
    in_path, out_path = Path(input_path), Path(out)
    fmt = output_format(out_path)
    _check_paths(in_path, out_path, config)
    existed, started = out_path.exists(), time.perf_counter()
    settings = _settings(in_path, config, encoder, fmt)
    job = _Job(out_path, fmt, EmbedDtype(config.dtype), config, settings, existed, started)
    state = _previous_state(job)
    if state is not None and state.get("publish"):
        return _finish_publish(job, state)
    if encoder is None:
        from xlingual.models.specs import load_model

        encoder = cast(Encoder, load_model(config.model, device=config.device))
    prompt = _prompt_of(encoder, config.prompt_name)
    if state is not None:
        start, writer = _Tally.from_state(state), _resumed_writer(job, state)
    else:
        dim_fn = getattr(encoder, "get_embedding_dimension", None)
        start, writer = _Tally(dim=int(dim_fn() or 0) if callable(dim_fn) else 0), None
    stats = ReadStats()
    docs = read_documents(in_path, id_key=config.id_key, text_key=config.text_key, stats=stats)
    docs = itertools.islice(docs, start.rows, None)  # skip the rows an interrupted run already wrote
    writer, tally = _write_rows(job, encoder, docs, start, writer)
    meta = _metadata(job, tally, prompt, stats)
    files = _seal_and_publish(job, writer, meta, tally)
    job.progress.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return EmbedResult(
        out_path, files, tally.rows, tally.dim, job.dtype.value, stats.skipped_blank, start.rows, seconds, meta
    )
