"""The tracking system at run time: detect, embed, track one video.

Detection and appearance extraction are the expensive part and do not depend on the
association, so :func:`observe` computes them once per video (:class:`Observations`) and
:func:`track` runs the tracker over them; the evaluation compares classical and learned
association on identical inputs this way.

:func:`gt_observations` builds the same inputs from ground truth (boxes jittered, some
dropped, ids kept) for logging association-training samples.

Both read every frame once; when they do, they also measure the camera's motion between
consecutive frames (:mod:`.track.gmc`), which :func:`track` hands to the tracker.

ReID is the expensive part of a frame (about 85% of it on CPU), and the tracker uses
appearance only for detections scoring ``>= tracker.track_high_thresh`` (round 1 and new tracks;
round 2 matches low-score boxes on IoU alone, and a track's appearance learns only from
high-score matches). So only those boxes are embedded; the others get NaN rows. ``embed_all``
embeds every box (the benchmark's peers use appearance in both rounds). The crops of a chunk of
``batch`` frames (the detector's batch) go through the ReID model together: one forward pass
per ``reid.feature_batch`` crops instead of one per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence as Seq
from dataclasses import dataclass

import numpy as np

from .data.sequence import IGNORE, Sequence, empty_boxes, tlwh
from .geometry import box_iou_tlwh, match_by_iou
from .io import read_image
from .track.config import TrackerConfig
from .track.costs import hsv_histogram
from .track.gmc import CameraMotion
from .track.tracker import Detections, Tracker

# (images BGR, tlwh (M_i, 4) per image) -> (M_i, D) per image, M_i = 0 too: ReidExtractor.from_frames
Embedder = Callable[[list[np.ndarray], list[np.ndarray]], list[np.ndarray]]
DetectFn = Callable[[list[np.ndarray]], list[np.ndarray]]    # images -> ANN_DTYPE arrays


@dataclass
class Observations:
    """Per-frame detections of one video, with appearance features attached."""

    name: str
    image_size: tuple[int, int]  # (width, height)
    fps: float
    frames: list[Detections]
    camera: list[np.ndarray] | None = None  # per frame, the (2, 3) camera affine from the previous frame


def _features(images: list[np.ndarray | None], boxes: list[np.ndarray], scores: list[np.ndarray],
              embed: Embedder | None, cfg: TrackerConfig, embed_all: bool = False) -> list[tuple]:
    """(ReID embeddings or None, HSV histograms) of each frame's ``boxes``, the crops of all
    ``images`` embedded in one call; an image may be None where its frame has no boxes.

    Only boxes scoring ``>= cfg.track_high_thresh`` are embedded unless ``embed_all``; the
    other rows are NaN.
    """
    hsv_bins = (cfg.hsv_h_bins, cfg.hsv_s_bins)
    embs: list[np.ndarray | None] = [None] * len(boxes)
    if embed is not None:
        with_boxes = [i for i, b in enumerate(boxes) if len(b)]
        wanted = {i: (np.ones(len(boxes[i]), bool) if embed_all else np.asarray(scores[i]) >= cfg.track_high_thresh)
                  for i in with_boxes}
        # with no box wanted, the call still gives the width (ReidExtractor runs no forward pass)
        some = embed([images[i] for i in with_boxes], [boxes[i][wanted[i]] for i in with_boxes])
        for i, part in zip(with_boxes, some):
            part = np.asarray(part, np.float32)
            embs[i] = np.full((len(boxes[i]), part.shape[1]), np.nan, np.float32)
            embs[i][wanted[i]] = part
    return [(emb, hsv_histogram(image, b, hsv_bins, cfg.hsv_crop) if len(b)
             else np.zeros((0, hsv_bins[0] * hsv_bins[1]), np.float32))
            for image, b, emb in zip(images, boxes, embs)]


def observe(seq: Sequence, detect: DetectFn, embed: Embedder | None, cfg: TrackerConfig,
            batch: int = 8, progress: bool = False, embed_all: bool = False) -> Observations:
    """Run the detector and the appearance models over every frame of ``seq``, ``batch``
    frames at a time."""
    from tqdm import tqdm

    frames: list[Detections] = []
    gmc, camera = CameraMotion(cfg.gmc), []
    starts = range(1, seq.length + 1, batch)
    for start in tqdm(starts, desc=seq.name, unit="batch", leave=False, disable=not progress):
        idx = list(range(start, min(start + batch, seq.length + 1)))
        images = [read_image(seq.image(f)) for f in idx]
        detections = detect(images)
        boxes = [tlwh(rows) for rows in detections]
        features = _features(images, boxes, [rows["conf"] for rows in detections], embed, cfg, embed_all)
        for image, rows, b, (emb, hsv) in zip(images, detections, boxes, features):
            frames.append(Detections(b, rows["conf"], rows["cls"], emb=emb, hsv=hsv))
            camera.append(gmc.step(image))
    return Observations(seq.name, (seq.width, seq.height), seq.fps, frames, camera)


def observations_from_boxes(seq: Sequence, frames: list[np.ndarray], embed: Embedder | None, cfg: TrackerConfig,
                            *, images: bool = True, gt_ids: list[np.ndarray] | None = None,
                            embed_all: bool = False, batch: int = 8) -> Observations:
    """Detections given as ANN_DTYPE rows per frame (public detections, noisy ground truth).

    With ``images`` the frames are read for HSV histograms and, given ``embed``, ReID features
    (the crops of ``batch`` frames embedded together); without, the tracker works on motion and
    IoU alone. ``gt_ids`` (per frame) label detections with ground-truth identities for the
    association sample logger.
    """
    out = []
    gmc, camera = CameraMotion(cfg.gmc), []
    use_gmc = images and cfg.gmc.method != "none"
    for start in range(0, len(frames), batch):
        chunk = frames[start:start + batch]
        boxes = [tlwh(rows) for rows in chunk]
        if images:
            pictures = [read_image(seq.image(start + k + 1)) if len(rows) or use_gmc else None
                        for k, rows in enumerate(chunk)]
            features = _features(pictures, boxes, [rows["conf"] for rows in chunk], embed, cfg, embed_all)
            camera.extend(gmc.step(image) for image in pictures)
        else:
            features = [(None, None)] * len(chunk)
        for k, (rows, b, (emb, hsv)) in enumerate(zip(chunk, boxes, features)):
            out.append(Detections(b, rows["conf"], rows["cls"], emb=emb, hsv=hsv,
                                  gt_id=gt_ids[start + k] if gt_ids is not None else None))
    return Observations(seq.name, (seq.width, seq.height), seq.fps, out, camera if images else None)


def gt_observations(seq: Sequence, embed: Embedder | None, cfg: TrackerConfig, rng: np.random.Generator,
                    jitter: float = 0.05, drop: float = 0.1, min_vis: float = 0.2) -> Observations:
    """Detections made from ground truth: jittered by ``jitter`` x box size, ``drop`` missed."""
    frames, ids = [], []
    for _, rows in seq.iter_frames():
        rows = rows[(rows["cls"] != IGNORE) & (rows["vis"] >= min_vis)]
        rows = rows[rng.random(len(rows)) >= drop].copy()
        if len(rows):
            wh = tlwh(rows)[:, 2:]
            rows["x"] += rng.normal(0, jitter, len(rows)) * wh[:, 0]
            rows["y"] += rng.normal(0, jitter, len(rows)) * wh[:, 1]
            rows["w"] *= np.exp(rng.normal(0, jitter, len(rows)))
            rows["h"] *= np.exp(rng.normal(0, jitter, len(rows)))
        rows["conf"] = np.clip(rng.normal(0.85, 0.1, len(rows)), 0.3, 1.0)
        frames.append(rows)
        ids.append(rows["id"].astype(np.int64))
    return observations_from_boxes(seq, frames, embed, cfg, gt_ids=ids)


def match_gt_ids(dets: np.ndarray, gt: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
    """Ground-truth id of each detection (same class, the evaluation's matching at IoU >= ``min_iou``), else -1."""
    out = np.full(len(dets), -1, np.int64)
    gt = gt[gt["cls"] != IGNORE]
    if not len(dets) or not len(gt):
        return out
    iou = box_iou_tlwh(tlwh(dets), tlwh(gt))
    iou[dets["cls"][:, None] != gt["cls"][None, :]] = 0.0
    rows, cols = match_by_iou(iou, min_iou)
    out[rows] = gt["id"][cols]
    return out


def track(obs: Observations, cfg: TrackerConfig, scorer=None, logger=None) -> np.ndarray:
    """Track one video; returns ANN_DTYPE rows of every frame (MOTChallenge result content)."""
    tracker = Tracker(cfg, scorer=scorer, logger=logger, frame_rate=obs.fps)
    out = []
    # the camera's motion was measured when observing; cfg decides whether the tracker uses it
    camera = obs.camera if obs.camera and cfg.gmc.method != "none" else None
    for frame, dets in enumerate(obs.frames, start=1):
        rows = tracker.update(dets, obs.image_size, camera[frame - 1] if camera else None)
        rows["frame"] = frame
        out.append(rows)
    return np.concatenate(out) if out else empty_boxes()


def track_many(observations: Seq[Observations], cfg: TrackerConfig, scorer=None) -> dict[str, np.ndarray]:
    return {obs.name: track(obs, cfg, scorer) for obs in observations}
