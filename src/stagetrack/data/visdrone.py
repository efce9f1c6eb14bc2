"""VisDrone2019-MOT: reader and writer.

Layout under the dataset root (e.g. ``VisDrone2019-MOT-train``)::

    annotations/{SEQ}.txt      frame,id,x,y,w,h,score,category,truncation,occlusion
    sequences/{SEQ}/0000001.jpg

Categories (``NAMES``): 0 ignored regions, 1 pedestrian, 2 people, 3 bicycle, 4 car, 5 van,
6 truck, 7 tricycle, 8 awning-tricycle, 9 bus, 10 motor, 11 others. ``category`` keeps the
number as a string ('4'); class maps may name categories by number or by name.

As in the VisDrone toolkit, rows of category 0 and rows with score 0 are ignored regions
(``IGNORE`` whatever the class map says) and 11 (others) is ignored by default. The default
map keeps the classes the toolkit's MOT evaluation scores, pedestrian + people as person and
car, van, truck, bus as vehicle; bicycle, tricycle, awning-tricycle and motor are ignored.
Occlusion 0/1/2 (none, 1-50 %, 50-100 %) reads as ``vis`` 1.0/0.75/0.25 and sets
``FLAG_OCCLUDED`` when above 0; truncation above 0 sets ``FLAG_TRUNCATED``; -1 (used on
ignored regions) means unknown. The writer turns ``vis`` back into occlusion (1 -> 0,
[0.5, 1) -> 1, below 0.5 -> 2). The frame rate is not in the files (default 25).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_text
from . import mot
from .sequence import FLAG_OCCLUDED, FLAG_TRUNCATED, IGNORE, PERSON, VEHICLE, Sequence, empty_boxes

FIELDS: tuple[str, ...] = ("frame", "id", "x", "y", "w", "h", "score", "category", "truncation", "occlusion")
INTEGER_FIELDS = ("frame", "id", "category", "truncation", "occlusion")

NAMES: dict[str, str] = {
    "0": "ignored regions", "1": "pedestrian", "2": "people", "3": "bicycle", "4": "car", "5": "van",
    "6": "truck", "7": "tricycle", "8": "awning-tricycle", "9": "bus", "10": "motor", "11": "others",
}
DEFAULT_CLASS_MAP: dict[str, str] = {
    "0": "ignore", "1": "person", "2": "person", "3": "ignore", "4": "vehicle", "5": "vehicle",
    "6": "vehicle", "7": "ignore", "8": "ignore", "9": "vehicle", "10": "ignore", "11": "ignore",
}
CATEGORY_OF_CLASS: dict[int, str] = {PERSON: "1", VEHICLE: "4", IGNORE: "0"}
VIS_OF_OCCLUSION = {0: 1.0, 1: 0.75, 2: 0.25}
DEFAULT_FPS = 25.0


def normalize_class_map(class_map: Mapping[str, str]) -> dict[str, str]:
    """The class map keyed by category number; names ('car') are accepted as keys too."""
    number_of = {name: num for num, name in NAMES.items()}
    out = {}
    for key, value in class_map.items():
        num = key if key in NAMES else number_of.get(key)
        if num is None:
            raise ConfigError("unknown VisDrone category", field=f"class_map.{key}",
                              allowed=[*NAMES, *NAMES.values()])
        out[num] = value
    return out


def boxes_from_values(values: np.ndarray, class_map: Mapping[str, str] | None = None) -> np.ndarray:
    """ANN_DTYPE rows from a :func:`mot.parse_csv` table of ``FIELDS``."""
    col = {name: values[:, j] for j, name in enumerate(FIELDS)}
    boxes = empty_boxes(len(values))
    boxes["frame"] = col["frame"]
    boxes["id"] = col["id"]
    for k in "xywh":
        boxes[k] = col[k]
    boxes["conf"] = col["score"]
    category = col["category"].astype(np.int64)
    cmap = normalize_class_map(class_map) if class_map else DEFAULT_CLASS_MAP
    boxes["category"], cls = mot.map_class_numbers(category, cmap)
    boxes["cls"] = np.where((category == 0) | (col["score"] == 0), IGNORE, cls)
    occlusion = col["occlusion"].astype(np.int64)
    for level, vis in VIS_OF_OCCLUSION.items():
        boxes["vis"][occlusion == level] = vis
    boxes["flags"] = FLAG_OCCLUDED * (occlusion > 0) + FLAG_TRUNCATED * (col["truncation"] > 0)
    return boxes


def read_boxes(ann_file: str | Path, class_map: Mapping[str, str] | None = None) -> np.ndarray:
    """The boxes of one annotation file."""
    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DataError("annotation file not found", file=ann_file)
    values, _, problems = mot.parse_csv(ann_file, FIELDS, required=len(FIELDS), integer=INTEGER_FIELDS)
    mot.raise_problems(ann_file, problems)
    return boxes_from_values(values, class_map)


def read_sequence(
    ann_file: str | Path,
    seq_dir: str | Path,
    *,
    source: str = "",
    class_map: Mapping[str, str] | None = None,
    fps: float = DEFAULT_FPS,
) -> Sequence:
    """Read one sequence: its annotation file and its image folder (size from the first image)."""
    ann_file, seq_dir = Path(ann_file), Path(seq_dir)
    boxes = read_boxes(ann_file, class_map)
    if not seq_dir.is_dir():
        raise DataError("sequence image folder not found", file=seq_dir)
    images = mot.list_images(seq_dir)
    if not images:
        raise DataError("no images in the sequence folder", file=seq_dir)
    width, height = mot.image_size(images[0])
    cmap = normalize_class_map(class_map) if class_map else dict(DEFAULT_CLASS_MAP)
    return Sequence(name=ann_file.stem, width=width, height=height, length=len(images), fps=fps,
                    boxes=boxes, image_paths=images, source=source,
                    meta={"format": "visdrone", "class_map": cmap})


def occlusion_of_vis(vis: np.ndarray) -> np.ndarray:
    return np.where(vis >= 1.0, 0, np.where(vis >= 0.5, 1, 2))


def write_sequence(
    seq: Sequence,
    root: str | Path,
    frames: Iterable[np.ndarray] | None = None,
    *,
    jpeg_quality: int = 90,
    link: bool = False,
) -> Sequence:
    """Write ``annotations/{name}.txt`` and ``sequences/{name}/%07d.jpg``.

    Images come from ``frames`` (BGR uint8) or are copied/linked from ``seq.image_paths``.
    Boxes keep their VisDrone category when they have one, else get 1 / 4 / 0 (pedestrian /
    car / ignored region) for person / vehicle / ignored. Returns the sequence as a reader
    sees it now.
    """
    root = Path(root)
    seq_dir = root / "sequences" / seq.name
    paths = mot.write_images(seq, seq_dir, frames, lambda k: f"{k:07d}", jpeg_quality=jpeg_quality, link=link)
    b = seq.boxes
    cats = mot.native_categories(seq, "visdrone", lambda c: np.isin(c, list(NAMES)), CATEGORY_OF_CLASS)
    cols = [b["frame"], b["id"], b["x"], b["y"], b["w"], b["h"], b["conf"], cats.astype(np.int64),
            ((b["flags"] & FLAG_TRUNCATED) > 0).astype(np.int64), occlusion_of_vis(b["vis"])]
    ann_file = root / "annotations" / f"{seq.name}.txt"
    atomic_write_text(ann_file, mot.format_rows(cols))
    kept = (seq.meta.get("format", "visdrone") == "visdrone" and seq.meta.get("class_map")) or None
    if paths:
        written = read_sequence(ann_file, seq_dir, source=seq.source, class_map=kept, fps=seq.fps)
    else:
        written = Sequence(name=seq.name, width=seq.width, height=seq.height, length=seq.length,
                           fps=seq.fps, boxes=read_boxes(ann_file, kept), source=seq.source,
                           meta={"format": "visdrone", "class_map": dict(kept or DEFAULT_CLASS_MAP)})
    written.meta = {**seq.meta, **written.meta}
    return written


def list_sequences(root: str | Path) -> list[str]:
    """Sorted names of the sequences that have an annotation file."""
    folder = Path(root) / "annotations"
    if not folder.is_dir():
        raise DataError("no VisDrone annotations/ folder", file=folder)
    return sorted(p.stem for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())
