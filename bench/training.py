"""Training throughput of the three learned parts, one short run each, on CPU (and GPU if any).

* detector: ``train_detector`` for one epoch on a small built stage-1 YOLO set (the data-build
  benchmark's smaller budget), the stage's own settings otherwise; images/s = training images /
  time between ultralytics' ``on_train_epoch_start`` and ``on_train_epoch_end`` (validation
  excluded).
* ReID: ``train_reid`` for one epoch on that build's stage-1 crops; images/s = crops through
  ``forward_backward`` / time inside torchreid's ``Engine.train`` (data loading included,
  rank-k evaluation excluded).
* association: ``train_assoc`` (the training engine) for one epoch on logged samples: stage 1's
  samples of the trained run when present, else samples logged here from the small build's
  stage-1 clips without ReID; samples/s = training samples / time inside ``Engine._train_epoch``.

The timers wrap the libraries' own epoch functions for the duration of one run (a context
manager restores them); nothing in ``src/`` changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .world import World

log = logging.getLogger(__name__)

STAGE = "stage1"
NOT_AVAILABLE = "not available on this machine"


@contextlib.contextmanager
def patched(owner: Any, name: str, wrapper: Any) -> Iterator[None]:
    """Replace ``owner.name`` with ``wrapper(original)`` inside the block."""
    original = getattr(owner, name)
    setattr(owner, name, wrapper(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


def detector(world: World, det_yaml: Path, out: Path, device: str) -> dict[str, Any]:
    from stagetrack.detect import yolo

    cfg = dataclasses.replace(world.params.stage_section(STAGE, "detector"), epochs=1)
    stage = world.params.stage(STAGE)
    marks: dict[str, float] = {}
    images: list[int] = []

    def timed(trainer_cls: type) -> type:
        class Timed(trainer_cls):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.add_callback("on_train_epoch_start", lambda t: marks.__setitem__("start", time.perf_counter()))
                self.add_callback("on_train_epoch_end", lambda t: (marks.__setitem__("end", time.perf_counter()),
                                                                    images.append(len(t.train_loader.dataset))))
        return Timed

    start = time.perf_counter()
    with patched(yolo, "StageTrainer", timed):
        yolo.train_detector(cfg, data_yaml=det_yaml, out_dir=out, init=None, lr_scale=stage.lr_scale,
                            aug_max_size=stage.aug_max_size, seed=world.params.seed, device=device)
    wall = time.perf_counter() - start
    seconds = marks["end"] - marks["start"]
    return {"model": cfg.model, "imgsz": min(cfg.imgsz, stage.aug_max_size or cfg.imgsz), "batch": cfg.batch,
            "images": images[0], "epoch_s": round(seconds, 3), "images_per_s": round(images[0] / seconds, 2),
            "run_wall_s": round(wall, 2)}


def reid(world: World, data_dir: Path, out: Path, device: str) -> dict[str, Any]:
    from stagetrack.reid import train as reid_train

    cfg = dataclasses.replace(world.params.stage_section(STAGE, "reid"), epochs=1)
    clock = {"seconds": 0.0, "images": 0}

    def train_wrap(original: Any) -> Any:
        def train(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                clock["seconds"] += time.perf_counter() - start
        return train

    def step_wrap(original: Any) -> Any:
        def forward_backward(self: Any, data: dict[str, Any]) -> Any:
            clock["images"] += int(data["img"].shape[0])
            return original(self, data)
        return forward_backward

    start = time.perf_counter()
    engine = reid_train._RecordingEngine
    with patched(engine, "train", train_wrap), patched(engine, "forward_backward", step_wrap):
        reid_train.train_reid(cfg, data_dir=data_dir, out_dir=out, init=None, seed=world.params.seed, device=device)
    wall = time.perf_counter() - start
    return {"model": cfg.model, "input": f"{cfg.height}x{cfg.width}", "batch": cfg.batch_size,
            "images": clock["images"], "epoch_s": round(clock["seconds"], 3),
            "images_per_s": round(clock["images"] / clock["seconds"], 2), "run_wall_s": round(wall, 2)}


def association(world: World, samples: Path, out: Path, device: str) -> dict[str, Any]:
    from stagetrack.assoc.dataset import read_log
    from stagetrack.assoc.train import train_assoc
    from stagetrack.train import engine as engine_mod

    params = world.params
    acfg = params.stage_section(STAGE, "assoc")
    clock = {"seconds": 0.0}

    def epoch_wrap(original: Any) -> Any:
        def train_epoch(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                clock["seconds"] += time.perf_counter() - start
        return train_epoch

    start = time.perf_counter()
    with patched(engine_mod.Engine, "_train_epoch", epoch_wrap):
        summary = train_assoc(samples, out / "assoc.pt", cfg=acfg, engine_cfg=params.train,
                              lr=params.stage_lr(STAGE), epochs=1, batch_size=acfg.batch_size,
                              val_split=acfg.val_split, device=device)
    wall = time.perf_counter() - start
    return {"samples_dir": str(samples), "embed_dim": read_log(samples).embed_dim, "batch": acfg.batch_size,
            "samples": summary["train_samples"], "epoch_s": round(clock["seconds"], 3),
            "samples_per_s": round(summary["train_samples"] / clock["seconds"], 1), "run_wall_s": round(wall, 2)}


def log_samples(world: World, clips: Path, out: Path) -> Path:
    """Association samples from ``clips`` (ground truth with detector-like noise, no ReID)."""
    from stagetrack.pipeline import log_assoc_samples

    log_assoc_samples(world.params, STAGE, clips, None, out)
    return out


def run(world: World, built: Path, tmp: Path) -> dict[str, Any]:
    """CPU throughput of each part (GPU too when torch sees one) on the build in ``built``."""
    samples = world.assoc_samples or log_samples(world, built / STAGE / "assoc", tmp / "assoc_samples")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "data": str(built / STAGE)}
    for part in ("detector", "reid", "association"):
        out[part] = {}
        for device in devices:
            where = tmp / f"train_{part}_{device}"
            if part == "detector":
                out[part][device] = detector(world, built / STAGE / "det" / "data.yaml", where, device)
            elif part == "reid":
                out[part][device] = reid(world, built / STAGE / "reid", where, device)
            else:
                out[part][device] = association(world, samples, where, device)
            log.info("training %s on %s: %s", part, device, out[part][device])
        if "cuda" not in devices:
            out[part]["cuda"] = NOT_AVAILABLE
    return out
