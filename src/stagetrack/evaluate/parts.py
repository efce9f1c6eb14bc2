"""The detector and the ReID model scored on their own, per domain and class, on the locked val videos.

Forgetting in tracking hits detection and appearance separately (COOLer, GCPR 2023), so the
eval stage reports them apart from HOTA:

``AP50`` (detector)
    Every detection a stage's detector made on the locked val frames (its validation step keeps
    them: ``models/<stage>/val_results/detections/<source>/<video>.txt``, scores >=
    ``detector.conf``) is matched per frame and class to the scored ground truth, greedily by
    descending score, at IoU >= 0.5 (the COCO / ultralytics rule for AP, not the Hungarian matching
    of the tracking metrics). An unmatched detection on an ``IGNORE`` box (IoU >= 0.5) or with at
    least ``eval.ignore_coverage`` of its area inside the frame's ``IGNORE`` boxes is dropped, as the
    tracking evaluation drops it. AP is ultralytics' (101-point interpolated area under the
    precision envelope); ``<domain>_mAP50`` is the mean over the classes the domain's videos have.
``rank1`` (ReID)
    Each query crop of the locked val identities (``data/built/val/reid``) against the gallery
    of its class (:func:`stagetrack.reid.evaluate.query_hits`): the share of queries whose nearest
    crop is their identity; ``models/<stage>/val_results/reid_queries.json`` keeps one hit per query.

Both are records per video, so the intervals and paired stage differences resample videos the
way the tracking metrics do (:func:`stagetrack.evaluate.intervals.paired_values`). Values are in
percent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence as Seq
from pathlib import Path

import numpy as np

from ..data import mot
from ..data.sequence import CLASSES, IGNORE, Sequence, frame_bounds, tlwh
from ..errors import CheckpointError, DataError
from ..geometry import box_iou_tlwh
from .preprocess import MATCH_IOU, ignore_coverage_tlwh

DETECTIONS = "detections"            # val_results/detections/<source>/<video>.txt
REID_QUERIES = "reid_queries.json"   # val_results/reid_queries.json
AP_POINTS = 101                      # ultralytics' (and COCO's) interpolation points


@dataclasses.dataclass(frozen=True)
class DetRecord:
    """One video's detections, scored: per class, each kept detection's score and whether it
    matched a ground-truth box, and the number of scored ground-truth boxes."""

    conf: dict[str, np.ndarray]
    tp: dict[str, np.ndarray]
    n_gt: dict[str, int]


def average_precision(conf: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """Area under the precision envelope of detections ranked by score, at 101 recall points
    (ultralytics' ``compute_ap``, so a stage's AP50 here and in its detector's own validation
    follow one rule: precision 0 beyond the last recall); 0 when nothing is detected, as
    ultralytics' ``ap_per_class``."""
    if n_gt <= 0:
        raise ValueError("average precision needs at least one ground-truth box")
    if not len(conf):
        return 0.0
    order = np.argsort(-np.asarray(conf, np.float64), kind="stable")
    hits = np.asarray(tp, bool)[order]
    ctp, cfp = np.cumsum(hits), np.cumsum(~hits)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1)
    mrec = np.concatenate(([0.0], recall, [recall[-1], 1.0]))  # precision 0 beyond the last recall
    mpre = np.concatenate(([1.0], precision, [0.0, 0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, AP_POINTS)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def match_detections(seq: Sequence, dets: np.ndarray, ignore_coverage: float) -> DetRecord:
    """Score one video's detections against its ground truth (see the module docstring)."""
    gt = seq.boxes
    scored = (gt["conf"].astype(int) != 0) & (gt["cls"] != IGNORE)
    conf: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
    tp: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
    n_gt = {c: int((scored & (gt["cls"] == k)).sum()) for k, c in enumerate(CLASSES)}
    dets = dets[np.argsort(dets["frame"], kind="stable")]
    db = frame_bounds(dets["frame"], seq.length)
    for frame, g in seq.iter_frames():
        d = dets[db[frame - 1]:db[frame]]
        ignore = tlwh(g[g["cls"] == IGNORE])
        for k, name in enumerate(CLASSES):
            mine = d[d["cls"] == k]
            if not len(mine):
                continue
            mine = mine[np.argsort(-mine["conf"], kind="stable")]
            truth = tlwh(g[(g["cls"] == k) & (g["conf"].astype(int) != 0)])
            iou = box_iou_tlwh(tlwh(mine), truth)
            taken = np.zeros(len(truth), bool)
            hit = np.zeros(len(mine), bool)
            for i in range(len(mine)):
                if not len(truth):
                    break
                cand = np.where(taken, -1.0, iou[i])
                j = int(np.argmax(cand))
                if cand[j] >= MATCH_IOU:
                    taken[j] = hit[i] = True
            keep = np.ones(len(mine), bool)   # an unmatched box on an ignored region is dropped
            if len(ignore):
                miss = ~hit
                on_ignore = (box_iou_tlwh(tlwh(mine[miss]), ignore) >= MATCH_IOU).any(axis=1)
                covered = ignore_coverage_tlwh(tlwh(mine[miss]), ignore) >= ignore_coverage
                keep[miss] = ~(on_ignore | covered)
            conf[name].append(mine["conf"][keep].astype(np.float64))
            tp[name].append(hit[keep])
    return DetRecord({c: np.concatenate(v) if v else np.zeros(0) for c, v in conf.items()},
                     {c: np.concatenate(v) if v else np.zeros(0, bool) for c, v in tp.items()}, n_gt)


def detector_values(records: dict[str, DetRecord], names: Seq[str], prefix: str) -> dict[str, float]:
    """``{<prefix>_<class>_AP50, <prefix>_mAP50}`` (percent) of the videos ``names`` (repeats count)."""
    out = {}
    for cls in CLASSES:
        n_gt = sum(records[s].n_gt[cls] for s in names)
        if n_gt:
            out[f"{prefix}_{cls}_AP50"] = 100.0 * average_precision(
                np.concatenate([records[s].conf[cls] for s in names]),
                np.concatenate([records[s].tp[cls] for s in names]), n_gt)
    if out:
        out[f"{prefix}_mAP50"] = float(np.mean(list(out.values())))
    return out


def reid_values(hits: dict[str, dict[str, list[bool]]], names: Seq[str], prefix: str) -> dict[str, float]:
    """``{<prefix>_<class>_rank1, <prefix>_rank1}`` (percent) over the queries of the videos ``names``."""
    out, pooled = {}, []
    for cls in CLASSES:
        values = [h for s in names for h in hits.get(s, {}).get(cls, [])]
        if values:
            out[f"{prefix}_{cls}_rank1"] = 100.0 * float(np.mean(values))
            pooled += values
    if pooled:
        out[f"{prefix}_rank1"] = 100.0 * float(np.mean(pooled))
    return out


@dataclasses.dataclass(frozen=True)
class PartRecords:
    """One stage's per-video records of its detector and its ReID model on the locked val videos."""

    detector: dict[str, DetRecord]
    reid: dict[str, dict[str, list[bool]]]

    def values(self, names: Seq[str], prefix: str) -> dict[str, float]:
        return {**detector_values(self.detector, names, prefix), **reid_values(self.reid, names, prefix)}


def read_part_records(results: Path, val: dict[str, list[Sequence]], ignore_coverage: float) -> PartRecords:
    """A stage's :class:`PartRecords` from its ``val_results`` folder."""
    detector = {}
    for source, group in val.items():
        for seq in group:
            path = results / DETECTIONS / source / f"{seq.name}.txt"
            if not path.is_file():
                raise CheckpointError("the stage's validation detections are missing; re-run the stage", file=path)
            detector[seq.name] = match_detections(seq, mot.read_txt(path, "result"), ignore_coverage)
    path = results / REID_QUERIES
    if not path.is_file():
        raise CheckpointError("the stage's ReID validation queries are missing; re-run the stage", file=path)
    try:
        queries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    reid: dict[str, dict[str, list[bool]]] = {}
    known = set(detector)
    for i, q in enumerate(queries):
        if q.get("video") not in known or q.get("class") not in CLASSES or not isinstance(q.get("hit"), bool):
            raise DataError("a query needs a locked val video, a class and a boolean hit", file=path,
                            field=f"[{i}]")
        reid.setdefault(q["video"], {}).setdefault(q["class"], []).append(q["hit"])
    return PartRecords(detector, reid)


def detection_rows(frames: list, min_score: float = -np.inf) -> np.ndarray:
    """Result rows (``ANN_DTYPE``) of an :class:`~stagetrack.inference.Observations`' detections
    scoring ``>= min_score``, one identity per box (the files :func:`read_part_records` reads back)."""
    from ..data.sequence import empty_boxes
    from ..track.tracker import MOT_CATEGORY

    rows = []
    for frame, dets in enumerate(frames, start=1):
        keep = dets.score >= min_score
        part = empty_boxes(int(keep.sum()))
        part["frame"] = frame
        part["x"], part["y"], part["w"], part["h"] = dets.tlwh[keep].T
        part["conf"], part["cls"] = dets.score[keep], dets.cls[keep]
        part["category"] = [MOT_CATEGORY[int(c)] for c in dets.cls[keep]]
        rows.append(part)
    out = np.concatenate(rows) if rows else empty_boxes()
    out["id"] = np.arange(1, len(out) + 1)
    return out
