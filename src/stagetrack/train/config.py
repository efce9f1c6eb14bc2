"""Typed params of the shared training engine (seeds 002/004)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EngineConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    bf16: bool = True
    accumulate_steps: int = 1
    grad_clip: float = 1.0
    scheduler: Literal["none", "step", "cosine", "plateau"] = "cosine"
    warmup_steps: int = 0
    lr_drop: int | None = None
    lr_drop_gamma: float = 0.1
    t_0: int = 10
    t_mult: int = 2
    plateau_patience: int = 3
    early_stop: int = 0
    ema: float = 0.0
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int = 2
