"""The training engine: accumulation, EMA, early stopping, init/resume switches, alarms, loaders."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from stagetrack.configtypes import build
from stagetrack.errors import ConfigError, TrainingAlarm
from stagetrack.train.config import EngineConfig
from stagetrack.train.ema import ModelEMA
from stagetrack.train.engine import Engine, move_to
from stagetrack.train.loader import make_loader, set_epoch

sys.path.insert(0, str(Path(__file__).parent / "engine_fixtures"))
import tiny_run  # noqa: E402

CPU = dict(device="cpu", scheduler="none", grad_clip=0.0)


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    if torch.are_deterministic_algorithms_enabled() != det:
        torch.use_deterministic_algorithms(det)


class LinearTask:
    """MSE on a linear model; optional planted faults keyed by training forward number (1-based)."""

    def __init__(self, nan_at: set[int] = frozenset(), nan_once: bool = False, spike_at: int = 0,
                 pred_std: float | None = None) -> None:
        self.calls = 0
        self.nan_at, self.nan_once = set(nan_at), nan_once
        self.spike_at = spike_at
        self.pred_std = pred_std

    def forward(self, model, batch):
        x, y = batch
        self.calls += 1
        pred = model(x)
        loss = nn.functional.mse_loss(pred, y)
        if self.calls in self.nan_at:
            loss = loss * float("nan")
            if self.nan_once:
                self.nan_at.clear()
        if self.calls == self.spike_at:
            loss = loss * 1e4
        std = float(pred.detach().std()) if self.pred_std is None else self.pred_std
        return loss, {"pred_std": std}

    def evaluate(self, model, loader):
        losses = [float(nn.functional.mse_loss(model(x), y)) for x, y in loader]
        return {"val_loss": sum(losses) / len(losses), "neg_val_loss": -sum(losses) / len(losses)}


def _data(n: int, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def _fit(tmp_path, cfg: EngineConfig, *, n=16, batch=4, epochs=2, task=None, lr=0.1, name="run", **kw):
    model = _model()
    engine = Engine(cfg, model, task or LinearTask(), lr=lr, epochs=epochs, out_dir=tmp_path / name, **kw)
    result = engine.fit(make_loader(_data(n), batch, False, cfg), make_loader(_data(8, 1), 4, False, cfg))
    return engine, result


@pytest.mark.parametrize("n", [16, 20])  # 20 samples: groups of 4, 4 and a partial 2 micro-batches
def test_accumulated_micro_batches_equal_one_big_batch(tmp_path, n):
    small = EngineConfig(**CPU, optimizer="sgd", momentum=0.9, accumulate_steps=4)
    big = EngineConfig(**CPU, optimizer="sgd", momentum=0.9, accumulate_steps=1)
    acc, acc_res = _fit(tmp_path, small, n=n, batch=2, name="acc")
    one, one_res = _fit(tmp_path, big, n=n, batch=8, name="big")
    assert acc.step == one.step == 2 * math.ceil(n / 8)
    for a, b in zip(acc.model.parameters(), one.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    assert acc_res.history[-1]["train_loss"] == pytest.approx(one_res.history[-1]["train_loss"], abs=1e-6)


def test_param_groups_scale_lr_and_weight_decay_passes_through(tmp_path):
    cfg = EngineConfig(**CPU)
    model = _model()
    groups = [{"params": [model.weight], "lr_scale": 0.1}, {"params": [model.bias], "weight_decay": 0.0}]
    engine = Engine(cfg, model, LinearTask(), lr=0.5, epochs=1, out_dir=tmp_path, param_groups=groups,
                    weight_decay=0.01)
    result = engine.fit(make_loader(_data(8), 4, False, cfg), make_loader(_data(4), 4, False, cfg))
    assert [g["lr"] for g in engine.optimizer.param_groups] == pytest.approx([0.05, 0.5])
    assert [g["weight_decay"] for g in engine.optimizer.param_groups] == [0.01, 0.0]
    assert result.history[0]["lr"] == pytest.approx(0.05) and result.history[0]["lr_group1"] == pytest.approx(0.5)


def test_ema_update_rule():
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    ema = ModelEMA(model, decay=0.5)
    nn.init.constant_(model.weight, 3.0)
    ema.update(model)  # d = min(0.5, 1/10) = 0.1: 0.1 * 1 + 0.9 * 3 = 2.8
    assert ema.module.weight.item() == pytest.approx(2.8)
    ema.update(model)  # d = min(0.5, 2/11): 2/11 * 2.8 + 9/11 * 3
    assert ema.module.weight.item() == pytest.approx(2 / 11 * 2.8 + 9 / 11 * 3)


def test_ema_is_evaluated_saved_as_best_and_left_in_model(tmp_path):
    cfg = EngineConfig(**CPU, ema=0.9)
    engine, result = _fit(tmp_path, cfg, epochs=3)
    best = torch.load(result.best_path, weights_only=True)
    assert best["ema"]["updates"] == engine.step == 12
    assert not torch.equal(best["model"]["weight"], best["train_model"]["weight"])
    assert torch.equal(engine.model.weight.detach(), best["model"]["weight"])
    # the monitored value is the EMA model's validation loss
    with torch.no_grad():
        metrics = LinearTask().evaluate(engine.model, make_loader(_data(8, 1), 4, False, cfg))
    assert metrics["val_loss"] == pytest.approx(result.best_metric)


def test_early_stopping_and_best_by_mode(tmp_path):
    # lr 1.5 on this problem diverges: val loss rises every epoch after the first
    cfg = EngineConfig(**CPU, early_stop=2, optimizer="sgd", momentum=0.0)
    engine, result = _fit(tmp_path, cfg, epochs=10, lr=1.5, monitor="neg_val_loss", mode="max")
    assert result.stopped_early and result.epochs_run == 3  # best at epoch 0, then 2 bad epochs
    assert torch.load(result.best_path, weights_only=True)["epoch"] == 0
    assert result.best_metric == pytest.approx(result.history[0]["neg_val_loss"])
    assert torch.load(result.last_path, weights_only=True)["epoch"] == 2


def test_unknown_monitor_lists_metrics(tmp_path):
    with pytest.raises(ConfigError, match="monitor.*'val_acc'.*allowed: .*val_loss"):
        _fit(tmp_path, EngineConfig(**CPU), epochs=1, monitor="val_acc")


def test_init_from_switches(tmp_path):
    cfg = EngineConfig(**CPU, optimizer="sgd", momentum=0.9)
    _, source = _fit(tmp_path, cfg, name="stage1")
    saved = torch.load(source.best_path, weights_only=True)
    fresh = Engine(cfg, nn.Linear(3, 1), LinearTask(), lr=0.1, epochs=1, out_dir=tmp_path / "s2a",
                   init_from=source.best_path, resume_optimizer=False, resume_scheduler=False)
    assert torch.equal(fresh.model.weight.detach(), saved["model"]["weight"])
    assert not fresh.optimizer.state and fresh.sched_step == 0
    cont = Engine(cfg, nn.Linear(3, 1), LinearTask(), lr=0.1, epochs=1, out_dir=tmp_path / "s2b",
                  init_from=source.best_path)
    assert torch.equal(cont.optimizer.state[cont.model.weight]["momentum_buffer"],
                       saved["optimizer"]["state"][0]["momentum_buffer"])
    assert cont.sched_step == saved["scheduler"]["step"] == 8 and cont.epoch == -1


@pytest.mark.parametrize("has_method", [True, False])
def test_gradient_checkpointing_contract(tmp_path, caplog, has_method):
    calls = []

    class Model(nn.Linear):
        def set_grad_checkpointing(self, ratio: float) -> None:
            calls.append(ratio)

    model = Model(3, 1) if has_method else nn.Linear(3, 1)
    cfg = EngineConfig(**CPU, memory_efficient=True, checkpoint_ratio=0.5)
    Engine(cfg, model, LinearTask(), lr=0.1, epochs=1, out_dir=tmp_path)
    assert calls == ([0.5] if has_method else [])
    assert ("no set_grad_checkpointing" in caplog.text) is not has_method


class FakeLive:
    def __init__(self) -> None:
        self.metrics: list[tuple[int, str, float]] = []
        self.step = 0

    def log_metric(self, name: str, value: float) -> None:
        self.metrics.append((self.step, name, value))

    def next_step(self) -> None:
        self.step += 1


def test_dvclive_logging_once_per_epoch(tmp_path):
    live = FakeLive()
    _fit(tmp_path, EngineConfig(**CPU), epochs=3, live=live)
    assert live.step == 3
    names = {name for step, name, _ in live.metrics if step == 0}
    assert {"train_loss", "lr", "grad_norm", "grad_norm_max", "train_pred_std", "val_loss",
            "alarm_nonfinite", "alarm_grad_spike", "alarm_collapse"} <= names


# ---------------------------------------------------------------- alarms
def test_nonfinite_loss_stops_naming_the_step_after_one_retry(tmp_path, caplog):
    cfg = EngineConfig(**CPU, nan_retry_lr_scale=0.5)
    # forwards 1-4 = epoch 0; 7 = epoch 1, 3rd batch = step 7; the epoch stops there and its
    # retry replays it from forward 8 on, so forward 10 is the same batch again
    task = LinearTask(nan_at={7, 10})
    with pytest.raises(TrainingAlarm, match=r"non-finite training loss at step 7 \(epoch 1, batch 2\)"
                                            r".*after one retry of the epoch at lr x0.5"):
        _fit(tmp_path, cfg, epochs=3, task=task)
    assert caplog.text.count("non-finite training step 7") == 2
    assert "retrying epoch 1" in caplog.text


def test_transient_nan_retry_recovers_at_lower_lr(tmp_path):
    cfg = EngineConfig(**CPU, nan_retry_lr_scale=0.5)
    engine, result = _fit(tmp_path, cfg, epochs=2, task=LinearTask(nan_at={6}, nan_once=True))
    assert engine.lr_scale == 0.5 and engine.step == 8   # epoch 1 replayed from its start
    assert result.history[-1]["alarm_nonfinite"] == 1
    assert result.history[-1]["lr"] == pytest.approx(0.05)
    assert all(torch.isfinite(p).all() for p in engine.model.parameters())


def test_nonfinite_without_retry_stops_at_once(tmp_path):
    cfg = EngineConfig(**CPU, nan_retry_lr_scale=0.0)
    with pytest.raises(TrainingAlarm, match=r"step 2 \(epoch 0, batch 1\).*no retry"):
        _fit(tmp_path, cfg, task=LinearTask(nan_at={2}))


def test_grad_spike_warns_and_counts(tmp_path, caplog):
    cfg = EngineConfig(**CPU, grad_spike_factor=10.0, grad_spike_warmup=3)
    _, result = _fit(tmp_path, cfg, n=32, epochs=1, task=LinearTask(spike_at=6))
    assert result.history[-1]["alarm_grad_spike"] == 1
    assert "gradient-norm spike at step 6" in caplog.text


def test_collapse_warns_after_patience(tmp_path, caplog):
    cfg = EngineConfig(**CPU, collapse_std=1e-3, collapse_patience=3)
    _, result = _fit(tmp_path, cfg, epochs=2, task=LinearTask(pred_std=0.0003))  # seed 002's value
    assert result.history[-1]["alarm_collapse"] == 1  # one streak of 8 steps: warned once, at step 3
    assert "collapse at step 3" in caplog.text
    _, healthy = _fit(tmp_path, cfg, epochs=1, name="ok")
    assert healthy.history[-1]["alarm_collapse"] == 0


# ---------------------------------------------------------------- config, loaders, batches
@pytest.mark.parametrize("data, field", [
    ({"scheduler": "step"}, "train.lr_drop"),
    ({"lr_drop": 3}, "train.lr_drop"),
    ({"accumulate_steps": 0}, "train.accumulate_steps"),
    ({"ema": 1.0}, "train.ema"),
    ({"schedular": "cosine"}, "train.schedular"),
])
def test_config_errors_name_the_key(data, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build(EngineConfig, data, key="train")


def test_make_loader_options_and_epoch_order():
    cfg = EngineConfig(num_workers=0, prefetch_factor=4, seed=3)
    loader = make_loader(_data(10), 5, True, cfg)  # prefetch_factor is not passed without workers
    assert loader.prefetch_factor is None and loader.num_workers == 0

    def order(epoch):
        set_epoch(loader, epoch, cfg.seed)
        return torch.cat([x for x, _ in loader])

    assert torch.equal(order(1), order(1)) and not torch.equal(order(0), order(1))
    with_workers = make_loader(_data(10), 5, True, EngineConfig(num_workers=1, prefetch_factor=4))
    assert with_workers.prefetch_factor == 4 and with_workers.persistent_workers


def test_move_to_nested():
    batch = {"a": torch.ones(1), "b": [torch.zeros(1), ("x", 3)], "c": None}
    moved = move_to(batch, torch.device("cpu"))
    assert torch.equal(moved["a"], torch.ones(1)) and moved["b"][1] == ("x", 3) and moved["c"] is None


def test_fixture_run_is_reproducible(tmp_path):
    """Same seed, two in-process runs: identical weights (seeding, sampler, dropout)."""
    cfg = EngineConfig(device="cpu", seed=5)
    a = tiny_run.run(tmp_path / "a", cfg, epochs=1, batch_size=8)
    b = tiny_run.run(tmp_path / "b", cfg, epochs=1, batch_size=8)
    wa, wb = (torch.load(r.last_path, weights_only=True)["model"] for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_grad_scaler_path_matches_fp32(tmp_path, monkeypatch):
    """The fp16 code path (scale, unscale, clip, step, update), run on CPU with a CPU GradScaler:
    scaling by powers of two is exact, so the weights equal an unscaled run's."""
    cfg = EngineConfig(**{**CPU, "grad_clip": 0.5})
    plain, _ = _fit(tmp_path, cfg, name="plain")
    monkeypatch.setattr("stagetrack.train.engine.make_scaler",
                        lambda dtype, device: torch.amp.GradScaler("cpu", init_scale=2.0**10))
    scaled, _ = _fit(tmp_path, cfg, name="scaled")
    assert scaled.scaler is not None and scaled.scaler.get_scale() == 2.0**10
    for a, b in zip(plain.model.parameters(), scaled.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    assert torch.load(tmp_path / "scaled" / "last.pt", weights_only=True)["scaler"]["scale"] == 2.0**10
