"""ultralytics' detection trainer with the seed plan's per-stage knobs that it lacks.

:class:`StageTrainer` overrides three hooks of ``DetectionTrainer``; each runs where ultralytics
builds the thing it changes, so resuming (which rebuilds the optimizer and scheduler before it
loads their saved state) gets the same structure back:

* ``build_optimizer``: backbone layers (the model yaml's ``backbone:`` section) get their own
  param groups at ``lr * lr_backbone_scale`` (LR_BACKBONE); with ``optimizer: auto`` the
  learning rate ultralytics picks is multiplied by ``lr_scale`` (LR).
* ``_setup_scheduler``: a step schedule at ``lr_drop`` (LR_DROP) instead of linear decay.
* ``preprocess_batch``: multi-scale training over an explicit list of sizes (AUG_RESIZE_SCALES).

The callbacks at the end are plain functions of the trainer (threads, dvclive logging).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn, optim

from .. import offline

offline.configure_ultralytics()  # before ultralytics is imported

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import DEFAULT_CFG  # noqa: E402
from ultralytics.utils.torch_utils import unwrap_model  # noqa: E402

LIVE_PREFIX = "detector"
# ultralytics' validation keys -> the names the stage logs and reports
VAL_KEYS: dict[str, str] = {
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
}


@dataclass(frozen=True)
class StageOptions:
    """What the trainer needs beyond ultralytics' own args (those are saved in its checkpoints)."""

    backbone_layers: int = 0           # layers 0..n-1 of the model form the backbone
    lr_backbone_scale: float = 1.0     # backbone lr = lr * this (0 is handled by `freeze`)
    auto_lr_scale: float = 1.0         # multiplies the lr that optimizer=auto picks
    lr_drop: int | None = None         # epoch (0-based) from which lr is multiplied by lr_drop_gamma
    lr_drop_gamma: float = 0.1
    resize_scales: tuple[int, ...] = ()  # training sizes drawn per batch; () = imgsz only
    threads: int = 1                   # torch CPU threads


def step_lr_lambda(epoch: int, *, drop: int, gamma: float) -> float:
    """LR factor of a DETR-style step schedule: 1 before epoch ``drop``, ``gamma`` from it on."""
    return gamma if epoch >= drop else 1.0


class StageTrainer(DetectionTrainer):
    """``DetectionTrainer`` plus :class:`StageOptions` (see the module docstring).

    ultralytics' multi-GPU launcher (``device: "0,1"``) pickles the trainer *class* with
    cloudpickle and rebuilds it in each worker as ``cls(cfg=..., overrides=..., _callbacks=...)``.
    :meth:`bind` therefore pins a run's options into a subclass (pickled by value), and the
    constructor keeps ultralytics' signature.
    """

    stage_options: StageOptions = StageOptions()

    @classmethod
    def bind(cls, options: StageOptions) -> type["StageTrainer"]:
        return type("BoundStageTrainer", (cls,), {"stage_options": options, "__module__": cls.__module__})

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None,
                 _callbacks: dict[str, list[Callable]] | None = None, options: StageOptions | None = None) -> None:
        self.options = self.stage_options if options is None else options
        self.in_final_eval = False
        self.grad_norms: list[float] = []
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)

    def build_optimizer(self, model: nn.Module, name: str = "auto", lr: float = 0.001,
                        momentum: float = 0.9, decay: float = 1e-5, iterations: float = 1e5):
        auto = str(name).lower() == "auto"
        optimizer = super().build_optimizer(model, name, lr, momentum, decay, iterations)
        if auto and self.options.auto_lr_scale != 1.0:
            for group in optimizer.param_groups:
                group["lr"] *= self.options.auto_lr_scale
            self.args.lr0 *= self.options.auto_lr_scale  # checkpoints record the lr actually used
        if self.options.backbone_layers and self.options.lr_backbone_scale not in (0.0, 1.0):
            split_backbone_groups(optimizer, unwrap_model(model), self.options.backbone_layers,
                                  self.options.lr_backbone_scale)
        return optimizer

    def optimizer_step(self) -> None:
        """ultralytics' step (unscale, clip at 10, step, EMA), keeping the pre-clip gradient norm."""
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=10.0)
        self.grad_norms.append(float(norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)

    def take_grad_norms(self) -> dict[str, float]:
        """Mean and max gradient norm since the last call (one epoch); resets."""
        norms, self.grad_norms = self.grad_norms, []
        if not norms:
            return {}
        return {"train/grad_norm": sum(norms) / len(norms), "train/grad_norm_max": max(norms)}

    def _setup_scheduler(self) -> None:
        if self.options.lr_drop is None:
            super()._setup_scheduler()
            return
        self.lf = partial(step_lr_lambda, drop=self.options.lr_drop, gamma=self.options.lr_drop_gamma)
        self.scheduler = optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=self.lf)

    def preprocess_batch(self, batch: dict) -> dict:
        batch = super().preprocess_batch(batch)
        if self.options.resize_scales:
            batch["img"] = resize_batch(batch["img"], random.choice(self.options.resize_scales), self.stride)
        return batch

    def final_eval(self) -> None:
        self.in_final_eval = True
        try:
            super().final_eval()
        finally:
            self.in_final_eval = False


