"""DataLoaders whose order depends only on (seed, epoch), sharded when distributed.

Without a custom sampler, every loader uses a ``DistributedSampler`` (with one replica when
not distributed): the permutation of epoch ``e`` is drawn from ``seed + e``, so a run resumed
at epoch ``e`` sees exactly the batches an uninterrupted run would, and N ranks with batch
``b`` together see the same samples per step as one process with batch ``N * b``. The engine
calls :func:`set_epoch` before each epoch; it also reseeds the loader's generator, from which
DataLoader draws the worker seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .config import EngineConfig
from .distributed import dist_info
from .seeding import seed_worker


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, cfg: EngineConfig,
                sampler: Sampler | None = None, *, collate_fn: Callable[[list], Any] | None = None,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader honouring ``cfg`` (workers, pinning, prefetch, persistence, seeds).

    ``batch_size`` is per process. A custom ``sampler`` replaces the default one (``shuffle``
    is then ignored) and must shard the data itself under DDP; it is given ``set_epoch`` calls
    if it has that method.
    """
    info = dist_info()
    if sampler is None:
        sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                     shuffle=shuffle, seed=cfg.seed, drop_last=drop_last)
    workers = cfg.num_workers
    extra: dict[str, Any] = {}
    if workers > 0:  # DataLoader rejects these options without workers
        extra = {"prefetch_factor": cfg.prefetch_factor, "persistent_workers": cfg.persistent_workers}
    generator = torch.Generator()
    generator.manual_seed(_loader_seed(cfg.seed, 0, info.rank))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=cfg.pin_memory and torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=seed_worker,
        generator=generator,
        **extra,
    )


def set_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Fix ``loader``'s order and worker seeds for ``epoch`` (call before iterating it)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(_loader_seed(seed, epoch, dist_info().rank))


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_009 + rank
