"""The multi-class tracker: ByteTrack's two-round matching over one blended cost.

Per frame (:meth:`Tracker.update`):

1. split detections into high (``score >= track_high_thresh``) and low
   (``track_low_thresh < score < track_high_thresh``) ones; boxes without area are dropped;
2. predict every live track with one batched Kalman step (lost tracks keep their position
   velocity but not their size velocity, as in ByteTrack), then move the predictions by the
   camera's motion since the previous frame when the caller gives it (:mod:`.gmc`, BoT-SORT);
3. hand the candidate tracks (tracked + lost) and the high detections to the sample logger;
4. round 1: candidates x high detections on the blended cost (:func:`costs.blend`: IoU fused
   with the score, ReID, HSV, the learned score, gates) below ``match_thresh``;
5. round 2: still-unmatched *tracked* tracks x low detections on IoU alone below
   ``second_match_thresh`` (low scores are too unreliable to fuse); tracks still unmatched
   become lost;
6. unconfirmed (new) tracks x the leftover high detections on the blended cost below
   ``unconfirmed_match_thresh``; unmatched new tracks are removed;
7. leftover high detections scoring ``>= new_track_thresh`` (``new_track_thresh_vehicle`` for
   vehicles) start new tracks; lost tracks
   older than ``track_buffer`` frames (scaled by ``frame_rate / track_buffer_fps`` if that is set) are removed; a lost
   track and a live one that overlap by more than ``duplicate_iou`` lose the younger one.

Every IoU here (rounds 1-3 and the duplicate check) measures boxes smaller than
``iou_min_size`` pixels on a side as grown to it about their centre (:func:`costs.grow_to`):
a few-pixel aerial object's IoU with its own next box otherwise collapses under a pixel of jitter.

Tracks only ever match detections of their own class: cross-class pairs are forbidden (set to
``inf``) in the full cost matrix rather than solved per class. With two classes the masking is
one vectorised comparison over the matrix, the learned scorer sees every candidate in one
batch, and lapjv solves the masked matrix as fast as the two per-class blocks (measured on
200 x 200 frames: 1.15 ms for one masked solve, 1.30 ms for two per-class solves with their
indexing; about a tenth of the frame's time).

IDs are handed out per tracker instance, from 1, when a track is confirmed (its second match,
or its birth in the first frame), so one-frame false positives leave no gaps; :meth:`reset`
restarts them for the next sequence.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import numpy as np

from ..data.sequence import CLASSES, PERSON, VEHICLE, empty_boxes
from ..errors import ConfigError
from . import costs
from .config import TrackerConfig
from .gmc import is_identity, warp_states
from .kalman import KalmanFilter, tlwh_to_xywh
from .matching import linear_assignment
from .track import Track, TrackState

log = logging.getLogger(__name__)

# MOTChallenge class number written in the ``category`` column of results, per class index.
MOT_CATEGORY: dict[int, str] = {PERSON: "1", VEHICLE: "3"}
_CATEGORY_BY_CLS = np.array([MOT_CATEGORY[i] for i in range(len(CLASSES))])


class AssocScorer(Protocol):
    """A learned association model (``stagetrack.assoc.scorer``)."""

    embed_dim: int

    def score(self, tracks: list[Track], dets: "Detections", image_size: tuple[int, int]) -> np.ndarray:
        """(N, M) probabilities that detection j continues track i."""


class SampleLogger(Protocol):
    """Collects association training samples (candidate tracks, high-score detections)."""

    def log(self, tracks: list[Track], dets: "Detections", image_size: tuple[int, int]) -> None: ...


@dataclasses.dataclass
class Detections:
    """One frame's detections, column arrays of equal length M.

    ``tlwh`` (M, 4) float64 pixels; ``score`` (M,) float64; ``cls`` (M,) int64 index into
    :data:`~stagetrack.data.sequence.CLASSES`; ``emb`` (M, D) float32 L2-normalised ReID
    features or None; ``hsv`` (M, B) colour histograms (:func:`costs.hsv_histogram`) or None;
    ``gt_id`` (M,) int64 ground-truth ids (-1 unknown) or None, only for sample logging.
    """

    tlwh: np.ndarray
    score: np.ndarray
    cls: np.ndarray
    emb: np.ndarray | None = None
    hsv: np.ndarray | None = None
    gt_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(-1, 4)
        m = len(self.tlwh)
        self.score = np.asarray(self.score, dtype=np.float64).reshape(m)
        self.cls = np.asarray(self.cls, dtype=np.int64).reshape(m)
        if m and (self.cls.min() < 0 or self.cls.max() >= len(CLASSES)):
            raise ValueError(f"Detections.cls must index CLASSES {CLASSES}, got {np.unique(self.cls).tolist()}")
        if self.emb is not None:
            self.emb = np.asarray(self.emb, dtype=np.float32)
            if self.emb.ndim != 2 or len(self.emb) != m:
                raise ValueError(f"Detections.emb must be ({m}, D), got {self.emb.shape}")
        if self.hsv is not None:
            self.hsv = np.asarray(self.hsv, dtype=np.float32)
            if self.hsv.ndim != 2 or len(self.hsv) != m:
                raise ValueError(f"Detections.hsv must be ({m}, B), got {self.hsv.shape}")
        if self.gt_id is not None:
            self.gt_id = np.asarray(self.gt_id, dtype=np.int64).reshape(m)

    def __len__(self) -> int:
        return len(self.tlwh)

    @property
    def tlbr(self) -> np.ndarray:
        out = self.tlwh.copy()
        out[:, 2:] += out[:, :2]
        return out

    def subset(self, index: np.ndarray) -> "Detections":
        """The detections at ``index`` (integer or boolean array), in that order."""
        pick = (lambda a: None if a is None else a[index])
        return Detections(self.tlwh[index], self.score[index], self.cls[index],
                          pick(self.emb), pick(self.hsv), pick(self.gt_id))

    @classmethod
    def from_boxes(cls, boxes: np.ndarray, *, emb: np.ndarray | None = None, hsv: np.ndarray | None = None,
                   with_gt_id: bool = False) -> "Detections":
        """From ``ANN_DTYPE`` rows (``conf`` is the score; ``id`` the gt id if ``with_gt_id``)."""
        tlwh = np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"]], axis=1) if len(boxes) else np.zeros((0, 4))
        return cls(tlwh, boxes["conf"], boxes["cls"], emb, hsv, boxes["id"] if with_gt_id else None)


class Tracker:
    """ByteTrack-style multi-class tracker; see the module docstring.

    ``scorer`` (:class:`AssocScorer`) mixes a learned score into the blended cost with weight
    ``cfg.assoc.weight``; ``logger`` (:class:`SampleLogger`) receives the candidates of every
    frame. ``frame_rate`` scales ``track_buffer`` when ``track_buffer_fps`` > 0 (ByteTrack: 30).
    """

    def __init__(self, cfg: TrackerConfig, *, scorer: AssocScorer | None = None,
                 logger: SampleLogger | None = None, frame_rate: float = 30.0) -> None:
        if scorer is not None and cfg.assoc.embed_dim is not None and cfg.assoc.embed_dim != scorer.embed_dim:
            raise ConfigError(f"is {cfg.assoc.embed_dim} but the association scorer was trained on "
                              f"{scorer.embed_dim}-dim embeddings", field="tracker.assoc.embed_dim",
                              hint="leave it null to take the width from the checkpoint")
        self.cfg = cfg
        self.scorer = scorer
        self.logger = logger
        self.frame_rate = float(frame_rate)
        self.max_time_lost = (cfg.track_buffer if cfg.track_buffer_fps <= 0
                              else int(self.frame_rate / cfg.track_buffer_fps * cfg.track_buffer))
        self.kalman = KalmanFilter(cfg.kalman.std_weight_position, cfg.kalman.std_weight_velocity, cfg.kalman.nsa)
        self._velocity = np.array(cfg.kalman.velocity_by_class())  # per class: people turn faster than vehicles
        self._birth_thresh = np.array(cfg.birth_thresh_by_class())  # per class: a false person in a crowd costs more
        self.tracks: list[Track] = []
        self.frame_id = 0
        self._next_id = 1
        self._warned_no_emb = False

    def reset(self) -> None:
        """Forget every track and restart frame counting and IDs at 1 (call per sequence)."""
        self.tracks = []
        self.frame_id = 0
        self._next_id = 1
        self._warned_no_emb = False

    def update(self, dets: Detections, image_size: tuple[int, int], camera: np.ndarray | None = None) -> np.ndarray:
        """Track one frame; ``image_size`` is (width, height) in pixels.

        ``camera`` is the (2, 3) affine of the camera's motion from the previous frame to this
        one (:func:`.gmc.camera_motion`); None means a still camera.

        Returns ``ANN_DTYPE`` rows of the confirmed tracks matched in this frame: ``frame`` is
        this tracker's 1-based frame counter, ``id`` the track id, ``x, y, w, h`` the Kalman
        box, ``conf`` the matched detection's score, ``cls`` and ``category`` ('1' person,
        '3' vehicle, MOTChallenge numbering).
        """
        cfg = self.cfg
        self.frame_id += 1
        self._check_embeddings(dets)

        wh = dets.tlwh[:, 2:]
        valid = (wh[:, 0] > 0) & (wh[:, 1] > 0) & np.isfinite(dets.tlwh).all(axis=1)
        high = dets.subset(np.flatnonzero(valid & (dets.score >= cfg.track_high_thresh)))
        low = dets.subset(np.flatnonzero(valid & (dets.score > cfg.track_low_thresh)
                                         & (dets.score < cfg.track_high_thresh)))

        self._predict(camera)
        unconfirmed = [t for t in self.tracks if t.state == TrackState.New]
        pool = [t for t in self.tracks if t.state in (TrackState.Tracked, TrackState.Lost)]
        if self.logger is not None:
            self.logger.log(pool, high, image_size)

        # Round 1: tracked + lost tracks x high detections, blended cost.
        matches, u_pool, u_high = linear_assignment(self._cost(pool, high, image_size), cfg.match_thresh)
        self._apply(pool, high, matches)

        # Round 2: remaining tracked tracks x low detections, IoU only.
        remaining = [pool[i] for i in u_pool if pool[i].state == TrackState.Tracked]
        matches, u_rem, _ = linear_assignment(self._iou_cost(remaining, low), cfg.second_match_thresh)
        self._apply(remaining, low, matches)
        for i in u_rem:
            remaining[i].state = TrackState.Lost

        # Round 3: unconfirmed tracks x leftover high detections.
        left = high.subset(u_high)
        matches, u_unconfirmed, u_left = linear_assignment(
            self._cost(unconfirmed, left, image_size), cfg.unconfirmed_match_thresh)
        self._apply(unconfirmed, left, matches)
        for i in u_unconfirmed:
            unconfirmed[i].state = TrackState.Removed

        self._birth(left.subset(u_left[left.score[u_left] >= self._birth_thresh[left.cls[u_left]]]))
        for t in self.tracks:
            if t.state == TrackState.Lost and self.frame_id - t.frame_id > self.max_time_lost:
                t.state = TrackState.Removed
        self._remove_duplicates()
        self.tracks = [t for t in self.tracks if t.state != TrackState.Removed]
        return self._output()

    # -- steps ---------------------------------------------------------------------------------

    def _check_embeddings(self, dets: Detections) -> None:
        if self.scorer is None:
            return
        if dets.emb is None:
            if not self._warned_no_emb and len(dets) and self.scorer.embed_dim > 0:
                log.warning("the association scorer expects %d-dim embeddings but detections carry none; "
                            "it scores on motion alone", self.scorer.embed_dim)
                self._warned_no_emb = True
        elif dets.emb.shape[1] != self.scorer.embed_dim:
            raise ConfigError(
                f"detections carry {dets.emb.shape[1]}-dim ReID embeddings but the association scorer "
                f"expects {self.scorer.embed_dim}; appearance would be silently dropped",
                field="tracker.assoc", hint="use the ReID model the scorer was trained with, or retrain the scorer")

    def _predict(self, camera: np.ndarray | None) -> None:
        if not self.tracks:
            return
        mean = np.array([t.mean for t in self.tracks])             # (N, 8)
        cov = np.array([t.covariance for t in self.tracks])        # (N, 8, 8)
        not_tracked = np.array([t.state != TrackState.Tracked for t in self.tracks])
        mean[not_tracked, 6:8] = 0.0                               # lost boxes keep their size
        velocity = self._velocity[np.array([t.cls for t in self.tracks])]
        mean, cov = self.kalman.multi_predict(mean, cov, velocity)
        if not is_identity(camera):
            mean, cov = warp_states(mean, cov, np.asarray(camera, dtype=np.float64))
        for t, m, c in zip(self.tracks, mean, cov):
            t.mean, t.covariance = m, c
            t.age += 1
            t.time_since_update += 1

    def _iou_cost(self, tracks: list[Track], dets: Detections) -> np.ndarray:
        """IoU distance with cross-class pairs forbidden (round 2)."""
        if not tracks or not len(dets):
            return np.empty((len(tracks), len(dets)))
        cost = costs.iou_distance(_tlbr(tracks), dets.tlbr, self.cfg.iou_min_size)
        cost[np.array([t.cls for t in tracks])[:, None] != dets.cls[None, :]] = np.inf
        return cost

    def _cost(self, tracks: list[Track], dets: Detections, image_size: tuple[int, int]) -> np.ndarray:
        """The blended cost (rounds 1 and 3)."""
        cfg = self.cfg
        if not tracks or not len(dets):
            return np.empty((len(tracks), len(dets)))
        mean = np.array([t.mean for t in tracks])
        iou_d = costs.iou_distance(_tlbr_of_mean(mean), dets.tlbr, cfg.iou_min_size)
        forbid = np.array([t.cls for t in tracks])[:, None] != dets.cls[None, :]
        if cfg.motion_gate is not None:
            cov = np.array([t.covariance for t in tracks])
            forbid |= self.kalman.gating_distance(mean, cov, tlwh_to_xywh(dets.tlwh)) > cfg.motion_gate
        reid_d = hsv_d = learned = None
        if dets.emb is not None:
            reid_d = costs.reid_distance(_features(tracks, "emb", dets.emb.shape[1]), dets.emb)
        if dets.hsv is not None and cfg.costs.hsv > 0:
            hsv_d = costs.hsv_distance(_features(tracks, "hsv", dets.hsv.shape[1]), dets.hsv)
        if self.scorer is not None and cfg.assoc.weight > 0:
            learned = np.asarray(self.scorer.score(tracks, dets, image_size), dtype=np.float64)
            if learned.shape != iou_d.shape:
                raise ValueError(f"scorer returned {learned.shape}, expected {iou_d.shape}")
        return costs.blend(iou_d, weights=cfg.costs, reid_d=reid_d, hsv_d=hsv_d, learned=learned,
                           det_scores=dets.score if cfg.fuse_score else None, iou_gate=cfg.iou_gate,
                           reid_gate=cfg.reid_gate, learned_weight=cfg.assoc.weight, forbid=forbid)

    def _apply(self, tracks: list[Track], dets: Detections, matches: np.ndarray) -> None:
        """Kalman-update (batched) and refresh the matched tracks; confirm new ones."""
        if len(matches) == 0:
            return
        ti, di = matches[:, 0], matches[:, 1]
        matched = [tracks[i] for i in ti]
        mean = np.array([t.mean for t in matched])
        cov = np.array([t.covariance for t in matched])
        score = dets.score[di]
        mean, cov = self.kalman.update(mean, cov, tlwh_to_xywh(dets.tlwh[di]), score)
        # appearance learns only from confident boxes: low-score ones are often occluded (and not embedded)
        confident = score >= self.cfg.track_high_thresh
        emb = self._ema(matched, "emb", dets.emb, di, self.cfg.emb_momentum, l2=True, use=confident)
        hsv = self._ema(matched, "hsv", dets.hsv, di, self.cfg.hsv_momentum, l2=False)
        gt_id = dets.gt_id[di] if dets.gt_id is not None else None
        for k, t in enumerate(matched):
            t.mean, t.covariance = mean[k], cov[k]
            t.score = float(score[k])
            t.hits += 1
            t.frame_id = self.frame_id
            t.time_since_update = 0
            t.history.append(dets.tlwh[di[k]])
            t.history_frames.append(self.frame_id)
            if emb is not None:
                t.emb = emb[k]
            if hsv is not None:
                t.hsv = hsv[k]
            if gt_id is not None:
                t.gt_id = int(gt_id[k])
            if t.state == TrackState.New:
                t.track_id = self._take_id()
            t.state = TrackState.Tracked

    @staticmethod
    def _ema(tracks: list[Track], attr: str, feats: np.ndarray | None, di: np.ndarray, momentum: float,
             l2: bool, use: np.ndarray | None = None) -> np.ndarray | None:
        """EMA of a per-track feature with the matched detections' (re-normalised), or None.

        Rows not in ``use`` and non-finite rows (boxes not embedded) keep the track's feature.
        """
        if feats is None:
            return None
        new = feats[di].astype(np.float32)
        fresh = np.isfinite(new).all(axis=1)
        if use is not None:
            fresh &= use
        old = np.array([new[k] if getattr(t, attr) is None else getattr(t, attr) for k, t in enumerate(tracks)])
        new[~fresh] = old[~fresh]
        if not l2:  # a zero histogram (box outside the image) carries no colour: keep the old one
            new = np.where(new.sum(axis=1, keepdims=True) > 0, new, old)
        out = momentum * old + (1.0 - momentum) * new
        norm = np.linalg.norm(out, axis=1, keepdims=True) if l2 else out.sum(axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-12)

    def _birth(self, dets: Detections) -> None:
        if not len(dets):
            return
        mean, cov = self.kalman.initiate(tlwh_to_xywh(dets.tlwh), self._velocity[dets.cls])
        first = self.frame_id == 1
        for j in range(len(dets)):
            self.tracks.append(Track(
                self._take_id() if first else 0, int(dets.cls[j]), dets.tlwh[j], float(dets.score[j]),
                self.frame_id, mean[j], cov[j], history_len=self.cfg.history,
                emb=None if dets.emb is None else dets.emb[j].copy(),
                hsv=None if dets.hsv is None else dets.hsv[j].copy(),
                gt_id=-1 if dets.gt_id is None else int(dets.gt_id[j]),
                state=TrackState.Tracked if first else TrackState.New))

    def _remove_duplicates(self) -> None:
        """A lost track overlapping a live one of its class (IoU > duplicate_iou) is the same object: drop the younger."""
        live = [t for t in self.tracks if t.state in (TrackState.New, TrackState.Tracked)]
        lost = [t for t in self.tracks if t.state == TrackState.Lost]
        if not live or not lost:
            return
        dist = costs.iou_distance(_tlbr(live), _tlbr(lost), self.cfg.iou_min_size)
        same_cls = np.array([t.cls for t in live])[:, None] == np.array([t.cls for t in lost])[None, :]
        for p, q in zip(*np.nonzero((dist < 1.0 - self.cfg.duplicate_iou) & same_cls)):
            a, b = live[p], lost[q]
            if a.frame_id - a.start_frame > b.frame_id - b.start_frame:
                b.state = TrackState.Removed
            else:
                a.state = TrackState.Removed

    def _output(self) -> np.ndarray:
        out_tracks = [t for t in self.tracks if t.state == TrackState.Tracked]
        if not out_tracks:
            return empty_boxes(0)
        tlwh = np.array([t.mean[:4] for t in out_tracks])
        tlwh[:, :2] -= tlwh[:, 2:] / 2
        keep = tlwh[:, 2] * tlwh[:, 3] > self.cfg.min_box_area
        rows = empty_boxes(int(keep.sum()))
        cls = np.array([t.cls for t in out_tracks])[keep]
        rows["frame"] = self.frame_id
        rows["id"] = np.array([t.track_id for t in out_tracks])[keep]
        rows["x"], rows["y"], rows["w"], rows["h"] = tlwh[keep].T
        rows["conf"] = np.array([t.score for t in out_tracks])[keep]
        rows["cls"] = cls
        rows["category"] = _CATEGORY_BY_CLS[cls]
        return rows

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def _tlbr_of_mean(mean: np.ndarray) -> np.ndarray:
    """(N, 8) Kalman means (xywh first) -> (N, 4) x1, y1, x2, y2."""
    half = mean[:, 2:4] / 2
    return np.concatenate([mean[:, :2] - half, mean[:, :2] + half], axis=1)


def _tlbr(tracks: list[Track]) -> np.ndarray:
    return _tlbr_of_mean(np.array([t.mean for t in tracks]))


def _features(tracks: list[Track], attr: str, dim: int) -> np.ndarray:
    """(N, dim) stacked track features; NaN rows for tracks that have none yet."""
    out = np.full((len(tracks), dim), np.nan, dtype=np.float32)
    for i, t in enumerate(tracks):
        value = getattr(t, attr)
        if value is not None:
            out[i] = value
    return out

