"""Typed params of the tracker (ByteTrack-style two-round matching with a blended cost)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class LearnedAssocConfig:
    """The learned association scorer mixed into the first-round cost (seed 000)."""

    enable: bool = False
    weights: str | None = None       # checkpoint of the scorer; null = the stage's own assoc.pt (pipeline)
    weight: float = 0.75             # a in (1 - a) * classical + a * (1 - learned score)
    embed_dim: int | None = None     # expected ReID width; None = take it from the checkpoint

    def validate(self) -> tuple[str, str] | None:
        if not 0.0 <= self.weight <= 1.0:
            return "weight", f"must be in [0, 1], got {self.weight}"
        if self.embed_dim is not None and self.embed_dim < 1:
            return "embed_dim", f"must be positive or null, got {self.embed_dim}"
        return None


@dataclass(frozen=True)
class CostWeights:
    """Weights of the classical cost terms; a term whose features are missing drops out."""

    iou: float = 1.0
    reid: float = 1.0
    hsv: float = 0.5
    # how appearance enters: "mean" = weighted mean with the motion term for every pair;
    # "min" = BoT-SORT's min(motion, appearance), only for pairs at IoU >= proximity whose
    # appearance distance (weighted mean of ReID and HSV) is <= appearance_thresh
    fusion: Literal["mean", "min"] = "min"
    proximity: float = 0.5
    appearance_thresh: float = 0.1

    def validate(self) -> tuple[str, str] | None:
        for name in ("iou", "reid", "hsv", "appearance_thresh"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        if not 0.0 <= self.proximity <= 1.0:
            return "proximity", f"must be in [0, 1], got {self.proximity}"
        return None


@dataclass(frozen=True)
class KalmanConfig:
    """Noise of the constant-velocity Kalman filter, relative to the box's width/height."""

    std_weight_position: float = 1.0 / 20
    std_weight_velocity: float = 1.0 / 80           # people (and the default)
    std_weight_velocity_vehicle: float | None = 1.0 / 160  # vehicles; None = std_weight_velocity
    nsa: bool = False                # scale measurement noise by (1 - score) (NSA Kalman)

    def velocity_by_class(self) -> tuple[float, ...]:
        """Velocity noise weight per class index (``CLASSES``: person 0, vehicle 1)."""
        vehicle = self.std_weight_velocity if self.std_weight_velocity_vehicle is None \
            else self.std_weight_velocity_vehicle
        return (self.std_weight_velocity, vehicle)

    def validate(self) -> tuple[str, str] | None:
        if self.std_weight_velocity_vehicle is not None and self.std_weight_velocity_vehicle <= 0:
            return "std_weight_velocity_vehicle", f"must be > 0 or null, got {self.std_weight_velocity_vehicle}"
        for name in ("std_weight_position", "std_weight_velocity"):
            if getattr(self, name) <= 0:
                return name, f"must be > 0, got {getattr(self, name)}"
        return None


@dataclass(frozen=True)
class GmcConfig:
    """Global motion compensation (:mod:`.gmc`): the camera's motion moves the tracks."""

    method: Literal["none", "sparse_flow"] = "sparse_flow"
    downscale: int = 0               # frames are shrunk by this before the flow; 0 = longer side / 960
    max_corners: int = 1000          # Shi-Tomasi corners tracked
    quality_level: float = 0.01      # corner quality relative to the best
    min_distance: int = 1            # px between corners (downscaled)
    min_points: int = 8              # fewer tracked / inlier points: no motion assumed
    ransac_thresh: float = 0.5       # RANSAC reprojection threshold (full-resolution px)

    def validate(self) -> tuple[str, str] | None:
        if self.downscale < 0:
            return "downscale", f"must be >= 0 (0 = from the frame size), got {self.downscale}"
        for name in ("max_corners", "min_distance", "min_points"):
            if getattr(self, name) < 1:
                return name, f"must be >= 1, got {getattr(self, name)}"
        if not 0.0 < self.quality_level < 1.0:
            return "quality_level", f"must be in (0, 1), got {self.quality_level}"
        if self.ransac_thresh <= 0:
            return "ransac_thresh", f"must be > 0, got {self.ransac_thresh}"
        return None


