"""Detector params -> ultralytics trainer, without training (fast).

Expected values are the inputs themselves (a key must arrive unchanged) or short hand
computations written next to each assertion.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import yaml

from stagetrack.data.sequence import CLASSES
from stagetrack.detect import yolo
from stagetrack.detect.config import DetectorConfig
from stagetrack.detect.dataset import mirror_dataset, read_data_yaml
from stagetrack.detect.metrics import metric_keys, summarize
from stagetrack.detect.trainer import StageOptions, StageTrainer, resize_batch, step_lr_lambda
from stagetrack.errors import CheckpointError, ConfigError, DataError

PICO = "yolo11-pico.yaml"
# A value different from the default for every option passed to ultralytics by name.
NON_DEFAULT = {
    "epochs": 7, "batch": 6, "patience": 9, "save_period": 3, "cache": True, "workers": 3,
    "optimizer": "SGD", "lrf": 0.05, "momentum": 0.9, "weight_decay": 0.001, "warmup_epochs": 0.5,
    "warmup_momentum": 0.7, "warmup_bias_lr": 0.05, "box": 5.0, "cls": 0.7, "dfl": 1.2,
    "hsv_h": 0.02, "hsv_s": 0.5, "hsv_v": 0.3, "degrees": 5.0, "translate": 0.2, "scale": 0.3,
    "shear": 2.0, "perspective": 0.0005, "flipud": 0.1, "fliplr": 0.3, "mosaic": 0.8,
    "mixup": 0.1, "copy_paste": 0.1, "close_mosaic": 2, "deterministic": False,
}
# Fields with their own mapping (tested below) rather than a same-name pass-through.
MAPPED = {"model", "weights", "imgsz", "lr0", "amp", "threads", "train_device", "lr_drop_gamma", "conf", "iou", "max_det"}


def write_set(root: Path, n: int = 2, names: dict | None = None) -> Path:
    """A minimal YOLO set: n 96x64 images per split, one box each."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), np.full((64, 96, 3), 90, np.uint8))
            (root / "labels" / split / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.2 0.4\n")
    doc = {"path": str(root), "train": "images/train", "val": "images/val",
           "names": names if names is not None else dict(enumerate(CLASSES))}
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    return root / "data.yaml"


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory) -> Path:
    return write_set(tmp_path_factory.mktemp("yoloset"))


@pytest.fixture(scope="module")
def built(data_yaml, tmp_path_factory):
    """A trainer built (not trained) from a config where every pass-through option differs."""
    cfg = dataclasses.replace(DetectorConfig(model=PICO), **NON_DEFAULT)
    out = tmp_path_factory.mktemp("run")
    args = yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=out, init=None)
    trainer = StageTrainer(overrides=args, options=StageOptions())
    saved = yaml.safe_load((out / yolo.RUN_NAME / "args.yaml").read_text())
    return args, trainer, saved


def test_every_config_field_is_mapped():
    names = {f.name for f in dataclasses.fields(DetectorConfig)}
    assert names == set(yolo.TRAIN_KEYS) | MAPPED
    assert set(NON_DEFAULT) == set(yolo.TRAIN_KEYS)
    for key, value in NON_DEFAULT.items():
        assert getattr(DetectorConfig(), key) != value, key


@pytest.mark.parametrize("key", sorted(NON_DEFAULT))
def test_option_reaches_trainer(built, key):
    args, trainer, saved = built
    assert args[key] == NON_DEFAULT[key]
    assert saved[key] == NON_DEFAULT[key]  # the run's args.yaml, written by the trainer
    if key != "workers":  # ultralytics sets workers=0 on CPU after saving args.yaml
        assert getattr(trainer.args, key) == NON_DEFAULT[key]


def test_run_lands_in_out_dir_quietly(built):
    args, trainer, _ = built
    assert trainer.save_dir == Path(args["project"]) / "train"
    assert (trainer.args.plots, trainer.args.verbose, trainer.args.amp) == (False, False, False)
    assert trainer.args.nbs == NON_DEFAULT["batch"]  # accumulate_steps=1 -> nbs = batch


