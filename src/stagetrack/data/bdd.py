"""BDD100K MOT (box tracking): reader and writer.

Layout under the dataset root::

    labels/box_track_20/{split}/{video}.json     a JSON list of frames
    images/track/{split}/{video}/{name}          one image per frame (``{video}-0000001.jpg``)

A frame is ``{"name", "videoName", "frameIndex" (0-based), "labels": [...]}`` and a label is
``{"id": str, "category", "box2d": {"x1", "y1", "x2", "y2"}, "attributes": {"occluded",
"truncated", "crowd"}}``. Boxes are read as tlwh with ``w = x2 - x1`` (TrackEval's BDD100K
convention). Numeric id strings become integers; if any id of a file is not numeric, all of
the file's ids are numbered 1, 2, ... in first-seen order.

``crowd`` sets ``FLAG_CROWD`` and makes the box ``IGNORE`` (BDD's crowd regions);
``occluded`` and ``truncated`` set their flags. BDD has only a yes/no occlusion, so an
occluded box reads with ``vis`` 0.5 (else 1.0); the writer marks a box occluded when its
occlusion flag is set or its ``vis`` is below 1. The frame rate is not in the files (5 fps
for the annotated frames). The image size comes from the first image's header; without an
image folder it is BDD100K's 1280x720.

Validation findings for JSON point at the line where the frame starts and name the element
by its JSON path, e.g. ``[3].labels[2].box2d.x1`` (real BDD files are one line per file, so
the path is what locates the problem).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_write_json
from . import mot
from .mot import Problem
from .sequence import (FLAG_CROWD, FLAG_OCCLUDED, FLAG_TRUNCATED, IGNORE, PERSON, VEHICLE, Sequence, empty_boxes,
                       frame_bounds)

DEFAULT_CLASS_MAP: dict[str, str] = {
    "pedestrian": "person",
    "rider": "person",
    "car": "vehicle",
    "truck": "vehicle",
    "bus": "vehicle",
    "train": "vehicle",
    "motorcycle": "vehicle",
    "bicycle": "vehicle",
    "other person": "ignore",
    "other vehicle": "ignore",
    "trailer": "ignore",
}
LABELS: tuple[str, ...] = tuple(DEFAULT_CLASS_MAP)
# The category written for a box of each class when it has no BDD label.
CATEGORY_OF_CLASS: dict[int, str] = {PERSON: "pedestrian", VEHICLE: "car", IGNORE: "other vehicle"}
DEFAULT_SIZE = (1280, 720)  # every BDD100K video
DEFAULT_FPS = 5.0
OCCLUDED_VIS = 0.5
LABELS_DIR = ("labels", "box_track_20")
IMAGES_DIR = ("images", "track")

_WS = re.compile(r"\s*")


@dataclasses.dataclass
class Labels:
    """Everything of one label file, flattened: frames in frameIndex order and one entry per box."""

    video: str
    frame_names: list[str]
    frame_lines: list[int]
    frame_items: list[int]     # position of each frame in the JSON list
    frame: np.ndarray          # (N,) 1-based frame of each box
    raw_id: list[str]
    category: list[str]
    box_tlbr: np.ndarray       # (N, 4) x1, y1, x2, y2
    occluded: np.ndarray
    truncated: np.ndarray
    crowd: np.ndarray
    line: np.ndarray           # (N,) line where the box's frame starts
    path: list[str]            # (N,) JSON path of each label, e.g. '[3].labels[2]'


def label_dir(root: str | Path, split: str) -> Path:
    return Path(root).joinpath(*LABELS_DIR, split)


def image_dir(root: str | Path, split: str, video: str) -> Path:
    return Path(root).joinpath(*IMAGES_DIR, split, video)


def load_frames(path: str | Path) -> tuple[list[object], list[int]]:
    """The top-level JSON list of a label file and the line where each element starts."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    decoder = json.JSONDecoder()
    items: list[object] = []
    lines: list[int] = []
    i = _WS.match(text, 0).end()
    if not text.startswith("[", i):
        try:
            decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
        raise DataError("expected a JSON list of frames", file=path, line=1)
    line, pos = 1, 0
    i = _WS.match(text, i + 1).end()
    try:
        while not text.startswith("]", i):
            obj, end = decoder.raw_decode(text, i)
            line += text.count("\n", pos, i)
            pos = i
            items.append(obj)
            lines.append(line)
            i = _WS.match(text, end).end()
            if text.startswith(",", i):
                i = _WS.match(text, i + 1).end()
            elif not text.startswith("]", i):
                raise json.JSONDecodeError("expected ',' or ']'", text, i)
        if text[i + 1:].strip():
            raise json.JSONDecodeError("extra data after the list", text, i + 1)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    return items, lines


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def scan_labels(path: str | Path) -> tuple[Labels, list[Problem]]:
    """Parse a label file, collecting every structural problem (with line and JSON path).

    Labels or frames with a problem are left out of the result.
    """
    path = Path(path)
    items, item_lines = load_frames(path)
    problems: list[Problem] = []
    frames: list[tuple[int, str, int, int]] = []  # (frameIndex, name, line, position)
    video = ""
    box_rows: list[tuple] = []
    for i, (item, line) in enumerate(zip(items, item_lines)):
        where = f"[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(line, where, "expected a frame object"))
            continue
        name, index = item.get("name"), item.get("frameIndex")
        if not isinstance(name, str) or not name:
            problems.append(Problem(line, f"{where}.name", f"expected an image file name, got {name!r}"))
            continue
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            problems.append(Problem(line, f"{where}.frameIndex", f"expected an integer >= 0, got {index!r}"))
            continue
        video = video or str(item.get("videoName") or "")
        frames.append((index, name, line, i))
        labels = item.get("labels") or []
        if not isinstance(labels, list):
            problems.append(Problem(line, f"{where}.labels", "expected a list"))
            continue
        for j, label in enumerate(labels):
            lw = f"{where}.labels[{j}]"
            if not isinstance(label, dict):
                problems.append(Problem(line, lw, "expected a label object"))
                continue
            raw_id, category, box = label.get("id"), label.get("category"), label.get("box2d")
            if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
                problems.append(Problem(line, f"{lw}.id", f"expected an id string, got {raw_id!r}"))
                continue
            if not isinstance(category, str) or not category:
                problems.append(Problem(line, f"{lw}.category", f"expected a label string, got {category!r}"))
                continue
            if not isinstance(box, dict):
                problems.append(Problem(line, f"{lw}.box2d", "missing or not an object with x1, y1, x2, y2"))
                continue
            coords = [_number(box.get(k)) for k in ("x1", "y1", "x2", "y2")]
            bad = [k for k, v in zip(("x1", "y1", "x2", "y2"), coords) if v is None]
            if bad:
                problems.append(Problem(line, f"{lw}.box2d.{bad[0]}",
                                        f"expected a finite number, got {box.get(bad[0])!r}"))
                continue
            attrs = label.get("attributes") or {}
            if not isinstance(attrs, dict):
                problems.append(Problem(line, f"{lw}.attributes", "expected an object"))
                continue
            flags = [bool(attrs.get(k, False)) for k in ("occluded", "truncated", "crowd")]
            box_rows.append((i, str(raw_id), category, *coords, *flags, line, lw))
    # frames: unique frameIndex, numbered 0..n-1 without gaps
    frames.sort()
    seen: dict[int, int] = {}
    for k, (index, _, line, i) in enumerate(frames):
        if index in seen:
            problems.append(Problem(line, f"[{i}].frameIndex", f"frameIndex {index} repeats item [{seen[index]}]"))
        elif index != len(seen):
            problems.append(Problem(line, f"[{i}].frameIndex",
                                    f"frameIndex {index} leaves a gap (frames must be numbered 0..n-1)"))
        seen.setdefault(index, i)
    frame_of_item = {i: index + 1 for index, _, _, i in frames}
    box_rows = [r for r in box_rows if r[0] in frame_of_item]
    problems.sort(key=lambda p: p.line or 0)
    n = len(box_rows)
    cols = list(zip(*box_rows)) if n else [()] * 12
    labels = Labels(
        video=video or path.stem,
        frame_names=[name for _, name, _, _ in frames],
        frame_lines=[line for _, _, line, _ in frames],
        frame_items=[i for _, _, _, i in frames],
        frame=np.array([frame_of_item[i] for i in cols[0]], dtype=np.int64),
        raw_id=list(cols[1]),
        category=list(cols[2]),
        box_tlbr=np.array(list(zip(*cols[3:7])), dtype=np.float64).reshape(n, 4),
        occluded=np.array(cols[7], dtype=bool),
        truncated=np.array(cols[8], dtype=bool),
        crowd=np.array(cols[9], dtype=bool),
        line=np.array(cols[10], dtype=np.int64),
        path=list(cols[11]) if n else [],
    )
    return labels, problems


