"""Feature layout of the association transformer, values checked by hand on 2 tracks x 3 dets.

Also home of the tracker stand-ins (``make_track``, ``make_dets``) the other assoc tests import:
SimpleNamespace objects with the attributes of ``stagetrack.track`` Track / Detections.
"""

from __future__ import annotations

import collections
import math
from types import SimpleNamespace

import numpy as np
import pytest

from stagetrack.assoc.features import (GEOM_FIELDS, HIST_FIELDS, PAIR_FIELDS, TRACK_FIELDS, build_inputs,
                                       check_appearance, pair_geometry)
from stagetrack.errors import ConfigError


def make_track(track_id: int, cls: int, score: float, tlwh, history, emb=None, hsv=None, gt_id: int = -1):
    """A Track stand-in: ``tlwh`` is the Kalman-predicted box, ``history`` observed boxes, oldest first."""
    return SimpleNamespace(
        track_id=track_id, cls=cls, score=score, tlwh=np.asarray(tlwh, float),
        history=collections.deque(np.asarray(h, float) for h in history),
        emb=None if emb is None else np.asarray(emb, np.float32),
        hsv=None if hsv is None else np.asarray(hsv, np.float32), gt_id=gt_id)


def make_dets(tlwh, score, cls, emb=None, hsv=None, gt_id=None):
    return SimpleNamespace(
        tlwh=np.asarray(tlwh, float).reshape(-1, 4), score=np.asarray(score, float), cls=np.asarray(cls, int),
        emb=None if emb is None else np.asarray(emb, np.float32),
        hsv=None if hsv is None else np.asarray(hsv, np.float32),
        gt_id=None if gt_id is None else np.asarray(gt_id, np.int64))


IMAGE = (200, 100)  # (width, height): different axes so per-axis normalisation is checked


def two_tracks_three_dets(hsv: bool = False):
    """Track A (person) predicted at tlwh (20,10,20,40) = centre (30,30), observed at x=10 then 16;
    track B (vehicle) at (100,50,40,20) = centre (120,60), no embedding. Detections: d0 near A,
    d1 exactly on B, d2 in between."""
    h = (lambda *v: v) if hsv else (lambda *v: None)
    tracks = [
        make_track(1, 0, 0.8, [20, 10, 20, 40], [[10, 10, 20, 40], [16, 10, 20, 40]], emb=[1, 0, 0],
                   hsv=h(1.0, 1.0, 0.0, 0.0), gt_id=7),
        make_track(2, 1, 0.6, [100, 50, 40, 20], [[100, 50, 40, 20]], emb=None, hsv=h(0.0, 0.0, 1.0, 1.0),
                   gt_id=8),
    ]
    dets = make_dets([[22, 10, 20, 40], [100, 50, 40, 20], [60, 20, 20, 40]], [0.9, 0.7, 0.5], [0, 1, 0],
                     emb=[[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0]],
                     hsv=h([1, 0, 0, 0], [0, 0, 2, 2], [1, 1, 1, 1]), gt_id=[7, 8, 9])
    return tracks, dets


def test_layout_shapes():
    tracks, dets = two_tracks_three_dets()
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=0)
    shapes = {k: v.shape for k, v in inp.arrays().items()}
    assert shapes == {
        "hist": (2, 3, len(HIST_FIELDS)), "hist_mask": (2, 3), "track": (2, len(TRACK_FIELDS)),
        "track_box": (2, 2, 4), "track_emb": (2, 3), "track_hsv": (2, 0), "cand": (2, 2, len(PAIR_FIELDS)),
        "cand_mask": (2, 2), "cand_index": (2, 2), "cand_box": (2, 2, 4), "cand_emb": (2, 2, 3),
        "cand_hsv": (2, 2, 0),
    }
    assert len(TRACK_FIELDS) == 11 and len(PAIR_FIELDS) == 14


def test_candidates_are_the_nearest_by_centre():
    # A at (30,30): d0 2 px, d2 41 px, d1 95 px; B at (120,60): d1 0 px, d2 54 px, d0 93 px
    tracks, dets = two_tracks_three_dets()
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=0)
    assert inp.cand_index.tolist() == [[0, 2], [1, 2]]
    assert inp.cand_mask.all()


def test_history_and_track_features_by_hand():
    tracks, dets = two_tracks_three_dets()
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=0)
    # A observed centres x 20 then 26 (newest): deltas (20-26)/200 = -0.03, then 0; slot 0 padding
    np.testing.assert_allclose(inp.hist[0], [[0, 0, 0, 0], [-0.03, 0, 0, 0], [0, 0, 0, 0]], atol=1e-7)
    assert inp.hist_mask.tolist() == [[False, True, True], [False, False, True]]
    # predicted (30,30,20,40)/(200,100,200,100); vx = 0.15 - 0.13; score; has_emb; has_hsv; one-hot
    np.testing.assert_allclose(inp.track[0], [0.15, 0.3, 0.1, 0.4, 0.02, 0, 0.8, 1, 0, 1, 0], atol=1e-7)
    np.testing.assert_allclose(inp.track[1], [0.6, 0.6, 0.2, 0.2, 0, 0, 0.6, 0, 0, 0, 1], atol=1e-7)
    np.testing.assert_allclose(inp.track_emb, [[1, 0, 0], [0, 0, 0]])


