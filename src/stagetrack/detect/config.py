"""Typed params of the detector (ultralytics YOLO); names follow ultralytics' train args."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "yolo11n.yaml"
    weights: str | None = None
    epochs: int = 10
    batch: int = 16
    imgsz: int = 320
    patience: int = 100
    save_period: int = -1
    cache: bool = False
    workers: int = 0
    optimizer: Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"] = "auto"
    lr0: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_epochs: float = 1.0
    warmup_momentum: float = 0.8
    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    flipud: float = 0.0
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.0
    copy_paste: float = 0.0
    close_mosaic: int = 0
    conf: float = 0.1
    iou: float = 0.7
    max_det: int = 300
    amp: bool = False
    seed: int = 0
    deterministic: bool = True
