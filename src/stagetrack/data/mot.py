"""MOTChallenge layout (MOT15/16/17/20, DanceTrack): reader and writer.

A sequence is a folder::

    SEQ/seqinfo.ini      [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    SEQ/img1/000001.jpg  one image per frame; sorted file names give frame order
    SEQ/gt/gt.txt        frame,id,x,y,w,h,flag,class,vis      (ground truth, tlwh pixels)
    SEQ/det/det.txt      frame,-1,x,y,w,h,score,-1,-1,-1       (public detections)

Tracker output ("result" files) is ``frame,id,x,y,w,h,score,class,-1,-1``. Column 8 of a
result row is this project's convention for its two classes: the MOT class number of the box
(1 = person, 3 = vehicle) or -1 when unknown, which the readers map to person (the
MOTChallenge default). With TrackEval's MOT preprocessing on, only rows of class -1 or 1 are
accepted, so evaluate vehicles through ``stagetrack.evaluate``, which splits classes first.

Class mapping (``DEFAULT_CLASS_MAP``) follows MOT17 and TrackEval: class 1 (pedestrian) is a
person; the distractor classes 2 (person on vehicle), 7 (static person), 8 (distractor) and
12 (reflection) become ``IGNORE`` but their rows are kept, because the evaluator does the
devkit's distractor matching with them; occluders (9-11) and crowd (13) are ``IGNORE`` too.
Vehicle classes 3 (car), 4 (bicycle), 5 (motorbike), 6 (non-motorized vehicle) become
``vehicle`` for training; MOT17's official evaluation does not score them. MOT15-style rows
with class -1 (no class column, or world coordinates -1) are persons, and so are the rows of a
file whose class column holds non-integers: 2D MOT 2015 writes world coordinates there
(TUD-Stadtmitte's ground truth does), and a class number is always an integer. Rows whose flag is 0
keep ``conf`` 0: the evaluator drops them. The visibility column becomes ``vis`` (MOT15's -1
means unknown and reads as 1).

The project's own two-class ground truth, written by :func:`write_sequence`, uses MOT class
numbers too: 1 = person, 3 = vehicle, 8 = ignored (category strings '1', '3', '8'), so that
TrackEval-minded users read it as they would MOT17.

Parsing is vectorised (``np.loadtxt``); when a file does not parse as a table it is re-read
line by line so that each malformed line is reported with its file, line and field. The
helpers shared with the other format modules (CSV parsing, class maps, image I/O) live here
because MOT text is the base format the others borrow from.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_path, atomic_write_text
from .sequence import CLASSES, IGNORE, PERSON, VEHICLE, Sequence, empty_boxes

log = logging.getLogger(__name__)

Kind = Literal["gt", "det", "result"]

FIELDS: dict[str, tuple[str, ...]] = {
    "gt": ("frame", "id", "x", "y", "w", "h", "flag", "class", "vis"),
    "det": ("frame", "id", "x", "y", "w", "h", "score"),
    "result": ("frame", "id", "x", "y", "w", "h", "score", "class"),
}
REQUIRED_FIELDS = 6  # frame, id, x, y, w, h; the rest default (flag/score 1, class -1, vis 1)
INTEGER_FIELDS = ("frame", "id", "class")

DEFAULT_CLASS_MAP: dict[str, str] = {
    "-1": "person",    # MOT15 style: no class column
    "1": "person",     # pedestrian
    "2": "ignore",     # person on vehicle (distractor)
    "3": "vehicle",    # car
    "4": "vehicle",    # bicycle
    "5": "vehicle",    # motorbike
    "6": "vehicle",    # non-motorized vehicle
    "7": "ignore",     # static person (distractor)
    "8": "ignore",     # distractor
    "9": "ignore",     # occluder
    "10": "ignore",    # occluder on the ground
    "11": "ignore",    # occluder full
    "12": "ignore",    # reflection (distractor)
    "13": "ignore",    # crowd
}
# The category this project writes for a box of each class when the box has no MOT label.
CATEGORY_OF_CLASS: dict[int, str] = {PERSON: "1", VEHICLE: "3", IGNORE: "8"}

SEQINFO_KEYS: tuple[str, ...] = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")
DEFAULT_FPS = 30.0


class Problem(NamedTuple):
    """One malformed value: 1-based line (None for the whole file), field name, message."""

    line: int | None
    field: str | None
    message: str


# ----------------------------------------------------------------------------- shared helpers

def raise_problems(path: str | Path, problems: list[Problem]) -> None:
    """Raise the first problem as a :class:`DataError`, saying how many more there are."""
    if problems:
        first = problems[0]
        more = f"{len(problems) - 1} more problem(s) in this file; run `stagetrack validate`" \
            if len(problems) > 1 else None
        raise DataError(first.message, file=path, line=first.line, field=first.field, hint=more)


def parse_csv(
    path: str | Path,
    fields: tuple[str, ...],
    *,
    required: int = REQUIRED_FIELDS,
    integer: Iterable[str] = INTEGER_FIELDS,
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Parse a comma-separated numeric table.

    Returns ``(values, lines, problems)``: ``values`` is (N, len(fields)) float64 with NaN
    where an optional trailing column is absent, ``lines`` the 1-based line of each row, and
    ``problems`` every malformed line (too few columns, not a number, not finite, not an
    integer where one is needed). Rows with a problem are left out of ``values``. Blank lines
    are skipped; columns after ``fields`` are ignored.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    lines = text.splitlines()
    keep = [i for i, line in enumerate(lines) if line.strip()]
    n_fields = len(fields)
    if not keep:
        return np.zeros((0, n_fields)), np.zeros(0, dtype=np.int64), []
    rows = [lines[i] for i in keep]
    line_no = np.asarray(keep, dtype=np.int64) + 1
    problems: list[Problem] = []
    try:
        probe = rows[0].count(",") + 1
        usecols = range(min(probe, n_fields))
        values = np.loadtxt(rows, delimiter=",", ndmin=2, comments=None, usecols=usecols, dtype=np.float64)
        if values.shape[1] < required:
            raise ValueError("too few columns")
        if probe < n_fields and text.count(",") != len(rows) * (probe - 1):
            raise ValueError("rows with more columns than the first")  # their extra fields count
        present = np.full(len(values), values.shape[1])
        if values.shape[1] < n_fields:
            values = np.hstack([values, np.full((len(values), n_fields - values.shape[1]), np.nan)])
    except ValueError:
        values, present, ok_line, problems = _parse_lines(rows, line_no, fields, required)
        line_no = ok_line
    # non-finite values and non-integers among the columns each row has
    bad_row = np.zeros(len(values), dtype=bool)
    integer = set(integer)
    for j, name in enumerate(fields):
        col = values[:, j]
        has = present > j
        bad = has & ~np.isfinite(col)
        if name in integer:
            bad_int = has & np.isfinite(col) & (col != np.round(col))
            for r in np.flatnonzero(bad_int):
                problems.append(Problem(int(line_no[r]), name, f"expected an integer, got {col[r]:g}"))
            bad_row |= bad_int
        for r in np.flatnonzero(bad):
            problems.append(Problem(int(line_no[r]), name, f"not a finite number: {col[r]:g}"))
        bad_row |= bad
    problems.sort(key=lambda p: (p.line or 0, fields.index(p.field) if p.field in fields else 0))
    return values[~bad_row], line_no[~bad_row], problems


def _parse_lines(
    rows: list[str], line_no: np.ndarray, fields: tuple[str, ...], required: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Problem]]:
    """The slow path of :func:`parse_csv`: one line at a time, recording each problem."""
    n_fields = len(fields)
    out, present, lines, problems = [], [], [], []
    for text, line in zip(rows, line_no.tolist()):
        tokens = text.split(",")
        if len(tokens) < required:
            problems.append(Problem(line, fields[len(tokens)],
                                    f"missing: {len(tokens)} column(s), at least {required} needed "
                                    f"({', '.join(fields[:required])})"))
            continue
        row = [np.nan] * n_fields
        ok = True
        for j, token in enumerate(tokens[:n_fields]):
            try:
                row[j] = float(token)
            except ValueError:
                problems.append(Problem(line, fields[j], f"not a number: {token.strip()!r}"))
                ok = False
        if ok:
            out.append(row)
            present.append(min(len(tokens), n_fields))
            lines.append(line)
    values = np.asarray(out, dtype=np.float64).reshape(-1, n_fields)
    return values, np.asarray(present, dtype=np.int64), np.asarray(lines, dtype=np.int64), problems


def check_class_map(class_map: Mapping[str, str], where: str = "class_map") -> None:
    for key, value in class_map.items():
        if value not in (*CLASSES, "ignore"):
            raise ConfigError(f"invalid class {value!r}", field=f"{where}.{key}", allowed=(*CLASSES, "ignore"))


def apply_class_map(categories: np.ndarray, class_map: Mapping[str, str]) -> np.ndarray:
    """(N,) int16 class index of each category label; labels not in the map are IGNORE."""
    check_class_map(class_map)
    index = {name: i for i, name in enumerate(CLASSES)}
    out = np.full(len(categories), IGNORE, dtype=np.int16)
    if len(categories) == 0:
        return out
    labels, inverse = np.unique(categories, return_inverse=True)
    lut = np.array([index.get(class_map.get(str(label), "ignore"), IGNORE) for label in labels], dtype=np.int16)
    return lut[inverse]


def map_class_numbers(numbers: np.ndarray, class_map: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(category labels, class indices) of integer class numbers (mapped once per distinct value)."""
    uniq, inverse = np.unique(np.asarray(numbers).astype(np.int64), return_inverse=True)
    labels = uniq.astype(str)
    return labels[inverse.reshape(-1)], apply_class_map(labels, class_map)[inverse.reshape(-1)]