@pytest.mark.parametrize("optimizer, lr0, lr_scale", [("SGD", 0.01, 0.5), ("AdamW", 0.002, 0.1)])
def test_lr_scale_multiplies_lr0(data_yaml, tmp_path, optimizer, lr0, lr_scale):
    cfg = DetectorConfig(model=PICO, optimizer=optimizer, lr0=lr0)
    args = yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=tmp_path, init=None, lr_scale=lr_scale)
    assert args["lr0"] == pytest.approx(lr0 * lr_scale)


@pytest.mark.parametrize("batch, steps", [(16, 1), (8, 4), (2, 3)])
def test_accumulate_steps_sets_nbs(data_yaml, tmp_path, batch, steps):
    cfg = DetectorConfig(model=PICO, batch=batch)
    args = yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=tmp_path, init=None,
                                   accumulate_steps=steps)
    assert args["nbs"] == batch * steps
    assert max(round(args["nbs"] / args["batch"]), 1) == steps  # ultralytics' accumulate formula


@pytest.mark.parametrize("imgsz, cap, expected", [(320, None, 320), (320, 256, 256), (320, 300, 288),
                                                  (256, 320, 256), (100, None, 96)])
def test_aug_max_size_caps_imgsz(data_yaml, tmp_path, imgsz, cap, expected):
    # expected: min(imgsz, cap) rounded down to a multiple of 32 (300 -> 288, 100 -> 96)
    cfg = DetectorConfig(model=PICO, imgsz=imgsz)
    args = yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=tmp_path, init=None, aug_max_size=cap)
    assert args["imgsz"] == expected


def test_resize_scales_rounded_and_capped(data_yaml, tmp_path):
    _, options, _ = yolo._resolve(
        DetectorConfig(model=PICO), data_yaml=data_yaml, out_dir=tmp_path, init=None, lr_scale=1.0,
        lr_backbone_scale=None, lr_drop=None, accumulate_steps=1, aug_max_size=320,
        aug_resize_scales=[480, 256, 250, 300, 352], seed=0, device="cpu")
    # 480, 352 -> capped at 320; 250 -> 224; 300 -> 288; duplicates merged, sorted
    assert options.resize_scales == (224, 256, 288, 320)


def test_resize_batch_long_side_and_stride():
    imgs = torch.zeros(2, 3, 64, 96)
    # factor 128/96: 64 -> ceil(85.3/32)*32 = 96, 96 -> 128
    assert resize_batch(imgs, 128, 32).shape == (2, 3, 96, 128)
    assert resize_batch(imgs, 96, 32) is imgs


def test_trainer_draws_batch_size_from_resize_scales(built):
    _, trainer, _ = built
    options, trainer.options, trainer.stride = trainer.options, StageOptions(resize_scales=(64,)), 32
    try:
        batch = trainer.preprocess_batch({"img": torch.zeros(2, 3, 96, 96, dtype=torch.uint8)})
    finally:
        trainer.options = options
    assert batch["img"].shape == (2, 3, 64, 64) and batch["img"].dtype == torch.float32


def test_backbone_scale_zero_freezes_backbone(data_yaml, tmp_path):
    args = yolo.resolve_train_args(DetectorConfig(model=PICO), data_yaml=data_yaml, out_dir=tmp_path,
                                   init=None, lr_backbone_scale=0.0)
    assert args["freeze"] == 11  # yolo11's backbone: layers 0..10 of the yaml
    args = yolo.resolve_train_args(DetectorConfig(model=PICO), data_yaml=data_yaml, out_dir=tmp_path,
                                   init=None, lr_backbone_scale=0.1)
    assert args["freeze"] is None


def _optimizer(data_yaml, out, cfg, options):
    args = yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=out, init=None)
    trainer = StageTrainer(overrides=args, options=options)
    trainer.setup_model()
    opt = trainer.build_optimizer(trainer.model, name=trainer.args.optimizer, lr=trainer.args.lr0,
                                  momentum=trainer.args.momentum, decay=5e-4, iterations=10)
    return trainer, opt


