"""HOTA, CLEAR (MOTA) and Identity (IDF1) by TrackEval's own metric objects.

:func:`evaluate` builds TrackEval's per-sequence ``data`` for each class
(:func:`stagetrack.evaluate.preprocess.sequence_data`), runs ``HOTA``, ``CLEAR``, ``Identity`` and
``Count`` on it, combines sequences with each metric's ``combine_sequences`` and classes with
``combine_classes_det_averaged`` (what TrackEval reports as ``cls_comb_det_av``). The numbers
are TrackEval's by construction; only the reporting is ours:

* ratios on TrackEval's printed 0-100 scale (array metrics such as HOTA are the mean over the 19
  alpha thresholds, times 100), counts as ints, under TrackEval's field names;
* a class with no ground truth and no predictions after preprocessing, in every sequence, is
  left out of ``per_class`` (and of the combination, where it would add nothing); in
  ``per_sequence`` a sequence lists the classes it has boxes of.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any

import numpy as np
from trackeval.metrics import CLEAR, HOTA, Count, Identity

from ..data import mot
from ..data.sequence import ANN_DTYPE, CLASSES, IGNORE, Sequence, empty_boxes
from ..errors import ConfigError, DataError
from .preprocess import MODES, Mode, sequence_data

log = logging.getLogger(__name__)

# reported field -> (TrackEval metric, kind): "alpha" = mean over alphas x100, "ratio" = x100
FIELDS: dict[str, tuple[str, str]] = {
    "HOTA": ("HOTA", "alpha"), "DetA": ("HOTA", "alpha"), "AssA": ("HOTA", "alpha"),
    "LocA": ("HOTA", "alpha"), "DetRe": ("HOTA", "alpha"), "DetPr": ("HOTA", "alpha"),
    "AssRe": ("HOTA", "alpha"), "AssPr": ("HOTA", "alpha"),
    "IDF1": ("Identity", "ratio"), "IDR": ("Identity", "ratio"), "IDP": ("Identity", "ratio"),
    "IDTP": ("Identity", "int"), "IDFP": ("Identity", "int"), "IDFN": ("Identity", "int"),
    "MOTA": ("CLEAR", "ratio"), "MOTP": ("CLEAR", "ratio"), "IDSW": ("CLEAR", "int"),
    "CLR_TP": ("CLEAR", "int"), "CLR_FN": ("CLEAR", "int"), "CLR_FP": ("CLEAR", "int"),
    "Frag": ("CLEAR", "int"), "MT": ("CLEAR", "int"), "PT": ("CLEAR", "int"), "ML": ("CLEAR", "int"),
    "GT_IDs": ("Count", "int"), "IDs": ("Count", "int"), "Dets": ("Count", "int"),
    "GT_Dets": ("Count", "int"),
}
SEQUENCE_FIELDS: tuple[str, ...] = ("HOTA", "IDF1", "MOTA", "IDSW")


def _metrics() -> dict[str, Any]:
    quiet = {"PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(quiet), "Identity": Identity(quiet), "Count": Count()}


def summarize(res: dict[str, dict[str, Any]], fields: SequenceABC[str] = tuple(FIELDS)) -> dict[str, float | int]:
    """TrackEval results of one class/sequence (metric name -> fields) -> reported numbers."""
    out: dict[str, float | int] = {}
    for name in fields:
        metric, kind = FIELDS[name]
        value = res[metric][name]
        if kind == "alpha":
            out[name] = float(100 * np.mean(value))
        elif kind == "ratio":
            out[name] = float(100 * value)
        else:
            out[name] = int(value)
    return out


def _class_indices(classes: SequenceABC[str]) -> list[int]:
    bad = [c for c in classes if c not in CLASSES]
    if bad or not classes:
        raise ConfigError(f"unknown class {bad[0]!r}" if bad else "no class to evaluate",
                          field="classes", allowed=CLASSES)
    return [CLASSES.index(c) for c in dict.fromkeys(classes)]


# TrackEval's per-sequence results: sequence -> class -> metric name -> that metric's fields
Raw = dict[str, dict[str, dict[str, Any]]]


def sequence_results(pairs: list[tuple[Sequence, np.ndarray]], *, classes: SequenceABC[str] = ("person", "vehicle"),
                     preprocess: Mode = "project", ignore_coverage: float = 0.5) -> Raw:
    """TrackEval's ``eval_sequence`` of every (ground truth, predictions) pair and class."""
    if preprocess not in MODES:
        raise ConfigError(f"invalid value {preprocess!r}", field="preprocess", allowed=MODES)
    indices = _class_indices(classes)
    if not pairs:
        raise DataError("nothing to evaluate: no sequences")
    names = [seq.name for seq, _ in pairs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"sequence names must be unique, repeated: {', '.join(dup)}")
    metrics = _metrics()
    res: Raw = {}
    for seq, pred in pairs:
        if pred.dtype != ANN_DTYPE:
            raise TypeError(f"predictions of {seq.name} must have ANN_DTYPE, got {pred.dtype}")
        if (pred["cls"] == IGNORE).any():
            log.warning("%s: %d predicted box(es) of class ignore are not scored", seq.name,
                        int((pred["cls"] == IGNORE).sum()))
        res[seq.name] = {}
        for ci in indices:
            data = sequence_data(seq, pred, ci, mode=preprocess, ignore_coverage=ignore_coverage)
            res[seq.name][CLASSES[ci]] = {name: m.eval_sequence(data) for name, m in metrics.items()}
    return res