def native_categories(
    seq: Sequence, fmt: str, valid: Callable[[np.ndarray], np.ndarray], of_class: Mapping[int, str]
) -> np.ndarray:
    """The category labels a writer of format ``fmt`` stores for ``seq``'s boxes.

    A box keeps its own label when the sequence is not marked as read from another format
    (``seq.meta['format']``) and ``valid`` accepts the label (a boolean mask over labels);
    otherwise the label is derived from its class through ``of_class``.
    """
    cats = seq.boxes["category"]
    derived = np.full(len(cats), of_class[IGNORE], dtype=cats.dtype)
    for cls, label in of_class.items():
        derived[seq.boxes["cls"] == cls] = label
    if seq.meta.get("format", fmt) != fmt or len(cats) == 0:
        return derived
    return np.where(valid(cats), cats, derived)


def is_int_label(labels: np.ndarray) -> np.ndarray:
    """Mask of labels that are integers written in decimal ('3', '-1')."""
    labels = np.asarray(labels, dtype=str)
    digits = np.strings.isdigit(np.strings.lstrip(labels, "-"))
    return digits & (np.strings.count(labels, "-") <= 1)


def format_column(values: np.ndarray) -> list[str]:
    """Text of each number: integers as such, float64 in its shortest round-trip form
    ('912' for 912.0), float32 with 7 significant digits (exact for values read from text
    with up to 7 digits, such as MOT visibilities)."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return list(map(str, values.tolist()))
    if values.dtype == np.float32:
        return ["%.7g" % v for v in values.tolist()]
    return [t[:-2] if t.endswith(".0") else t for t in map(repr, values.tolist())]


def format_rows(columns: list[np.ndarray]) -> str:
    """Comma-join numeric columns into lines; '' for no rows."""
    if not columns or len(columns[0]) == 0:
        return ""
    return "\n".join(map(",".join, zip(*map(format_column, columns)))) + "\n"


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from an image file's header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except FileNotFoundError:
        raise DataError("image not found", file=path) from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"unreadable image: {exc}", file=path) from None


def list_images(img_dir: str | Path, ext: str | None = None) -> list[Path]:
    """Sorted image files in ``img_dir`` (with suffix ``ext`` if given, case-insensitive)."""
    img_dir = Path(img_dir)
    exts = {ext.lower()} if ext else {".jpg", ".jpeg", ".png", ".bmp"}
    with os.scandir(img_dir) as it:
        names = sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in exts)
    return [img_dir / n for n in names]


def write_images(
    seq: Sequence,
    img_dir: Path,
    frames: Iterable[np.ndarray] | None,
    name_of: Callable[[int], str],
    *,
    jpeg_quality: int = 90,
    link: bool = False,
) -> list[Path]:
    """Write ``seq``'s frames into ``img_dir`` as ``name_of(k) + suffix``; return the paths.

    With ``frames`` (BGR uint8 arrays, one per frame) each is JPEG-encoded; otherwise
    ``seq.image_paths`` are copied, or hard-linked when ``link`` (falling back to a copy
    across file systems). Each file is written atomically.
    """
    import cv2

    paths: list[Path] = []
    if frames is not None:
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        for k, frame in enumerate(frames, 1):
            if k > seq.length:
                raise ValueError(f"{seq.name}: more frames than its length {seq.length}")
            if frame.shape[:2] != (seq.height, seq.width) or frame.dtype != np.uint8:
                raise ValueError(f"{seq.name} frame {k}: got {frame.shape} {frame.dtype}, "
                                 f"expected ({seq.height}, {seq.width}, 3) uint8")
            dst = img_dir / f"{name_of(k)}.jpg"
            with atomic_path(dst) as tmp:
                if not cv2.imwrite(str(tmp), frame, params):
                    raise DataError("cv2.imwrite failed", file=dst)
            paths.append(dst)
        if len(paths) != seq.length:
            raise ValueError(f"{seq.name}: {len(paths)} frames given for length {seq.length}")
        return paths
    for k, src in enumerate(seq.image_paths, 1):
        dst = img_dir / f"{name_of(k)}{Path(src).suffix}"
        _copy_or_link(Path(src), dst, link)
        paths.append(dst)
    return paths


def _copy_or_link(src: Path, dst: Path, link: bool) -> None:
    if not src.is_file():
        raise DataError("image not found", file=src)
    if dst.exists() and os.path.samefile(src, dst):
        return
    with atomic_path(dst) as tmp:
        if link:
            tmp.unlink()
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copyfile(src, tmp)


# ----------------------------------------------------------------------------- text files

def boxes_from_values(values: np.ndarray, kind: Kind, class_map: Mapping[str, str] | None = None) -> np.ndarray:
    """ANN_DTYPE rows from a :func:`parse_csv` table of ``FIELDS[kind]``."""
    fields = FIELDS[kind]
    col = {name: values[:, j] for j, name in enumerate(fields)}
    boxes = empty_boxes(len(values))
    boxes["frame"] = col["frame"]
    boxes["id"] = col["id"]
    for k in "xywh":
        boxes[k] = col[k]
    if kind == "gt":
        boxes["conf"] = np.nan_to_num(col["flag"], nan=1.0)
        vis = col["vis"]
        boxes["vis"] = np.where(np.isnan(vis) | (vis < 0), 1.0, vis)
    else:
        boxes["conf"] = np.nan_to_num(col["score"], nan=1.0)
    classes = col.get("class", np.full(len(values), -1.0))
    boxes["category"], boxes["cls"] = map_class_numbers(np.nan_to_num(classes, nan=-1),
                                                        class_map or DEFAULT_CLASS_MAP)
    return boxes


def parse_mot(path: str | Path, kind: Kind) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """:func:`parse_csv` of a gt, det or result file, MOT15 world coordinates recognised.

    2D MOT 2015 writes ten columns, world coordinates (x, y, z) after the score, where MOT16+
    writes class and visibility. A class number is always an integer, so ten-column rows whose
    class column holds non-integers mark the file as MOT15-style: those columns are dropped
    (every row: class -1, visibility 1). Elsewhere a non-integer class is an error.
    """
    if kind not in FIELDS:
        raise ValueError(f"kind must be one of {sorted(FIELDS)}, got {kind!r}")
    fields = FIELDS[kind]
    values, lines, problems = parse_csv(path, fields, integer=("frame", "id"))
    if "class" not in fields or not len(values):
        return values, lines, problems
    j = fields.index("class")
    fractional = np.isfinite(values[:, j]) & (values[:, j] != np.round(values[:, j]))
    if not fractional.any():
        return values, lines, problems
    if _columns(path) == 10:
        log.info("%s: ten columns with non-integers in the 8th (MOT15 world coordinates): rows have no class", path)
        values[:, j:] = np.nan
        return values, lines, problems
    problems = sorted(problems + [Problem(int(lines[r]), "class", f"expected an integer, got {values[r, j]:g}")
                                  for r in np.flatnonzero(fractional)], key=lambda p: p.line or 0)
    return values[~fractional], lines[~fractional], problems


def _columns(path: str | Path) -> int:
    """Number of comma-separated fields on the first non-blank line of ``path``."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return line.count(",") + 1
    return 0


