"""The one in-memory representation of a video's boxes and frames.

Every format module (``mot``, ``bdd``, ``visdrone``) reads into and writes from
:class:`Sequence`; the builder, tracker, evaluator and visualiser only ever see this type.

Boxes are one structured numpy array (``ANN_DTYPE``), one row per box, sorted by
``(frame, id)``. Box format is in the names: ``x, y, w, h`` is top-left width height (tlwh) in
pixels. ``frame`` is 1-based as in every MOT-style format. ``cls`` is the project's class index
(``CLASSES``) or ``IGNORE`` for boxes that are neither scored nor trained on (ignored regions,
distractors, "others"); ``category`` keeps the dataset's own label so writers round-trip it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CLASSES: tuple[str, ...] = ("person", "vehicle")
PERSON, VEHICLE = 0, 1
IGNORE = -1

# Bits of the ``flags`` field.
FLAG_OCCLUDED = 1
FLAG_TRUNCATED = 2
FLAG_CROWD = 4

ANN_DTYPE = np.dtype(
    [
        ("frame", "i4"),      # 1-based frame index
        ("id", "i8"),         # track identity within the sequence (-1 for detections)
        ("x", "f8"), ("y", "f8"), ("w", "f8"), ("h", "f8"),  # tlwh, pixels
        ("conf", "f4"),       # detection score, or MOT's gt "consider" flag (1/0)
        ("cls", "i2"),        # index into CLASSES, or IGNORE
        ("category", "U24"),  # the dataset's own label (e.g. '1', 'car', 'pedestrian')
        ("vis", "f4"),        # visible fraction in [0, 1]
        ("flags", "u1"),      # FLAG_* bits (occluded, truncated, crowd)
    ]
)


def empty_boxes(n: int = 0) -> np.ndarray:
    """A zero-filled box array of length n (``vis`` 1, ``conf`` 1, ``id`` -1)."""
    arr = np.zeros(n, dtype=ANN_DTYPE)
    arr["vis"] = 1.0
    arr["conf"] = 1.0
    arr["id"] = -1
    return arr


def sort_boxes(boxes: np.ndarray) -> np.ndarray:
    order = np.lexsort((boxes["id"], boxes["frame"]))
    return boxes[order]


def frame_bounds(frames: np.ndarray, length: int) -> np.ndarray:
    """``(length + 2,)`` offsets into frame-sorted rows: frame ``f``'s rows are ``[b[f - 1]:b[f]]``."""
    return np.searchsorted(frames, np.arange(1, length + 2))


def tlwh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) float array of x, y, w, h."""
    return np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"]], axis=1).astype(np.float64)


def tlbr(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) float array of x1, y1, x2, y2."""
    b = tlwh(boxes)
    b[:, 2:] += b[:, :2]
    return b


@dataclasses.dataclass
class Sequence:
    """A video: metadata, its frames on disk, and its boxes.

    ``image_paths[i]`` is the image of frame ``i + 1``; it may be empty for box-only data
    (public detections, result files).
    """

    name: str
    width: int
    height: int
    length: int
    fps: float = 30.0
    boxes: np.ndarray = dataclasses.field(default_factory=empty_boxes)
    image_paths: list[Path] = dataclasses.field(default_factory=list)
    source: str = ""                       # e.g. 'dancetrack', 'bdd', 'visdrone', 'mot17'
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.boxes.dtype != ANN_DTYPE:
            raise TypeError(f"Sequence.boxes must have ANN_DTYPE, got {self.boxes.dtype}")
        self.boxes = sort_boxes(self.boxes)

    def frame_boxes(self, frame: int) -> np.ndarray:
        """Rows of one 1-based frame (a view-like slice; boxes are frame-sorted)."""
        lo, hi = np.searchsorted(self.boxes["frame"], [frame, frame + 1])
        return self.boxes[lo:hi]

    def iter_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """(frame, rows) for every frame 1..length, including frames with no boxes."""
        starts = frame_bounds(self.boxes["frame"], self.length)
        for f in range(1, self.length + 1):
            yield f, self.boxes[starts[f - 1]:starts[f]]

    def image(self, frame: int) -> Path:
        return self.image_paths[frame - 1]

    @property
    def track_ids(self) -> np.ndarray:
        keep = self.boxes["cls"] != IGNORE
        return np.unique(self.boxes["id"][keep])

    def clip(self, start: int, length: int, stride: int = 1, name: str | None = None) -> "Sequence":
        """Frames ``start, start+stride, ...`` (``length`` of them, 1-based), renumbered from 1.

        Identities are kept, so a track keeps its id across the clips of one video.
        """
        frames = np.arange(start, start + length * stride, stride)
        if start < 1 or length < 1 or stride < 1 or frames[-1] > self.length:
            raise ValueError(f"clip {start}..{frames[-1] if len(frames) else start} (stride {stride}) "
                             f"outside 1..{self.length} of {self.name}")
        keep = np.isin(self.boxes["frame"], frames)
        rows = self.boxes[keep].copy()
        rows["frame"] = (rows["frame"] - start) // stride + 1
        return Sequence(
            name=name or f"{self.name}_{start:06d}",
            width=self.width, height=self.height, length=length, fps=self.fps / stride,
            boxes=rows,
            image_paths=[self.image_paths[f - 1] for f in frames] if self.image_paths else [],
            source=self.source,
            meta={**self.meta, "parent": self.name, "start": int(start), "stride": stride},
        )
