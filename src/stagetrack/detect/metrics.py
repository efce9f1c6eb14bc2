"""Detection metrics as the project reports them: overall and per class, fixed keys.

Keys: ``precision``, ``recall``, ``mAP50``, ``mAP50-95`` and, for each class in ``CLASSES``,
``<class>/<metric>`` (``person/mAP50``, ``vehicle/recall`` ...). The key set never depends on
the data, so ``dvc metrics diff`` compares stages key by key; a class without ground truth in
the validation set has no defined precision/recall/AP and reports 0.0 (logged as a warning).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..data.sequence import CLASSES

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("precision", "recall", "mAP50", "mAP50-95")


def metric_keys() -> list[str]:
    """Every key :func:`summarize` returns, overall first."""
    return [*METRICS, *(f"{c}/{m}" for c in CLASSES for m in METRICS)]


def pr_curve(det_metrics: Any, points: int = 50) -> list[dict[str, float]]:
    """The precision-recall curve at IoU 0.5, one row per recall point, a column per class.

    ultralytics samples every class on the same 1000 recall points (``box.px``; precision in
    ``box.prec_values``, rows in ``ap_class_index`` order); every ``1000 // points``-th is kept.
    A class absent from the validation set has no column.
    """
    box = det_metrics.box
    px, prec = np.asarray(box.px), np.asarray(box.prec_values)
    if prec.ndim != 2 or not len(px):
        return []
    take = np.arange(0, len(px), max(1, len(px) // points))
    names = [CLASSES[int(c)] for c in box.ap_class_index]
    return [{"recall": round(float(px[j]), 4), **{n: round(float(prec[i, j]), 4) for i, n in enumerate(names)}}
            for j in take]


def summarize(det_metrics: Any) -> dict[str, float]:
    """Flatten ultralytics' ``DetMetrics`` (its ``box`` holds arrays over ``ap_class_index``)."""
    box = det_metrics.box
    out = dict(zip(METRICS, (float(box.mp), float(box.mr), float(box.map50), float(box.map))))
    present = [int(c) for c in box.ap_class_index]
    for c, name in enumerate(CLASSES):
        if c not in present:
            log.warning("no %s in the validation set: its metrics are reported as 0", name)
            out.update({f"{name}/{m}": 0.0 for m in METRICS})
            continue
        i = present.index(c)
        out[f"{name}/precision"] = float(box.p[i])
        out[f"{name}/recall"] = float(box.r[i])
        out[f"{name}/mAP50"] = float(box.ap50[i])
        out[f"{name}/mAP50-95"] = float(box.ap[i])
    return out