def read_txt(path: str | Path, kind: Kind, *, class_map: Mapping[str, str] | None = None) -> np.ndarray:
    """Boxes of a gt, det or result file (see the module docstring for the columns)."""
    values, _, problems = parse_mot(path, kind)
    raise_problems(path, problems)
    return boxes_from_values(values, kind, class_map)


def write_txt(path: str | Path, boxes: np.ndarray, kind: Kind) -> None:
    """Write boxes as a gt, det or result file, atomically.

    ``gt`` writes the ``category`` column as the class number (it must be an integer label:
    use :func:`write_sequence` for boxes from other formats); ``result`` writes the class
    number of ``cls`` (1 person, 3 vehicle, 8 ignored); ``det`` writes -1 for id and class.
    """
    n = len(boxes)
    xywh = [boxes[k] for k in "xywh"]
    minus = np.full(n, -1, dtype=np.int64)
    if kind == "gt":
        ok = is_int_label(boxes["category"])
        if not ok.all():
            bad = sorted(set(boxes["category"][~ok].tolist()))
            raise ValueError(f"gt categories must be MOT class numbers, got {bad[:5]}")
        classes = boxes["category"].astype(np.int64)
        cols = [boxes["frame"], boxes["id"], *xywh, boxes["conf"], classes, boxes["vis"]]
    elif kind == "det":
        cols = [boxes["frame"], minus, *xywh, boxes["conf"], minus, minus, minus]
    elif kind == "result":
        classes = np.full(n, int(CATEGORY_OF_CLASS[IGNORE]), dtype=np.int64)
        for cls, label in CATEGORY_OF_CLASS.items():
            classes[boxes["cls"] == cls] = int(label)
        cols = [boxes["frame"], boxes["id"], *xywh, boxes["conf"], classes, minus, minus]
    else:
        raise ValueError(f"kind must be one of {sorted(FIELDS)}, got {kind!r}")
    atomic_write_text(path, format_rows(cols))


