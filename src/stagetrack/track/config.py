"""Typed params of the tracker (ByteTrack-style matching with a blended cost)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LearnedAssocConfig:
    enable: bool = False
    weights: str | None = None
    weight: float = 0.5
    embed_dim: int | None = None


@dataclass(frozen=True)
class CostWeights:
    iou: float = 1.0
    reid: float = 0.0
    hsv: float = 0.0


@dataclass(frozen=True)
class TrackerConfig:
    track_high_thresh: float = 0.5
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.6
    match_thresh: float = 0.8
    second_match_thresh: float = 0.5
    unconfirmed_match_thresh: float = 0.7
    track_buffer: int = 30
    min_box_area: float = 4.0
    fuse_score: bool = True
    reid_gate: float = 0.5
    iou_gate: float = 0.0
    costs: CostWeights = field(default_factory=CostWeights)
    assoc: LearnedAssocConfig = field(default_factory=LearnedAssocConfig)
