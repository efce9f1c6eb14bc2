"""Learning-rate schedules at hand-computed points (schedule.py)."""

from __future__ import annotations

import math

import pytest
import torch

from stagetrack.train.config import EngineConfig
from stagetrack.train.schedule import Plateau, cosine_restarts_factor, lr_at, warmup_factor

C45 = (1 + math.cos(math.pi / 4)) / 2  # 0.8535..: a quarter of the way through a cosine cycle


@pytest.mark.parametrize("warmup, expected", [
    (4, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),   # (step + 1) / 4, then 1
    (1, [1.0] * 6),
    (0, [1.0] * 6),                           # off
])
def test_linear_warmup(warmup, expected):
    assert [warmup_factor(s, warmup) for s in range(6)] == pytest.approx(expected)


@pytest.mark.parametrize("step, expected", [
    (0, 1.0), (5, 1.0),     # epochs 0-1 (3 steps per epoch): full rate
    (6, 0.1), (8, 0.1),     # epoch 2 = lr_drop: x gamma
    (30, 0.1),              # a single drop, not repeated
])
def test_step_drop(step, expected):
    cfg = EngineConfig(scheduler="step", lr_drop=2, lr_drop_gamma=0.1)
    assert lr_at(cfg, 1.0, step, steps_per_epoch=3) == pytest.approx(expected)


def test_step_drop_respects_min_lr():
    cfg = EngineConfig(scheduler="step", lr_drop=1, lr_drop_gamma=0.01, min_lr=0.05)
    assert lr_at(cfg, 1.0, 0, 1) == 1.0
    assert lr_at(cfg, 1.0, 1, 1) == pytest.approx(0.05)  # 0.01 floored at 0.05


@pytest.mark.parametrize("epoch, expected", [
    (0.0, 1.0),      # cycle 0 (2 epochs) starts
    (0.5, C45),      # a quarter into it
    (1.0, 0.5),      # half way: (1 + cos(pi/2)) / 2
    (2.0, 1.0),      # restart; cycle 1 lasts 4 epochs
    (3.0, C45),      # t_cur 1 of 4
    (4.0, 0.5),      # t_cur 2 of 4
    (5.0, 1 - C45),  # t_cur 3 of 4: (1 + cos(3 pi/4)) / 2
    (6.0, 1.0),      # restart; cycle 2 lasts 8 epochs
])
def test_cosine_warm_restarts_factor(epoch, expected):
    assert cosine_restarts_factor(epoch, t_0=2, t_mult=2) == pytest.approx(expected)


def test_cosine_constant_period():
    # t_mult 1: every cycle lasts t_0 = 2 epochs
    assert [cosine_restarts_factor(e, 2, 1) for e in (0, 1, 2, 3, 4)] == pytest.approx([1, 0.5, 1, 0.5, 1])


def test_cosine_lr_uses_fractional_epoch_and_min_lr():
    cfg = EngineConfig(scheduler="cosine", t_0=2, t_mult=2, min_lr=0.1)
    # steps_per_epoch 2: step 1 = epoch 0.5, step 2 = epoch 1 -> 0.1 + 0.9 * factor
    assert lr_at(cfg, 1.0, 1, 2) == pytest.approx(0.1 + 0.9 * C45)
    assert lr_at(cfg, 1.0, 2, 2) == pytest.approx(0.55)
    assert lr_at(cfg, 1.0, 4, 2) == pytest.approx(1.0)


def test_cosine_matches_torch_warm_restarts():
    """Cross-check against torch's CosineAnnealingWarmRestarts at fractional epochs."""
    cfg = EngineConfig(scheduler="cosine", t_0=3, t_mult=2, min_lr=0.01)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01)
    steps_per_epoch = 4
    for step in range(0, 4 * 25, 3):
        sched.step(step / steps_per_epoch)
        assert lr_at(cfg, 0.5, step, steps_per_epoch) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)


def test_warmup_multiplies_schedule():
    cfg = EngineConfig(scheduler="cosine", t_0=2, t_mult=2, warmup_steps=4)
    # step 1: warm-up 2/4, cosine at epoch 0.5 (2 steps per epoch)
    assert lr_at(cfg, 1.0, 1, 2) == pytest.approx(0.5 * C45)
    none = EngineConfig(scheduler="none", warmup_steps=2)
    assert [lr_at(none, 0.2, s, 10) for s in range(3)] == pytest.approx([0.1, 0.2, 0.2])


@pytest.mark.parametrize("mode, metrics, scales", [
    # patience 1: cut when 2 consecutive epochs fail to improve strictly, then count again
    ("min", [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8], [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]),
    ("max", [1.0, 1.0, 1.0, 2.0, 1.0, 3.0], [1, 1, 0.5, 0.5, 0.5, 0.5]),
])
def test_plateau(mode, metrics, scales):
    plateau = Plateau(mode=mode, factor=0.5, patience=1)
    assert [plateau.step(m) for m in metrics] == pytest.approx(scales)
    # same as torch's ReduceLROnPlateau with threshold 0
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=1, threshold=0)
    lrs = []
    for m in metrics:
        ref.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx(scales)


def test_plateau_state_round_trip_and_floor():
    plateau = Plateau(factor=0.1, patience=0)
    plateau.step(1.0)
    plateau.step(2.0)  # bad epoch > patience 0: cut
    again = Plateau(factor=0.1, patience=0)
    again.load_state_dict(plateau.state_dict())
    assert again.scale == pytest.approx(0.1) and again.best == 1.0
    cfg = EngineConfig(scheduler="plateau", min_lr=0.05)
    assert lr_at(cfg, 1.0, 7, 3, plateau_scale=again.scale) == pytest.approx(0.1)
    assert lr_at(cfg, 1.0, 7, 3, plateau_scale=0.01) == pytest.approx(0.05)  # floored
