"""Cost functions, the blend and thresholded assignment on tiny hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stagetrack.track.config import CostWeights
from stagetrack.track.costs import (blend, fuse_score, grow_to, hsv_distance, hsv_histogram, iou_distance,
                                    reid_distance)
from stagetrack.track.matching import linear_assignment

INF = np.inf


@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 2, 2], [1, 0, 3, 2], 1 - 2 / 6),    # two 2x2 boxes overlapping 1x2: IoU 2/6
    ([0, 0, 2, 2], [0, 0, 2, 2], 0.0),          # identical
    ([0, 0, 2, 2], [5, 5, 7, 7], 1.0),          # disjoint
    ([0, 0, 2, 2], [0, 0, 1, 1], 1 - 1 / 4),    # 1x1 inside 2x2
    ([0, 0, 2, 2], [1, 1, 1, 3], 1.0),          # zero-width box: area 0
    ([0, 0, 2, 2], [2, 0, 4, 2], 1.0),          # touching edges
])
def test_iou_distance(a, b, expected):
    d = iou_distance(np.array([a], float), np.array([b], float))
    assert d.shape == (1, 1) and d[0, 0] == pytest.approx(expected)


def test_grow_to_pads_only_the_short_sides_about_the_centre():
    boxes = np.array([[10, 10, 14, 14],      # 4x4: both sides grown to 20, centre (12, 12) kept
                      [0, 0, 40, 6],         # 40x6: only the height grows (7 px each side)
                      [0, 0, 30, 25]], float)  # large: unchanged
    np.testing.assert_allclose(grow_to(boxes, 20.0), [[2, 2, 22, 22], [0, -7, 40, 13], [0, 0, 30, 25]])
    np.testing.assert_array_equal(grow_to(boxes, 0.0), boxes)


@pytest.mark.parametrize("a, b, min_size, expected", [
    ([0, 0, 4, 4], [5, 0, 9, 4], 0.0, 1.0),           # two 4x4 boxes 5 px apart: no overlap
    ([0, 0, 4, 4], [5, 0, 9, 4], 20.0, 1 - 300 / 500),  # grown to 20x20, 5 px apart: 15x20 of 800 - 300
    ([0, 0, 40, 40], [5, 0, 45, 40], 20.0, 1 - 1400 / 1800),  # 40x40 boxes are measured as they are
])
def test_iou_distance_with_a_minimum_box_size(a, b, min_size, expected):
    d = iou_distance(np.array([a], float), np.array([b], float), min_size)
    assert d[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("n, m", [(0, 3), (2, 0), (0, 0)])
def test_costs_empty_shapes(n, m):
    assert iou_distance(np.zeros((n, 4)), np.zeros((m, 4))).shape == (n, m)
    assert reid_distance(np.zeros((n, 8)), np.zeros((m, 8))).shape == (n, m)
    assert hsv_distance(np.zeros((n, 8)), np.zeros((m, 8))).shape == (n, m)
    assert blend(np.zeros((n, m)), weights=CostWeights()).shape == (n, m)


def test_reid_distance_is_cosine():
    s = 1 / math.sqrt(2)
    tracks = np.array([[1.0, 0.0]])
    dets = np.array([[1.0, 0.0], [0.0, 1.0], [s, s], [-1.0, 0.0]])
    np.testing.assert_allclose(reid_distance(tracks, dets), [[0.0, 1.0, 1 - s, 2.0]], atol=1e-6)
    assert np.isnan(reid_distance(np.full((1, 2), np.nan), dets)).all()  # missing -> NaN


def test_hsv_distance_bhattacharyya():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    # sqrt(1 - sum sqrt(p q)): identical 0, disjoint 1, half overlap sqrt(1 - sqrt(.5)), empty 1
    expected = [[0.0, 1.0], [math.sqrt(1 - math.sqrt(0.5))] * 2, [1.0, 1.0]]
    np.testing.assert_allclose(hsv_distance(p, q), expected, atol=1e-7)


def test_hsv_histogram_bins_central_region_and_outside():
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, :50] = (255, 0, 0)      # blue: OpenCV H=120, S=255
    img[:, 50:] = (0, 0, 255)      # red: H=0, S=255
    img[:, :20] = (128, 128, 128)  # grey border: S=0
    # bins (6, 2): hue bins 30 wide, saturation bins 128 wide; flat index = h_bin * 2 + s_bin.
    blue, red, grey = 4 * 2 + 1, 0 * 2 + 1, 0 * 2 + 0
    boxes = np.array([
        [25, 0, 20, 40],     # all blue
        [30, 0, 40, 40],     # crop 1.0: x 30..70, half blue half red
        [0, 0, 100, 40],     # crop 0.6: x 20..80 -> the grey border (x < 20) is cut off
        [200, 0, 10, 10],    # outside the image
    ], float)
    full = hsv_histogram(img, boxes[:2], bins=(6, 2), crop=1.0)
    assert full.shape == (2, 12)
    assert full[0, blue] == pytest.approx(1.0)
    assert full[1, blue] == pytest.approx(0.5) and full[1, red] == pytest.approx(0.5)
    central = hsv_histogram(img, boxes[2:], bins=(6, 2), crop=0.6)
    assert central[0, grey] == 0.0
    assert central[0, blue] == pytest.approx(0.5) and central[0, red] == pytest.approx(0.5)
    assert not central[1].any()
    uncropped = hsv_histogram(img, boxes[2:3], bins=(6, 2), crop=1.0)
    assert uncropped[0, grey] == pytest.approx(0.2)  # 20 of 100 columns
    assert hsv_histogram(img, np.zeros((0, 4)), bins=(6, 2)).shape == (0, 12)


def test_fuse_score():
    # 1 - (1 - cost) * score: (1 - 0.8 * 0.5, 1 - 0.4 * 1.0)
    np.testing.assert_allclose(fuse_score(np.array([[0.2, 0.6]]), np.array([0.5, 1.0])), [[0.6, 0.6]])


W = CostWeights(iou=1.0, reid=1.0, hsv=2.0, fusion="mean")
IOU, REID, HSV = np.array([[0.6]]), np.array([[0.2]]), np.array([[0.15]])


@pytest.mark.parametrize("reid, hsv, expected", [
    (REID, HSV, (0.6 + 0.2 + 2 * 0.15) / 4),   # all three terms
    (None, HSV, (0.6 + 2 * 0.15) / 3),         # no embeddings: ReID drops out of both sums
    (REID, None, (0.6 + 0.2) / 2),             # no histograms
    (None, None, 0.6),                         # motion only
    (np.array([[1.6]]), None, (0.6 + 1.0) / 2),  # cosine distance above 1 counts as 1
])
def test_blend_weights_and_missing_terms(reid, hsv, expected):
    out = blend(IOU, weights=W, reid_d=reid, hsv_d=hsv)
    assert out[0, 0] == pytest.approx(expected)


def test_blend_nan_pair_drops_term_for_that_pair_only():
    iou = np.array([[0.6], [0.6]])
    reid = np.array([[0.2], [np.nan]])   # second track has no embedding yet
    out = blend(iou, weights=CostWeights(iou=1, reid=1, hsv=0, fusion="mean"), reid_d=reid, reid_gate=0.1)
    # first pair: (0.6 + 0.2) / 2 but gated (0.2 > 0.1); second: ReID missing -> 0.6, never gated
    assert out[0, 0] == INF and out[1, 0] == pytest.approx(0.6)


def test_blend_zero_weights_fall_back_to_motion():
    out = blend(IOU, weights=CostWeights(iou=0, reid=0, hsv=0, fusion="mean"), reid_d=REID, hsv_d=HSV)
    assert out[0, 0] == pytest.approx(0.6)


def test_blend_does_not_modify_input():
    iou = np.array([[0.6, 0.95]])
    blend(iou, weights=W, iou_gate=0.9)
    np.testing.assert_array_equal(iou, [[0.6, 0.95]])


@pytest.mark.parametrize("kwargs, expected", [
    (dict(iou_gate=0.5), INF),                       # raw IoU distance 0.6 > 0.5
    (dict(iou_gate=0.7), (0.6 + 0.2) / 2),
    (dict(reid_gate=0.1), INF),                      # 0.2 > 0.1
    (dict(forbid=np.array([[True]])), INF),          # e.g. another class
    (dict(det_scores=np.array([0.5])), (0.8 + 0.2) / 2),  # fused motion 1 - 0.4 * 0.5 = 0.8
    (dict(det_scores=np.array([0.5]), iou_gate=0.7), (0.8 + 0.2) / 2),  # gate sees raw 0.6
])
def test_blend_gates_and_score_fusion(kwargs, expected):
    out = blend(IOU, weights=CostWeights(iou=1, reid=1, hsv=0, fusion="mean"), reid_d=REID, **kwargs)
    assert out[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("a, expected", [
    (0.0, 0.4),                        # classical only: (0.6 + 0.2) / 2
    (0.25, 0.75 * 0.4 + 0.25 * 0.1),   # (1 - a) * cost + a * (1 - s), s = 0.9
    (1.0, 0.1),                        # learned only
])
def test_blend_learned_mix(a, expected):
    out = blend(IOU, weights=CostWeights(iou=1, reid=1, hsv=0, fusion="mean"), reid_d=REID,
                learned=np.array([[0.9]]), learned_weight=a)
    assert out[0, 0] == pytest.approx(expected)


def test_blend_gates_hold_with_learned_only():
    out = blend(IOU, weights=W, learned=np.array([[0.99]]), learned_weight=1.0, iou_gate=0.5)
    assert out[0, 0] == INF


@pytest.mark.parametrize("use_lap", [True, False])
@pytest.mark.parametrize("cost, thresh, matches, u_rows, u_cols", [
    ([[0.1, 0.9], [0.9, 0.2]], 0.5, [[0, 0], [1, 1]], [], []),
    ([[0.1, 0.9], [0.9, 0.2]], 0.15, [[0, 0]], [1], [1]),             # 0.2 > thresh
    ([[0.1, 0.2], [0.15, 0.9]], 1.0, [[0, 1], [1, 0]], [], []),       # global optimum 0.35, not greedy
    # only 0.1 and 0.15 are <= 0.18; (0,0) + two unmatched (0.18) = 0.28 beats (1,0): 0.33
    ([[0.1, 0.2], [0.15, 0.9]], 0.18, [[0, 0]], [1], [1]),
    ([[INF, 0.3, 0.1], [0.2, INF, INF]], 0.5, [[0, 2], [1, 0]], [], [1]),
    ([[INF, INF]], 0.5, [], [0], [0, 1]),
    ([[np.nan, 0.1]], 0.5, [[0, 1]], [], [0]),
])
def test_linear_assignment(cost, thresh, matches, u_rows, u_cols, use_lap):
    m, ur, uc = linear_assignment(np.array(cost, float), thresh, use_lap=use_lap)
    assert sorted(map(tuple, m.tolist())) == sorted(map(tuple, matches))
    assert ur.tolist() == u_rows and uc.tolist() == u_cols


@pytest.mark.parametrize("shape", [(0, 3), (2, 0)])
def test_linear_assignment_empty(shape):
    m, ur, uc = linear_assignment(np.zeros(shape), 0.5)
    assert m.shape == (0, 2) and ur.tolist() == list(range(shape[0])) and uc.tolist() == list(range(shape[1]))


@pytest.mark.parametrize("iou_d, reid_d, hsv_d, expected", [
    (0.3, 0.05, None, 0.05),   # IoU 0.7 >= 0.5 and appearance 0.05 <= 0.1: min(0.3, 0.05)
    (0.6, 0.05, None, 0.6),    # IoU 0.4 < 0.5: not close enough, the motion cost stays
    (0.3, 0.2, None, 0.3),     # appearance 0.2 > 0.1: the motion cost stays
    (0.3, 0.0, 0.3, 0.3),      # appearance = (1 * 0.0 + 1 * 0.3) / 2 = 0.15 > 0.1: motion
    (0.3, 0.0, 0.1, 0.05),     # appearance = (0.0 + 0.1) / 2 = 0.05: min(0.3, 0.05)
    (0.3, np.nan, 0.04, 0.04), # a track without ReID features yet: HSV alone
])
def test_min_fusion_uses_appearance_only_for_close_similar_pairs(iou_d, reid_d, hsv_d, expected):
    weights = CostWeights(iou=1.0, reid=1.0, hsv=1.0, fusion="min", proximity=0.5, appearance_thresh=0.1)
    hsv = None if hsv_d is None else np.array([[hsv_d]])
    got = blend(np.array([[iou_d]]), weights=weights, reid_d=np.array([[reid_d]]), hsv_d=hsv)
    assert got[0, 0] == pytest.approx(expected)


def test_min_fusion_keeps_the_gates():
    weights = CostWeights(fusion="min")
    got = blend(np.array([[0.3, 0.95]]), weights=weights, reid_d=np.array([[0.6, 0.0]]), iou_gate=0.9, reid_gate=0.5)
    assert np.isinf(got).all()  # ReID 0.6 > reid_gate; IoU distance 0.95 > iou_gate


def test_without_lap_the_default_solver_is_an_error_not_scipy(monkeypatch):
    """lap and SciPy break ties differently: no silent swap; SciPy only when asked (use_lap=False)."""
    from stagetrack.errors import StagetrackError
    from stagetrack.track import matching

    monkeypatch.setattr(matching, "lap", None)
    cost = np.array([[0.1, 0.9], [0.9, 0.2]])
    with pytest.raises(StagetrackError, match=r"solver `lap` is not installed .*; make install"):
        matching.linear_assignment(cost, 0.5)
    assert matching.linear_assignment(cost, 0.5, use_lap=False)[0].tolist() == [[0, 0], [1, 1]]
