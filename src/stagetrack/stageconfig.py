"""Typed params of one training stage (the seed plan's per-stage config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceMix:
    enabled: bool = False
    frame_budget: int = 0
    # sample this source's clips from an earlier stage's selection (replay) instead of the pool
    replay_from: str | None = None


@dataclass(frozen=True)
class StageConfig:
    description: str = ""
    init: str | None = None
    data: dict[str, SourceMix] = field(default_factory=dict)
    lr_scale: float = 1.0
    lr_backbone_scale: float = 1.0
    lr_drop: int | None = None
    accumulate_steps: int = 1
    aug_max_size: int = 320
    aug_resize_scales: list[int] = field(default_factory=list)
    # WiSE-FT: candidate alphas of detector = alpha * this stage's + (1 - alpha) * init's, chosen on
    # the selection split (detect/interpolate.py); [] = off
    interpolate_alphas: list[float] = field(default_factory=list)
    # per-stage overrides of the global sections (validated against them when resolved)
    detector: dict[str, Any] = field(default_factory=dict)
    reid: dict[str, Any] = field(default_factory=dict)
    assoc: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> tuple[str, str] | None:
        bad = [a for a in self.interpolate_alphas if not 0.0 <= a <= 1.0]
        if bad:
            return "interpolate_alphas", f"each alpha must lie in [0, 1], got {bad[0]}"
        if self.interpolate_alphas and self.init is None:
            return "interpolate_alphas", "needs init: the earlier stage whose detector to interpolate with"
        return None


@dataclass(frozen=True)
class PlanConfig:
    """The cost planner's projection (``stagetrack plan``)."""

    frame_scale: float = 50.0      # projected frames = this stage's frame budget x frame_scale
    epochs: int = 10               # projected epochs per stage
    price_per_hour: float = 1.212  # machine price (seed plan: g5.2xlarge on demand)
