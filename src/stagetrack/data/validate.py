"""Check a dataset on disk before anything trains on it (``stagetrack validate``).

Every sequence is checked and every finding collected; nothing stops at the first problem.
Errors (the dataset would be read wrongly or not at all) make the command exit with status
1; warnings do not.

Errors: missing seqinfo.ini keys or bad values; malformed annotation lines or JSON elements
(file, line, field); non-finite numbers; zero or negative box sizes; duplicate track ids in
one frame (VisDrone ignored regions excepted); frames outside ``seqLength`` (MOT) or outside
the image list (every format); boxes entirely outside the image; VisDrone category or
occlusion values outside their sets; visibility above 1; a sequence whose image count
differs from ``seqLength``; missing images; images whose header is unreadable or whose
size differs from the sequence's; images that fail to decode; gaps in frame-numbered image
names (``000001.jpg``, ``000002.jpg`` ...), which would shift every later frame.

Warnings: boxes partly outside the image; category labels the class map does not list
(read as ignored); a missing seqinfo.ini (inferred) or gt.txt (a test sequence?); a
seqinfo name or BDD videoName that differs from the folder or file name; VisDrone image
folders without annotations.

Images: the existence and header (size) of every image is checked, which is cheap; full
decoding is done for the first and last image of each sequence (``--decode ends``, catches a
truncated copy) or for all of them (``--decode all``, slow on real datasets).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DataError
from . import bdd, mot, visdrone
from .sequence import CLASSES, IGNORE, empty_boxes
from .sources import DEFAULT_CLASS_MAPS, FORMATS, detect_format


Decode = Literal["ends", "all"]


@dataclasses.dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclasses.dataclass
class SequenceSummary:
    name: str
    frames: int
    images: int
    boxes: int
    tracks: int
    classes: dict[str, int]


@dataclasses.dataclass
class Report:
    path: str
    format: str
    sequences: list[SequenceSummary] = dataclasses.field(default_factory=list)
    errors: list[Finding] = dataclasses.field(default_factory=list)
    warnings: list[Finding] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, file: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.errors.append(Finding(str(file), line, field, message))

    def warning(self, file: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.warnings.append(Finding(str(file), line, field, message))

    def render(self, max_listed: int = 50) -> str:
        """The summary printed by the CLI: a table of sequences, then the findings (capped)."""
        out = [f"{self.format} dataset {self.path}: {len(self.sequences)} sequence(s)"]
        head = f"  {'sequence':<32} {'frames':>7} {'images':>7} {'boxes':>8} {'tracks':>7}"
        out.append(head + "".join(f" {c:>8}" for c in (*CLASSES, "ignore")))
        for s in self.sequences[:max_listed]:
            out.append(f"  {s.name:<32} {s.frames:>7} {s.images:>7} {s.boxes:>8} {s.tracks:>7}"
                       + "".join(f" {s.classes.get(c, 0):>8}" for c in (*CLASSES, "ignore")))
        if len(self.sequences) > max_listed:
            out.append(f"  ... and {len(self.sequences) - max_listed} more sequence(s)")
        total = {c: sum(s.classes.get(c, 0) for s in self.sequences) for c in (*CLASSES, "ignore")}
        out.append(f"  {'total':<32} {sum(s.frames for s in self.sequences):>7} "
                   f"{sum(s.images for s in self.sequences):>7} {sum(s.boxes for s in self.sequences):>8} "
                   f"{sum(s.tracks for s in self.sequences):>7}" + "".join(f" {v:>8}" for v in total.values()))
        for title, items in (("error", self.errors), ("warning", self.warnings)):
            if items:
                out.append(f"{title}s ({len(items)}):")
                out.extend(f"  {f}" for f in items[:max_listed])
                if len(items) > max_listed:
                    out.append(f"  ... and {len(items) - max_listed} more {title}(s)")
        out.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(out)


# ----------------------------------------------------------------------------- shared checks

def _problems(report: Report, file: Path, problems: list[mot.Problem]) -> None:
    for p in problems:
        report.error(file, p.line, p.field, p.message)


def _check_images(
    report: Report,
    paths: list[Path],
    size: tuple[int, int] | None,
    decode: Decode,
    missing_at: Callable[[int], tuple[Path, int | None, str | None]] | None = None,
) -> tuple[int, int] | None:
    """Existence and header of every image, full decode of the ends (or all).

    ``size`` is the expected (width, height); None takes the first readable image's.
    ``missing_at(k)`` says where to report a missing image k (default: the image path).
    Returns the size used.
    """
    from PIL import Image, UnidentifiedImageError

    ends = {0, len(paths) - 1}
    for k, path in enumerate(paths):
        if not path.is_file():
            file, line, field = missing_at(k) if missing_at else (path, None, None)
            report.error(file, line, field, f"image not found: {path}" if missing_at else "image not found")
            continue
        try:
            with Image.open(path) as im:
                got = (int(im.size[0]), int(im.size[1]))
                if decode == "all" or k in ends:
                    im.load()
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            report.error(path, None, None, f"unreadable image: {exc}")
            continue
        if size is None:
            size = got
        elif got != size:
            report.error(path, None, None, f"image is {got[0]}x{got[1]}, the sequence is {size[0]}x{size[1]}")
    return size


def _check_numbering(report: Report, images: list[Path]) -> None:
    """Frame-numbered image names (000001.jpg ...) must run 1..n: a gap shifts every later frame."""
    stems = [p.stem for p in images]
    if not stems or not all(s.isdigit() for s in stems):
        return
    numbers = [int(s) for s in stems]
    if numbers == list(range(1, len(numbers) + 1)):
        return
    width, ext = len(stems[0]), images[0].suffix
    for k in sorted(set(range(1, max(numbers) + 1)) - set(numbers)):
        report.error(images[0].parent / f"{k:0{width}d}{ext}", None, None,
                     f"image of frame {k} not found (images are numbered by frame)")
    if numbers[0] == 0:
        report.error(images[0], None, None, "image numbers start at 0; frames are numbered from 1")


def _check_boxes(
    report: Report,
    file: Path,
    boxes: np.ndarray,
    lines: np.ndarray,
    name: Callable[[int, str], str],
    *,
    size: tuple[int, int] | None,
    length: int | None,
    length_from: str,
    n_images: int | None,
    dup_mask: np.ndarray,
) -> None:
    """Per-box checks; ``name(row, field)`` gives the reported field name of a row."""
    w, h, frame = boxes["w"], boxes["h"], boxes["frame"]
    for key, col in (("w", w), ("h", h)):
        for r in np.flatnonzero(col <= 0):
            what = "zero" if col[r] == 0 else f"negative ({col[r]:g})"
            report.error(file, int(lines[r]), name(r, key), f"{what} box {'width' if key == 'w' else 'height'}")
    if length is not None:
        for r in np.flatnonzero((frame < 1) | (frame > length)):
            report.error(file, int(lines[r]), name(r, "frame"), f"frame {frame[r]} outside 1..{length} ({length_from})")
    if n_images is not None and length is not None and n_images < length:
        for r in np.flatnonzero((frame > n_images) & (frame <= length)):
            report.error(file, int(lines[r]), name(r, "frame"), f"frame {frame[r]} has no image ({n_images} images)")
    for r in np.flatnonzero(boxes["vis"] > 1):
        report.error(file, int(lines[r]), name(r, "vis"), f"visibility {boxes['vis'][r]:g} above 1")
    if size is not None:
        W, H = size
        x, y = boxes["x"], boxes["y"]
        valid = (w > 0) & (h > 0)
        fully = valid & ((x + w <= 0) | (y + h <= 0) | (x >= W) | (y >= H))
        partly = valid & ~fully & ((x < 0) | (y < 0) | (x + w > W) | (y + h > H))
        for mask, emit, how in ((fully, report.error, "entirely"), (partly, report.warning, "partly")):
            for r in np.flatnonzero(mask):
                emit(file, int(lines[r]), name(r, "box"),
                     f"box ({x[r]:g}, {y[r]:g}, {w[r]:g}, {h[r]:g}) lies {how} outside the {W}x{H} image")
    rows = np.flatnonzero(dup_mask)
    if len(rows):
        keys = np.stack([frame[rows].astype(np.int64), boxes["id"][rows]], axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        for i in np.flatnonzero(np.arange(len(rows)) != first[inverse]):
            r, r0 = rows[i], rows[first[inverse[i]]]
            also = f"line {lines[r0]}" if lines[r0] != lines[r] else name(r0, "id")
            report.error(file, int(lines[r]), name(r, "id"),
                         f"id {boxes['id'][r]} appears twice in frame {frame[r]} (also {also})")


def _check_categories(report: Report, file: Path, categories: np.ndarray, class_map: Mapping[str, str]) -> None:
    for label in sorted(set(np.unique(categories).tolist()) - set(class_map)):
        report.warning(file, None, "category", f"{label!r} is not in the class map: read as ignored")


def _summary(name: str, frames: int, images: int, boxes: np.ndarray) -> SequenceSummary:
    cls = boxes["cls"]
    classes = {c: int((cls == i).sum()) for i, c in enumerate(CLASSES)}
    classes["ignore"] = int((cls == IGNORE).sum())
    return SequenceSummary(name, frames, images, len(boxes), len(np.unique(boxes["id"][cls != IGNORE])), classes)


def _plain(_row: int, field: str) -> str:
    return {"box": "x,y,w,h"}.get(field, field)


# ----------------------------------------------------------------------------- formats

def _validate_mot_sequence(report: Report, seq_dir: Path, decode: Decode, class_map: Mapping[str, str]) -> None:
    info_path = seq_dir / "seqinfo.ini"
    info: dict[str, tuple[str, int]] | None = None
    unreadable = False
    if info_path.is_file():
        try:
            info = mot.read_seqinfo(info_path)
        except DataError as exc:
            report.error(info_path, exc.line, exc.field, exc.message)
            info, unreadable = {}, True   # every value unknown; the one error says why
    layout = mot.seqinfo_layout(seq_dir, info)   # the reader's rule (mot.read_sequence)
    length, size, im_dir, im_ext, info = layout.length, layout.size, layout.img_dir, layout.im_ext, layout.info
    if not layout.has_info:
        report.warning(info_path, None, None, "missing: size and length inferred from img1/, frame rate 30")
    elif not unreadable:
        _problems(report, info_path, layout.problems)
        if "name" not in {p.field for p in layout.problems} and info["name"][0] != seq_dir.name:
            report.warning(info_path, info["name"][1], "name",
                           f"{info['name'][0]!r} differs from the folder name {seq_dir.name!r}")
    images: list[Path] = []
    if im_dir.is_dir():
        images = mot.list_images(im_dir, im_ext)
    else:
        report.error(im_dir, None, None, "image folder not found")
    if length is None and not info_path.is_file():
        length = len(images)
    if length is not None and im_dir.is_dir() and len(images) != length:
        line = info["seqLength"][1] if "seqLength" in info else None
        report.error(info_path, line, "seqLength",
                     f"seqLength {length} but {im_dir.name}/ has {len(images)} {im_ext or 'image'} file(s)")
    _check_numbering(report, images)
    size = _check_images(report, images, size, decode)
    boxes = empty_boxes()
    gt = seq_dir / "gt" / "gt.txt"
    for kind, path in (("gt", gt), ("det", seq_dir / "det" / "det.txt")):
        if not path.is_file():
            if kind == "gt":
                report.warning(path, None, None, "missing (a test sequence?)")
            continue
        try:
            values, lines, problems = mot.parse_mot(path, kind)
        except DataError as exc:
            report.error(path, None, None, exc.message)
            continue
        _problems(report, path, problems)
        rows = mot.boxes_from_values(values, kind, class_map)
        _check_boxes(report, path, rows, lines, _plain, size=size, length=length, length_from="seqLength",
                     n_images=len(images) if im_dir.is_dir() else None,
                     dup_mask=np.full(len(rows), kind == "gt"))
        if kind == "gt":
            _check_categories(report, path, rows["category"], class_map)
            boxes = rows
    report.sequences.append(_summary(seq_dir.name, length or 0, len(images), boxes))


def _validate_mot(report: Report, path: Path, decode: Decode, class_map: Mapping[str, str]) -> None:
    from tqdm import tqdm

    seq_dirs = [path] if (path / "seqinfo.ini").is_file() else mot.list_sequences(path)
    if not seq_dirs:
        report.error(path, None, None, "no sequences (folders with seqinfo.ini or gt/gt.txt)")
    for seq_dir in tqdm(seq_dirs, desc="validate", unit="seq", disable=None):
        _validate_mot_sequence(report, seq_dir, decode, class_map)


def _validate_bdd(report: Report, path: Path, split: str, decode: Decode, class_map: Mapping[str, str]) -> None:
    from tqdm import tqdm

    files = bdd.list_sequences(path, split)
    if not files:
        report.error(bdd.label_dir(path, split), None, None, "no label files (*.json)")
    for label_json in tqdm(files, desc="validate", unit="video", disable=None):
        try:
            labels, problems = bdd.scan_labels(label_json)
        except DataError as exc:
            report.error(label_json, exc.line, exc.field, exc.message)
            continue
        _problems(report, label_json, problems)
        if labels.video != label_json.stem:
            report.warning(label_json, labels.frame_lines[0] if labels.frame_lines else None, "[0].videoName",
                           f"{labels.video!r} differs from the file name {label_json.stem!r}")
        img_dir = bdd.image_dir(path, split, label_json.stem)
        paths = [img_dir / n for n in labels.frame_names]
        if not img_dir.is_dir():
            report.error(img_dir, None, None, "image folder not found")
            size = None
        else:
            size = _check_images(report, paths, None, decode,
                                 missing_at=lambda k, _f=label_json, _l=labels: (_f, _l.frame_lines[k], f"[{_l.frame_items[k]}].name"))
        boxes = bdd.boxes_from_labels(labels, class_map)
        fields = {"w": "box2d.x2", "h": "box2d.y2", "box": "box2d", "vis": "attributes.occluded"}

        def name(r: int, field: str, _labels: bdd.Labels = labels) -> str:
            return f"{_labels.path[r]}.{fields.get(field, field)}"

        _check_boxes(report, label_json, boxes, labels.line, name, size=size, length=None, length_from="",
                     n_images=None, dup_mask=np.ones(len(boxes), dtype=bool))
        _check_categories(report, label_json, boxes["category"], class_map)
        report.sequences.append(_summary(label_json.stem, len(paths), sum(p.is_file() for p in paths), boxes))


def _validate_visdrone(report: Report, path: Path, decode: Decode, class_map: Mapping[str, str]) -> None:
    from tqdm import tqdm

    names = visdrone.list_sequences(path)
    seq_root = path / "sequences"
    if seq_root.is_dir():
        for extra in sorted(set(p.name for p in seq_root.iterdir() if p.is_dir()) - set(names)):
            report.warning(seq_root / extra, None, None, "image folder without an annotation file")
    if not names:
        report.error(path / "annotations", None, None, "no annotation files (*.txt)")
    cmap = visdrone.normalize_class_map(class_map)
    for seq_name in tqdm(names, desc="validate", unit="seq", disable=None):
        ann = path / "annotations" / f"{seq_name}.txt"
        try:
            values, lines, problems = mot.parse_csv(ann, visdrone.FIELDS, required=len(visdrone.FIELDS),
                                                    integer=visdrone.INTEGER_FIELDS)
        except DataError as exc:
            report.error(ann, None, None, exc.message)
            continue
        _problems(report, ann, problems)
        col = {f: values[:, j] for j, f in enumerate(visdrone.FIELDS)}
        allowed = {"category": range(0, 12), "truncation": range(-1, 3), "occlusion": range(-1, 3)}
        ok = np.ones(len(values), dtype=bool)
        for field, values_ok in allowed.items():
            bad = ~np.isin(col[field], list(values_ok))
            for r in np.flatnonzero(bad):
                report.error(ann, int(lines[r]), field, f"invalid value {col[field][r]:g} "
                             f"(allowed: {values_ok.start}..{values_ok.stop - 1})")
            ok &= ~bad
        values, lines = values[ok], lines[ok]
        seq_dir = seq_root / seq_name
        images = mot.list_images(seq_dir) if seq_dir.is_dir() else []
        if not images:
            report.error(seq_dir, None, None, "image folder not found or empty")
        _check_numbering(report, images)
        size = _check_images(report, images, None, decode)
        boxes = visdrone.boxes_from_values(values, cmap)
        _check_boxes(report, ann, boxes, lines, _plain, size=size, length=len(images) if images else None,
                     length_from="images", n_images=None, dup_mask=boxes["category"] != "0")
        _check_categories(report, ann, boxes["category"], cmap)
        report.sequences.append(_summary(seq_name, len(images), len(images), boxes))


def validate_path(
    path: str | Path,
    fmt: str = "auto",
    *,
    split: str = "train",
    decode: Decode = "ends",
    class_map: Mapping[str, str] | None = None,
) -> Report:
    """Check the dataset at ``path`` (a MOT root or sequence folder, a BDD100K root or a
    VisDrone root). ``class_map`` defaults to the format's own. A missing path or one whose
    format cannot be told raises :class:`DataError`; everything else becomes a finding."""
    path = Path(path)
    if not path.exists():
        raise DataError("path not found", file=path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}", field="--format", allowed=("auto", *FORMATS))
    if decode not in ("ends", "all"):
        raise DataError(f"unknown decode mode {decode!r}", field="--decode", allowed=("ends", "all"))
    cmap = dict(class_map) if class_map else dict(DEFAULT_CLASS_MAPS[fmt])
    mot.check_class_map(cmap)
    report = Report(path=str(path), format=fmt)
    if fmt == "mot":
        _validate_mot(report, path, decode, cmap)
    elif fmt == "bdd":
        _validate_bdd(report, path, split, decode, cmap)
    else:
        _validate_visdrone(report, path, decode, cmap)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="dataset root (or one MOT sequence folder)")
    parser.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                        help="dataset format (default: detected from the folder's layout)")
    parser.add_argument("--split", default="train", help="BDD100K split folder (default: train)")
    parser.add_argument("--decode", default="ends", choices=("ends", "all"),
                        help="fully decode the first and last image of each sequence, or all images")
    parser.add_argument("--max-listed", type=int, default=50,
                        help="findings (and sequences) listed per kind; the rest are counted")


def run(args: argparse.Namespace) -> int:
    report = validate_path(args.path, args.format, split=args.split, decode=args.decode)
    print(report.render(args.max_listed))
    return 1 if report.errors else 0
