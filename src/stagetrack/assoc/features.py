"""Model inputs of the association transformer, built from live tracker objects.

:func:`build_inputs` is the one function that turns ``(tracks, detections, image_size)`` into
arrays; the sample logger stores exactly what it returns and the runtime scorer feeds it to the
model, so training and tracking cannot drift apart. Layout (N tracks, H = ``history``,
C = ``max_candidates``, D = ReID width, B = HSV bins; boxes are ``cxcywh`` divided by the image
``(width, height)``, "normalised" below):

* ``hist`` (N, H, 4) ``HIST_FIELDS``: the track's last H observed boxes minus its newest one
  (normalised), oldest first, left-padded; ``hist_mask`` (N, H) marks real entries.
* ``track`` (N, len(TRACK_FIELDS)): the Kalman-predicted box (normalised), its velocity against
  the newest observed box, the track score, appearance flags and a one-hot class.
* ``track_box`` (N, 2, 4): normalised predicted and newest observed box (augmentation input).
* ``cand`` (N, C, len(PAIR_FIELDS)): per (track, candidate) geometry relative to the predicted
  box (``dx_box``...) and to the newest observed box (``*_last``), detection score, class
  equality, ReID cosine and HSV histogram intersection. Candidates are the C detections whose
  centres are nearest to the predicted centre, nearest first; ``cand_mask`` (N, C) marks real
  ones, ``cand_index`` (N, C) their row in the detections (-1 for padding).
* ``cand_box`` (N, C, 4): normalised candidate boxes.
* ``track_emb`` (N, D), ``cand_emb`` (N, C, D), ``track_hsv`` (N, B), ``cand_hsv`` (N, C, B):
  appearance, zeros where missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.sequence import CLASSES
from ..errors import ConfigError

FEATURE_VERSION = 1
HIST_FIELDS: tuple[str, ...] = ("dcx", "dcy", "dw", "dh")
TRACK_FIELDS: tuple[str, ...] = ("cx", "cy", "w", "h", "vx", "vy", "score", "has_emb", "has_hsv",
                                 *(f"cls_{name}" for name in CLASSES))
GEOM_FIELDS: tuple[str, ...] = ("dx_img", "dy_img", "dx_box", "dy_box", "log_w", "log_h", "iou",
                                "dx_last", "dy_last", "iou_last")
PAIR_FIELDS: tuple[str, ...] = (*GEOM_FIELDS, "score", "same_cls", "emb_cos", "hsv_sim")

_EPS = 1e-6
_OFFSET_CLIP = 8.0   # box-relative offsets beyond 8 box sizes carry no more information
_LOG_CLIP = 4.0      # |log size ratio| beyond e^4 likewise


def layout(history: int, max_candidates: int, embed_dim: int, hsv_bins: int) -> dict[str, Any]:
    """The feature layout as plain data: stored in the log header and in every checkpoint."""
    return {
        "version": FEATURE_VERSION,
        "history": history,
        "max_candidates": max_candidates,
        "embed_dim": embed_dim,
        "hsv_bins": hsv_bins,
        "hist_fields": list(HIST_FIELDS),
        "track_fields": list(TRACK_FIELDS),
        "pair_fields": list(PAIR_FIELDS),
        "classes": list(CLASSES),
        "box": "cxcywh / (image width, height)",
    }


@dataclasses.dataclass
class AssocInputs:
    """Arrays of :func:`build_inputs` for N tracks (shapes in the module docstring)."""

    hist: np.ndarray
    hist_mask: np.ndarray
    track: np.ndarray
    track_box: np.ndarray
    track_emb: np.ndarray
    track_hsv: np.ndarray
    cand: np.ndarray
    cand_mask: np.ndarray
    cand_index: np.ndarray
    cand_box: np.ndarray
    cand_emb: np.ndarray
    cand_hsv: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __len__(self) -> int:
        return len(self.track)


# model inputs (what the dataset yields and the network reads); cand_index is runtime-only
MODEL_KEYS: tuple[str, ...] = ("hist", "hist_mask", "track", "track_emb", "track_hsv",
                               "cand", "cand_mask", "cand_emb", "cand_hsv")


def tlwh_to_cxcywh(tlwh: np.ndarray) -> np.ndarray:
    out = np.asarray(tlwh, dtype=np.float64).copy()
    out[..., :2] += out[..., 2:] / 2.0
    return out


def _appearance_width(array: np.ndarray | None) -> int:
    return 0 if array is None else int(np.asarray(array).shape[-1])


def check_appearance(dets: Any, embed_dim: int, hsv_bins: int, *, expected_by: str,
                     allow_missing: bool = False) -> None:
    """ConfigError unless the detections carry exactly ``embed_dim`` ReID / ``hsv_bins`` HSV values.

    ``expected_by`` names where the expected widths come from (a checkpoint, an environment
    variable), so the message says which two values disagree. ``allow_missing`` accepts
    detections with no ReID / HSV at all (their inputs are then zeros).
    """
    if len(dets.tlwh) == 0:
        return
    emb_w = _appearance_width(dets.emb)
    if emb_w != embed_dim and not (allow_missing and dets.emb is None):
        raise ConfigError(
            f"ReID embedding width mismatch: {expected_by} expects embed_dim={embed_dim}, the "
            f"detections carry {emb_w}" + (" (no ReID features)" if dets.emb is None else ""),
            field="embed_dim",
            hint="the ReID model, the logged samples and the association checkpoint must agree",
        )
    hsv_w = _appearance_width(dets.hsv)
    if hsv_bins and hsv_w != hsv_bins and not (allow_missing and dets.hsv is None):
        raise ConfigError(
            f"HSV histogram width mismatch: {expected_by} expects hsv_bins={hsv_bins}, the "
            f"detections carry {hsv_w}",
            field="hsv_bins",
        )


def _iou_cxcywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of broadcastable cxcywh boxes (..., 4) -> (...)."""
    a1, a2 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b1, b2 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    wh = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / np.maximum(union, _EPS)