def split_backbone_groups(optimizer: optim.Optimizer, model: nn.Module, layers: int, scale: float) -> None:
    """Move the params of ``model.0`` .. ``model.{layers-1}`` into extra groups at ``lr * scale``.

    Each original group (ultralytics: weight with decay, norm weights, biases) keeps its other
    settings, including its ``param_group`` tag that warmup reads. Must run before training
    starts (the optimizer has no state yet).
    """
    prefixes = tuple(f"model.{i}." for i in range(layers))
    backbone = {id(p) for n, p in model.named_parameters() if n.startswith(prefixes)}
    for group in list(optimizer.param_groups):
        moved = [p for p in group["params"] if id(p) in backbone]
        if not moved:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in backbone]
        extra = {k: v for k, v in group.items() if k != "params"}
        optimizer.add_param_group({**extra, "params": moved, "lr": group["lr"] * scale, "backbone": True})


def resize_batch(imgs: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Scale a (B, C, H, W) batch so its long side is ``size``, both sides stride multiples.

    The same arithmetic as ultralytics' ``multi_scale``; labels are normalised, so they hold.
    """
    factor = size / max(imgs.shape[2:])
    if factor == 1:
        return imgs
    shape = [math.ceil(x * factor / stride) * stride for x in imgs.shape[2:]]
    return nn.functional.interpolate(imgs, size=shape, mode="bilinear", align_corners=False)


def thread_callback(threads: int) -> Callable[[Any], None]:
    """A callback that sets torch's CPU threads (ultralytics' device selection resets them to cores-1)."""

    def set_threads(_: Any) -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    return set_threads


def epoch_metrics(trainer: DetectionTrainer) -> dict[str, float]:
    """One epoch's numbers: train/val losses, lr per param group, val mAP/precision/recall."""
    out = {k: float(v) for k, v in trainer.label_loss_items(trainer.tloss, prefix="train").items()}
    for key, value in (trainer.metrics or {}).items():
        if key.startswith("val/"):
            out[key] = float(value)
        elif key in VAL_KEYS:
            out[f"val/{VAL_KEYS[key]}"] = float(value)
    out.update({k: float(v) for k, v in getattr(trainer, "lr", {}).items()})
    return out


def live_callback(live: Any) -> Callable[[StageTrainer], None]:
    """An ``on_fit_epoch_end`` callback: log :func:`epoch_metrics` under ``detector/``, then step.

    ultralytics also fires this event once after training for the final validation of best.pt;
    that one is not an epoch and is skipped (its numbers are the stage's result metrics).
    """

    def log_epoch(trainer: StageTrainer) -> None:
        if trainer.in_final_eval:
            return
        for name, value in {**epoch_metrics(trainer), **trainer.take_grad_norms()}.items():
            live.log_metric(f"{LIVE_PREFIX}/{name}", value)
        live.next_step()

    return log_epoch
