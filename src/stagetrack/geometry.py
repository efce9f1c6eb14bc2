"""Box IoU and IoU matching: the one rule of each that the tracker, the evaluation and the drawings share.

:func:`box_iou` is TrackEval's ``_calculate_box_ious`` to the bit (same arithmetic, same zeros for
degenerate boxes; a test checks it on random and degenerate boxes), written for x1, y1, x2, y2
input so the tracker's costs use it as they are. :func:`match_by_iou` is TrackEval's and CLEAR-MOT's
ground-truth-to-prediction matching: Hungarian on IoU, pairs below the threshold never matched,
continuing pairs first when asked. The detector's AP (``evaluate/parts.py``) matches greedily by
score instead, as every AP protocol does; that is a different question, not a third copy.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

EPS = np.finfo("float").eps  # TrackEval's tolerance for areas, unions and thresholds
KEEP_BONUS = 1000.0          # CLEAR-MOT's bonus for a pair that continues an earlier match (TrackEval's value)


def box_iou(a_tlbr: np.ndarray, b_tlbr: np.ndarray) -> np.ndarray:
    """(N, M) IoU of ``(N, 4)`` and ``(M, 4)`` x1, y1, x2, y2 boxes; 0 where a box or the union has no area."""
    a = np.asarray(a_tlbr, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_tlbr, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    inter[area_a <= EPS, :] = 0
    inter[:, area_b <= EPS] = 0
    inter[union <= EPS] = 0
    union[union <= EPS] = 1
    return inter / union


def box_iou_tlwh(a_tlwh: np.ndarray, b_tlwh: np.ndarray) -> np.ndarray:
    """:func:`box_iou` of x, y, w, h boxes (converted as TrackEval converts them: x2 = x + w)."""
    return box_iou(_to_tlbr(a_tlwh), _to_tlbr(b_tlwh))


def _to_tlbr(tlwh: np.ndarray) -> np.ndarray:
    boxes = np.array(tlwh, dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def match_by_iou(iou: np.ndarray, min_iou: float, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the matched pairs: the assignment of largest total IoU among pairs with
    IoU >= ``min_iou`` (TrackEval's rule, same tolerance). ``keep`` (same shape, bool) marks pairs that
    continue an earlier match: among valid pairs they win over any IoU (CLEAR-MOT)."""
    scores = np.array(iou, dtype=np.float64)
    if scores.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    scores[scores < min_iou - EPS] = 0
    if keep is not None:
        scores = scores + KEEP_BONUS * (keep & (scores > 0 + EPS))
    rows, cols = linear_sum_assignment(-scores)
    valid = scores[rows, cols] > 0 + EPS
    return rows[valid].astype(np.int64), cols[valid].astype(np.int64)