def _present(r: dict[str, Any]) -> bool:
    return r["Count"]["GT_Dets"] + r["Count"]["Dets"] > 0


def combine(res: Raw, names: SequenceABC[str] | None = None, fields: SequenceABC[str] = tuple(FIELDS),
            *, quiet: bool = False) -> dict[str, Any]:
    """Per class and combined metrics of the sequences ``names`` (default all), by TrackEval's
    ``combine_sequences`` and ``combine_classes_det_averaged``.

    ``names`` may repeat a sequence (a bootstrap draw): each occurrence counts as a sequence of
    its own, exactly as if the video were in the set twice. A class with no ground truth and no
    predictions in any of them is left out. Returns ``{"per_class": {cls: fields}, "combined": fields}``.
    """
    names = list(res) if names is None else list(names)
    metrics = _metrics()
    classes = list(next(iter(res.values())))
    per_class_raw: dict[str, dict[str, Any]] = {}
    for cls in classes:
        if not any(_present(res[s][cls]) for s in names):
            if not quiet:
                log.info("class %s has no ground truth and no predictions: not reported", cls)
            continue
        per_class_raw[cls] = {name: m.combine_sequences({f"{i}:{s}": res[s][cls][name] for i, s in enumerate(names)})
                              for name, m in metrics.items()}
    if not per_class_raw:
        raise DataError(f"nothing to evaluate: no ground truth and no predictions of {', '.join(classes)} "
                        f"in {len(set(names))} sequence(s)")
    combined = {name: m.combine_classes_det_averaged({c: r[name] for c, r in per_class_raw.items()})
                for name, m in metrics.items()}
    return {"per_class": {cls: summarize(r, fields) for cls, r in per_class_raw.items()},
            "combined": summarize(combined, fields)}


def evaluate(pairs: list[tuple[Sequence, np.ndarray]], *, classes: SequenceABC[str] = ("person", "vehicle"),
             preprocess: Mode = "project", ignore_coverage: float = 0.5) -> dict[str, Any]:
    """Evaluate predictions against ground truth; see the module docstring for the result.

    ``pairs``: (ground truth, predictions as ``ANN_DTYPE`` rows with ``conf`` = score) per
    sequence. ``preprocess`` and ``ignore_coverage``: see :mod:`stagetrack.evaluate.preprocess`.
    Returns ``{"per_class": {cls: fields}, "combined": fields, "per_sequence": {seq: {cls:
    {HOTA, IDF1, MOTA, IDSW}}}}``.
    """
    res = sequence_results(pairs, classes=classes, preprocess=preprocess, ignore_coverage=ignore_coverage)
    return {
        **combine(res),
        "per_sequence": {
            s: {cls: summarize(r, SEQUENCE_FIELDS) for cls, r in by_cls.items() if _present(r)}
            for s, by_cls in res.items()
        },
    }


