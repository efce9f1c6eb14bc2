"""ultralytics' trackers driven through their Python classes on stagetrack's detections.

Every tracker ultralytics ships (``TRACKER_MAP`` in ``ultralytics/trackers/track.py``) runs with
its own default yaml (``ultralytics/cfg/trackers/<name>.yaml``). The detections are the same
:class:`~stagetrack.track.tracker.Detections` stagetrack's tracker gets, wrapped in
:class:`DetBoxes` (the ``xywh``/``conf``/``cls`` view of ultralytics' ``Boxes`` that the
trackers read); ReID variants (``<name>+reid``) set ``with_reid: True, model: auto`` and receive
the same L2-normalised OSNet embeddings through ``update(..., feats=...)``, ultralytics' path
for native detector features. Frames (BGR) are passed as ``img`` when the video has images, so
trackers with global motion compensation (BoT-SORT, TrackTrack) use it as they would in
``model.track()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stagetrack import offline

offline.configure_ultralytics()

import yaml  # noqa: E402
from ultralytics.trackers.track import TRACKER_MAP  # noqa: E402
from ultralytics.utils import ROOT as ULTRALYTICS_ROOT  # noqa: E402
from ultralytics.utils import IterableSimpleNamespace  # noqa: E402

from stagetrack.data.sequence import CLASSES, empty_boxes  # noqa: E402
from stagetrack.track.tracker import MOT_CATEGORY, Detections  # noqa: E402

CFG_DIR = Path(ULTRALYTICS_ROOT) / "cfg" / "trackers"
REID_CAPABLE = ("botsort", "deepocsort", "tracktrack")  # trackers whose yaml has with_reid/model
_CATEGORY = np.array([MOT_CATEGORY[i] for i in range(len(CLASSES))])


class DetBoxes:
    """The part of ultralytics' numpy ``Boxes`` its trackers use: ``xywh`` (centre), ``xyxy``,
    ``conf``, ``cls``, ``len`` and boolean/integer indexing."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xywh = np.asarray(xywh, dtype=np.float32).reshape(-1, 4)
        self.conf = np.asarray(conf, dtype=np.float32).reshape(-1)
        self.cls = np.asarray(cls, dtype=np.float32).reshape(-1)

    @classmethod
    def from_detections(cls, dets: Detections) -> "DetBoxes":
        xywh = dets.tlwh.copy()
        xywh[:, :2] += xywh[:, 2:] / 2
        return cls(xywh, dets.score, dets.cls)

    @property
    def xyxy(self) -> np.ndarray:
        half = self.xywh[:, 2:] / 2
        return np.concatenate([self.xywh[:, :2] - half, self.xywh[:, :2] + half], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> "DetBoxes":
        return DetBoxes(self.xywh[index], self.conf[index], self.cls[index])


@dataclass(frozen=True)
class PeerSpec:
    """One peer: an ultralytics tracker type, its yaml, and what it is given."""

    name: str             # label in the tables, e.g. "botsort+reid"
    tracker_type: str     # key of TRACKER_MAP
    reid: bool            # with_reid on, fed stagetrack's embeddings

    def args(self) -> IterableSimpleNamespace:
        """The tracker's default yaml, plus ``with_reid``/``model: auto`` for ReID variants."""
        cfg = yaml.safe_load((CFG_DIR / f"{self.tracker_type}.yaml").read_text())
        if self.reid:
            cfg.update(with_reid=True, model="auto")
        cfg["device"] = "cpu"
        return IterableSimpleNamespace(**cfg)

    def defaults(self) -> dict[str, Any]:
        """The settings this peer runs with (for the report)."""
        return {k: v for k, v in vars(self.args()).items() if k != "device"}

    def make(self) -> Any:
        return TRACKER_MAP[self.tracker_type](args=self.args())


def available_peers(with_reid: bool) -> list[PeerSpec]:
    """Every tracker ultralytics ships, sorted by name; ReID variants too when ``with_reid``."""
    specs = [PeerSpec(name, name, False) for name in sorted(TRACKER_MAP)]
    if with_reid:
        specs += [PeerSpec(f"{name}+reid", name, True) for name in REID_CAPABLE if name in TRACKER_MAP]
    return specs


def rows_from_output(out: np.ndarray, frame: int) -> np.ndarray:
    """ultralytics' ``[x1, y1, x2, y2, id, score, cls, idx]`` rows -> ANN_DTYPE result rows."""
    out = np.asarray(out, dtype=np.float64).reshape(-1, 8)
    rows = empty_boxes(len(out))
    rows["frame"] = frame
    rows["id"] = out[:, 4].astype(np.int64)
    rows["x"], rows["y"] = out[:, 0], out[:, 1]
    rows["w"], rows["h"] = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    rows["conf"] = out[:, 5]
    cls = out[:, 6].astype(np.int64)
    rows["cls"] = cls
    rows["category"] = _CATEGORY[cls]
    return rows


def track_peer(spec: PeerSpec, frames: list[Detections], images: Callable[[int], np.ndarray] | None = None
               ) -> np.ndarray:
    """Run one peer over a video's detections; ANN_DTYPE result rows of every frame.

    ``images(frame)`` (1-based) gives the BGR frame for GMC; None runs without images.
    """
    tracker = spec.make()
    out = []
    for frame, dets in enumerate(frames, start=1):
        feats = dets.emb if spec.reid else None
        img = images(frame) if images is not None else None
        result = tracker.update(DetBoxes.from_detections(dets), img, feats=feats)
        out.append(rows_from_output(result, frame))
    return np.concatenate(out) if out else empty_boxes()