def test_pair_features_by_hand():
    tracks, dets = two_tracks_three_dets()
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=0)
    expected = {
        # A-d0: 2 px right = 0.01 of width = 0.1 box widths; overlap 18x40 of 800+800 -> 720/880;
        # vs newest observed (x 16..36): 6 px = 0.3 widths, overlap 14x40 -> 560/1040
        (0, 0): [0.01, 0, 0.1, 0, 0, 0, 720 / 880, 0.3, 0, 560 / 1040, 0.9, 1, 1, 0],
        # A-d2: (40, 10) px = (0.2, 0.1) normalised = (2, 0.25) box sizes; from newest 44 px = 2.2
        (0, 1): [0.2, 0.1, 2, 0.25, 0, 0, 0, 2.2, 0.25, 0, 0.5, 1, 0.6, 0],
        # B-d1 identical boxes; B has no embedding so cosine 0
        (1, 0): [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0.7, 1, 0, 0],
        # B-d2: (-50, -20) px = (-0.25, -0.2) = (-1.25, -1) box sizes; w 20/40, h 40/20; other class
        (1, 1): [-0.25, -0.2, -1.25, -1, -math.log(2), math.log(2), 0, -1.25, -1, 0, 0.5, 0, 0, 0],
    }
    for (i, j), want in expected.items():
        np.testing.assert_allclose(inp.cand[i, j], want, atol=1e-6, err_msg=f"pair {i},{j}")
    np.testing.assert_allclose(inp.cand_emb[0], [[1, 0, 0], [0.6, 0.8, 0]])


def test_hsv_features():
    tracks, dets = two_tracks_three_dets(hsv=True)
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=4)
    # intersection of sum-normalised histograms: A (.5,.5,0,0) vs d0 (1,0,0,0) -> .5, vs d2 (.25 each) -> .5;
    # B (0,0,.5,.5) vs d1 (0,0,.5,.5) -> 1, vs d2 -> .5
    np.testing.assert_allclose(inp.cand[:, :, PAIR_FIELDS.index("hsv_sim")], [[0.5, 0.5], [1.0, 0.5]], atol=1e-6)
    assert inp.track[:, TRACK_FIELDS.index("has_hsv")].tolist() == [1, 1]
    np.testing.assert_allclose(inp.cand_hsv[1, 0], [0, 0, 2, 2])


@pytest.mark.parametrize("n_tracks,n_dets,c", [(2, 3, 5), (0, 3, 2), (2, 0, 2)])
def test_padding_and_empty_inputs(n_tracks, n_dets, c):
    tracks, dets = two_tracks_three_dets()
    tracks = tracks[:n_tracks]
    dets = make_dets(dets.tlwh[:n_dets], dets.score[:n_dets], dets.cls[:n_dets], emb=dets.emb[:n_dets])
    inp = build_inputs(tracks, dets, IMAGE, history=2, max_candidates=c, embed_dim=3, hsv_bins=0)
    assert inp.cand.shape == (n_tracks, c, len(PAIR_FIELDS))
    assert (inp.cand_mask.sum(1) == min(c, n_dets)).all()
    assert (inp.cand_index[~inp.cand_mask] == -1).all()
    assert not inp.cand[~inp.cand_mask].any() and not inp.cand_emb[~inp.cand_mask].any()


def test_pair_geometry_matches_build_inputs():
    # the dataset's jitter recomputes geometry with pair_geometry from the stored boxes
    tracks, dets = two_tracks_three_dets()
    inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=2, embed_dim=3, hsv_bins=0)
    geom = pair_geometry(inp.track_box[:, 0].astype(float), inp.track_box[:, 1].astype(float),
                         inp.cand_box.astype(float))
    np.testing.assert_allclose(geom, inp.cand[..., :len(GEOM_FIELDS)], atol=1e-6)


def test_check_appearance_names_both_widths():
    _, dets = two_tracks_three_dets()
    with pytest.raises(ConfigError, match=r"expects embed_dim=8, the detections carry 3"):
        check_appearance(dets, 8, 0, expected_by="X")
    no_emb = make_dets(dets.tlwh, dets.score, dets.cls)
    with pytest.raises(ConfigError, match="no ReID features"):
        check_appearance(no_emb, 3, 0, expected_by="X")
    check_appearance(no_emb, 3, 0, expected_by="X", allow_missing=True)
    check_appearance(dets, 3, 0, expected_by="X")


def synthetic_frames(n_frames: int, *, seed: int = 0, objects: int = 4, embed_dim: int = 8, miss: float = 0.25,
                     image=(320, 240)):
    """(tracks, dets) per frame where only appearance tells which detection is which object.

    Each frame draws fresh identities (unit embeddings) and random boxes for tracks and
    detections alike, so geometry carries no signal; a detection's embedding is its object's plus
    noise. With probability ``miss`` an object's detection is missing (label "no match").
    """
    rng = np.random.default_rng(seed)
    w, h = image
    for _ in range(n_frames):
        emb = rng.normal(size=(objects, embed_dim))
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        tracks = []
        for k in range(objects):
            box = [rng.uniform(0, w - 40), rng.uniform(0, h - 60), rng.uniform(10, 40), rng.uniform(20, 60)]
            tracks.append(make_track(k + 1, 0, 0.9, box, [box], emb=emb[k], gt_id=100 + k))
        keep = [k for k in range(objects) if rng.random() >= miss] or [0]
        det_emb = emb[keep] + rng.normal(scale=0.25, size=(len(keep), embed_dim))
        det_emb /= np.linalg.norm(det_emb, axis=1, keepdims=True)
        boxes = [[rng.uniform(0, w - 40), rng.uniform(0, h - 60), rng.uniform(10, 40), rng.uniform(20, 60)]
                 for _ in keep]
        dets = make_dets(boxes, rng.uniform(0.6, 1.0, len(keep)), [0] * len(keep), emb=det_emb,
                         gt_id=[100 + k for k in keep])
        yield tracks, dets
