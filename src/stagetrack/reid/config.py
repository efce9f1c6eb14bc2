"""Typed params of the ReID model (torchreid OSNet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class ReidConfig:
    model: Literal["osnet_x0_25", "osnet_x0_5", "osnet_x0_75", "osnet_x1_0", "osnet_ibn_x1_0"] = "osnet_x0_25"
    weights: str | None = None
    height: int = 128
    width: int = 64
    epochs: int = 4
    batch_size: int = 32
    num_instances: int = 4
    optim: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 0.003
    weight_decay: float = 0.0005
    scheduler: Literal["single_step", "multi_step", "cosine"] = "cosine"
    stepsize: list[int] = field(default_factory=lambda: [20])
    gamma: float = 0.1
    label_smooth: bool = True
    margin: float = 0.3
    weight_t: float = 1.0
    weight_x: float = 1.0
    freeze_backbone_epochs: int = 0
    ranks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    feature_batch: int = 64
