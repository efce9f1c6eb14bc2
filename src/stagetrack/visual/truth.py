"""Visual truth: one video's ground truth against its predictions, as an MP4 and a contact sheet.

``stagetrack viz (--seq SEQ | --gt DIR) (--stage STAGE | --pred FILE.txt) [--out plots/viz]``

Ground truth is a locked validation video (``--seq NAME`` or ``SOURCE/NAME`` under
``--data/val``) or any MOTChallenge sequence folder (``--gt``). Predictions come from a stage's
trained detector, ReID model and tracker (``--stage``, run exactly as the evaluation runs them,
headline association; the result file is kept next to the video for re-rendering) or from a
MOTChallenge result file (``--pred``, no models needed).

Per frame, ground-truth boxes and predictions of the same class are matched by the Hungarian
algorithm on IoU, pairs below ``match_iou`` never matching (the CLEAR-MOT/HOTA rule). Colours:

* green: a matched prediction whose identities agree with their last match: the ground-truth
  object was last matched to this predicted id (or never before), and this predicted id was
  last matched to this object (or never before);
* orange: an identity switch: the object was last matched to another predicted id, or this
  predicted id last followed another object. The box is labelled ``SW`` on the frame of the
  switch and stays orange for ``switch_highlight_frames`` frames;
* blue dashed: a ground-truth box that no prediction matches (missed);
* red: a prediction that matches no ground truth (false positive);
* grey: an unmatched prediction on an ignored region (IoU >= ``match_iou`` with an ignored box,
  or ``eval.ignore_coverage`` of its area inside their union), which the evaluation drops instead
  of counting it as a false positive.

Predictions are labelled with their class's initial and id (``p7`` person 7, ``v3`` vehicle 3).
Ground-truth rows flagged 0 (MOT's "do not consider") are neither scored nor drawn.
Predictions scoring below ``score_thresh`` are neither matched nor drawn. A band under each
frame shows ``frame i/N``, the frame's counts and the legend, so nothing covers the video.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import logging
import math
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from ..config import DEFAULT_PARAMS, STAGES, Params
from ..data import mot
from ..data.sequence import CLASSES, IGNORE, Sequence, frame_bounds, sort_boxes, tlwh
from ..errors import ConfigError, DataError, StagetrackError
from ..evaluate.preprocess import ignore_coverage_tlwh
from ..geometry import EPS, box_iou_tlwh, match_by_iou
from ..io import atomic_path, read_image
from .config import VizConfig

log = logging.getLogger(__name__)



class Status(enum.IntEnum):
    """What a drawn prediction is (missed ground truth is kept apart, in ``FrameTruth.missed``)."""

    STABLE = 0
    SWITCH = 1
    FALSE_POSITIVE = 2
    IGNORED = 3


# BGR colours (OpenCV order)
COLOURS: dict[Status, tuple[int, int, int]] = {
    Status.STABLE: (0, 200, 0),            # green
    Status.SWITCH: (0, 165, 255),          # orange
    Status.FALSE_POSITIVE: (0, 0, 255),    # red
    Status.IGNORED: (160, 160, 160),       # grey
}
MISSED_COLOUR = (255, 0, 0)                # blue, dashed
BAND_COLOUR = (32, 32, 32)
TEXT_COLOUR = (235, 235, 235)
LEGEND: tuple[tuple[str, tuple[int, int, int], bool], ...] = (  # (label, colour, dashed)
    ("stable", COLOURS[Status.STABLE], False),
    ("ID switch", COLOURS[Status.SWITCH], False),
    ("missed GT", MISSED_COLOUR, True),
    ("false pos.", COLOURS[Status.FALSE_POSITIVE], False),
    ("ignored", COLOURS[Status.IGNORED], False),
)
FONT = cv2.FONT_HERSHEY_SIMPLEX


# ----------------------------------------------------------------------------- classification

@dataclasses.dataclass(frozen=True)
class FrameTruth:
    """One frame classified: every drawn prediction with its status, and the missed ground truth."""

    frame: int
    pred: np.ndarray         # ANN_DTYPE rows of the predictions that passed score_thresh
    status: np.ndarray       # (len(pred),) Status value of each prediction
    matched_gt: np.ndarray   # (len(pred),) id of the matched ground-truth box, -1 if none
    switched: np.ndarray     # (len(pred),) True where an identity switch happened in this frame
    missed: np.ndarray       # ANN_DTYPE rows of scored ground truth that nothing matched

    def counts(self) -> dict[str, int]:
        return {
            "matched": int(np.isin(self.status, (Status.STABLE, Status.SWITCH)).sum()),
            "switches": int(self.switched.sum()),
            "missed": len(self.missed),
            "fp": int((self.status == Status.FALSE_POSITIVE).sum()),
            "ignored": int((self.status == Status.IGNORED).sum()),
        }


@dataclasses.dataclass
class IdentityHistory:
    """Last matches of one video, keyed by (class, id): what decides green against orange."""

    pred_of_gt: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    gt_of_pred: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    switched_at: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)  # pred -> frame


def match_boxes(gt: np.ndarray, pred: np.ndarray, min_iou: float, keep: np.ndarray | None = None) -> np.ndarray:
    """(K, 2) pairs (gt index, pred index): Hungarian on IoU within each class, IoU >= ``min_iou``.

    ``keep`` (G, P) marks pairs that continue an earlier match: among valid pairs they win over
    any IoU, as in CLEAR-MOT (TrackEval adds 1000 to their score), so overlapping boxes do not
    flicker between identities.
    """
    if not len(gt) or not len(pred):
        return np.empty((0, 2), dtype=np.int64)
    iou = box_iou_tlwh(tlwh(gt), tlwh(pred))                        # (G, P), the evaluation's IoU
    iou[gt["cls"][:, None] != pred["cls"][None, :]] = 0.0
    rows, cols = match_by_iou(iou, min_iou, keep)
    return np.stack([rows, cols], axis=1).astype(np.int64)


def classify_frame(gt: np.ndarray, pred: np.ndarray, frame: int, history: IdentityHistory,
                   cfg: VizConfig, *, ignore_coverage: float) -> FrameTruth:
    """Classify one frame's predictions and ground truth (all rows of the frame, any class).

    ``history`` holds the earlier frames' matches and is updated in place; feed frames in order.
    """
    pred = pred[pred["conf"] >= cfg.score_thresh]
    scored = gt[(gt["cls"] != IGNORE) & (gt["conf"].astype(int) != 0)]
    regions = gt[gt["cls"] == IGNORE]
    status = np.full(len(pred), Status.FALSE_POSITIVE, dtype=np.int8)
    matched_gt = np.full(len(pred), -1, dtype=np.int64)
    switched = np.zeros(len(pred), dtype=bool)
    none = np.iinfo(np.int64).min
    last = np.array([history.pred_of_gt.get((int(c), int(i)), none) for c, i in zip(scored["cls"], scored["id"])],
                    dtype=np.int64)
    keep = last[:, None] == pred["id"][None, :].astype(np.int64)     # (G, P) pairs matched last time
    pairs = match_boxes(scored, pred, cfg.match_iou, keep)
    for g, p in pairs:
        cls = int(pred["cls"][p])
        gkey, pkey = (cls, int(scored["id"][g])), (cls, int(pred["id"][p]))
        last_pred, last_gt = history.pred_of_gt.get(gkey), history.gt_of_pred.get(pkey)
        if (last_pred is not None and last_pred != pkey[1]) or (last_gt is not None and last_gt != gkey[1]):
            history.switched_at[pkey] = frame
            switched[p] = True
        history.pred_of_gt[gkey], history.gt_of_pred[pkey] = pkey[1], gkey[1]
        since = frame - history.switched_at.get(pkey, -math.inf)
        status[p] = Status.SWITCH if since < cfg.switch_highlight_frames else Status.STABLE
        matched_gt[p] = gkey[1]
    free = np.setdiff1d(np.arange(len(pred)), pairs[:, 1])
    if len(free) and len(regions):
        on_region = box_iou_tlwh(tlwh(pred[free]), tlwh(regions)).max(axis=1) >= cfg.match_iou - EPS
        covered = ignore_coverage_tlwh(tlwh(pred[free]), tlwh(regions)) >= ignore_coverage
        status[free[on_region | covered]] = Status.IGNORED
    missed = np.ones(len(scored), dtype=bool)
    missed[pairs[:, 0]] = False
    return FrameTruth(frame, pred, status, matched_gt, switched, scored[missed])


def classify_sequence(gt: np.ndarray, pred: np.ndarray, length: int, cfg: VizConfig, *,
                      ignore_coverage: float) -> Iterator[FrameTruth]:
    """:func:`classify_frame` over frames 1..``length`` (rows of any frame order, ANN_DTYPE)."""
    gt, pred = sort_boxes(gt), sort_boxes(pred)
    gb, pb = frame_bounds(gt["frame"], length), frame_bounds(pred["frame"], length)
    history = IdentityHistory()
    for f in range(1, length + 1):
        yield classify_frame(gt[gb[f - 1]:gb[f]], pred[pb[f - 1]:pb[f]], f, history, cfg,
                             ignore_coverage=ignore_coverage)


# ----------------------------------------------------------------------------- drawing

@dataclasses.dataclass(frozen=True)
class _Style:
    line: int
    font: float
    thick: int
    text_h: int      # height of a text line with its padding

    @classmethod
    def for_size(cls, width: int, height: int, cfg: VizConfig) -> "_Style":
        side = min(width, height)
        line = cfg.line_width or max(1, round(side / 300))
        font = cfg.font_scale or float(np.clip(side / 500, 0.35, 1.0))
        thick = max(1, round(font * 1.5))
        (_, th), base = cv2.getTextSize("Ag", FONT, font, thick)
        return cls(line, font, thick, th + base + 4)


def _corners(row: np.void) -> tuple[int, int, int, int]:
    x, y, w, h = (float(row[k]) for k in "xywh")
    return round(x), round(y), round(x + w), round(y + h)


def dashed_rectangle(image: np.ndarray, pt1: tuple[int, int], pt2: tuple[int, int],
                     colour: tuple[int, int, int], thickness: int, dash: int) -> None:
    """A rectangle of dashes, each edge starting with a dash at its corner (in place)."""
    (x1, y1), (x2, y2) = pt1, pt2
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)),
                               ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(bx - ax), abs(by - ay))
        for s in range(0, length + 1, 2 * dash):
            e = min(s + dash, length)
            t0, t1 = s / max(length, 1), e / max(length, 1)
            p = (round(ax + (bx - ax) * t0), round(ay + (by - ay) * t0))
            q = (round(ax + (bx - ax) * t1), round(ay + (by - ay) * t1))
            cv2.line(image, p, q, colour, thickness, cv2.LINE_8)


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], style: _Style) -> None:
    """Text on a filled tag just above (x, y), or just below it at the top of the image."""
    (tw, th), base = cv2.getTextSize(text, FONT, style.font, style.thick)
    top = y - th - base - 2 if y - th - base - 2 >= 0 else y + style.line
    cv2.rectangle(image, (x, top), (x + tw + 2, top + th + base + 2), colour, cv2.FILLED)
    dark = sum(colour) < 300
    cv2.putText(image, text, (x + 1, top + th + 1), FONT, style.font, (255, 255, 255) if dark else (0, 0, 0),
                style.thick, cv2.LINE_AA)


def _band(width: int, truth: FrameTruth, n_frames: int, style: _Style) -> np.ndarray:
    """The strip under a frame: ``frame i/N`` and the counts, then the legend, wrapped to ``width``.

    The layout is made for the widest counts (4 digits), so the strip keeps its size all video.
    """
    c = truth.counts()
    counts = [(f"frame {truth.frame}/{n_frames}", f"frame {n_frames}/{n_frames}")] + [
        (f"{label} {c[key]}" if key != "ignored" or c[key] else "", f"{label} 9999")
        for label, key in (("matched", "matched"), ("switch", "switches"), ("missed", "missed"), ("FP", "fp"),
                           ("ignored", "ignored"))]
    swatch = style.text_h - 6
    # items: (text, layout text, text colour, swatch colour or None, dashed swatch); legend on a new row
    items = [(t, widest, COLOURS[Status.SWITCH] if c["switches"] else TEXT_COLOUR, None, False)
             for t, widest in counts]
    items += [(t, t, TEXT_COLOUR, colour, dashed) for t, colour, dashed in LEGEND]
    placed = []   # (row, x, item)
    row, x = 0, 4
    for k, item in enumerate(items):
        w = (swatch + 4 if item[3] is not None else 0) + cv2.getTextSize(item[1], FONT, style.font, style.thick)[0][0]
        if (x + w > width - 4 and x > 4) or (k == len(counts) and x > 4):
            row, x = row + 1, 4
        placed.append((row, x, item))
        x += w + 10
    band = np.full(((row + 1) * style.text_h, width, 3), BAND_COLOUR, np.uint8)
    for r, x, (text, _, text_colour, colour, dashed) in placed:
        y0 = r * style.text_h + 3
        if colour is not None:
            if dashed:
                dashed_rectangle(band, (x, y0), (x + swatch, y0 + swatch), colour, style.line, max(2, swatch // 4))
            else:
                cv2.rectangle(band, (x, y0), (x + swatch, y0 + swatch), colour, cv2.FILLED)
            x += swatch + 4
        cv2.putText(band, text, (x, y0 + swatch), FONT, style.font, text_colour, style.thick, cv2.LINE_AA)
    return band


def _class_letter(cls: int) -> str:
    return CLASSES[int(cls)][0] if 0 <= int(cls) < len(CLASSES) else "?"


def draw_frame(image: np.ndarray, truth: FrameTruth, n_frames: int, cfg: VizConfig) -> np.ndarray:
    """``image`` (BGR, not modified) with ``truth`` drawn on it and the band of counts and legend below."""
    out = image.copy()
    height, width = out.shape[:2]
    style = _Style.for_size(width, height, cfg)
    for row in truth.missed:
        x1, y1, x2, y2 = _corners(row)
        dashed_rectangle(out, (x1, y1), (x2, y2), MISSED_COLOUR, style.line, max(4, 3 * style.line))
    # matched boxes last, so that they stay on top where boxes overlap
    order = sorted(range(len(truth.pred)), key=lambda i: -int(truth.status[i]))
    for i in order:
        cv2.rectangle(out, _corners(truth.pred[i])[:2], _corners(truth.pred[i])[2:],
                      COLOURS[Status(int(truth.status[i]))], style.line, cv2.LINE_8)
    for i in order:
        x1, y1, _, _ = _corners(truth.pred[i])
        text = f"{_class_letter(truth.pred['cls'][i])}{int(truth.pred['id'][i])}" + (" SW" if truth.switched[i] else "")
        _label(out, text, x1, y1, COLOURS[Status(int(truth.status[i]))], style)
    return np.vstack([out, _band(width, truth, n_frames, style)])


def sheet_frames(n_frames: int, count: int) -> list[int]:
    """``count`` evenly spaced 1-based frames of ``1..n_frames``, first and last included."""
    return sorted(set(np.linspace(1, n_frames, min(count, n_frames)).round().astype(int).tolist()))


def contact_sheet(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    """Equal-size BGR tiles in a grid of ``cols`` columns, row by row."""
    th, tw = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / cols)
    sheet = np.full((rows * th, min(cols, len(tiles)) * tw, 3), BAND_COLOUR, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
    return sheet


# ----------------------------------------------------------------------------- rendering

def _frame_image(seq: Sequence, frame: int) -> np.ndarray:
    """The frame's image, or a grey canvas of the sequence's size when it has none."""
    if frame > len(seq.image_paths):
        return np.full((seq.height, seq.width, 3), 64, np.uint8)
    return read_image(seq.image(frame))


def render_sequence(seq: Sequence, pred_rows: np.ndarray, out_dir: str | Path, cfg: VizConfig, *,
                    ignore_coverage: float) -> tuple[Path, Path]:
    """Write ``out_dir/<seq.name>.mp4`` (every rendered frame) and ``.png`` (contact sheet).

    ``ignore_coverage`` is the evaluation's (``eval.ignore_coverage``): grey where eval drops.

    ``pred_rows`` are ANN_DTYPE result rows (frame, id, tlwh, conf as score, cls) of ``seq``.
    Frames come from ``seq.image_paths``; frames without an image are drawn on grey.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    n = min(seq.length, cfg.max_frames) if cfg.max_frames else seq.length
    if n < 1:
        raise DataError("sequence has no frames to render", field=f"sequence {seq.name}")
    if len(seq.image_paths) < n:
        log.warning("%s: %d of %d frames have an image; the rest are drawn on grey",
                    seq.name, len(seq.image_paths), n)
    mp4, png = out_dir / f"{seq.name}.mp4", out_dir / f"{seq.name}.png"
    picks = set(sheet_frames(n, cfg.sheet_frames))
    tile_w = max(1, cfg.sheet_width // min(cfg.sheet_cols, len(picks)))  # never above the frame's width
    fps = cfg.fps or seq.fps
    tiles: list[np.ndarray] = []
    totals = dict.fromkeys(("matched", "switches", "missed", "fp", "ignored"), 0)
    with atomic_path(mp4) as tmp:
        writer, size = None, None
        try:
            frames = islice(classify_sequence(seq.boxes, pred_rows, seq.length, cfg, ignore_coverage=ignore_coverage), n)
            for truth in tqdm(frames, total=n, desc=seq.name, unit="frame", leave=False):
                canvas = draw_frame(_frame_image(seq, truth.frame), truth, seq.length, cfg)
                if writer is None:
                    size = (canvas.shape[1], canvas.shape[0])
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise StagetrackError("OpenCV cannot open an mp4v video writer", file=mp4)
                if (canvas.shape[1], canvas.shape[0]) != size:
                    canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
                writer.write(canvas)
                if truth.frame in picks:
                    w = min(tile_w, canvas.shape[1])
                    tiles.append(cv2.resize(canvas, (w, max(1, round(canvas.shape[0] * w / canvas.shape[1]))),
                                            interpolation=cv2.INTER_AREA))
                for key, value in truth.counts().items():
                    totals[key] += value
        finally:
            if writer is not None:
                writer.release()
    with atomic_path(png) as tmp:
        if not cv2.imwrite(str(tmp), contact_sheet(tiles, cfg.sheet_cols)):
            raise StagetrackError("OpenCV could not write the contact sheet", file=png)
    log.info("%s: %d frames; matched %d, switches %d, missed %d, FP %d, ignored %d -> %s",
             seq.name, n, *totals.values(), mp4)
    return mp4, png


def render_results(params: Params, val: Mapping[str, list[Sequence]], preds: Mapping[str, np.ndarray],
                   out_dir: Path) -> None:
    """The eval stage's GT-vs-prediction MP4s and contact sheets: the first ``viz.seqs_per_domain``
    videos per domain, drawn from ``preds`` (result rows per video, as eval scored them) into
    ``out_dir/<domain>/``."""
    render_domains(val, preds, out_dir, params.viz, ignore_coverage=params.eval.ignore_coverage)


def render_domains(val: Mapping[str, list[Sequence]], preds: Mapping[str, np.ndarray], out_dir: str | Path,
                   cfg: VizConfig, *, ignore_coverage: float) -> list[tuple[Path, Path]]:
    """The first ``cfg.seqs_per_domain`` videos of each domain into ``out_dir/<domain>/``.

    ``preds`` maps a sequence name to its result rows (as ``evaluate_stage`` tracks them).
    """
    out = []
    for domain, seqs in val.items():
        for seq in seqs[:cfg.seqs_per_domain]:
            out.append(render_sequence(seq, preds[seq.name], Path(out_dir) / domain, cfg, ignore_coverage=ignore_coverage))
    return out


# ----------------------------------------------------------------------------- command line

def find_val_sequence(val: Mapping[str, list[Sequence]], name: str, where: Path) -> Sequence:
    """The validation video ``NAME`` or ``SOURCE/NAME``; errors list every available one."""
    available = [f"{source}/{s.name}" for source, seqs in val.items() for s in seqs]
    hits = [s for source, seqs in val.items() for s in seqs if name in (s.name, f"{source}/{s.name}")]
    if len(hits) == 1:
        return hits[0]
    message = f"ambiguous sequence {name!r}: give SOURCE/NAME" if hits else f"unknown validation sequence {name!r}"
    raise StagetrackError(message, file=where, field="--seq", allowed=available)


def read_predictions(path: Path, seq: Sequence) -> np.ndarray:
    """A MOTChallenge result file, checked against ``seq``'s length."""
    if not path.is_file():
        raise DataError("result file not found", file=path)
    rows = mot.read_txt(path, "result")
    outside = rows["frame"][(rows["frame"] < 1) | (rows["frame"] > seq.length)]
    if len(outside):
        raise DataError(f"frame {int(outside[0])} outside 1..{seq.length} of sequence {seq.name}", file=path,
                        hint="is this the result file of another sequence?")
    return rows


def track_with_stage(params: Params, seq: Sequence, stage_dir: Path) -> np.ndarray:
    """Result rows of ``seq`` tracked by one stage's models, exactly as the evaluation tracks it
    (its headline variant only)."""
    from ..artifacts import StageModels
    from ..evaluate.pipeline import score, track_stage

    gt = {seq.source: [seq]}
    run = track_stage(params, gt, StageModels.find(stage_dir), headline_only=True)
    rows = run.predictions[run.headline][seq.name]
    m = score(gt, {seq.name: rows}, params.eval)[seq.source]["combined"]
    log.info("%s with %s (%s association): HOTA %.1f IDF1 %.1f IDSW %d",
             seq.name, stage_dir, run.headline, m["HOTA"], m["IDF1"], m["IDSW"])
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    gt = parser.add_mutually_exclusive_group(required=True)
    gt.add_argument("--seq", help="a locked validation video, NAME or SOURCE/NAME (under --data/val)")
    gt.add_argument("--gt", type=Path, help="a MOTChallenge sequence folder (seqinfo.ini, img1/, gt/gt.txt)")
    pred = parser.add_mutually_exclusive_group(required=True)
    pred.add_argument("--stage", choices=STAGES, help="track the video with this stage's trained models")
    pred.add_argument("--pred", type=Path, help="a MOTChallenge result file (frame,id,x,y,w,h,score,class)")
    parser.add_argument("--params", type=Path, default=None,
                        help=f"params file (`viz:` section; every section with --stage); default ./{DEFAULT_PARAMS}")
    parser.add_argument("--data", type=Path, default=Path("data/built"), help="built data root (with val/)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="trained models root (models/<stage>/)")
    parser.add_argument("--out", type=Path, default=Path("plots/viz"),
                        help="output folder; with --stage, OUT/<stage>/ (the video's result file goes there too)")


def run(args: argparse.Namespace) -> int:
    from ..config import command_params

    params = command_params(args.params)
    cfg = params.viz
    if args.gt is not None:
        seq = mot.read_sequence(args.gt, source=args.gt.parent.name)
    else:
        val_dir = args.data / "val"
        seqmap = val_dir / "seqmaps" / "val.txt"
        if not seqmap.is_file():
            raise DataError("validation seqmap not found", file=seqmap, hint="run `stagetrack build` first")
        from ..artifacts import load_locked

        seq = find_val_sequence(load_locked(val_dir), args.seq, seqmap)
    if args.pred is not None:
        rows, out_dir = read_predictions(args.pred, seq), args.out
    else:
        out_dir = args.out / args.stage
        rows = track_with_stage(params, seq, args.models / args.stage)
        mot.write_txt(out_dir / f"{seq.name}.txt", rows, "result")
    mp4, png = render_sequence(seq, rows, out_dir, cfg, ignore_coverage=params.eval.ignore_coverage)
    print(mp4)
    print(png)
    return 0
