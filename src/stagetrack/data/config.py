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
    domain: Literal["ground", "aerial"] = "ground"
    # dataset category label -> project class; labels not listed are ignored regions
    class_map: dict[str, ClassName] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthDomainConfig:
    videos: int = 8
    frames: int = 60
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
    reid_height: int = 128
    reid_width: int = 64
    reid_min_height: int = 16
    reid_max_per_track: int = 12
    det_val_frames: int = 8
    min_visibility: float = 0.3
