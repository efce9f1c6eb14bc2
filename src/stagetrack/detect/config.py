"""Typed params of the detector (ultralytics YOLO); names follow ultralytics' train args.

Every field from ``epochs`` to ``copy_paste`` (the seed guide's "advanced training options")
plus ``close_mosaic``, ``warmup_bias_lr``, ``amp`` and ``deterministic`` is passed to
ultralytics' trainer under the same name (see ``stagetrack.detect.yolo.resolve_train_args``).

The seed plan's per-stage keys live in ``StageConfig`` and reach the trainer as follows:

* ``lr_scale`` (LR): multiplies ``lr0``; with ``optimizer: auto`` it multiplies the learning rate
  ultralytics picks itself.
* ``lr_backbone_scale`` (LR_BACKBONE): the layers of the model yaml's ``backbone:`` section
  train at ``lr * lr_backbone_scale`` (their optimizer param groups are split off and scaled);
  ``0`` freezes them (ultralytics ``freeze``), ``1`` changes nothing.
* ``lr_drop`` (LR_DROP): DETR-style step schedule: the learning rate is constant until that
  epoch (0-based) and multiplied by ``lr_drop_gamma`` from then on, replacing the linear decay
  to ``lrf``. ``None`` keeps ultralytics' linear schedule.
* ``accumulate_steps`` (ACCUMULATE_STEPS): ultralytics accumulates gradients up to a nominal
  batch ``nbs``; ``nbs = batch * accumulate_steps`` makes it step every ``accumulate_steps``
  batches (and keeps ``weight_decay`` unscaled).
* ``aug_max_size`` (AUG_MAX_SIZE): caps ``imgsz`` (training, validation) and every resize scale.
* ``aug_resize_scales`` (AUG_RESIZE_SCALES): multi-scale training: each batch is resized to a
  size drawn from this list (rounded to the model stride, capped by ``aug_max_size``), as
  ultralytics' ``multi_scale`` does with a random size; empty = single scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DetectorConfig:
    # model: a yaml (ultralytics' own, e.g. yolo11n.yaml, or one in stagetrack/detect/models/,
    # e.g. yolo11-pico.yaml) trained from scratch, unless `weights` names a local .pt file
    model: str = "yolo11-pico.yaml"
    weights: str | None = None
    epochs: int = 12
    batch: int = 8
    imgsz: int = 320
    patience: int = 0
    save_period: int = -1
    cache: bool = False
    workers: int = 0
    optimizer: Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"] = "AdamW"
    lr0: float = 0.01
    lrf: float = 0.1
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_epochs: float = 1.0
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.0
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
    close_mosaic: int = 3
    lr_drop_gamma: float = 0.1   # lr factor from a stage's lr_drop epoch on
    conf: float = 0.1            # inference (Detector): score threshold
    iou: float = 0.7             # NMS IoU threshold (inference and validation)
    max_det: int = 300           # inference: boxes per image
    amp: bool = False            # CUDA only, and only if ultralytics' AMP-check weights are local
    deterministic: bool = True
    threads: int = 0             # torch CPU threads for train/val/inference; 0 = numerics.threads when pinned, else every core
    # training device as ultralytics spells it ("0", "0,1" = multi-GPU DDP by ultralytics' own
    # launcher, "cpu"); None = the project's ``device``. Inference always uses the project's.
    train_device: str | None = None