def test_backbone_groups_get_scaled_lr(data_yaml, tmp_path):
    cfg = DetectorConfig(model=PICO, optimizer="SGD", lr0=0.01)
    trainer, opt = _optimizer(data_yaml, tmp_path, cfg, StageOptions(backbone_layers=11, lr_backbone_scale=0.1))
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    head = [g for g in opt.param_groups if not g.get("backbone")]
    backbone = [g for g in opt.param_groups if g.get("backbone")]
    assert len(head) == 3 and len(backbone) == 3  # weight, bn, bias each split in two
    assert all(g["lr"] == pytest.approx(0.01) for g in head)
    assert all(g["lr"] == pytest.approx(0.001) for g in backbone)  # 0.01 * 0.1
    assert [g["param_group"] for g in backbone] == [g["param_group"] for g in head]
    layer = lambda n: int(n.split(".")[1])  # noqa: E731  "model.7.conv.weight" -> 7
    assert all(layer(names[id(p)]) <= 10 for g in backbone for p in g["params"])
    assert all(layer(names[id(p)]) > 10 for g in head for p in g["params"])
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(names)  # nothing lost or duplicated by the split


def test_auto_optimizer_lr_scaled(data_yaml, tmp_path):
    cfg = DetectorConfig(model=PICO, optimizer="auto")
    _, opt = _optimizer(data_yaml, tmp_path, cfg, StageOptions(auto_lr_scale=0.5))
    # ultralytics' auto: AdamW at round(0.002 * 5 / (4 + nc), 6) = 0.001667 for nc = 2; * 0.5
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.001667 * 0.5] * 3)


def test_lr_drop_schedule(data_yaml, tmp_path):
    cfg = DetectorConfig(model=PICO, optimizer="SGD", epochs=10)
    trainer, opt = _optimizer(data_yaml, tmp_path, cfg, StageOptions(lr_drop=7, lr_drop_gamma=0.1))
    trainer.optimizer = opt
    trainer._setup_scheduler()
    assert [trainer.lf(e) for e in range(10)] == [1.0] * 7 + [0.1] * 3
    assert step_lr_lambda(3, drop=3, gamma=0.5) == 0.5


def test_linear_schedule_without_lr_drop(data_yaml, tmp_path):
    cfg = DetectorConfig(model=PICO, optimizer="SGD", epochs=10, lrf=0.1)
    trainer, opt = _optimizer(data_yaml, tmp_path, cfg, StageOptions())
    trainer.optimizer = opt
    trainer._setup_scheduler()
    # ultralytics' linear: (1 - e/10) * (1 - 0.1) + 0.1 -> e=5: 0.55
    assert trainer.lf(5) == pytest.approx(0.55)


@pytest.mark.parametrize("device, has_file, expected", [("cpu", True, False), ("0", False, False),
                                                        ("0", True, True)])
def test_amp_only_with_local_check_file(data_yaml, tmp_path, monkeypatch, device, has_file, expected):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    if has_file:
        (weights_dir / yolo.AMP_CHECK_FILE).write_bytes(b"x")
    monkeypatch.setattr(yolo, "WEIGHTS_DIR", weights_dir)
    args = yolo.resolve_train_args(DetectorConfig(model=PICO, amp=True), data_yaml=data_yaml,
                                   out_dir=tmp_path, init=None, device=device)
    assert args["amp"] is expected


@pytest.mark.parametrize("kwargs, error, field", [
    ({"model": "yolo11n.pt"}, ConfigError, "detector.model"),
    ({"model": "nosuchmodel.yaml"}, ConfigError, "detector.model"),
    ({"weights": "missing.pt"}, ConfigError, "detector.weights"),
])
def test_bad_model_source(data_yaml, tmp_path, kwargs, error, field):
    with pytest.raises(error) as info:
        yolo.resolve_train_args(DetectorConfig(**kwargs), data_yaml=data_yaml, out_dir=tmp_path, init=None)
    assert info.value.field == field


def test_missing_init_is_checkpoint_error(data_yaml, tmp_path):
    with pytest.raises(CheckpointError, match="init weights not found"):
        yolo.resolve_train_args(DetectorConfig(), data_yaml=data_yaml, out_dir=tmp_path,
                                init=tmp_path / "stage1" / "best.pt")


@pytest.mark.parametrize("accumulate_steps, lr_scale, lr_drop, field", [
    (0, 1.0, None, "accumulate_steps"), (1, 0.0, None, "lr_scale"), (1, 1.0, 0, "lr_drop")])
