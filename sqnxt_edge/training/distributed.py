"""Device choice and PyTorch DDP under `torchrun`: read WORLD_SIZE / RANK / LOCAL_RANK, nothing home-made.

`torchrun --nproc-per-node 2 -m sqnxt_edge train ...` gives each process one GPU (NCCL) or one CPU share (gloo);
every rank trains on its DistributedSampler shard, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch

from ..errors import DeviceError

__all__ = ["DistInfo", "setup", "pick_device", "all_reduce_sum", "broadcast", "barrier", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (world size 1: not distributed)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints."""
        return self.rank == 0


def pick_device(request: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA when present (one GPU per local rank), else the CPU; an explicit request that cannot be met fails."""
    request = (request or "auto").lower()
    if request == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {request!r} requested but CUDA is not available; use --device cpu")
        return torch.device(request if ":" in request else f"cuda:{local_rank}")
    raise DeviceError(f"unknown device {request!r}; use auto, cpu, cuda or cuda:N")


def setup(request: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the torchrun job from the environment, if any; returns it and the torch device to use."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo(), pick_device(request)
    import torch.distributed as dist

    info = DistInfo(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))
    device = pick_device(request, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """`values` summed over every process (unchanged when not distributed)."""
    if info.enabled:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


_T = TypeVar("_T")


def broadcast(obj: _T, info: DistInfo) -> _T:
    """Rank 0's value on every rank (e.g. the run folder named after rank 0's clock)."""
    if not info.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    """Wait until every process gets here (no-op when not distributed)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group (no-op when not distributed)."""
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
