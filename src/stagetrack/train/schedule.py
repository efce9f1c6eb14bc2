"""Learning-rate schedules as pure functions of the optimizer step.

Time is the number of optimizer steps taken, ``step`` (0-based: the rate used by the first
update is ``lr_at(cfg, base_lr, 0, ...)``); epoch-based schedules see the fractional epoch
``step / steps_per_epoch`` (cosine, so the rate moves every step as in
``CosineAnnealingWarmRestarts.step(epoch + i / iters)``) or its floor (the one-time ``lr_drop``).

    rate(step) = warmup(step) * scheduled(step)
    warmup(step) = min(1, (step + 1) / warmup_steps)         (1 when warmup_steps == 0)
    scheduled   = none:    base_lr
                  step:    max(min_lr, base_lr * gamma ** [floor(epoch) >= lr_drop])
                  cosine:  min_lr + (base_lr - min_lr) * (1 + cos(pi * t_cur / t_i)) / 2
                  plateau: max(min_lr, base_lr * plateau_scale)

so ``min_lr`` floors every schedule (warm-up may start below it). Each parameter group then
runs at ``rate * lr_scale`` (e.g. the backbone at LR_BACKBONE / LR).

Only reduce-on-plateau has state (:class:`Plateau`); it changes once per epoch from the
monitored validation metric, and its ``scale`` is the input to :func:`lr_at`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .config import EngineConfig


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: 1/W, 2/W, ... 1 over the first W optimizer steps."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def step_drop_factor(epoch: int, lr_drop: int, gamma: float) -> float:
    """The seed plan's LR_DROP: ``gamma`` from epoch ``lr_drop`` (0-based) on, else 1."""
    return gamma if epoch >= lr_drop else 1.0


def cosine_restarts_factor(epoch: float, t_0: int, t_mult: int) -> float:
    """Cosine annealing with warm restarts (SGDR), in [0, 1], over a fractional epoch.

    Cycle i lasts ``t_0 * t_mult**i`` epochs; the factor restarts at 1 at each cycle start.
    """
    t_cur, t_i = float(epoch), float(t_0)
    while t_cur >= t_i:  # at most a few cycles (t_i grows) or epochs / t_0 when t_mult == 1
        t_cur -= t_i
        t_i *= t_mult
    return (1.0 + math.cos(math.pi * t_cur / t_i)) / 2.0


def lr_at(cfg: EngineConfig, base_lr: float, step: int, steps_per_epoch: int,
          plateau_scale: float = 1.0) -> float:
    """The main learning rate for optimizer step ``step`` (see the module docstring)."""
    epoch = step / steps_per_epoch
    if cfg.scheduler == "none":
        rate = base_lr
    elif cfg.scheduler == "step":
        assert cfg.lr_drop is not None, "scheduler 'step' needs lr_drop (EngineConfig.validate)"
        rate = max(cfg.min_lr, base_lr * step_drop_factor(int(epoch), cfg.lr_drop, cfg.lr_drop_gamma))
    elif cfg.scheduler == "cosine":
        rate = cfg.min_lr + (base_lr - cfg.min_lr) * cosine_restarts_factor(epoch, cfg.t_0, cfg.t_mult)
    elif cfg.scheduler == "plateau":
        rate = max(cfg.min_lr, base_lr * plateau_scale)
    else:
        raise ValueError(f"unknown scheduler {cfg.scheduler!r}")
    return warmup_factor(step, cfg.warmup_steps) * rate


@dataclass
class Plateau:
    """Reduce-on-plateau state: cut ``scale`` by ``factor`` after ``patience`` bad epochs.

    Same rule as ``torch.optim.lr_scheduler.ReduceLROnPlateau`` with ``threshold=0`` and no
    cooldown: an epoch is bad unless the metric strictly improves on the best so far; when the
    count of consecutive bad epochs exceeds ``patience``, the scale is cut and the count resets.
    """

    mode: Literal["min", "max"] = "min"
    factor: float = 0.1
    patience: int = 3
    best: float | None = None
    bad_epochs: int = 0
    scale: float = 1.0

    def step(self, metric: float) -> float:
        """Feed one epoch's monitored metric; returns the (possibly reduced) scale."""
        better = self.best is None or (metric < self.best if self.mode == "min" else metric > self.best)
        if better and not math.isnan(metric):
            self.best, self.bad_epochs = float(metric), 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale *= self.factor
            self.bad_epochs = 0
        return self.scale

    def state_dict(self) -> dict[str, float | int | None]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        self.bad_epochs = int(state["bad_epochs"])
        self.scale = float(state["scale"])
