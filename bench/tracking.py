"""Tracking quality on identical detections: stagetrack's tracker against ultralytics' trackers.

Three data sets, every tracker fed the same per-frame detections (and, where it uses ReID,
the same embeddings), all scored by :func:`stagetrack.evaluate.pipeline.score` (TrackEval's
HOTA / CLEAR / Identity per domain, per class and combined):

* ``detector``: the final stage's detector outputs on the locked val videos (score >=
  ``detector.conf``), with the final ReID model's embeddings and HSV histograms
  (:func:`stagetrack.inference.observe`). Needs a trained run.
* ``noisy_gt``: ground truth made detector-like (:func:`noisy_detections`: jitter, misses,
  false positives, seeded), with embeddings when a ReID model exists.
* ``public_det``: the noisy dancetrack boxes written as MOTChallenge ``det/det.txt`` (no images):
  ``stagetrack track --det-dir`` (motion + IoU only) against every peer without images or ReID,
  each result written to and read back from MOTChallenge result files.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stagetrack.data import mot
from stagetrack.data.sequence import CLASSES, IGNORE, Sequence, empty_boxes, tlwh
from stagetrack.evaluate.metrics import evaluate, read_mot_dir
from stagetrack.artifacts import load_locked
from stagetrack.evaluate.pipeline import HEADLINE, score
from stagetrack.inference import Observations, observations_from_boxes, observe, track
from stagetrack.track import cli as track_cli
from stagetrack.track.config import TrackerConfig
from stagetrack.track.tracker import Detections

from .peers import PeerSpec, available_peers, track_peer
from .world import World

log = logging.getLogger(__name__)

OURS = "stagetrack"
OURS_LEARNED = "stagetrack+learned"


@dataclass(frozen=True)
class Noise:
    """How ground truth becomes detections (``noisy_gt`` and ``public_det``)."""

    jitter: float = 0.05     # box noise std as a fraction of its width / height
    drop: float = 0.1        # fraction of visible boxes missed
    min_vis: float = 0.2     # boxes less visible than this are always missed
    fp_rate: float = 0.1     # false positives per true box and frame (Poisson mean)
    seed: int = 0


def noisy_detections(seq: Sequence, noise: Noise, min_score: float) -> list[np.ndarray]:
    """Per frame ANN_DTYPE detections made from ``seq``'s ground truth; ids are -1.

    True boxes: jittered, ``drop`` missed, scored ``N(0.8, 0.12)`` scaled by ``0.6 + 0.4 vis``
    (occluded boxes score lower, as a detector's do). False positives: sizes and classes of
    random ground-truth boxes of the video, uniform positions, scores ``U(min_score, 0.55)``.
    Scores below ``min_score`` (the detector threshold) are dropped. Seeded per video name.
    """
    rng = np.random.default_rng([noise.seed, zlib.crc32(seq.name.encode())])
    pool = seq.boxes[seq.boxes["cls"] != IGNORE]
    frames = []
    for frame, rows in seq.iter_frames():
        rows = rows[(rows["cls"] != IGNORE) & (rows["vis"] >= noise.min_vis)]
        rows = rows[rng.random(len(rows)) >= noise.drop].copy()
        n = len(rows)
        wh = tlwh(rows)[:, 2:]
        rows["x"] += rng.normal(0, noise.jitter, n) * wh[:, 0]
        rows["y"] += rng.normal(0, noise.jitter, n) * wh[:, 1]
        rows["w"] *= np.exp(rng.normal(0, noise.jitter, n))
        rows["h"] *= np.exp(rng.normal(0, noise.jitter, n))
        rows["conf"] = np.clip(rng.normal(0.8, 0.12, n) * (0.6 + 0.4 * rows["vis"]), 0.0, 1.0)
        n_fp = int(rng.poisson(noise.fp_rate * max(n, 1))) if len(pool) else 0
        fp = empty_boxes(n_fp)
        if n_fp:
            src = pool[rng.integers(0, len(pool), n_fp)]
            fp["w"], fp["h"], fp["cls"], fp["category"] = src["w"], src["h"], src["cls"], src["category"]
            fp["x"] = rng.uniform(0, 1, n_fp) * np.maximum(seq.width - fp["w"], 1)
            fp["y"] = rng.uniform(0, 1, n_fp) * np.maximum(seq.height - fp["h"], 1)
            fp["conf"] = rng.uniform(min_score, 0.55, n_fp)
        out = np.concatenate([rows, fp])
        out["frame"], out["id"] = frame, -1
        frames.append(out[out["conf"] >= min_score])
    return frames


@dataclass
class Contender:
    """A tracker under test: its name, side, what it is given, and how it runs one video."""

    name: str
    side: str                                                 # "stagetrack" or "ultralytics"
    given: str                                                # cues it uses, for the table
    run: Callable[[Observations, Sequence], np.ndarray]


class FrameCache:
    """Decoded frames of the videos being tracked (peers with GMC read each frame once per run)."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, int], np.ndarray] = {}

    def reader(self, seq: Sequence) -> Callable[[int], np.ndarray] | None:
        if len(seq.image_paths) < seq.length:
            return None

        def read(frame: int) -> np.ndarray:
            key = (seq.name, frame)
            if key not in self._frames:
                self._frames[key] = cv2.imread(str(seq.image(frame)), cv2.IMREAD_COLOR)
            return self._frames[key]

        return read


def contenders(tcfg: TrackerConfig, scorer: Any, peers: list[PeerSpec], frames: FrameCache,
               has_emb: bool, has_images: bool) -> list[Contender]:
    """stagetrack (classical costs; learned blend when ``scorer``) and every peer."""
    classical = dataclasses.replace(tcfg, assoc=dataclasses.replace(tcfg.assoc, enable=False))
    cues = "IoU" + (" + ReID" if has_emb and tcfg.costs.reid > 0 else "") + \
        (" + HSV" if has_images and tcfg.costs.hsv > 0 else "")
    out = [Contender(OURS, "stagetrack", f"Kalman + {cues}", lambda obs, seq: track(obs, classical))]
    if scorer is not None:
        out.append(Contender(OURS_LEARNED, "stagetrack", f"Kalman + {cues} + learned (w={scorer.weight})",
                             lambda obs, seq: track(obs, classical, scorer=scorer)))
    for spec in peers:
        gmc = " + GMC" if has_images and spec.args().get("gmc_method", "none") not in (None, "none") else ""
        given = f"own default yaml{gmc}" + (" + ReID (same embeddings)" if spec.reid else "")
        out.append(Contender(spec.name, "ultralytics", given,
                             lambda obs, seq, spec=spec: track_peer(spec, obs.frames, frames.reader(seq))))
    return out


def _run_all(val: dict[str, list[Sequence]], observations: dict[str, Observations], people: list[Contender],
             eval_cfg: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for c in people:
        start = time.perf_counter()
        preds = {s.name: c.run(observations[s.name], s) for seqs in val.values() for s in seqs}
        seconds = time.perf_counter() - start
        results[c.name] = {"side": c.side, "given": c.given, "track_seconds": round(seconds, 3),
                           "scores": score(val, preds, eval_cfg)}
        log.info("%-20s %s (%.1f s)", c.name, "  ".join(
            f"{d} {r['combined']['HOTA']:.1f}" for d, r in results[c.name]["scores"].items()), seconds)
    return results


def _timed_detector(detector: Callable, clock: dict[str, float]) -> Callable:
    def detect(images: list[np.ndarray]) -> list[np.ndarray]:
        start = time.perf_counter()
        out = detector(images)
        clock["detect_s"] += time.perf_counter() - start
        return out
    return detect


def _timed_embedder(embed: Callable, clock: dict[str, float]) -> Callable:
    def run(images: list[np.ndarray], boxes: list[np.ndarray]) -> list[np.ndarray]:
        start = time.perf_counter()
        out = embed(images, boxes)
        clock["reid_s"] += time.perf_counter() - start
        return out
    return run


def detector_observations(world: World, val: dict[str, list[Sequence]], tcfg: TrackerConfig
                          ) -> tuple[dict[str, Observations], Any, dict[str, Any]]:
    """Detector + ReID outputs of every val video (once), the extractor, and end-to-end timing.

    Timing per video: detector (batched as in evaluation), ReID (of the boxes the tracker uses
    appearance for, as in evaluation), the rest of observing (frame reads, HSV histograms, camera
    motion) and stagetrack's classical tracking, in seconds and frames/s. The low-score boxes
    are embedded afterwards, untimed, for the peers (they use appearance in both rounds).
    """
    from stagetrack.detect.yolo import Detector
    from stagetrack.reid.features import ReidExtractor

    det_cfg = world.params.detector
    detector = Detector(world.models.detector, conf=det_cfg.conf, iou=det_cfg.iou, imgsz=None,
                        max_det=det_cfg.max_det, device="cpu", threads=det_cfg.threads)
    extractor = ReidExtractor(world.models.reid, device="cpu", batch_size=world.params.reid.feature_batch)
    classical = dataclasses.replace(tcfg, assoc=dataclasses.replace(tcfg.assoc, enable=False))
    observations, per_video = {}, {}
    for seqs in val.values():
        for seq in seqs:
            clock = {"detect_s": 0.0, "reid_s": 0.0}
            start = time.perf_counter()
            obs = observe(seq, _timed_detector(detector, clock), _timed_embedder(extractor.from_frames, clock), tcfg)
            observe_s = time.perf_counter() - start
            start = time.perf_counter()
            track(obs, classical)
            track_s = time.perf_counter() - start
            observations[seq.name] = _embed_the_rest(obs, seq, extractor.from_boxes)
            total = observe_s + track_s
            per_video[seq.name] = {
                "frames": seq.length, "detect_s": round(clock["detect_s"], 3), "reid_s": round(clock["reid_s"], 3),
                "other_s": round(observe_s - clock["detect_s"] - clock["reid_s"], 3), "track_s": round(track_s, 3),
                "fps": round(seq.length / total, 2),
                "boxes_per_frame": round(sum(len(d) for d in obs.frames) / max(seq.length, 1), 2),
                "high_boxes_per_frame": round(sum(int((d.score >= tcfg.track_high_thresh).sum()) for d in obs.frames)
                                              / max(seq.length, 1), 2)}
    frames = sum(v["frames"] for v in per_video.values())
    parts = {k: sum(v[k] for v in per_video.values()) for k in ("detect_s", "reid_s", "other_s", "track_s")}
    e2e = {"device": "cpu", "detector_imgsz": detector.imgsz, "reid_dim": extractor.feature_dim,
           "track_high_thresh": tcfg.track_high_thresh,
           "frames": frames, **{k: round(v, 3) for k, v in parts.items()},
           "fps": round(frames / sum(parts.values()), 2),
           "ms_per_frame": {k[:-2]: round(1000 * v / frames, 2) for k, v in parts.items()},
           "per_video": per_video}
    return observations, extractor, e2e


def _embed_the_rest(obs: Observations, seq: Sequence, embed: Callable) -> Observations:
    """``obs`` with the boxes observe() left unembedded (NaN rows: low scores) embedded too."""
    frames = []
    for f, dets in enumerate(obs.frames, start=1):
        if dets.emb is not None and not np.isfinite(dets.emb).all():
            missing = ~np.isfinite(dets.emb).all(axis=1)
            emb = dets.emb.copy()
            emb[missing] = embed(cv2.imread(str(seq.image(f)), cv2.IMREAD_COLOR), dets.tlwh[missing])
            dets = dataclasses.replace(dets, emb=emb)
        frames.append(dets)
    return dataclasses.replace(obs, frames=frames)


def public_det_case(world: World, val: dict[str, list[Sequence]], noisy: dict[str, list[np.ndarray]],
                    peers: list[PeerSpec], tmp: Path, eval_cfg: Any, domain: str = "dancetrack") -> dict[str, Any]:
    """MOTChallenge public detections of ``domain``'s val videos: ``stagetrack track --det-dir`` vs peers."""
    seqs = val[domain]
    det_dir, out_dir = tmp / "public_det" / "det", tmp / "public_det" / "results"
    for seq in seqs:
        (det_dir / seq.name / "det").mkdir(parents=True, exist_ok=True)
        mot.write_txt(det_dir / seq.name / "det" / "det.txt", np.concatenate(noisy[seq.name]), "det")
        text = (world.val_dir / domain / seq.name / "seqinfo.ini").read_text()
        (det_dir / seq.name / "seqinfo.ini").write_text(text)
    # classical costs: with no images there is nothing for the learned blend or ReID to use
    params_path = world.write_params(tmp / "public_det" / "params.yaml", {"tracker": {"assoc": {"enable": False}}})
    results: dict[str, Any] = {}

    def scored(name: str, side: str, given: str, pred_dir: Path, seconds: float) -> None:
        pairs = read_mot_dir(world.val_dir / domain, pred_dir)
        res = evaluate(pairs, classes=eval_cfg.classes, preprocess=eval_cfg.preprocess,
                       ignore_coverage=eval_cfg.ignore_coverage)
        table = {cls: {k: m[k] for k in HEADLINE} for cls, m in res["per_class"].items()}
        table["combined"] = {k: res["combined"][k] for k in HEADLINE}
        results[name] = {"side": side, "given": given, "track_seconds": round(seconds, 3), "scores": {domain: table}}

    start = time.perf_counter()
    track_cli.run(argparse.Namespace(det_dir=det_dir, out_dir=out_dir / OURS, params=params_path,
                                     reid_weights=None, device="cpu"))
    scored(OURS, "stagetrack", "stagetrack track --det-dir: Kalman + IoU (no images)", out_dir / OURS,
           time.perf_counter() - start)
    for spec in peers:
        if spec.reid:
            continue
        start = time.perf_counter()
        for seq_dir in mot.list_sequences(det_dir):
            seq = mot.read_sequence(seq_dir, ann="det")
            frames = [Detections.from_boxes(rows[rows["cls"] != IGNORE]) for _, rows in seq.iter_frames()]
            mot.write_txt(out_dir / spec.name / f"{seq.name}.txt", track_peer(spec, frames), "result")
        scored(spec.name, "ultralytics", "own default yaml, det.txt boxes only (no images)", out_dir / spec.name,
               time.perf_counter() - start)
    return results


def goals(results: dict[str, Any], domains: list[str], ours: str) -> dict[str, Any]:
    """The issue's quality goal for one of our variants: HOTA >= best peer per domain, > on dancetrack."""
    out: dict[str, Any] = {}
    for domain in domains:
        peers = {n: r["scores"][domain]["combined"]["HOTA"] for n, r in results.items() if r["side"] == "ultralytics"}
        best = max(peers, key=peers.get)
        mine = results[ours]["scores"][domain]["combined"]["HOTA"]
        strict = domain == "dancetrack"
        out[domain] = {"ours": round(mine, 2), "best_peer": best, "best_peer_HOTA": round(peers[best], 2),
                       "margin": round(mine - peers[best], 2), "rule": ">" if strict else ">=",
                       "met": bool(mine > peers[best] if strict else mine >= peers[best])}
    return out


@dataclass
class Inputs:
    """What the trackers were fed, for the experiments: val videos and observations per data set."""

    val: dict[str, list[Sequence]]
    observations: dict[str, dict[str, Observations]]
    embed: Callable | None
    scorer: Any
    frames: FrameCache


def run(world: World, tmp: Path, noise: Noise = Noise()) -> tuple[dict[str, Any], dict[str, Any] | None, Inputs]:
    """The tracking-quality section of results.json, end-to-end timing (trained run only), the inputs."""
    params = world.params
    tcfg = params.tracker
    val = load_locked(world.val_dir)
    det_conf = params.detector.conf
    frames = FrameCache()
    datasets: dict[str, Any] = {}
    e2e = None
    embed, scorer, emb_dim = None, None, None
    inputs: dict[str, dict[str, Observations]] = {}
    if world.models is not None:
        observations, extractor, e2e = detector_observations(world, val, tcfg)
        inputs["detector"] = observations
        embed, emb_dim = extractor.from_frames, extractor.feature_dim
        if world.models.assoc is not None:
            from stagetrack.assoc.scorer import LearnedScorer

            scorer = LearnedScorer.load(world.models.assoc, expected_embed_dim=emb_dim, device="cpu",
                                        weight=tcfg.assoc.weight)
        people = contenders(tcfg, scorer, available_peers(True), frames, True, True)
        datasets["detector"] = {"detections": f"{world.models.detector} outputs, score >= {det_conf}",
                                "results": _run_all(val, observations, people, params.eval)}
    noisy = {s.name: noisy_detections(s, noise, det_conf) for seqs in val.values() for s in seqs}
    observations = {s.name: observations_from_boxes(s, noisy[s.name], embed, tcfg, images=True, embed_all=True)
                    for seqs in val.values() for s in seqs}
    inputs["noisy_gt"] = observations
    people = contenders(tcfg, scorer, available_peers(embed is not None), frames, embed is not None, True)
    datasets["noisy_gt"] = {"detections": f"ground truth with noise {dataclasses.asdict(noise)}, score >= {det_conf}",
                            "results": _run_all(val, observations, people, params.eval)}
    if "dancetrack" in val:
        datasets["public_det"] = {
            "detections": "noisy_gt's dancetrack boxes as MOTChallenge det/det.txt (no images)",
            "results": public_det_case(world, val, noisy, available_peers(False), tmp, params.eval)}
    for name, ds in datasets.items():
        domains = sorted(next(iter(ds["results"].values()))["scores"])
        domains = [d for d in domains if d != "all"]
        ds["domains"] = domains
        ds["goals"] = {v: goals(ds["results"], domains, v) for v in (OURS, OURS_LEARNED) if v in ds["results"]}
    setup = {
        "world": world.kind,
        "val_videos": {d: [s.name for s in seqs] for d, seqs in val.items()},
        "detection_threshold": det_conf,
        "stagetrack": {"tracker": dataclasses.asdict(tcfg), "embeddings": emb_dim,
                       "learned_assoc": str(world.models.assoc) if scorer is not None else None,
                       "headline": OURS_LEARNED if (scorer is not None and tcfg.assoc.enable) else OURS},
        "peers": {spec.name: spec.defaults() for spec in available_peers(True)},
        "classes": list(CLASSES),
    }
    return {"setup": setup, "datasets": datasets}, e2e, Inputs(val, inputs, embed, scorer, frames)