def test_bad_stage_knobs(data_yaml, tmp_path, accumulate_steps, lr_scale, lr_drop, field):
    with pytest.raises(ConfigError) as info:
        yolo.resolve_train_args(DetectorConfig(model=PICO), data_yaml=data_yaml, out_dir=tmp_path, init=None,
                                accumulate_steps=accumulate_steps, lr_scale=lr_scale, lr_drop=lr_drop)
    assert info.value.field == field


def test_mirror_links_every_file(data_yaml, tmp_path):
    out = mirror_dataset(data_yaml, tmp_path / "m")
    splits = read_data_yaml(out)
    for split, folder in splits.items():
        assert folder == tmp_path / "m" / "images" / split
        images = sorted(p.name for p in folder.iterdir())
        assert images == ["0.jpg", "1.jpg"]
        labels = tmp_path / "m" / "labels" / split
        assert all((labels / f"{Path(i).stem}.txt").is_symlink() for i in images)
    # ultralytics' label cache would go to m/labels/train.cache: inside the mirror
    assert (tmp_path / "m" / "labels").is_dir() and not (tmp_path / "m" / "labels").is_symlink()


@pytest.mark.parametrize("names", [{0: "person"}, {0: "car", 1: "person"}, ["person", "vehicle", "x"]])
def test_wrong_class_names_rejected(tmp_path, names):
    bad = write_set(tmp_path, n=1, names=names)
    with pytest.raises(DataError) as info:
        read_data_yaml(bad)
    assert info.value.field == "names" and info.value.file == str(bad)


def test_summarize_per_class():
    # Only class 1 (vehicle) has ground truth: arrays have one entry, person reports zeros.
    box = SimpleNamespace(mp=0.5, mr=0.25, map50=0.4, map=0.2, ap_class_index=np.array([1]),
                          p=np.array([0.5]), r=np.array([0.25]), ap50=np.array([0.4]), ap=np.array([0.2]))
    out = summarize(SimpleNamespace(box=box))
    assert list(out) == metric_keys()
    assert out["vehicle/precision"] == 0.5 and out["vehicle/mAP50-95"] == 0.2
    assert out["person/mAP50"] == 0.0 and out["mAP50"] == 0.4
    assert not any(math.isnan(v) for v in out.values())


def test_relative_data_yaml_resolves_against_its_own_folder(data_yaml, monkeypatch):
    # DVC stages pass paths relative to the repo root (data/built/stage1/det/data.yaml)
    from stagetrack.detect.dataset import read_data_yaml

    monkeypatch.chdir(data_yaml.parent.parent)
    rel = Path(data_yaml.parent.name) / data_yaml.name
    splits = read_data_yaml(rel)
    assert splits["train"] == (data_yaml.parent / "images" / "train").resolve()


def test_bound_options_survive_ultralytics_multi_gpu_relaunch(data_yaml, tmp_path):
    """ultralytics' DDP launcher cloudpickles the trainer class and calls cls(cfg=, overrides=, _callbacks=)."""
    import cloudpickle
    from ultralytics.utils import DEFAULT_CFG_DICT

    options = StageOptions(backbone_layers=11, lr_backbone_scale=0.25, lr_drop=3, resize_scales=(64,))
    args = yolo.resolve_train_args(DetectorConfig(model=PICO), data_yaml=data_yaml, out_dir=tmp_path, init=None)
    cls = cloudpickle.loads(cloudpickle.dumps(StageTrainer.bind(options)))
    assert issubclass(cls, StageTrainer) and cls.stage_options == options
    cfg = {**DEFAULT_CFG_DICT, "save_dir": ""}  # exactly what ultralytics' generated DDP script passes
    trainer = cls(cfg=cfg, overrides=args, _callbacks=None)
    assert trainer.options == options and StageTrainer.stage_options == StageOptions()


def test_train_device_reaches_ultralytics(data_yaml, tmp_path):
    cfg = DetectorConfig(model=PICO, train_device="0,1")
    assert yolo.resolve_train_args(cfg, data_yaml=data_yaml, out_dir=tmp_path, init=None, device="cpu")["device"] == "0,1"
    plain = DetectorConfig(model=PICO)
    assert yolo.resolve_train_args(plain, data_yaml=data_yaml, out_dir=tmp_path, init=None, device="cpu")["device"] == "cpu"
