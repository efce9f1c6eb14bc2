"""Checkpoint files: safe loading, integrity, rotation, engine payload, resume after SIGKILL."""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stagetrack.errors import CheckpointError
from stagetrack.train.checkpoint import (ENGINE_KEYS, check_plain, load_checkpoint, previous_path,
                                         save_checkpoint, save_rotating)
from stagetrack.train.config import EngineConfig
from stagetrack.train.seeding import get_rng_state, set_rng_state

FIXTURES = Path(__file__).parent / "engine_fixtures"
sys.path.insert(0, str(FIXTURES))
import tiny_run  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    if torch.are_deterministic_algorithms_enabled() != det:
        torch.use_deterministic_algorithms(det)


def _payload(value: float) -> dict:
    return {"model": {"w": torch.full((64,), value)}, "epoch": 1, "note": ("a", 2, None)}


def test_round_trip_and_rotation(tmp_path):
    path = tmp_path / "last.pt"
    save_rotating(path, _payload(1.0))
    assert not previous_path(path).exists()
    save_rotating(path, _payload(2.0))
    assert previous_path(path).name == "last.prev.pt"
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((64,), 2.0))
    assert torch.equal(load_checkpoint(previous_path(path))["model"]["w"], torch.full((64,), 1.0))
    assert load_checkpoint(path)["note"] == ("a", 2, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]  # no temp files left


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    # flip a byte inside the tensor data (torch.load alone would load it as wrong weights)
    data = bytearray(path.read_bytes())
    at = data.index(torch.full((64,), 2.0).numpy().tobytes()) + 10
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "truncated"),
    (_flip_byte, "CRC mismatch"),
    (lambda p: p.write_bytes(b""), "truncated"),
    (lambda p: p.write_bytes(b"not a checkpoint at all" * 20), "truncated or not a torch checkpoint"),
])
def test_damaged_checkpoint_names_file_and_previous_survives(tmp_path, damage, message):
    path = tmp_path / "last.pt"
    save_rotating(path, _payload(1.0))
    save_rotating(path, _payload(2.0))
    damage(path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text
    assert "last.prev.pt" in text  # the hint points at the intact predecessor
    assert torch.equal(load_checkpoint(previous_path(path))["model"]["w"], torch.full((64,), 1.0))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("bad", [Evil(), np.arange(3), np.float64(1.0)])
def test_weights_only_refuses_arbitrary_objects(tmp_path, bad):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": bad}, path)  # written outside save_checkpoint on purpose
    with pytest.raises(CheckpointError, match="refused by weights_only") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("value, where", [
    (Path("x"), "payload['config']['path']"),
    (np.float32(1.0), "payload['config']['path']"),
    (torch.__version__, "payload['config']['path']"),   # a str subclass: refused by weights_only
])
def test_save_refuses_non_plain_values(tmp_path, value, where):
    with pytest.raises(TypeError, match=f"^{__import__('re').escape(where)}"):
        save_checkpoint(tmp_path / "x.pt", {"config": {"path": value}})
    assert not (tmp_path / "x.pt").exists()


def test_check_plain_accepts_state_dicts():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 2)).sum().backward()
    opt.step()
    check_plain({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": get_rng_state()})


def test_rng_state_round_trip_through_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(tmp_path / "rng.pt", {"rng": get_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


CFG = {"device": "cpu", "ema": 0.9, "accumulate_steps": 4, "warmup_steps": 2, "t_0": 1,
       "deterministic": True, "grad_clip": 0.5}


def test_resume_after_sigkill_is_bitwise_identical(tmp_path, caplog):
    cfg = EngineConfig(**CFG)
    # the uninterrupted reference first: the forked child inherits every module it imported
    reference = tiny_run.run(tmp_path / "ref", cfg, epochs=3, batch_size=8)
    # 48 samples / batch 8 = 6 forwards per epoch; forward 10 is in the middle of epoch 1
    killed = tiny_run.fork_run(tmp_path / "run", cfg, epochs=3, batch_size=8, kill_at=10)
    killed.join(timeout=180)
    assert killed.exitcode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 0
    caplog.set_level(logging.INFO, logger="stagetrack.train.engine")
    resumed = tiny_run.run(tmp_path / "run", cfg, epochs=3, batch_size=8, resume=True)
    assert "resuming from" in caplog.text and "epoch 0 done" in caplog.text

    got = torch.load(resumed.last_path, weights_only=True)
    want = torch.load(reference.last_path, weights_only=True)
    assert set(got) == set(ENGINE_KEYS)
    for key in ("model", "train_model"):  # EMA weights and raw weights
        for name, tensor in want[key].items():
            assert torch.equal(got[key][name], tensor), (key, name)
    assert got["history"] == want["history"] and got["step"] == want["step"] == 6
    assert resumed.best_metric == reference.best_metric and resumed.epochs_run == 3


def test_engine_resume_from_damaged_last_names_file(tmp_path):
    out = tmp_path / "run"
    cfg = EngineConfig(device="cpu", scheduler="none")
    tiny_run.run(out, cfg, epochs=2, batch_size=16)
    _truncate(out / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt: truncated") as err:
        tiny_run.run(out, cfg, epochs=3, batch_size=16, resume=True)
    assert "last.prev.pt" in str(err.value)
    assert load_checkpoint(out / "last.prev.pt")["epoch"] == 0