def read_seqmap(path: str | Path) -> list[str]:
    """Sequence names of a TrackEval seqmap (first line is a header, blank names skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read seqmap: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    return [name for line in lines[1:] if (name := line.split(",")[0].strip())]


def _selected_sequences(gt_dir: Path, seqmap: str | Path | None) -> list[Path]:
    if seqmap is None:
        maps = sorted((gt_dir / "seqmaps").glob("*.txt")) if (gt_dir / "seqmaps").is_dir() else []
        if len(maps) > 1:
            raise DataError(f"several seqmaps: {', '.join(m.name for m in maps)}", file=gt_dir / "seqmaps",
                            hint="choose one with --seqmap")
        if not maps:
            return mot.list_sequences(gt_dir)
        seqmap = maps[0]
    names = read_seqmap(seqmap)
    for name in names:
        if not (gt_dir / name / "gt" / "gt.txt").is_file():
            raise DataError(f"sequence {name!r} has no {gt_dir / name / 'gt' / 'gt.txt'}", file=seqmap)
    if not names:
        raise DataError("seqmap lists no sequence", file=seqmap)
    return [gt_dir / name for name in names]


def read_mot_dir(gt_dir: str | Path, pred_dir: str | Path, seqmap: str | Path | None = None, *,
                 missing_as_empty: bool = False) -> list[tuple[Sequence, np.ndarray]]:
    """(ground truth, predictions) of every sequence of a MOTChallenge folder.

    Ground truth: ``gt_dir/SEQ/gt/gt.txt`` + ``seqinfo.ini``; the sequences are those of
    ``seqmap``, else of the one seqmap in ``gt_dir/seqmaps/`` (TrackEval's place for it), else
    every sequence folder. Predictions: ``pred_dir/SEQ.txt``. A missing prediction file is an
    error naming it, unless ``missing_as_empty`` asks to score it as an empty result (TrackEval's
    choice; logged at WARNING); a prediction file whose sequence has no ground truth is an error
    naming it.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    if not gt_dir.is_dir():
        raise DataError("ground-truth folder not found", file=gt_dir)
    if not pred_dir.is_dir():
        raise DataError("prediction folder not found", file=pred_dir)
    seq_dirs = _selected_sequences(gt_dir, seqmap)
    if not seq_dirs:
        raise DataError("no sequences (expected SEQ/gt/gt.txt with seqinfo.ini)", file=gt_dir)
    pairs = []
    for seq_dir in seq_dirs:
        seq = mot.read_sequence(seq_dir, ann="gt")
        if seq.name != seq_dir.name:  # result files are named after the folder, as in TrackEval
            seq = dataclasses.replace(seq, name=seq_dir.name)
        pred_file = pred_dir / f"{seq_dir.name}.txt"
        if pred_file.is_file():
            pred = mot.read_txt(pred_file, kind="result")
        elif missing_as_empty:
            log.warning("%s: no prediction file, scored as empty (--missing-as-empty)", pred_file)
            pred = empty_boxes(0)
        else:
            raise DataError("no prediction file for this ground-truth sequence", file=pred_file,
                            hint="track it, drop it from the seqmap, or pass --missing-as-empty to score it as "
                                 "no output")
        pairs.append((seq, pred))
    for pred_file in sorted(pred_dir.glob("*.txt")):
        if not (gt_dir / pred_file.stem / "gt" / "gt.txt").is_file():
            raise DataError("prediction file has no ground-truth sequence", file=pred_file,
                            hint=f"expected {gt_dir / pred_file.stem / 'gt' / 'gt.txt'}")
    return pairs
