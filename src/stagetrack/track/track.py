"""One tracked object: its state enum, Kalman state, appearance and short box history.

A :class:`Track` is plain data; the :class:`~stagetrack.track.tracker.Tracker` owns the Kalman
filter, runs predict/update for all tracks at once and moves tracks between states:

``New`` (born, unconfirmed) -> ``Tracked`` (matched again) <-> ``Lost`` (missed) -> ``Removed``
(lost for longer than the buffer, or a ``New`` track missed once). Tracks born in a sequence's
first frame start ``Tracked``, as in ByteTrack.
"""

from __future__ import annotations

import enum
from collections import deque

import numpy as np

from .kalman import xywh_to_tlwh


class TrackState(enum.IntEnum):
    New = 0
    Tracked = 1
    Lost = 2
    Removed = 3


class Track:
    """A track; every attribute is set here (no shared class-level state).

    ``mean``/``covariance`` are the Kalman state in xywh (see :mod:`.kalman`). ``history``
    holds the last ``history_len`` matched detection boxes (tlwh) and ``history_frames`` their
    frame numbers, oldest first. ``emb`` is the EMA of the L2-normalised ReID features of the
    matched detections (re-normalised after each update), ``hsv`` the EMA of their colour
    histograms (re-normalised to sum 1); either is None when detections carried none.
    ``gt_id`` is the ground-truth id of the last matched detection (-1 if unknown), used only
    to label logged association samples.
    """

    def __init__(self, track_id: int, cls: int, tlwh: np.ndarray, score: float, frame_id: int,
                 mean: np.ndarray, covariance: np.ndarray, *, history_len: int,
                 emb: np.ndarray | None = None, hsv: np.ndarray | None = None, gt_id: int = -1,
                 state: TrackState = TrackState.New) -> None:
        self.track_id = int(track_id)
        self.cls = int(cls)
        self.state = state
        self.mean = mean                      # (8,) x, y, w, h, vx, vy, vw, vh
        self.covariance = covariance          # (8, 8)
        self.score = float(score)
        self.hits = 1                         # detections matched, the birth one included
        self.age = 0                          # frames since birth
        self.start_frame = int(frame_id)
        self.frame_id = int(frame_id)         # last frame with a matched detection
        self.time_since_update = 0
        self.history: deque[np.ndarray] = deque([np.asarray(tlwh, dtype=np.float64)], maxlen=history_len)
        self.history_frames: deque[int] = deque([int(frame_id)], maxlen=history_len)
        self.emb = emb
        self.hsv = hsv
        self.gt_id = int(gt_id)

    @property
    def is_confirmed(self) -> bool:
        """Matched at least twice (or born in the first frame): eligible for output."""
        return self.state != TrackState.New

    @property
    def tlwh(self) -> np.ndarray:
        """Current box (Kalman estimate) as top-left x, y, width, height."""
        return xywh_to_tlwh(self.mean[:4])

    @property
    def tlbr(self) -> np.ndarray:
        """Current box (Kalman estimate) as x1, y1, x2, y2."""
        box = self.tlwh
        box[2:] += box[:2]
        return box

    def __repr__(self) -> str:
        return (f"Track(id={self.track_id}, cls={self.cls}, state={self.state.name}, "
                f"frames={self.start_frame}-{self.frame_id})")