def track_ids(raw_ids: list[str]) -> np.ndarray:
    """Integer ids: numeric strings as numbers, else 1, 2, ... in first-seen order."""
    if all(r.isdigit() for r in raw_ids):
        return np.array([int(r) for r in raw_ids], dtype=np.int64)
    order: dict[str, int] = {}
    return np.array([order.setdefault(r, len(order) + 1) for r in raw_ids], dtype=np.int64)


def boxes_from_labels(labels: Labels, class_map: Mapping[str, str] | None = None) -> np.ndarray:
    boxes = empty_boxes(len(labels.frame))
    boxes["frame"] = labels.frame
    boxes["id"] = track_ids(labels.raw_id)
    x1, y1, x2, y2 = labels.box_tlbr.T
    boxes["x"], boxes["y"], boxes["w"], boxes["h"] = x1, y1, x2 - x1, y2 - y1
    boxes["category"] = labels.category
    cls = mot.apply_class_map(boxes["category"], class_map or DEFAULT_CLASS_MAP)
    boxes["cls"] = np.where(labels.crowd, IGNORE, cls)
    boxes["vis"] = np.where(labels.occluded, OCCLUDED_VIS, 1.0)
    boxes["flags"] = (FLAG_OCCLUDED * labels.occluded + FLAG_TRUNCATED * labels.truncated
                      + FLAG_CROWD * labels.crowd)
    return boxes