@dataclass(frozen=True)
class TrackerConfig:
    track_high_thresh: float = 0.4
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.5
    new_track_thresh_vehicle: float | None = 0.45  # vehicles' birth threshold; None = new_track_thresh
    match_thresh: float = 0.8
    second_match_thresh: float = 0.5
    unconfirmed_match_thresh: float = 0.7
    track_buffer: int = 30
    track_buffer_fps: float = 0.0    # 0: track_buffer counts frames; > 0: it is given at this fps and scales
    min_box_area: float = 4.0
    fuse_score: bool = True
    iou_gate: float = 0.9
    iou_min_size: float = 20.0       # px: smaller boxes are grown to this (per side) before IoU; 0 = off
    reid_gate: float = 2.0
    motion_gate: float | None = None
    duplicate_iou: float = 0.85
    history: int = 8
    emb_momentum: float = 0.9
    hsv_momentum: float = 0.9
    hsv_h_bins: int = 8
    hsv_s_bins: int = 4
    hsv_crop: float = 0.6
    kalman: KalmanConfig = field(default_factory=KalmanConfig)
    gmc: GmcConfig = field(default_factory=GmcConfig)
    costs: CostWeights = field(default_factory=CostWeights)
    assoc: LearnedAssocConfig = field(default_factory=LearnedAssocConfig)

    def birth_thresh_by_class(self) -> tuple[float, float]:
        """``new_track_thresh`` per class index (person, vehicle)."""
        vehicle = self.new_track_thresh if self.new_track_thresh_vehicle is None else self.new_track_thresh_vehicle
        return (self.new_track_thresh, vehicle)

    def validate(self) -> tuple[str, str] | None:
        if self.new_track_thresh_vehicle is not None and not 0.0 <= self.new_track_thresh_vehicle <= 1.0:
            return "new_track_thresh_vehicle", f"must be in [0, 1] or null, got {self.new_track_thresh_vehicle}"
        unit = ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh",
                "second_match_thresh", "unconfirmed_match_thresh", "duplicate_iou")
        for name in unit:
            if not 0.0 <= getattr(self, name) <= 1.0:
                return name, f"must be in [0, 1], got {getattr(self, name)}"
        if self.track_low_thresh > self.track_high_thresh:
            return "track_low_thresh", (f"must be <= track_high_thresh ({self.track_high_thresh}), "
                                        f"got {self.track_low_thresh}")
        if self.track_buffer < 0:
            return "track_buffer", f"must be >= 0, got {self.track_buffer}"
        if self.iou_gate < 0:
            return "iou_gate", f"must be >= 0, got {self.iou_gate}"
        if self.iou_min_size < 0:
            return "iou_min_size", f"must be >= 0 (0 = off), got {self.iou_min_size}"
        if self.reid_gate < 0:
            return "reid_gate", f"must be >= 0, got {self.reid_gate}"
        if self.motion_gate is not None and self.motion_gate <= 0:
            return "motion_gate", f"must be > 0 or null, got {self.motion_gate}"
        if self.history < 1:
            return "history", f"must be >= 1, got {self.history}"
        for name in ("emb_momentum", "hsv_momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                return name, f"must be in [0, 1), got {getattr(self, name)}"
        for name in ("hsv_h_bins", "hsv_s_bins"):
            if not 1 <= getattr(self, name) <= 256:
                return name, f"must be in [1, 256], got {getattr(self, name)}"
        if not 0.0 < self.hsv_crop <= 1.0:
            return "hsv_crop", f"must be in (0, 1], got {self.hsv_crop}"
        return None
