"""Tracking speed: per-frame association time as objects grow, and ReID crops per second.

Association (:func:`association`): synthetic random-walk scenes of N objects (1920x1080, boxes
of pedestrian size, 5% missed per frame, scores ~ N(0.8, 0.15), two classes) are built once
per N; every tracker then consumes the same frames, one full ``update`` per frame (prediction,
matching, track management; no detector, no image). Trackers take turns within each repeat so
that load from other processes hits them alike; the reported time is the best of the repeats
(the least disturbed one) and the median. Ratios are ``peer / stagetrack motion+IoU``, measured
in the same process run: > 1 means stagetrack is faster.

ReID (:func:`reid_inference`, formerly ``bench/reid_speed.py``): crops per second of
:class:`stagetrack.reid.features.ReidExtractor` on random crops, random weights (speed does not
depend on their values), best of the repeats after a warm-up batch.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stagetrack.track.config import TrackerConfig
from stagetrack.track.tracker import Detections, Tracker

from .peers import DetBoxes, PeerSpec, available_peers

log = logging.getLogger(__name__)

IMAGE_SIZE = (1920, 1080)  # (width, height)
EMB_DIM = 512              # osnet_x0_25's feature width


def random_walk_scene(n: int, frames: int, seed: int = 0, emb_dim: int | None = None) -> list[Detections]:
    """``frames`` frames of ``n`` objects moving with noisy constant velocity (see module docstring).

    With ``emb_dim`` each object has a fixed random unit embedding plus per-frame noise.
    """
    rng = np.random.default_rng([seed, n])
    width, height = IMAGE_SIZE
    wh = np.stack([rng.uniform(20, 60, n), rng.uniform(50, 150, n)], axis=1)
    xy = rng.uniform([0, 0], [width - 60, height - 150], (n, 2))
    vel = rng.normal(0, 3, (n, 2))
    cls = (rng.random(n) < 0.3).astype(np.int64)  # 30% vehicles
    ident = rng.normal(size=(n, emb_dim)) if emb_dim else None
    out = []
    for _ in range(frames):
        vel += rng.normal(0, 0.5, (n, 2))
        xy = np.clip(xy + vel, 0, [width - 60, height - 150])
        seen = rng.random(n) >= 0.05
        box = np.concatenate([xy + rng.normal(0, 1.0, (n, 2)), wh * np.exp(rng.normal(0, 0.03, (n, 2)))], axis=1)
        score = np.clip(rng.normal(0.8, 0.15, n), 0.15, 1.0)
        emb = None
        if ident is not None:
            emb = ident[seen] + rng.normal(0, 0.3, (int(seen.sum()), emb_dim))
            emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        out.append(Detections(box[seen], score[seen], cls[seen], emb=emb))
    return out


def _stagetrack_runner(cfg: TrackerConfig, frames: list[Detections]) -> Callable[[], float]:
    def run() -> float:
        tracker = Tracker(cfg, frame_rate=30.0)
        start = time.perf_counter()
        for dets in frames:
            tracker.update(dets, IMAGE_SIZE)
        return time.perf_counter() - start
    return run


def _peer_runner(spec: PeerSpec, frames: list[Detections]) -> Callable[[], float]:
    boxes = [DetBoxes.from_detections(d) for d in frames]
    feats = [d.emb if spec.reid else None for d in frames]

    def run() -> float:
        tracker = spec.make()
        start = time.perf_counter()
        for b, f in zip(boxes, feats):
            tracker.update(b, None, feats=f)
        return time.perf_counter() - start
    return run


def association(cfg: TrackerConfig, sizes: tuple[int, ...], frames: int, repeats: int) -> dict[str, Any]:
    """Per-frame update time (ms) of every tracker at each size, and ratios to stagetrack."""
    peers = [s for s in available_peers(True) if not s.reid or s.tracker_type == "botsort"]
    table: dict[str, Any] = {}
    for n in sizes:
        plain = random_walk_scene(n, frames)
        with_emb = random_walk_scene(n, frames, emb_dim=EMB_DIM)
        # no scorer is passed: the learned blend is off whatever cfg.assoc says
        runners = {"stagetrack": _stagetrack_runner(cfg, plain),
                   "stagetrack+reid": _stagetrack_runner(cfg, with_emb)}
        for spec in peers:
            runners[spec.name] = _peer_runner(spec, with_emb if spec.reid else plain)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeats):
            for name, run in runners.items():
                times[name].append(1000 * run() / frames)
        best = {name: min(v) for name, v in times.items()}
        table[str(n)] = {
            "frames": frames, "repeats": repeats,
            "ms_per_frame": {k: round(v, 3) for k, v in best.items()},
            "ms_per_frame_median": {k: round(statistics.median(v), 3) for k, v in times.items()},
            "ratio_vs_stagetrack": {k: round(v / best["stagetrack"], 2) for k, v in best.items()
                                    if k not in ("stagetrack", "stagetrack+reid")},
            "ratio_reid_vs_stagetrack_reid": {k: round(v / best["stagetrack+reid"], 2) for k, v in best.items()
                                              if k.endswith("+reid") and k != "stagetrack+reid"},
        }
        log.info("%d objects: %s", n, ", ".join(f"{k} {v:.2f} ms" for k, v in best.items()))
    goal = {str(n): {"stagetrack_ms": table[str(n)]["ms_per_frame"]["stagetrack"],
                     "bytetrack_ms": table[str(n)]["ms_per_frame"]["bytetrack"],
                     "met": table[str(n)]["ms_per_frame"]["stagetrack"] <= table[str(n)]["ms_per_frame"]["bytetrack"]}
            for n in sizes if n in (50, 200)}
    return {"image_size": list(IMAGE_SIZE), "reid_dim": EMB_DIM,
            "stagetrack_cues": "Kalman + IoU (no images; +reid: random unit embeddings)",
            "sizes": table, "goal_vs_bytetrack": goal}


def reid_inference(model: str, sizes: tuple[tuple[int, int], ...], crops: int, batch: int, repeats: int
                   ) -> dict[str, Any]:
    """Crops/s of the ReID extractor at each (height, width) input size (random weights)."""
    from stagetrack.reid.features import ReidExtractor
    from stagetrack.reid.model import build_model, save_weights

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (int(rng.integers(40, 300)), int(rng.integers(20, 150)), 3), dtype=np.uint8)
              for _ in range(crops)]
    out: dict[str, Any] = {"model": model, "threads": torch.get_num_threads(), "batch": batch, "crops": crops}
    with tempfile.TemporaryDirectory() as tmp:
        for height, width in sizes:
            net = build_model(model, num_classes=10)
            path = Path(tmp) / f"{height}x{width}.pt"
            save_weights(path, net, {"model": model, "num_classes": 10, "feature_dim": int(net.feature_dim),
                                     "height": height, "width": width})
            ext = ReidExtractor(path, batch_size=batch)
            ext(images[:batch])  # warm-up
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                ext(images)
                best = min(best, time.perf_counter() - start)
            out[f"{height}x{width}"] = {"crops_per_s": round(crops / best, 1), "ms_per_crop": round(1000 * best / crops, 3)}
            log.info("ReID %s %dx%d: %.0f crops/s", model, height, width, crops / best)
    return out
