"""Checkpoints of a run: write them atomically, verify them against their manifest, find and restore them.

A checkpoint ``checkpoints/step-NNNNNNNN/`` holds the model, the optimiser and scheduler state, every rank's
RNG state, the position in the data (``trainer_state.json``) and, written last, a manifest with the size and
sha256 of every file. It is written under ``.tmp-step-…`` and renamed into place: whole or absent. On
``--resume`` the newest checkpoint that matches its manifest is used; damaged newer ones are set aside.

Example::

    saver = Checkpointer(run_dir, dist, keep=2, head="procrustes on 8 pairs")
    saver.save(Position(step=200, epoch=0, batch_in_epoch=200, pairs_seen=6400), student, optimizer, scheduler)
    position = saver.restore(latest, optimizer, scheduler, device="cpu")
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual._io import (
    atomic_write_json,
    check_files,
    disk_full_message,
    folder_checksums,
    is_disk_full,
    remove_dir,
    replace_dir,
)
from xlingual.distillation.distributed import DistInfo, barrier
from xlingual.errors import ConfigError, DiskFullError, XlingualError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"
#: Size and sha256 of every file of a checkpoint, written last: what ``--resume`` checks a checkpoint against.
CHECKPOINT_MANIFEST = "manifest.json"
#: A checkpoint that fails its manifest is renamed with this prefix, so that it is never resumed from again.
DAMAGED_PREFIX = "damaged-"


@dataclass(frozen=True)
class Position:
    """Where training stands: steps done, and the next batch to train on (``batch_in_epoch`` of ``epoch``)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    #: Pairs trained on so far, over all processes.
    pairs_seen: int = 0


# --------------------------------------------------------------------------- random state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every global generator this process uses (CUDA's too when present)."""
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- finding and checking


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a checkpoint is complete once renamed into place)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)))


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """What in ``checkpoint`` differs from its manifest (missing files, sizes, sha256); ``[]`` if intact.

    A checkpoint written before manifests existed has none and counts as intact.
    Example: ``checkpoint_problems(Path("runs/x/checkpoints/step-00000200")) == []``.
    """
    manifest = checkpoint / CHECKPOINT_MANIFEST
    if not manifest.is_file():
        return []
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError(f"'files' is {type(files).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{manifest} cannot be read ({exc})"]
    return check_files(checkpoint, files)


def intact_checkpoint(run_dir: Path, dist: DistInfo) -> Path | None:
    """The newest checkpoint that matches its manifest; damaged newer ones are set aside with a warning."""
    damaged: list[tuple[Path, list[str]]] = []
    chosen: Path | None = None
    for checkpoint in reversed(checkpoints(run_dir)):
        problems = checkpoint_problems(checkpoint)
        if not problems:
            chosen = checkpoint
            break
        damaged.append((checkpoint, problems))
    if damaged and chosen is None:
        details = "; ".join(f"{path.name}: {', '.join(problems)}" for path, problems in damaged)
        raise XlingualError(
            f"--resume: no checkpoint in {run_dir / 'checkpoints'} matches its manifest ({details}). "
            "Delete the damaged step-* folders to resume from step 0, or start over with --overwrite"
        )
    barrier(dist)  # every rank has chosen before rank 0 renames anything
    for path, problems in damaged:
        moved = path.with_name(DAMAGED_PREFIX + path.name)
        if dist.main:
            remove_dir(moved)
            os.replace(path, moved)
        logger.warning(
            "checkpoint %s does not match its manifest (%s): it was renamed %s and the run resumes from %s "
            "instead; delete %s once you no longer need it",
            path,
            "; ".join(problems),
            moved.name,
            chosen.name if chosen else "the start",
            moved,
        )
    return chosen


def read_head(checkpoint: Path) -> str:
    """What the run did for the alignment head (as in config.json), from a checkpoint's state."""
    return str(json.loads((checkpoint / STATE_FILE).read_text())["head"])


# --------------------------------------------------------------------------- writing and restoring


@dataclass(frozen=True)
class Checkpointer:
    """Writes the checkpoints of one run (rank 0 the shared files, every rank its RNG state) and restores them."""

    run_dir: Path
    dist: DistInfo
    #: Checkpoints kept on disk (``--keep-checkpoints``): older ones are removed after each save.
    keep: int
    #: What was done for the alignment head, recorded in every checkpoint.
    head: str

    def save(self, position: Position, student: SentenceTransformer, optimizer: Any, scheduler: Any) -> None:
        """Write an atomic checkpoint (model, optimiser, scheduler, RNG of every rank, position in the data).

        A full disk raises :class:`DiskFullError` naming the checkpoint still intact; the partial one is removed.
        """
        root = self.run_dir / "checkpoints"
        final = root / f"{CHECKPOINT_PREFIX}{position.step:08d}"
        tmp = root / f".tmp-{final.name}"
        previous = checkpoints(self.run_dir)
        try:
            self._write(tmp, position, student, optimizer, scheduler)
            if self.dist.main:
                replace_dir(tmp, final)  # the rename is the commit point: a checkpoint is whole or absent
                for old in checkpoints(self.run_dir)[: -self.keep]:
                    remove_dir(old)  # renamed first: never seen half-deleted
        except Exception as exc:
            if self.dist.main:
                shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, XlingualError) or not is_disk_full(exc):
                raise
            intact = f"the previous checkpoint {previous[-1]} is intact" if previous else "no checkpoint was saved yet"
            then = f"continue the run with --resume (out: {self.run_dir})"
            raise DiskFullError(f"{disk_full_message(final, intact, then)} ({exc})") from exc
        barrier(self.dist)

    def _write(
        self, tmp: Path, position: Position, student: SentenceTransformer, optimizer: Any, scheduler: Any
    ) -> None:
        import torch

        if self.dist.main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        barrier(self.dist)
        torch.save(rng_state(), tmp / f"rng-rank{self.dist.rank}.pt")
        barrier(self.dist)
        if not self.dist.main:
            return
        student.save(str(tmp / "model"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
        state = {
            "step": position.step,
            "epoch": position.epoch,
            "batch_in_epoch": position.batch_in_epoch,
            "world_size": self.dist.world,
            "head": self.head,
            "pairs_seen": position.pairs_seen,
        }
        atomic_write_json(tmp / STATE_FILE, state)
        manifest = {"format": "xlingual-checkpoint", "step": position.step, "files": folder_checksums(tmp)}
        atomic_write_json(tmp / CHECKPOINT_MANIFEST, manifest)

    def restore(self, checkpoint: Path, optimizer: Any, scheduler: Any, device: str) -> Position:
        """Load the optimiser, scheduler and this rank's RNG state from ``checkpoint``; return its position."""
        import torch

        state = json.loads((checkpoint / STATE_FILE).read_text())
        if state["world_size"] != self.dist.world:
            raise ConfigError(
                f"{checkpoint} was written by {state['world_size']} process(es); "
                f"resume it with the same number (now {self.dist.world})"
            )
        optim_state = torch.load(checkpoint / "optim.pt", map_location=device, weights_only=False)
        optimizer.load_state_dict(optim_state["optimizer"])
        scheduler.load_state_dict(optim_state["scheduler"])
        set_rng_state(torch.load(checkpoint / f"rng-rank{self.dist.rank}.pt", weights_only=False))
        return Position(state["step"], state["epoch"], state["batch_in_epoch"], state["pairs_seen"])
