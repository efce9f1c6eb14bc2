"""Typed params of the data layer: sources, the synthetic generator and the builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Format = Literal["mot", "bdd", "visdrone"]
ClassName = Literal["person", "vehicle", "ignore"]


@dataclass(frozen=True)
class SourceConfig:
    """One dataset on disk, in its own format."""

    format: Format = "mot"
    root: str = ""
    # dataset category label -> project class; labels not listed are ignored regions;
    # empty = the format's default map (stagetrack.data.sources.DEFAULT_CLASS_MAPS)
    class_map: dict[str, ClassName] = field(default_factory=dict)
    # BDD100K split folder under labels/box_track_20 and images/track (other formats: unused)
    split: str = "train"
    # frame rate override; None = seqinfo.ini frameRate (mot), 5 (bdd), 25 (visdrone)
    fps: float | None = None
    # shell patterns of video ids to use (e.g. ["*-FRCNN"] for one copy of MOT17); empty = all
    include: list[str] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        if not self.root:
            return "root", "must name the dataset folder"
        if self.fps is not None and self.fps <= 0:
            return "fps", f"must be positive, got {self.fps}"
        return None


@dataclass(frozen=True)
class SynthDomainConfig:
    videos: int = 12         # training-pool videos (ids 1..videos)
    frames: int = 30
    locked_videos: int = 12  # shorter videos after them (ids videos+1..): the manifest locks them for val/test
    locked_frames: int = 30  # frames of each of those; 0 = ``frames``
    width: int = 320
    height: int = 192
    min_objects: int = 3
    max_objects: int = 6


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    out: str = "data/raw/synth"
    jpeg_quality: int = 90
    dancetrack: SynthDomainConfig = field(default_factory=SynthDomainConfig)
    bdd: SynthDomainConfig = field(default_factory=SynthDomainConfig)
    visdrone: SynthDomainConfig = field(default_factory=SynthDomainConfig)


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    manifest: str = "data/manifests/manifest.json"
    clip_length: int = 20
    clip_stride: int = 1
    allow_partial: bool = False
    reid_min_height: int = 16
    reid_max_per_track: int = 12
    selection_clips: int = 2
    selection_det_frames: int = 5
    min_visibility: float = 0.3

    def validate(self) -> tuple[str, str] | None:
        if self.clip_length < 2:
            return "clip_length", f"must be >= 2, got {self.clip_length}"
        if self.selection_clips < 1:
            return "selection_clips", (f"must be >= 1, got {self.selection_clips}: every part chooses its "
                                       "checkpoint on held-out clips, never on the locked val/test videos")
        if self.selection_det_frames < 1:
            return "selection_det_frames", f"must be >= 1, got {self.selection_det_frames}"
        return None
