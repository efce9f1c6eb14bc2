"""Ground truth + predictions -> TrackEval's per-class, per-sequence ``data`` dict.

The metrics (:mod:`stagetrack.evaluate.metrics`) run TrackEval's own metric objects on what this
module builds, so everything that decides *which* boxes are scored lives here. Three modes:

``mot`` (the official MOTChallenge devkit, TrackEval's ``MotChallenge2DBox.get_preprocessed_seq_data``)
    Per frame, predictions of the evaluated class are matched to *all* ground-truth rows of the
    frame (every class, zero-flagged rows too) by the Hungarian algorithm on IoU, pairs below
    IoU 0.5 not counting. Predictions matched to a distractor (MOT16/17 classes 2
    person_on_vehicle, 7 static_person, 8 distractor, 12 reflection) are removed. Then the
    scored ground truth is the rows of the class whose flag (``conf``) is non-zero; the class
    is the reader's (:data:`stagetrack.data.mot.DEFAULT_CLASS_MAP`: MOT class 1 is ``person``,
    as in the devkit; 3-6 are ``vehicle``, which the devkit never scores).
    MOT15-style ground truth (no row carries a MOT16/17 class number 1-13; 2D MOT 2015 writes
    -1) gets what TrackEval does for ``BENCHMARK='MOT15'`` / ``DO_PREPROC=False``: no distractor
    matching, and every non-zero-flagged row is a ``person``. A mix of MOT16/17 numbers and
    other labels is an error, as in TrackEval.
``project`` (this project's two classes, MOT rule + VisDrone's ignored regions)
    The same matching, with every ``IGNORE`` row (distractors, VisDrone ignored regions and
    "others", BDD crowd/other classes) acting as the distractor for both classes. Then, as in
    the VisDrone toolkit (``dropObjects.m``), a prediction is removed when at least half of its
    area lies inside the union of the frame's ``IGNORE`` boxes -- here only for predictions the
    matching left unmatched (TrackEval's BDD100K crowd-region rule), so a prediction on a scored
    object standing in front of a distractor is kept. Two deliberate differences from the
    MATLAB toolkit: areas are exact (not rounded to whole pixels), and scored ground truth
    inside an ignored region is kept (VisDrone drops it too; annotated objects there are rare).
``none``
    No distractor or region handling: the rows of the class with a non-zero flag are scored
    against every prediction of the class (TrackEval with ``DO_PREPROC=False``).

Ids are relabelled 0..n-1 in sorted order per sequence and class, rows keep their order
within a frame (ground truth as the :class:`Sequence` sorts it, predictions sorted by
``(frame, id)``), so the data equals what TrackEval builds from the same files written in that
order.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from ..data.sequence import CLASSES, IGNORE, PERSON, Sequence, frame_bounds, sort_boxes, tlwh
from ..errors import ConfigError, DataError
from ..geometry import box_iou_tlwh, match_by_iou

log = logging.getLogger(__name__)

Mode = Literal["project", "mot", "none"]
MODES: tuple[str, ...] = ("project", "mot", "none")

# MOT16/17 class numbers (TrackEval's MotChallenge2DBox.class_name_to_class_id) and the
# distractors whose matched predictions the devkit removes.
MOT_CLASS_NUMBERS = frozenset(range(1, 14))
MOT_DISTRACTORS = frozenset({2, 7, 8, 12})  # person_on_vehicle, static_person, distractor, reflection

MATCH_IOU = 0.5  # TrackEval's distractor-matching threshold (hard-coded there too)


def ignore_coverage_tlwh(boxes_tlwh: np.ndarray, regions_tlwh: np.ndarray) -> np.ndarray:
    """(N,) fraction of each box's area inside the union of ``regions`` (0 for empty boxes).

    Exact rectangle-union area on the grid of the clipped region edges (the VisDrone toolkit
    rasterises whole pixels instead).
    """
    out = np.zeros(len(boxes_tlwh))
    if len(boxes_tlwh) == 0 or len(regions_tlwh) == 0:
        return out
    r = np.asarray(regions_tlwh, dtype=np.float64)
    rx0, ry0, rx1, ry1 = r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]
    for i, (x, y, w, h) in enumerate(np.asarray(boxes_tlwh, dtype=np.float64)):
        if w <= 0 or h <= 0:
            continue
        cx0, cy0 = np.clip(rx0, x, x + w), np.clip(ry0, y, y + h)
        cx1, cy1 = np.clip(rx1, x, x + w), np.clip(ry1, y, y + h)
        live = (cx1 > cx0) & (cy1 > cy0)
        if not live.any():
            continue
        cx0, cy0, cx1, cy1 = cx0[live], cy0[live], cx1[live], cy1[live]
        xs = np.unique(np.concatenate([cx0, cx1]))
        ys = np.unique(np.concatenate([cy0, cy1]))
        mx, my = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2  # cell centres
        inside_x = (mx[None, :] > cx0[:, None]) & (mx[None, :] < cx1[:, None])  # (R, X)
        inside_y = (my[None, :] > cy0[:, None]) & (my[None, :] < cy1[:, None])  # (R, Y)
        covered = (inside_y[:, :, None] & inside_x[:, None, :]).any(axis=0)      # (Y, X)
        area = np.outer(np.diff(ys), np.diff(xs))
        out[i] = float((area * covered).sum()) / (w * h)
    return out


def mot_class_numbers(gt: np.ndarray) -> np.ndarray:
    """(N,) MOT class number of each row's ``category`` (-1 for labels that are not numbers)."""
    out = np.full(len(gt), -1, dtype=np.int64)
    for i, cat in enumerate(gt["category"]):
        try:
            out[i] = int(float(cat))
        except ValueError:
            pass
    return out


