"""Typed params of the ReID model (torchreid OSNet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ReidModel = Literal[
    "osnet_x0_25", "osnet_x0_5", "osnet_x0_75", "osnet_x1_0", "osnet_ibn_x1_0",
    "osnet_ain_x0_25", "osnet_ain_x0_5", "osnet_ain_x0_75", "osnet_ain_x1_0",
]
# torchreid's training augmentations (``build_transforms``); resize and normalise always apply
ReidTransform = Literal["random_flip", "random_crop", "random_patch", "color_jitter", "random_erase"]


@dataclass(frozen=True)
class ReidConfig:
    model: ReidModel = "osnet_x0_25"
    weights: str | None = None
    height: int = 128
    width: int = 64
    epochs: int = 4
    batch_size: int = 32
    num_instances: int = 4
    transforms: list[ReidTransform] = field(default_factory=lambda: ["random_flip", "random_crop"])
    workers: int = 0
    optim: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 0.003
    weight_decay: float = 0.0005
    momentum: float = 0.9
    backbone_lr_mult: float = 1.0
    scheduler: Literal["single_step", "multi_step", "cosine"] = "cosine"
    stepsize: list[int] = field(default_factory=lambda: [20])
    gamma: float = 0.1
    label_smooth: bool = True
    margin: float = 0.3
    weight_t: float = 1.0
    weight_x: float = 1.0
    freeze_backbone_epochs: int = 0
    eval_freq: int = 1
    keep: Literal["best", "last"] = "best"
    ranks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    feature_batch: int = 64

    def validate(self) -> tuple[str, str] | None:
        if self.height < 16 or self.width < 16:
            return "height", f"input size must be at least 16x16, got {self.height}x{self.width}"
        if self.num_instances < 2:
            return "num_instances", f"the triplet loss needs at least 2 crops per identity, got {self.num_instances}"
        if self.batch_size < self.num_instances or self.batch_size % self.num_instances:
            return "batch_size", (f"must be a multiple of num_instances={self.num_instances} "
                                  f"(RandomIdentitySampler), got {self.batch_size}")
        if self.epochs < 0 or self.freeze_backbone_epochs < 0 or self.eval_freq < 0 or self.workers < 0:
            bad = next(k for k in ("epochs", "freeze_backbone_epochs", "eval_freq", "workers") if getattr(self, k) < 0)
            return bad, f"must be >= 0, got {getattr(self, bad)}"
        if self.lr <= 0 or self.backbone_lr_mult < 0:
            return ("lr", f"must be > 0, got {self.lr}") if self.lr <= 0 else \
                ("backbone_lr_mult", f"must be >= 0, got {self.backbone_lr_mult}")
        if self.weight_t < 0 or self.weight_x < 0 or self.weight_t + self.weight_x <= 0:
            return "weight_t", f"loss weights must be >= 0 and not both 0, got {self.weight_t}, {self.weight_x}"
        if not self.stepsize or any(s < 1 for s in self.stepsize):
            return "stepsize", f"needs at least one epoch >= 1, got {self.stepsize}"
        if not self.ranks or any(r < 1 for r in self.ranks):
            return "ranks", f"needs at least one rank >= 1, got {self.ranks}"
        if self.feature_batch < 1:
            return "feature_batch", f"must be >= 1, got {self.feature_batch}"
        return None
