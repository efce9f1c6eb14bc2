"""Association costs: pure functions returning (N tracks, M detections) matrices.

Every distance lies in [0, 1] (cosine distance in [0, 2]) where lower is more alike; each
function returns an empty ``(N, M)`` matrix for empty input. A NaN entry means "feature
missing for this pair" (a track that never saw an embedding) and makes that term drop out of
:func:`blend` for that pair only.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import box_iou
from .config import CostWeights

_EPS = 1e-12


def grow_to(tlbr: np.ndarray, min_size: float) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 boxes whose width or height is below ``min_size`` grown to it about their centre.

    A 9-px box that moves 3 px keeps IoU 0.5 with itself; one pixel more of detector jitter and
    it drops below any usable threshold, so for IoU matching small boxes are measured as if they
    were at least ``min_size`` wide and high (the idea of C-BIoU's buffered boxes, Yang et al.
    2023, with a floor in pixels instead of a fraction of the box: large boxes stay as they are).
    """
    boxes = np.asarray(tlbr, dtype=np.float64).reshape(-1, 4)
    if min_size <= 0 or len(boxes) == 0:
        return boxes
    pad = np.clip(min_size - (boxes[:, 2:] - boxes[:, :2]), 0.0, None) / 2   # (N, 2): per side, x and y
    return np.concatenate([boxes[:, :2] - pad, boxes[:, 2:] + pad], axis=1)


def iou_distance(tlbr_a: np.ndarray, tlbr_b: np.ndarray, min_size: float = 0.0) -> np.ndarray:
    """``1 - IoU`` of ``(N, 4)`` and ``(M, 4)`` x1, y1, x2, y2 boxes; degenerate boxes have area 0.

    ``min_size`` > 0 measures boxes smaller than that (px, per side) as grown to it (:func:`grow_to`).
    """
    return 1.0 - box_iou(grow_to(tlbr_a, min_size), grow_to(tlbr_b, min_size))


def reid_distance(track_embs: np.ndarray, det_embs: np.ndarray) -> np.ndarray:
    """Cosine distance ``1 - <a, b>`` in [0, 2] of L2-normalised ``(N, D)`` and ``(M, D)`` features.

    Rows of NaN (missing features) give NaN distances.
    """
    a = np.asarray(track_embs, dtype=np.float32)
    b = np.asarray(det_embs, dtype=np.float32)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.clip(1.0 - (a @ b.T).astype(np.float64), 0.0, 2.0)