def is_mot15_style(gt: np.ndarray) -> bool:
    """True when no row carries a MOT16/17 class number (2D MOT 2015 ground truth)."""
    return not np.isin(mot_class_numbers(gt), list(MOT_CLASS_NUMBERS)).any()


def _roles(seq: Sequence, cls: int, mode: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(scored mask, distractor mask or None when no matching is done, use ignore regions)."""
    gt = seq.boxes
    flagged = gt["conf"].astype(int) != 0  # TrackEval casts the flag column to int
    if mode == "none":
        return flagged & (gt["cls"] == cls), None, False
    if mode == "project":
        return flagged & (gt["cls"] == cls), gt["cls"] == IGNORE, True
    numbers = mot_class_numbers(gt)
    valid = np.isin(numbers, list(MOT_CLASS_NUMBERS))
    if not valid.any():  # MOT15 style: every consider-flagged row is a person
        return (flagged if cls == PERSON else np.zeros(len(gt), bool)), None, False
    if not valid.all():
        bad = sorted(set(gt["category"][~valid].tolist()))
        raise DataError(
            f"ground truth mixes MOT16/17 class numbers with other labels {bad}; 'mot' "
            "preprocessing needs classes 1-13 (or MOT15 style, no class numbers at all)",
            field=f"sequence {seq.name}", hint="use preprocess 'project' or 'none'",
        )
    return flagged & (gt["cls"] == cls), np.isin(numbers, list(MOT_DISTRACTORS)), False


def _check_frames(rows: np.ndarray, seq: Sequence, what: str) -> None:
    if len(rows) and (rows["frame"].min() < 1 or rows["frame"].max() > seq.length):
        bad = rows["frame"][(rows["frame"] < 1) | (rows["frame"] > seq.length)]
        raise DataError(
            f"{what} has frame {int(bad[0])} outside 1..{seq.length} (seqLength)",
            field=f"sequence {seq.name}",
        )


def _check_unique(rows: np.ndarray, seq: Sequence, what: str, cls: int) -> None:
    """No id twice in one frame (``rows`` sorted by frame, then id), as TrackEval requires."""
    same = (rows["frame"][1:] == rows["frame"][:-1]) & (rows["id"][1:] == rows["id"][:-1])
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise DataError(
            f"{what} has id {int(rows['id'][i])} more than once in frame {int(rows['frame'][i])} "
            f"(class {CLASSES[cls]})",
            field=f"sequence {seq.name}",
        )


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    nonempty = [ids for ids in ids_per_frame if len(ids)]
    if not nonempty:
        return ids_per_frame, 0
    uniq = np.unique(np.concatenate(nonempty))
    return [np.searchsorted(uniq, ids).astype(int) for ids in ids_per_frame], len(uniq)


def sequence_data(seq: Sequence, pred: np.ndarray, cls: int, *, mode: str = "project",
                  ignore_coverage: float = 0.5) -> dict[str, Any]:
    """TrackEval's ``data`` for one sequence and one class (index into ``CLASSES``).

    ``pred`` holds every predicted box of the sequence (all classes); rows of other classes
    are ignored. ``ignore_coverage`` is the covered-area fraction at which ``project`` mode
    drops an unmatched prediction (VisDrone: 0.5; above 1 never).
    """
    if mode not in MODES:
        raise ValueError(f"unknown preprocess mode {mode!r} (allowed: {', '.join(MODES)})")
    gt = seq.boxes
    _check_frames(gt, seq, "ground truth")
    _check_frames(pred, seq, "predictions")
    pred = sort_boxes(pred[pred["cls"] == cls])
    scored, distractor, use_regions = _roles(seq, cls, mode)
    _check_unique(pred, seq, "predictions", cls)
    _check_unique(gt[scored], seq, "ground truth", cls)
    ignore = gt["cls"] == IGNORE
    gb, pb = frame_bounds(gt["frame"], seq.length), frame_bounds(pred["frame"], seq.length)
    gt_all_tlwh, pred_all_tlwh = tlwh(gt), tlwh(pred)

    gt_ids, tr_ids, gt_dets, tr_dets, sims, confs = [], [], [], [], [], []
    for t in range(seq.length):
        g, p = slice(gb[t], gb[t + 1]), slice(pb[t], pb[t + 1])
        g_tlwh, p_tlwh = gt_all_tlwh[g], pred_all_tlwh[p]
        sim = box_iou_tlwh(g_tlwh, p_tlwh)
        remove = np.zeros(len(p_tlwh), dtype=bool)
        if distractor is not None and len(g_tlwh) and len(p_tlwh) and distractor[g].any():
            rows, cols = match_by_iou(sim, MATCH_IOU)  # TrackEval's distractor matching
            remove[cols[distractor[g][rows]]] = True
            if use_regions:
                unmatched = np.ones(len(p_tlwh), dtype=bool)
                unmatched[cols] = False
                cover = ignore_coverage_tlwh(p_tlwh[unmatched], g_tlwh[ignore[g]])
                remove[np.flatnonzero(unmatched)[cover >= ignore_coverage]] = True
        keep_p, keep_g = ~remove, scored[g]
        ids_p, ids_g = pred["id"][p][keep_p], gt["id"][g][keep_g]
        tr_ids.append(ids_p)
        gt_ids.append(ids_g)
        tr_dets.append(p_tlwh[keep_p])
        gt_dets.append(g_tlwh[keep_g])
        confs.append(pred["conf"][p][keep_p].astype(np.float64))
        sims.append(sim[keep_g][:, keep_p])

    gt_ids, num_gt_ids = _relabel(gt_ids)
    tr_ids, num_tr_ids = _relabel(tr_ids)
    return {
        "seq": seq.name,
        "num_timesteps": seq.length,
        "gt_ids": gt_ids,
        "tracker_ids": tr_ids,
        "gt_dets": gt_dets,
        "tracker_dets": tr_dets,
        "tracker_confidences": confs,
        "similarity_scores": sims,
        "num_gt_ids": num_gt_ids,
        "num_tracker_ids": num_tr_ids,
        "num_gt_dets": int(sum(len(x) for x in gt_ids)),
        "num_tracker_dets": int(sum(len(x) for x in tr_ids)),
    }


# ----------------------------------------------------------------------------- flavours
# A flavour is a benchmark's evaluation protocol: which classes are scored and how.

FLAVOURS: tuple[str, ...] = ("auto", "mot17", "mot15", "dancetrack", "project")
_MOT17_PREFIXES = ("MOT16-", "MOT17-", "MOT20-")


def detect_flavour(seqs: list[Sequence]) -> str:
    """The flavour ``auto`` resolves to, from the ground truth.

    ``mot15`` when no sequence carries MOT16/17 class numbers; ``mot17`` when the names are
    MOT16/17/20's or a class only MOT16/17 uses occurs (2, 4-7, 9-13: the project's own
    ground truth, :func:`stagetrack.data.mot.write_sequence`, uses 1 person, 3 vehicle and
    8 ignored); ``dancetrack`` when every name starts with ``dancetrack``; else ``project``.
    """
    if all(is_mot15_style(s.boxes) for s in seqs):
        return "mot15"
    mot17_only = MOT_CLASS_NUMBERS - {1, 3, 8}
    if any(s.name.startswith(_MOT17_PREFIXES) for s in seqs) or any(
            np.isin(mot_class_numbers(s.boxes), list(mot17_only)).any() for s in seqs):
        return "mot17"
    if all(s.name.lower().startswith("dancetrack") for s in seqs):
        return "dancetrack"
    return "project"


def flavour_settings(flavour: str, seqs: list[Sequence],
                     classes: tuple[str, ...] | None = None) -> tuple[str, tuple[str, ...], str]:
    """(resolved flavour, classes, preprocess mode) of a flavour for this ground truth.

    The MOTChallenge flavours (mot17, mot15, dancetrack) score ``person`` only, with the
    devkit's preprocessing, as the official evaluation does; ``project`` scores ``classes``
    (default both) with the project rule.
    """
    if flavour not in FLAVOURS:
        raise ConfigError(f"unknown flavour {flavour!r}", field="flavour", allowed=FLAVOURS)
    if flavour == "auto":
        flavour = detect_flavour(seqs)
        log.info("evaluation flavour: %s", flavour)
    if flavour == "project":
        return flavour, tuple(classes or CLASSES), "project"
    if flavour == "mot15":
        for s in seqs:
            if not is_mot15_style(s.boxes):
                raise DataError("ground truth carries MOT16/17 class numbers, not MOT15 style",
                                field=f"sequence {s.name}", hint="use --flavour mot17")
    if classes and tuple(classes) != ("person",):
        log.warning("flavour %s scores person only (as the official devkit); ignoring classes %s",
                    flavour, ",".join(classes))
    return flavour, ("person",), "mot"
