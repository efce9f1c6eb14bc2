"""Data-parallel training under ``torchrun``: one process per device, same entry point.

``torchrun --nproc_per_node N script.py`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address; :func:`init_from_env` then starts the process group (NCCL on GPU, gloo on
CPU). Run plainly, nothing is initialised and every helper here is a no-op for world size 1.

Division of labour: every rank trains on its shard (``DistributedSampler`` via
``make_loader``) through a ``DistributedDataParallel`` wrapper that averages gradients; only rank
0 logs, shows progress and writes checkpoints (with a barrier after each write); validation
metrics are averaged over ranks, weighted by each rank's number of samples.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Rank and world size: from the process group if started, else from torchrun's env."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: torch.device) -> DistInfo:
    """Start the process group when launched by torchrun (idempotent); returns this rank's info."""
    info = dist_info()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
        log.info("process group started: backend %s, rank %d of %d", backend, info.rank, info.world_size)
    return info


def wrap(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when distributed, else ``model`` itself."""
    if not dist_info().enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids,
                                   find_unused_parameters=find_unused_parameters)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (identity when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def mean_over_ranks(metrics: dict[str, float], weight: float, device: torch.device) -> dict[str, float]:
    """Average each metric over ranks, weighted by ``weight`` (the rank's sample count).

    Every rank must pass the same keys in any order (they are sorted here).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([metrics[k] * weight for k in keys] + [weight], dtype=torch.float64, device=device)
    all_reduce_sum(values)
    total = values[-1].item()
    return {k: values[i].item() / total for i, k in enumerate(keys)}


def gather_objects(obj: object) -> list[object]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    """Destroy the process group (end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