# ----------------------------------------------------------------------------- seqinfo.ini

def read_seqinfo(path: str | Path) -> dict[str, tuple[str, int]]:
    """``key -> (value, line)`` of a seqinfo.ini (keys as spelled in ``SEQINFO_KEYS``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    canonical = {k.lower(): k for k in SEQINFO_KEYS}
    out: dict[str, tuple[str, int]] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("[", ";", "#")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        out[canonical.get(key.lower(), key)] = (value.strip(), i)
    return out


def seqinfo_problems(info: dict[str, tuple[str, int]]) -> list[Problem]:
    """Missing keys and values of the wrong type."""
    problems = []
    for key in SEQINFO_KEYS:
        if key not in info:
            problems.append(Problem(None, key, "missing key"))
            continue
        value, line = info[key]
        if key in ("seqLength", "imWidth", "imHeight"):
            if not value.isdigit() or int(value) < 1:
                problems.append(Problem(line, key, f"expected a positive integer, got {value!r}"))
        elif key == "frameRate":
            try:
                ok = float(value) > 0
            except ValueError:
                ok = False
            if not ok:
                problems.append(Problem(line, key, f"expected a positive number, got {value!r}"))
        elif not value:
            problems.append(Problem(line, key, "empty value"))
    return problems


@dataclass(frozen=True)
class SeqLayout:
    """What a sequence folder says about itself: seqinfo.ini's values, or the MOT defaults.

    A value seqinfo.ini lacks or gets wrong (``problems`` says which) is None, or the default for
    the name (the folder's), the image folder (``img1``) and the frame rate (30). Without the
    file (``has_info`` false) the length and size come from the images.
    """

    has_info: bool
    info: dict[str, tuple[str, int]]
    problems: list[Problem]
    name: str
    fps: float
    length: int | None
    size: tuple[int, int] | None
    img_dir: Path
    im_ext: str | None


def seqinfo_layout(seq_dir: Path, info: dict[str, tuple[str, int]] | None) -> SeqLayout:
    """The layout of ``seq_dir`` from its read seqinfo.ini (None: the folder has none)."""
    if info is None:
        return SeqLayout(False, {}, [], seq_dir.name, DEFAULT_FPS, None, None, seq_dir / "img1", None)
    problems = seqinfo_problems(info)
    bad = {p.field for p in problems}

    def value(key: str) -> str | None:
        return None if key in bad else info[key][0]

    size = None if {"imWidth", "imHeight"} & bad else (int(info["imWidth"][0]), int(info["imHeight"][0]))
    return SeqLayout(True, info, problems, value("name") or seq_dir.name,
                     float(value("frameRate") or DEFAULT_FPS),
                     None if value("seqLength") is None else int(info["seqLength"][0]), size,
                     seq_dir / (value("imDir") or "img1"), value("imExt"))


def _seqinfo_text(seq: Sequence, im_ext: str) -> str:
    fps = format_column(np.array([float(seq.fps)]))[0]
    return (
        "[Sequence]\n"
        f"name={seq.name}\nimDir=img1\nframeRate={fps}\nseqLength={seq.length}\n"
        f"imWidth={seq.width}\nimHeight={seq.height}\nimExt={im_ext}\n"
    )


# ----------------------------------------------------------------------------- sequences

def read_sequence(
    seq_dir: str | Path,
    *,
    source: str = "",
    class_map: Mapping[str, str] | None = None,
    ann: Literal["gt", "det", "none"] = "gt",
) -> Sequence:
    """Read one sequence folder. ``ann`` picks ``gt/gt.txt``, ``det/det.txt`` or no boxes.

    Without seqinfo.ini the name is the folder's, images are ``img1/*``, the size comes from
    the first image and the frame rate is 30 (a warning is logged).
    """
    seq_dir = Path(seq_dir)
    if not seq_dir.is_dir():
        raise DataError("sequence folder not found", file=seq_dir)
    info_path = seq_dir / "seqinfo.ini"
    layout = seqinfo_layout(seq_dir, read_seqinfo(info_path) if info_path.is_file() else None)
    raise_problems(info_path, layout.problems)
    images = list_images(layout.img_dir, layout.im_ext) if layout.img_dir.is_dir() else []
    name, fps, length = layout.name, layout.fps, layout.length
    if layout.has_info:
        width, height = layout.size
    else:
        if not images:
            raise DataError("no seqinfo.ini and no images in img1/ to infer the sequence from", file=info_path)
        log.warning("%s: no seqinfo.ini; inferring size from images, %g fps", seq_dir, DEFAULT_FPS)
        length = len(images)
        width, height = image_size(images[0])
    if images and len(images) != length:
        log.warning("%s: %d images for seqLength %d", seq_dir, len(images), length)
    if ann == "none":
        boxes = empty_boxes()
    else:
        txt = seq_dir / ann / f"{ann}.txt"
        if not txt.is_file():
            raise DataError(f"{ann} file not found", file=txt)
        boxes = read_txt(txt, ann, class_map=class_map)
    cmap = dict(class_map) if class_map else dict(DEFAULT_CLASS_MAP)
    return Sequence(name=name, width=width, height=height, length=length, fps=fps, boxes=boxes,
                    image_paths=images, source=source, meta={"format": "mot", "class_map": cmap})


def write_sequence(
    seq: Sequence,
    seq_dir: str | Path,
    frames: Iterable[np.ndarray] | None = None,
    *,
    jpeg_quality: int = 90,
    link: bool = False,
) -> Sequence:
    """Write seqinfo.ini, gt/gt.txt and the images of ``seq`` into ``seq_dir``.

    Images come from ``frames`` (BGR uint8) when given, else from ``seq.image_paths`` (copied,
    or hard-linked with ``link``); a box-only sequence gets no images. Boxes keep their MOT
    class number as category when they have one, else get 1 / 3 / 8 for person / vehicle /
    ignored. Returns the sequence as a reader sees it now (paths to the new files).
    """
    seq_dir = Path(seq_dir)
    boxes = seq.boxes.copy()
    boxes["category"] = native_categories(seq, "mot", is_int_label, CATEGORY_OF_CLASS)
    paths = write_images(seq, seq_dir / "img1", frames, lambda k: f"{k:06d}",
                         jpeg_quality=jpeg_quality, link=link)
    im_ext = paths[0].suffix if paths else ".jpg"
    write_txt(seq_dir / "gt" / "gt.txt", boxes, "gt")
    atomic_write_text(seq_dir / "seqinfo.ini", _seqinfo_text(seq, im_ext))
    kept = seq.meta.get("format", "mot") == "mot" and seq.meta.get("class_map")
    written = read_sequence(seq_dir, source=seq.source, class_map=kept or None)
    written.meta = {**seq.meta, **written.meta}
    return written


def list_sequences(root: str | Path) -> list[Path]:
    """Sorted sequence folders under ``root`` (those with seqinfo.ini or gt/gt.txt)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("dataset folder not found", file=root)
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and ((p / "seqinfo.ini").is_file() or (p / "gt" / "gt.txt").is_file()))


def write_seqmap(path: str | Path, names: Iterable[str]) -> None:
    """A TrackEval seqmap: the header ``name`` then one sequence name per line."""
    atomic_write_text(path, "name\n" + "".join(f"{n}\n" for n in names))
