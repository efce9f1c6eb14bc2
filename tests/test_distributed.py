"""Data-parallel training: 2 gloo processes on CPU equal one process with the same global batch."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch

from stagetrack.train import distributed
from stagetrack.train.config import EngineConfig

sys.path.insert(0, str(Path(__file__).parent / "engine_fixtures"))
import tiny_run  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_single_process_helpers_are_identity(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = distributed.init_from_env(torch.device("cpu"))
    assert (info.rank, info.world_size, info.is_main, info.enabled) == (0, 1, True, False)
    assert distributed.mean_over_ranks({"a": 2.0}, 3.0, torch.device("cpu")) == {"a": 2.0}
    assert distributed.gather_objects({"x": 1}) == [{"x": 1}]
    model = torch.nn.Linear(1, 1)
    assert distributed.wrap(model, torch.device("cpu")) is model


def test_two_gloo_ranks_match_one_process(tmp_path):
    """Each rank: batch 4 of its DistributedSampler shard; reference: batch 8 in one process.

    With the sampler's shared permutation, rank r's batch i holds samples perm[8i + 2j + r], so the
    two ranks' batches together are the reference's batch i, and DDP's gradient average of the
    two batch means is the big batch's mean. No dropout (its RNG streams differ per rank).
    """
    cfg = EngineConfig(device="cpu", optimizer="sgd", momentum=0.9, scheduler="cosine", t_0=1,
                       warmup_steps=2, ema=0.5, accumulate_steps=2)
    # the reference first: the forked ranks then inherit every module it imported
    single = tiny_run.run(tmp_path / "single", cfg, epochs=2, batch_size=8, dropout=0.0)
    port = str(_free_port())
    ranks = [
        tiny_run.fork_run(tmp_path / "ddp", cfg, epochs=2, batch_size=4, dropout=0.0,
                          env={"RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
        for r in range(2)
    ]
    for child in ranks:
        child.join(timeout=180)
        assert child.exitcode == 0
    got = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    want = torch.load(single.last_path, weights_only=True)
    for key in ("model", "train_model"):
        for name, tensor in want[key].items():
            assert torch.allclose(got[key][name], tensor, atol=1e-5, rtol=0), (key, name)
    assert got["step"] == want["step"] == 6  # 48 samples / 8 per step = 6 micro-batches, 3 steps per epoch
    assert len(got["rng"]) == 2  # one RNG state per rank
    for g, w in zip(got["history"], want["history"]):
        assert g["val_loss"] == pytest.approx(w["val_loss"], abs=1e-6)   # all-reduced over 2 shards
        assert g["train_loss"] == pytest.approx(w["train_loss"], abs=1e-6)
