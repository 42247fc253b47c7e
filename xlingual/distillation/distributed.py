"""Where a run executes: the device, and the process group when launched by ``torchrun`` (DDP).

One process per device; rank 0 writes every artifact, the others wait at :func:`barrier`.
Example: ``device, dist = place("auto")`` → ``("cpu", DistInfo(rank=0, world=1, local_rank=0))``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xlingual.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """The place of this process among the ``world`` processes of a run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when PyTorch sees a GPU, else ``cpu``; a CUDA device without a GPU is refused."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible to PyTorch; use --device cpu")
    return name


def init_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); gloo on CPU, NCCL on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def place(device_setting: str) -> tuple[str, DistInfo]:
    """The device this process trains on and its rank: each DDP process on CUDA takes its own GPU."""
    device = resolve_device(device_setting)
    dist = init_distributed(device)
    if dist.world > 1 and device.startswith("cuda"):
        device = f"cuda:{dist.local_rank}"
    return device, dist


def barrier(dist: DistInfo) -> None:
    """Wait until every process of the run gets here (a no-op for a single process)."""
    if dist.world > 1:
        import torch.distributed as torch_dist

        torch_dist.barrier()
