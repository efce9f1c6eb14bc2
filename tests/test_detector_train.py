"""Detector training end to end on a tiny set (imgsz 64, 1-2 epochs): offline, dvclive, per-class
metrics, class-count change, resume, inference. Checks are structural (keys, files, shapes,
epochs run); what the detector learns is measured by hand, not asserted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from stagetrack.data.sequence import ANN_DTYPE, CLASSES
from stagetrack.detect import yolo
from stagetrack.detect.config import DetectorConfig
from stagetrack.detect.metrics import metric_keys

pytestmark = pytest.mark.timeout(120)

TINY = DetectorConfig(model="yolo11-pico.yaml", epochs=1, batch=4, imgsz=64, mosaic=0.0,
                      warmup_epochs=0.0, threads=1, workers=0)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def make_set(root: Path, n_train: int = 8, n_val: int = 4, seed: int = 0) -> Path:
    """Grey 96x64 images, each with one bright 'person' (tall) and one 'vehicle' (wide) box."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(60, 120, size=(64, 96, 3), dtype=np.uint8)
            px, vx = int(rng.integers(2, 30)), int(rng.integers(50, 62))
            cv2.rectangle(img, (px, 10), (px + 10, 40), (250, 40, 40), -1)  # person 11x31
            cv2.rectangle(img, (vx, 30), (vx + 30, 45), (40, 250, 40), -1)  # vehicle 31x16
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.jpg"), img)
            rows = [(0, px, 10, 11, 31), (1, vx, 30, 31, 16)]
            (root / "labels" / split / f"{i:03d}.txt").write_text("".join(
                f"{c} {(x + w / 2) / 96:.5f} {(y + h / 2) / 64:.5f} {w / 96:.5f} {h / 64:.5f}\n"
                for c, x, y, w, h in rows))
    doc = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    return root / "data.yaml"


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    return make_set(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(data_yaml, tmp_path_factory):
    """One epoch with a real dvclive Live and every non-loopback socket use recorded and refused."""
    from dvclive import Live

    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            attempts.append(f"connect {address}")
            raise OSError("network disabled in tests")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK and host is not None:
            attempts.append(f"getaddrinfo {host}")
            raise socket.gaierror("network disabled in tests")
        return real_getaddrinfo(host, *args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    out = tmp_path_factory.mktemp("stage1")
    try:
        live = Live(dir=str(out / "live"), dvcyaml=None, save_dvc_exp=False)
        result = yolo.train_detector(TINY, data_yaml=data_yaml, out_dir=out / "detector", init=None,
                                     live=live, seed=0)
        live.end()
    finally:
        mp.undo()
    return result, out, attempts


def test_no_network_attempt(trained):
    _, _, attempts = trained
    assert attempts == []


def test_weights_and_run_in_out_dir(trained):
    result, out, _ = trained
    assert result.best == out / "detector" / "best.pt" and result.best.is_file()
    assert result.last == out / "detector" / "last.pt" and result.last.is_file()
    assert sorted(p.name for p in (out / "detector").iterdir()) == ["best.pt", "last.pt", "train"]
    assert (out / "detector" / "train" / "weights" / "best.pt").is_file()


def test_per_class_metrics(trained):
    result, _, _ = trained
    assert list(result.metrics) == metric_keys()
    assert {"person/mAP50", "vehicle/recall", "mAP50-95"} <= set(result.metrics)
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    # the PR curve of the same validation: one recall column plus a column per class present
    assert result.pr_curve and {"recall"} < set(result.pr_curve[0]) <= {"recall", "person", "vehicle"}
    assert all(0.0 <= row["recall"] <= 1.0 for row in result.pr_curve)


def test_dvclive_receives_epoch_metrics(trained):
    _, out, _ = trained
    summary = json.loads((out / "live" / "metrics.json").read_text())
    detector = summary["detector"]
    assert set(detector["train"]) == {"box_loss", "cls_loss", "dfl_loss", "grad_norm", "grad_norm_max"}
    assert 0 < detector["train"]["grad_norm"] <= detector["train"]["grad_norm_max"]
    assert {"mAP50", "mAP50-95", "precision", "recall"} <= set(detector["val"])
    assert "pg0" in detector["lr"]
    assert summary["step"] == 0  # one epoch logged, then next_step() -> step 0 was written
    rows = (out / "live" / "plots" / "metrics" / "detector" / "train" / "box_loss.tsv").read_text().splitlines()
    assert len(rows) == 2  # header + one epoch


def test_detector_inference(trained, data_yaml):
    result, _, _ = trained
    detector = yolo.Detector(result.best, conf=0.0001, iou=0.7, imgsz=64, max_det=5, threads=3)
    images = [cv2.imread(str(p)) for p in sorted((data_yaml.parent / "images" / "val").glob("*.jpg"))]
    before = torch.get_num_threads()
    try:
        out = detector(images[:3])
        assert torch.get_num_threads() == 3  # ultralytics' device setup alone leaves cores - 1
    finally:
        torch.set_num_threads(before)
    assert len(out) == 3 and detector([]) == []
    for boxes in out:
        assert boxes.dtype == ANN_DTYPE and len(boxes) <= 5
        assert set(np.unique(boxes["cls"])) <= {0, 1}
        assert (boxes["id"] == -1).all() and (boxes["frame"] == 0).all()
        # tlwh inside the original 96x64 image (not the 64x64 network input)
        assert (boxes["x"] >= -1).all() and (boxes["x"] + boxes["w"] <= 97).all()
        assert (boxes["y"] >= -1).all() and (boxes["y"] + boxes["h"] <= 65).all()
    assert detector.imgsz == 64
    assert yolo.Detector(result.best, conf=0.1, iou=0.7, imgsz=None, max_det=300, threads=1).imgsz == 64  # trained size


def test_evaluate_detector_keys(trained, data_yaml):
    result, _, _ = trained
    metrics = yolo.evaluate_detector(result.best, data_yaml, imgsz=64, threads=1)
    assert list(metrics) == metric_keys()


def test_dataset_dir_not_written(trained, data_yaml):
    assert sorted(p.name for p in (data_yaml.parent / "labels").iterdir()) == ["train", "val"]


def test_class_count_change_reinitialises_head(data_yaml, tmp_path, caplog):
    """Init from a 5-class checkpoint: the head is rebuilt for 2 classes, the rest transferred."""
    from ultralytics.nn.tasks import DetectionModel

    src = DetectionModel(str(yolo.MODELS_DIR / "yolo11-pico.yaml"), nc=5, verbose=False)
    src.names = {i: f"thing{i}" for i in range(5)}
    ckpt = tmp_path / "five.pt"
    torch.save({"model": src, "train_args": {}}, ckpt)
    # lr ~ 0: after one epoch the transferred layers still equal the checkpoint's
    cfg = dataclasses.replace(TINY, lr0=1e-12, optimizer="SGD")
    with caplog.at_level(logging.WARNING, logger="stagetrack.detect.yolo"):
        result = yolo.train_detector(cfg, data_yaml=data_yaml, out_dir=tmp_path / "det", init=ckpt)
    assert "have 5 classes" in caplog.text and "re-initialised" in caplog.text
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(result.best)
    assert model.nc == 2 and dict(model.names) == dict(enumerate(CLASSES))
    cls_conv = model.model[-1].cv3[0][-1]
    assert cls_conv.out_channels == 2
    before = src.state_dict()["model.0.conv.weight"].float()
    assert torch.allclose(model.state_dict()["model.0.conv.weight"].float(), before, atol=1e-3)


class Interrupted(Exception):
    pass


class StopAfterFirstEpoch:
    """A Live stand-in whose next_step raises: the run dies after epoch 1 was saved."""

    def __init__(self) -> None:
        self.logged: list[dict[str, float]] = [{}]

    def log_metric(self, name: str, value: float) -> None:
        self.logged[-1][name] = value

    def next_step(self) -> None:
        raise Interrupted("simulated kill")


class Recorder(StopAfterFirstEpoch):
    def next_step(self) -> None:
        self.logged.append({})


def test_resume_after_interruption(data_yaml, tmp_path):
    cfg = dataclasses.replace(TINY, epochs=2)
    out = tmp_path / "det"
    with pytest.raises(Interrupted):
        yolo.train_detector(cfg, data_yaml=data_yaml, out_dir=out, init=None, live=StopAfterFirstEpoch())
    assert (out / "train" / "weights" / "last.pt").is_file() and not (out / "best.pt").exists()
    recorder = Recorder()
    result = yolo.train_detector(cfg, data_yaml=data_yaml, out_dir=out, init=None, live=recorder, resume=True)
    assert len(recorder.logged) == 2 and recorder.logged[-1] == {}  # exactly one more epoch ran
    rows = (out / "train" / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]  # epoch 1 from the first run, 2 resumed
    assert result.best.is_file() and list(result.metrics) == metric_keys()
    # a finished run resumes to nothing: no training, same files, metrics recomputed
    again = yolo.train_detector(cfg, data_yaml=data_yaml, out_dir=out, init=None, live=Recorder(), resume=True)
    assert list(again.metrics) == metric_keys()
    assert (out / "train" / "results.csv").read_text().splitlines() == rows


class StopAtEpoch(Recorder):
    """A Live stand-in that raises at the ``n``-th epoch's next_step (the state file then holds epoch n-1)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def next_step(self) -> None:
        super().next_step()
        if len(self.logged) - 1 == self.n:
            raise Interrupted(f"killed after logging epoch {self.n}")


@pytest.mark.parametrize("stop", [2, 3], ids=["resumes-before-close-mosaic", "resumes-where-mosaic-closes"])
def test_state_file_resume_is_bitwise(tmp_path, stop):
    """Interrupted in epoch ``stop`` of 4 (mosaic closes for the last 2): the resumed run leaves
    the bytes of an uninterrupted one (weights, run folder, dvclive rows, metrics). The third case,
    resuming after mosaic closed, is the stage-level fault test's (tests/test_resume_fault.py)."""
    data = make_set(tmp_path / "set", n_train=12)
    cfg = dataclasses.replace(TINY, epochs=4, mosaic=1.0, close_mosaic=2)
    files = ("best.pt", "last.pt", "train/results.csv", "train/args.yaml", "train/weights/best.pt")

    def train(live, state):
        return yolo.train_detector(cfg, data_yaml=data, out_dir=tmp_path / "run", init=None, live=live,
                                   state_file=tmp_path / state)

    plain = Recorder()
    reference = train(plain, "a.pt")
    expected = {name: (tmp_path / "run" / name).read_bytes() for name in files}
    with pytest.raises(Interrupted):
        train(StopAtEpoch(stop), "b.pt")
    resumed = Recorder()
    result = train(resumed, "b.pt")
    assert {name: (tmp_path / "run" / name).read_bytes() for name in files} == expected
    assert resumed.logged == plain.logged and result.metrics == reference.metrics