def read_sequence(
    label_json: str | Path,
    image_dir: str | Path | None = None,
    *,
    source: str = "",
    class_map: Mapping[str, str] | None = None,
    fps: float = DEFAULT_FPS,
) -> Sequence:
    """Read one video's label file; ``image_dir`` holds its frames (named as in the JSON)."""
    label_json = Path(label_json)
    if not label_json.is_file():
        raise DataError("label file not found", file=label_json)
    labels, problems = scan_labels(label_json)
    mot.raise_problems(label_json, problems)
    boxes = boxes_from_labels(labels, class_map)
    paths: list[Path] = []
    width, height = DEFAULT_SIZE
    if image_dir is not None:
        image_dir = Path(image_dir)
        if not image_dir.is_dir():
            raise DataError("image folder not found", file=image_dir)
        paths = [image_dir / name for name in labels.frame_names]
        if paths:
            width, height = mot.image_size(paths[0])
    cmap = dict(class_map) if class_map else dict(DEFAULT_CLASS_MAP)
    return Sequence(name=labels.video, width=width, height=height, length=len(labels.frame_names),
                    fps=fps, boxes=boxes, image_paths=paths, source=source,
                    meta={"format": "bdd", "class_map": cmap})


def write_sequence(
    seq: Sequence,
    root: str | Path,
    frames: Iterable[np.ndarray] | None = None,
    *,
    split: str = "train",
    jpeg_quality: int = 90,
    link: bool = False,
) -> Sequence:
    """Write ``seq`` as ``labels/box_track_20/{split}/{name}.json`` plus its images.

    Images come from ``frames`` (BGR uint8) or are copied/linked from ``seq.image_paths``.
    Boxes keep their BDD label when they have one, else get pedestrian / car / other
    vehicle for person / vehicle / ignored. Returns the sequence as a reader sees it now.
    """
    root = Path(root)
    img_dir = image_dir(root, split, seq.name)
    paths = mot.write_images(seq, img_dir, frames, lambda k: f"{seq.name}-{k:07d}",
                             jpeg_quality=jpeg_quality, link=link)
    names = [p.name for p in paths] or [f"{seq.name}-{k:07d}.jpg" for k in range(1, seq.length + 1)]
    cats = mot.native_categories(seq, "bdd", lambda c: np.isin(c, LABELS), CATEGORY_OF_CLASS)
    out = []
    starts = frame_bounds(seq.boxes["frame"], seq.length)
    for f in range(1, seq.length + 1):
        labels = []
        for r in range(starts[f - 1], starts[f]):
            b = seq.boxes[r]
            labels.append({
                "id": str(int(b["id"])),
                "category": str(cats[r]),
                "box2d": {"x1": float(b["x"]), "y1": float(b["y"]),
                          "x2": float(b["x"] + b["w"]), "y2": float(b["y"] + b["h"])},
                "attributes": {
                    "occluded": bool(b["flags"] & FLAG_OCCLUDED) or bool(b["vis"] < 1.0),
                    "truncated": bool(b["flags"] & FLAG_TRUNCATED),
                    "crowd": bool(b["flags"] & FLAG_CROWD),
                },
            })
        out.append({"name": names[f - 1], "videoName": seq.name, "frameIndex": f - 1, "labels": labels})
    label_json = label_dir(root, split) / f"{seq.name}.json"
    atomic_write_json(label_json, out)
    kept = seq.meta.get("format", "bdd") == "bdd" and seq.meta.get("class_map")
    written = read_sequence(label_json, img_dir if paths else None, source=seq.source,
                            class_map=kept or None, fps=seq.fps)
    if not paths:
        written.width, written.height = seq.width, seq.height
    written.meta = {**seq.meta, **written.meta}
    return written


def list_sequences(root: str | Path, split: str = "train") -> list[Path]:
    """Sorted label files of ``split``."""
    folder = label_dir(root, split)
    if not folder.is_dir():
        raise DataError(f"no BDD100K box-track labels for split {split!r}", file=folder)
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