def pair_geometry(pred: np.ndarray, last: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """``GEOM_FIELDS`` of candidates against a track: (..., 4), (..., 4), (..., C, 4) -> (..., C, 10).

    All boxes normalised cxcywh; pure, so the dataset's box jitter recomputes it identically.
    """
    pred = pred[..., None, :]                                  # (..., 1, 4)
    last = last[..., None, :]                                  # (..., 1, 4)
    pw, ph = np.maximum(pred[..., 2], _EPS), np.maximum(pred[..., 3], _EPS)
    lw, lh = np.maximum(last[..., 2], _EPS), np.maximum(last[..., 3], _EPS)
    dx, dy = cand[..., 0] - pred[..., 0], cand[..., 1] - pred[..., 1]   # (..., C)
    cols = [
        dx, dy,
        np.clip(dx / pw, -_OFFSET_CLIP, _OFFSET_CLIP),
        np.clip(dy / ph, -_OFFSET_CLIP, _OFFSET_CLIP),
        np.clip(np.log(np.maximum(cand[..., 2], _EPS) / pw), -_LOG_CLIP, _LOG_CLIP),
        np.clip(np.log(np.maximum(cand[..., 3], _EPS) / ph), -_LOG_CLIP, _LOG_CLIP),
        _iou_cxcywh(cand, pred),
        np.clip((cand[..., 0] - last[..., 0]) / lw, -_OFFSET_CLIP, _OFFSET_CLIP),
        np.clip((cand[..., 1] - last[..., 1]) / lh, -_OFFSET_CLIP, _OFFSET_CLIP),
        _iou_cxcywh(cand, last),
    ]
    return np.stack(cols, axis=-1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def _hist_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(a.sum(-1, keepdims=True), _EPS)
    b = b / np.maximum(b.sum(-1, keepdims=True), _EPS)
    return np.minimum(a, b).sum(-1)


def build_inputs(tracks: Sequence[Any], dets: Any, image_size: tuple[int, int], *, history: int,
                 max_candidates: int, embed_dim: int, hsv_bins: int) -> AssocInputs:
    """Model inputs for every track against the detections (layout in the module docstring).

    ``image_size`` is ``(width, height)`` in pixels. Appearance widths must already have been
    checked with :func:`check_appearance`; a missing ``emb``/``hsv`` (of a track, or of all
    detections) gives zeros, and a track's ``has_emb``/``has_hsv`` = 0.
    """
    width, height = float(image_size[0]), float(image_size[1])
    scale = np.array([width, height, width, height])
    n, m, c, hl = len(tracks), len(dets.tlwh), max_candidates, history
    f32 = np.float32

    hist = np.zeros((n, hl, len(HIST_FIELDS)), f32)
    hist_mask = np.zeros((n, hl), bool)
    track_feat = np.zeros((n, len(TRACK_FIELDS)), f32)
    track_box = np.zeros((n, 2, 4), np.float64)
    track_emb = np.zeros((n, embed_dim), f32)
    track_hsv = np.zeros((n, hsv_bins), f32)
    for i, trk in enumerate(tracks):
        pred = tlwh_to_cxcywh(trk.tlwh) / scale
        past = [np.asarray(b, np.float64) for b in list(trk.history)[-hl:]] or [np.asarray(trk.tlwh, np.float64)]
        past = tlwh_to_cxcywh(np.stack(past)) / scale                     # (h, 4), oldest first
        last = past[-1]
        hist[i, hl - len(past):] = past - last
        hist_mask[i, hl - len(past):] = True
        track_box[i] = pred, last
        has_emb = embed_dim > 0 and trk.emb is not None
        has_hsv = hsv_bins > 0 and trk.hsv is not None
        if has_emb:
            track_emb[i] = _checked(trk.emb, embed_dim, "track.emb")
        if has_hsv:
            track_hsv[i] = _checked(trk.hsv, hsv_bins, "track.hsv")
        onehot = [float(trk.cls == k) for k in range(len(CLASSES))]
        track_feat[i] = [*pred, pred[0] - last[0], pred[1] - last[1], float(trk.score),
                         float(has_emb), float(has_hsv), *onehot]

    cand_index = np.full((n, c), -1, np.int64)
    if m:
        det_box = tlwh_to_cxcywh(np.asarray(dets.tlwh, np.float64)) / scale           # (M, 4)
        dist = np.linalg.norm((det_box[None, :, :2] - track_box[:, None, 0, :2]) * scale[:2], axis=-1)  # (N, M)
        order = np.argsort(dist, axis=1, kind="stable")[:, :c]                        # (N, min(C, M))
        cand_index[:, :order.shape[1]] = order
    cand_mask = cand_index >= 0                                                       # (N, C)
    safe = np.where(cand_mask, cand_index, 0)

    cand = np.zeros((n, c, len(PAIR_FIELDS)), f32)
    cand_box = np.zeros((n, c, 4), np.float64)
    cand_emb = np.zeros((n, c, embed_dim), f32)
    cand_hsv = np.zeros((n, c, hsv_bins), f32)
    if m and n:
        cand_box = det_box[safe]                                                      # (N, C, 4)
        geom = pair_geometry(track_box[:, 0], track_box[:, 1], cand_box)             # (N, C, 10)
        score = np.asarray(dets.score, np.float64)[safe]
        det_cls = np.asarray(dets.cls)[safe]
        same = (det_cls == np.array([t.cls for t in tracks])[:, None]).astype(np.float64)
        emb_cos = np.zeros((n, c))
        hsv_sim = np.zeros((n, c))
        if embed_dim and dets.emb is not None:
            cand_emb = np.asarray(dets.emb, f32)[safe]
            # a track without an embedding has a zero vector, hence cosine 0
            emb_cos = np.einsum("nd,ncd->nc", _unit(track_emb.astype(np.float64)),
                                _unit(cand_emb.astype(np.float64)))
        if hsv_bins and dets.hsv is not None:
            cand_hsv = np.asarray(dets.hsv, f32)[safe]
            hsv_sim = _hist_intersection(track_hsv[:, None].astype(np.float64), cand_hsv.astype(np.float64))
        cand = np.concatenate([geom, np.stack([score, same, emb_cos, hsv_sim], -1)], -1).astype(f32)
        pad = ~cand_mask
        for arr in (cand, cand_box, cand_emb, cand_hsv):
            arr[pad] = 0

    return AssocInputs(hist=hist, hist_mask=hist_mask, track=track_feat, track_box=track_box.astype(f32),
                       track_emb=track_emb, track_hsv=track_hsv, cand=cand, cand_mask=cand_mask,
                       cand_index=cand_index, cand_box=cand_box.astype(f32), cand_emb=cand_emb,
                       cand_hsv=cand_hsv)


def _checked(vec: Any, width: int, name: str) -> np.ndarray:
    arr = np.asarray(vec, np.float32).reshape(-1)
    if arr.shape[0] != width:
        raise ConfigError(f"{name} has width {arr.shape[0]}, expected {width}", field=name)
    return arr
