"""ReID training end to end on tiny synthetic crops, with every non-loopback connection refused."""

from __future__ import annotations

import ipaddress
import socket

import numpy as np
import pytest
import torch

from stagetrack.reid.config import ReidConfig
from stagetrack.reid.evaluate import evaluate_reid
from stagetrack.reid.features import ReidExtractor
from stagetrack.reid.model import read_weights
from stagetrack.reid.train import WEIGHTS_NAME, train_reid
from test_reid_data import solid_crop, write_reid_dir

torch.set_num_threads(1)

# small inputs keep a CPU epoch well under a second; the defaults are 128x64
TINY = dict(height=64, width=32, batch_size=32, num_instances=4, transforms=[], eval_freq=1)


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Anything trying to reach the internet (weight downloads, DNS) fails loudly."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        raise OSError(f"DNS lookup attempted: {host}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Recorder:
    """Stands in for dvclive.Live: (step, name, value) rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []
        self.step = 0

    def log_metric(self, name: str, val: float) -> None:
        self.rows.append((self.step, name, val))

    def next_step(self) -> None:
        self.step += 1


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """3 epochs on 8 identities x 12 crops of distinct solid colours; val: 6 other identities."""
    root = tmp_path_factory.mktemp("stage1")
    train = {pid: 12 for pid in range(1, 9)}
    val = {pid: 1 for pid in (101, 102, 103, 9001, 9002, 9003)}   # 9000s: vehicles
    classes = {p: ("vehicle" if p >= 9000 else "person") for p in (*train, *val)}
    data = write_reid_dir(root / "data", train, val, {p: 2 for p in val}, classes)
    live = Recorder()
    result = train_reid(ReidConfig(epochs=3, **TINY), data_dir=data, out_dir=root / "out", init=None, live=live)
    return data, result, live


def test_training_easy_case(stage1):
    data, result, live = stage1
    assert result.weights == data.parent / "out" / WEIGHTS_NAME and result.weights.is_file()
    assert result.feature_dim == 512
    keys = {f"{p}{k}" for p in ("", "person/", "vehicle/") for k in ("rank1", "rank5", "rank10", "rank20", "mAP")}
    assert set(result.metrics) == keys
    # each identity's colour is unique and query/gallery crops differ only by noise
    assert result.metrics["rank1"] > 80 and result.metrics["mAP"] > 80
    losses = [row["train/loss"] for row in result.history]
    assert len(losses) == 3 and losses[2] < losses[0], losses
    # per epoch: losses, lr and (eval_freq=1) metrics, then one step
    assert {(step, name) for step, name, _ in live.rows} >= {
        (e, f"reid/{k}") for e in range(3) for k in ("train/loss", "train/loss_t", "train/loss_x", "train/grad_norm", "lr",
                                                  "rank1", "mAP")}
    assert all(row["train/grad_norm"] > 0 for row in result.history)
    assert live.step == 3
    # the saved file reproduces the metrics through the public evaluation, and loads weights_only
    again = evaluate_reid(result.weights, data, ReidConfig(**TINY))
    assert again == pytest.approx(result.metrics, abs=1e-6)
    _, meta = read_weights(result.weights)
    assert (meta["model"], meta["num_classes"], meta["height"], meta["width"]) == ("osnet_x0_25", 8, 64, 32)


def test_transfer_rebuilds_classifier_keeps_backbone(stage1, tmp_path):
    data1, result1, _ = stage1
    # stage 2 has 5 identities (not 8); the frozen epoch trains only the classifier
    train = {pid: 8 for pid in range(201, 206)}
    val = {pid: 1 for pid in (301, 302)}
    data2 = write_reid_dir(tmp_path / "data", train, val, {p: 2 for p in val}, {p: "person" for p in (*train, *val)}, seed=3)
    cfg = ReidConfig(epochs=1, freeze_backbone_epochs=1, lr=0.01, **TINY)
    result2 = train_reid(cfg, data_dir=data2, out_dir=tmp_path / "out", init=result1.weights, lr_scale=0.5)
    before, _ = read_weights(result1.weights)
    after, meta = read_weights(result2.weights)
    assert meta["num_classes"] == 5 and meta["init"] == str(result1.weights) and meta["lr"] == pytest.approx(0.005)
    assert after["classifier.weight"].shape == (5, 512) and before["classifier.weight"].shape == (8, 512)
    backbone = [k for k in before if not k.startswith("classifier.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)  # frozen: BN stats too
    # the rebuilt classifier did train
    assert result2.history[0]["train/loss"] > 0 and set(result2.metrics) >= {"rank1", "person/mAP"}
    assert "vehicle/rank1" not in result2.metrics   # no vehicle in this split

    # unfrozen, the backbone moves away from the init
    cfg = ReidConfig(epochs=1, freeze_backbone_epochs=0, **TINY)
    moved, _ = read_weights(train_reid(cfg, data_dir=data2, out_dir=tmp_path / "out3", init=result1.weights).weights)
    assert not torch.equal(before["conv1.conv.weight"], moved["conv1.conv.weight"])


def test_extractor_from_trained_weights(stage1):
    _, result, _ = stage1
    ext = ReidExtractor(result.weights, batch_size=4)
    rng = np.random.default_rng(7)
    a1, a2, b = (solid_crop(p, rng, (90, 40)) for p in (101, 101, 9002))
    f = ext([a1, a2, b])
    assert f.shape == (3, 512)
    # same identity closer than another identity (cosine of unit vectors)
    assert f[0] @ f[1] > f[0] @ f[2]


def test_keep_best_saves_the_epoch_with_the_highest_selection_map(stage1, tmp_path):
    """keep: best saves the evaluated epoch whose query/gallery mAP is highest and reports its
    metrics; keep: last the final epoch's."""
    data, result, _ = stage1
    maps = [row["mAP"] for row in result.history]
    best_epoch = max(range(len(maps)), key=lambda i: (maps[i], i)) + 1
    assert result.kept_epoch == best_epoch and result.metrics["mAP"] == maps[best_epoch - 1]
    assert evaluate_reid(result.weights, data, ReidConfig(**TINY)) == pytest.approx(result.metrics, abs=1e-6)
    last = train_reid(ReidConfig(epochs=3, keep="last", **TINY), data_dir=data, out_dir=tmp_path / "last", init=None)
    assert last.kept_epoch == 3 and last.metrics["mAP"] == last.history[-1]["mAP"]