def hsv_distance(track_hists: np.ndarray, det_hists: np.ndarray) -> np.ndarray:
    """Bhattacharyya (Hellinger) distance ``sqrt(1 - sum_k sqrt(p_k q_k))`` in [0, 1].

    Chosen over ``1 - intersection`` because it rewards overlap of small bins too (a coat's
    dominant colour and its trim) and is one matrix product of square roots. Equals OpenCV's
    ``HISTCMP_BHATTACHARYYA`` on histograms that sum to 1. A zero histogram is at distance 1
    from everything.
    """
    a = np.asarray(track_hists, dtype=np.float64)
    b = np.asarray(det_hists, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    coeff = np.sqrt(np.clip(a, 0, None)) @ np.sqrt(np.clip(b, 0, None)).T
    return np.sqrt(np.clip(1.0 - coeff, 0.0, 1.0))


def hsv_histogram(image_bgr: np.ndarray, tlwh_boxes: np.ndarray, bins: tuple[int, int] = (8, 4),
                  crop: float = 0.6) -> np.ndarray:
    """``(M, bins[0] * bins[1])`` hue-saturation histograms of the boxes' central regions.

    Each box is shrunk to its central ``crop`` fraction of width and height (less background,
    fewer neighbours), clipped to the image, converted to HSV and binned over hue (OpenCV's
    0-180) and saturation (0-256); value is left out so that lighting changes matter less.
    Rows sum to 1; a box with no pixels inside the image gives a zero row.
    """
    boxes = np.asarray(tlwh_boxes, dtype=np.float64).reshape(-1, 4)
    n_bins = int(bins[0]) * int(bins[1])
    out = np.zeros((len(boxes), n_bins), dtype=np.float32)
    if len(boxes) == 0:
        return out
    height, width = image_bgr.shape[:2]
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    half = boxes[:, 2:] * (crop / 2)
    x0 = np.clip(np.floor(centre[:, 0] - half[:, 0]), 0, width).astype(int)
    x1 = np.clip(np.ceil(centre[:, 0] + half[:, 0]), 0, width).astype(int)
    y0 = np.clip(np.floor(centre[:, 1] - half[:, 1]), 0, height).astype(int)
    y1 = np.clip(np.ceil(centre[:, 1] + half[:, 1]), 0, height).astype(int)
    hist_size = [int(bins[0]), int(bins[1])]
    for i in np.flatnonzero((x1 > x0) & (y1 > y0)):
        hsv = cv2.cvtColor(np.ascontiguousarray(image_bgr[y0[i]:y1[i], x0[i]:x1[i]]), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, hist_size, [0, 180, 0, 256]).ravel()
        out[i] = hist / max(float(hist.sum()), 1.0)
    return out


def fuse_score(cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ByteTrack's score fusion: ``1 - (1 - cost) * score`` per detection column."""
    if cost.size == 0:
        return cost
    return 1.0 - (1.0 - cost) * np.asarray(scores, dtype=np.float64)[None, :]


def blend(iou_d: np.ndarray, *, weights: CostWeights, reid_d: np.ndarray | None = None,
          hsv_d: np.ndarray | None = None, learned: np.ndarray | None = None,
          det_scores: np.ndarray | None = None, iou_gate: float = 1.0, reid_gate: float = 2.0,
          learned_weight: float = 0.0, forbid: np.ndarray | None = None) -> np.ndarray:
    """The one association cost: classical terms, gates and the learned score, ``(N, M)``.

    1. Motion term: ``iou_d``, fused with ``det_scores`` (:func:`fuse_score`) when given.
    2. Classical cost, ``weights.fusion == "mean"``: ``(w_iou * motion + w_reid * min(reid_d, 1)
       + w_hsv * hsv_d)`` divided by the sum of the weights of the terms present. A term that is
       None (no embeddings because there are no images) or NaN for a pair (a track without
       features yet) drops out of both sums, so the others keep their relative weight. A pair
       with no weighted term at all falls back to the motion term.
       ``"min"`` (BoT-SORT): the appearance distance is the weighted mean of the present
       appearance terms alone; the cost is ``min(motion, appearance)`` for pairs with
       ``iou_d <= 1 - proximity`` and appearance ``<= appearance_thresh``, else ``motion``.
    3. Learned mix: ``(1 - a) * cost + a * (1 - learned)`` with ``a = learned_weight``
       (0 = classical only, 1 = learned only), when ``learned`` (probabilities) is given.
    4. Gates (hard, in every mode): pairs with raw ``iou_d > iou_gate``, with
       ``reid_d > reid_gate``, or where ``forbid`` is True get ``inf``. ``iou_gate = 1`` and
       ``reid_gate = 2`` switch the gates off. Without the IoU gate a perfect appearance match
       anywhere in the image could win (cost ``w_iou / sum(w)`` for zero overlap).
    """
    iou_d = np.asarray(iou_d, dtype=np.float64)
    if iou_d.size == 0:
        return iou_d.copy()
    motion = fuse_score(iou_d, det_scores) if det_scores is not None else iou_d
    appearance = [(weights.reid, None if reid_d is None else np.minimum(reid_d, 1.0)),
                  (weights.hsv, hsv_d)]
    appearance = [(w, np.asarray(d, dtype=np.float64)) for w, d in appearance if d is not None and w > 0]
    if appearance and weights.fusion == "min":
        num = sum(np.where(np.isnan(d), 0.0, w * np.nan_to_num(d)) for w, d in appearance)
        den = sum(np.where(np.isnan(d), 0.0, w) for w, d in appearance)
        app = np.where(den > 0, num / np.maximum(den, _EPS), np.inf)
        close = (iou_d <= 1.0 - weights.proximity) & (app <= weights.appearance_thresh)
        cost = np.where(close, np.minimum(motion, app), motion)
    elif appearance:
        num = weights.iou * motion
        den = np.full(motion.shape, weights.iou)
        for w, d in appearance:
            present = ~np.isnan(d)
            num = num + np.where(present, w * np.nan_to_num(d), 0.0)
            den = den + np.where(present, w, 0.0)
        cost = np.where(den > 0, num / np.maximum(den, _EPS), motion)
    else:
        cost = motion.copy()
    if learned is not None and learned_weight > 0:
        learned_cost = 1.0 - np.asarray(learned, dtype=np.float64)
        cost = learned_cost if learned_weight >= 1 else (1 - learned_weight) * cost + learned_weight * learned_cost
    gate = iou_d > iou_gate
    if reid_d is not None:
        gate |= np.asarray(reid_d) > reid_gate  # NaN compares False: missing features never gate
    if forbid is not None:
        gate |= forbid
    cost[gate] = np.inf
    return cost