def test_keep_best_picks_an_earlier_epoch_when_its_map_is_higher(stage1, tmp_path, monkeypatch):
    """The easy case ties at the top; here selection mAP falls each epoch, so `best` must keep
    epoch 1 and save other weights than `last`."""
    import stagetrack.reid.train as reid_train

    data, _, _ = stage1
    real = reid_train.evaluate_extractor
    falling = iter([90.0, 50.0, 10.0, 90.0, 50.0, 10.0])

    def fake(extractor, data_dir, ranks):
        return {**real(extractor, data_dir, ranks), "mAP": next(falling)}

    monkeypatch.setattr(reid_train, "evaluate_extractor", fake)
    best = train_reid(ReidConfig(epochs=3, **TINY), data_dir=data, out_dir=tmp_path / "best", init=None)
    last = train_reid(ReidConfig(epochs=3, keep="last", **TINY), data_dir=data, out_dir=tmp_path / "last", init=None)
    assert (best.kept_epoch, best.metrics["mAP"]) == (1, 90.0)
    assert (last.kept_epoch, last.metrics["mAP"]) == (3, 10.0)
    assert best.weights.read_bytes() != last.weights.read_bytes()


class Killed(Exception):
    pass


class KillAtStep(Recorder):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.kill = step

    def next_step(self) -> None:
        super().next_step()
        if self.step == self.kill:
            raise Killed


def test_state_file_resume_is_bitwise(stage1, tmp_path):
    """Interrupted in epoch 2 of 3: the resumed run writes the uninterrupted run's weights file
    (keep: best, so the kept epoch is carried over too) and the same dvclive rows."""
    data, _, _ = stage1
    cfg = ReidConfig(epochs=3, **TINY)
    plain = Recorder()
    ref = train_reid(cfg, data_dir=data, out_dir=tmp_path / "a", init=None, live=plain, state_file=tmp_path / "a.pt")
    with pytest.raises(Killed):
        train_reid(cfg, data_dir=data, out_dir=tmp_path / "b", init=None, live=KillAtStep(2),
                   state_file=tmp_path / "b.pt")
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 1   # epoch 2's state was not saved
    resumed = Recorder()
    again = train_reid(cfg, data_dir=data, out_dir=tmp_path / "b", init=None, live=resumed,
                       state_file=tmp_path / "b.pt")
    assert (tmp_path / "b" / WEIGHTS_NAME).read_bytes() == (tmp_path / "a" / WEIGHTS_NAME).read_bytes()
    assert resumed.rows == plain.rows and again.metrics == ref.metrics and again.kept_epoch == ref.kept_epoch


def test_a_damaged_state_file_is_an_error_naming_it(stage1, tmp_path):
    from stagetrack.errors import CheckpointError

    data, _, _ = stage1
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="state.pt"):
        train_reid(ReidConfig(epochs=1, **TINY), data_dir=data, out_dir=tmp_path / "o", init=None,
                   state_file=tmp_path / "state.pt")
