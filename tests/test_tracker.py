"""Tracker behaviour on tiny synthetic scenes whose right answer is obvious by construction."""

from __future__ import annotations

import numpy as np
import pytest

from stagetrack.data.sequence import ANN_DTYPE, PERSON, VEHICLE
from stagetrack.errors import ConfigError
from stagetrack.track.config import LearnedAssocConfig, TrackerConfig
from stagetrack.track.track import Track, TrackState
from stagetrack.track.tracker import Detections, Tracker

SIZE = (640, 480)  # (width, height)


def dets(rows, emb=None):
    """rows: (x, y, w, h, score, cls, gt_id)."""
    a = np.array(rows, dtype=float).reshape(-1, 7)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(int), emb=emb, gt_id=a[:, 6].astype(int))


def run(tracker, frames):
    """Feed frames; return {frame: {gt_id: track_id}} via each output track's last matched gt id."""
    out = {}
    for f, d in enumerate(frames, 1):
        rows = tracker.update(d, SIZE)
        by_id = {t.track_id: t.gt_id for t in tracker.tracks}
        out[f] = {by_id[i]: int(i) for i in rows["id"]}
    return out


def line(x0, y0, vx, vy, n, gt, cls=PERSON, score=0.9, w=20, h=40):
    return [(x0 + vx * t, y0 + vy * t, w, h, score, cls, gt) for t in range(n)]


def test_ids_stable_on_straight_lines_and_output_rows():
    paths = [line(10, 10, 3, 0, 20, 0), line(10, 200, 0, 4, 20, 1), line(400, 100, -2, 2, 20, 2, VEHICLE, w=40, h=30)]
    tracker = Tracker(TrackerConfig())
    frames = [dets([p[t] for p in paths]) for t in range(20)]
    ids = run(tracker, frames)
    assert all(ids[f] == {0: 1, 1: 2, 2: 3} for f in ids)  # every frame, first frame included
    rows = tracker.update(dets([p[-1] for p in paths]), SIZE)
    assert rows.dtype == ANN_DTYPE and rows["frame"].tolist() == [21] * 3
    assert sorted(zip(rows["id"].tolist(), rows["category"].tolist(), rows["cls"].tolist())) == \
        [(1, "1", PERSON), (2, "1", PERSON), (3, "3", VEHICLE)]
    np.testing.assert_allclose(rows["conf"], 0.9)
    # the Kalman box follows the detections closely on constant motion
    np.testing.assert_allclose(rows["x"][rows["id"] == 1], paths[0][-1][0], atol=1.0)


@pytest.mark.parametrize("min_size, n_ids", [(20.0, 2), (0.0, 0)])
def test_tiny_boxes_keep_their_ids_when_measured_at_a_minimum_size(min_size, n_ids):
    # two 6x6 px objects moving 4 px a frame in opposite directions (aerial people); frame to frame
    # their boxes overlap 2/6 of the width: IoU 0.2, a cost of 1 - 0.2 x 0.9 above match_thresh 0.8,
    # so with boxes as they are no track is ever confirmed; grown to 20 px, IoU (16 x 20) / (800 - 320)
    paths = [line(100, 100, 4, 0, 12, 0, w=6, h=6), line(300, 100, -4, 0, 12, 1, w=6, h=6)]
    tracker = Tracker(TrackerConfig(iou_min_size=min_size))
    out = [tracker.update(dets([p[t] for p in paths]), SIZE) for t in range(12)]
    ids = np.concatenate([rows["id"] for rows in out[1:]])
    assert len(np.unique(ids)) == n_ids
    if n_ids:
        assert all(len(rows) == 2 for rows in out)   # both followed in every frame under their first IDs
        assert sorted(np.unique(np.concatenate([rows["id"] for rows in out])).tolist()) == [1, 2]


def test_ids_restart_per_sequence_and_per_instance():
    seq = [dets([(10 + 3 * t, 10, 20, 40, 0.9, PERSON, 0), (300, 10 + 2 * t, 20, 40, 0.9, PERSON, 1)])
           for t in range(5)]
    tracker = Tracker(TrackerConfig())
    first = run(tracker, seq)
    tracker.reset()
    assert tracker.frame_id == 0 and tracker.tracks == []
    second = run(tracker, seq)
    third = run(Tracker(TrackerConfig()), seq)
    assert first == second == third and set(first[5].values()) == {1, 2}


def test_new_track_confirmed_on_second_hit_and_false_positive_takes_no_id():
    a = line(10, 10, 3, 0, 10, 0)
    frames = [dets([a[t]]) for t in range(10)]
    frames[3] = dets([a[3], (300, 300, 20, 40, 0.9, PERSON, 7)])          # one-frame false positive
    frames[5] = dets([a[5], (100, 300, 20, 40, 0.9, PERSON, 8)])          # a real newcomer
    for t in range(6, 10):
        frames[t] = dets([a[t], (100 + 2 * (t - 5), 300, 20, 40, 0.9, PERSON, 8)])
    ids = run(Tracker(TrackerConfig()), frames)
    assert ids[4] == {0: 1} and ids[6] == {0: 1}   # unconfirmed tracks are not output
    assert ids[7] == {0: 1, 8: 2}                  # confirmed on its second hit; the FP used no id


def test_low_score_detection_continues_a_track_but_never_starts_one():
    a = line(10, 10, 3, 0, 8, 0)
    frames = [dets([a[t]]) for t in range(8)]
    frames[4] = dets([a[4][:4] + (0.3, PERSON, 0), (300, 300, 20, 40, 0.3, PERSON, 5)])
    frames[5] = dets([a[5], (300, 300, 20, 40, 0.3, PERSON, 5)])
    ids = run(Tracker(TrackerConfig()), frames)
    assert ids[5] == {0: 1} and ids[6] == {0: 1} and all(5 not in ids[f] for f in ids)


@pytest.mark.parametrize("vehicle_thresh, born", [(0.45, {VEHICLE}), (None, set())])
def test_vehicles_may_start_tracks_below_the_persons_birth_threshold(vehicle_thresh, born):
    # a person and a vehicle both detected at 0.47 (a high detection: it can match in round 1),
    # between the vehicle's birth threshold 0.45 and the person's 0.5
    paths = {PERSON: line(10, 10, 3, 0, 6, 0, score=0.47), VEHICLE: line(300, 200, -3, 0, 6, 1, VEHICLE, score=0.47)}
    cfg = TrackerConfig(track_high_thresh=0.4, new_track_thresh=0.5, new_track_thresh_vehicle=vehicle_thresh)
    assert cfg.birth_thresh_by_class()[VEHICLE] == (0.5 if vehicle_thresh is None else vehicle_thresh)
    tracker = Tracker(cfg)
    out = [tracker.update(dets([p[t] for p in paths.values()]), SIZE) for t in range(6)]
    assert set(np.concatenate([rows["cls"] for rows in out]).tolist()) == born
    if born:  # born in frame 1 (first frame: confirmed at birth) and followed under one id
        assert all(rows["id"].tolist() == [1] for rows in out)


def crossing(with_emb):
    """Two people approach, overlap at frame 11, then each turns back (a bounce).

    At frame 12 the constant-velocity predictions overlap the *other* person's box more (IoU
    0.6) than their own (IoU 480/1120 = 0.43), so motion alone swaps the identities.
    """
    frames = []
    for t in range(20):
        step = t if t <= 10 else 20 - t
        xa, xb = 4 * step, 80 - 4 * step
        emb = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32) if with_emb else None
        frames.append(dets([(xa, 100, 20, 40, 0.9, PERSON, 0), (xb, 110, 20, 40, 0.9, PERSON, 1)], emb))
    return frames


def test_crossing_switches_ids_without_appearance_and_not_with_the_reid_gate():
    without = run(Tracker(TrackerConfig()), crossing(False))
    assert without[5] == {0: 1, 1: 2} and without[20] == {0: 2, 1: 1}  # the IoU-only swap
    # the ReID gate forbids the swapped pairs (distance 1.0 > 0.5)
    with_emb = run(Tracker(TrackerConfig(reid_gate=0.5)), crossing(True))
    assert all(with_emb[f] == {0: 1, 1: 2} for f in with_emb)
    # with the gate off (the default, as BoT-SORT) min fusion uses appearance only for pairs at
    # IoU >= proximity (0.5); the true pairs overlap 0.43 here, so appearance cannot undo the swap
    assert run(Tracker(TrackerConfig()), crossing(True))[20] == {0: 2, 1: 1}


class OracleScorer:
    """A learned scorer that knows the truth: 1 where the track's last gt id is the det's."""

    def __init__(self, embed_dim=4):
        self.embed_dim = embed_dim
        self.calls = 0

    def score(self, tracks, dets, image_size):
        self.calls += 1
        assert image_size == SIZE
        return (np.array([t.gt_id for t in tracks])[:, None] == dets.gt_id[None, :]).astype(float)


@pytest.mark.parametrize("weight, swapped", [(0.0, True), (1.0, False)])
def test_learned_scorer_mixes_in_by_weight(weight, swapped):
    cfg = TrackerConfig(assoc=LearnedAssocConfig(weight=weight))
    scorer = OracleScorer()
    ids = run(Tracker(cfg, scorer=scorer), crossing(False))
    assert (ids[20] == {0: 2, 1: 1}) is swapped
    assert (scorer.calls > 0) is (weight > 0)


def test_reidentified_after_short_occlusion_new_id_after_long_one():
    a = line(10, 100, 4, 0, 30, 0)
    frames = [dets([a[t]]) if not 10 <= t < 15 else dets([]) for t in range(30)]
    ids = run(Tracker(TrackerConfig()), frames)
    assert all(ids[f] == {} for f in range(11, 16))   # nothing output while occluded
    assert ids[16] == {0: 1} and ids[30] == {0: 1}   # re-found, same id
    ids = run(Tracker(TrackerConfig(track_buffer=3)), frames)
    assert ids[10] == {0: 1} and ids[17] == {0: 2}   # lost > 3 frames: removed, new id


def test_track_buffer_counts_frames_unless_given_at_a_frame_rate():
    assert Tracker(TrackerConfig(track_buffer=30), frame_rate=5).max_time_lost == 30
    assert Tracker(TrackerConfig(track_buffer=30, track_buffer_fps=30), frame_rate=15).max_time_lost == 15
    assert Tracker(TrackerConfig(track_buffer=30, track_buffer_fps=30), frame_rate=60).max_time_lost == 60


def test_a_vehicle_never_takes_a_persons_id():
    box = (100, 100, 40, 40)
    frames = [dets([box + (0.9, PERSON, 0)]) for _ in range(5)] + \
             [dets([box + (0.9, VEHICLE, 1)]) for _ in range(5)]
    tracker = Tracker(TrackerConfig())
    ids = run(tracker, frames)
    assert ids[5] == {0: 1} and ids[7] == {1: 2}
    rows = tracker.update(dets([box + (0.9, VEHICLE, 1)]), SIZE)
    assert rows["id"].tolist() == [2] and rows["category"].tolist() == ["3"]


def test_small_boxes_are_not_output():
    frames = [dets([(10, 10, 1, 2, 0.9, PERSON, 0), (50, 50, 20, 40, 0.9, PERSON, 1)]) for _ in range(3)]
    ids = run(Tracker(TrackerConfig(min_box_area=4.0)), frames)
    assert ids[3] == {1: 2}


def test_embedding_width_mismatch_raises_config_error():
    frames = crossing(True)  # 4-dim embeddings
    with pytest.raises(ConfigError, match=r"4-dim ReID embeddings .* expects 8"):
        Tracker(TrackerConfig(), scorer=OracleScorer(embed_dim=8)).update(frames[0], SIZE)
    with pytest.raises(ConfigError, match=r"tracker.assoc.embed_dim: is 16 .* 4-dim"):
        Tracker(TrackerConfig(assoc=LearnedAssocConfig(embed_dim=16)), scorer=OracleScorer(embed_dim=4))
    Tracker(TrackerConfig(), scorer=OracleScorer(embed_dim=4)).update(frames[0], SIZE)  # matching: fine


class RecordingLogger:
    def __init__(self):
        self.calls = []

    def log(self, tracks, dets, image_size):
        self.calls.append(([(t.track_id, t.gt_id, t.state) for t in tracks], dets.gt_id.tolist(), image_size))


def test_logger_gets_candidates_and_high_score_detections_each_frame():
    a, b = line(10, 10, 3, 0, 6, 10), line(10, 200, 3, 0, 6, 11)
    frames = [dets([a[t], b[t], (400, 400, 20, 40, 0.3, PERSON, 12)]) for t in range(6)]
    frames[4] = dets([b[4]])  # a is missed once: it is a lost candidate in frame 6
    logger = RecordingLogger()
    run(Tracker(TrackerConfig(), logger=logger), frames)
    assert len(logger.calls) == 6
    assert logger.calls[0] == ([], [10, 11], SIZE)            # low-score det (gt 12) excluded
    assert logger.calls[1][0] == [(1, 10, TrackState.Tracked), (2, 11, TrackState.Tracked)]
    assert logger.calls[5][0] == [(1, 10, TrackState.Lost), (2, 11, TrackState.Tracked)]


def test_track_attributes_are_per_instance():
    kw = dict(mean=np.zeros(8), covariance=np.eye(8), history_len=3)
    t1 = Track(1, PERSON, np.zeros(4), 0.9, 1, **kw)
    t2 = Track(2, PERSON, np.zeros(4), 0.9, 1, **kw)
    for f in range(5):
        t1.history.append(np.full(4, f))
    assert len(t1.history) == 3 and len(t2.history) == 1
    np.testing.assert_allclose(t1.tlbr, [0, 0, 0, 0])


def test_appearance_is_an_ema_of_matched_features():
    cfg = TrackerConfig(emb_momentum=0.9, hsv_momentum=0.5, reid_gate=2.0)  # gate off: e2 is orthogonal
    tracker = Tracker(cfg)
    hsv1, hsv2 = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    e1, e2 = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    box = [(10, 10, 20, 40, 0.9, PERSON, 0)]
    tracker.update(Detections(*_cols(box), emb=e1, hsv=hsv1), SIZE)
    tracker.update(Detections(*_cols(box), emb=e2, hsv=hsv2), SIZE)
    (t,) = tracker.tracks
    # emb: 0.9 * [1, 0] + 0.1 * [0, 1], re-normalised; hsv: 0.5/0.5 mix, sums to 1
    np.testing.assert_allclose(t.emb, np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), rtol=1e-6)
    np.testing.assert_allclose(t.hsv, [0.5, 0.5])
    assert t.hits == 2 and t.age == 1 and t.time_since_update == 0 and list(t.history_frames) == [1, 2]


def _cols(rows):
    a = np.array(rows, float)
    return a[:, :4], a[:, 4], a[:, 5].astype(int)


def test_detections_from_ann_rows():
    from stagetrack.data.sequence import empty_boxes

    rows = empty_boxes(2)
    rows["x"], rows["y"], rows["w"], rows["h"] = [1, 2], [3, 4], [5, 6], [7, 8]
    rows["conf"], rows["cls"], rows["id"] = [0.5, 0.25], [PERSON, VEHICLE], [7, 9]
    d = Detections.from_boxes(rows, with_gt_id=True)
    np.testing.assert_allclose(d.tlwh, [[1, 3, 5, 7], [2, 4, 6, 8]])
    np.testing.assert_allclose(d.tlbr, [[1, 3, 6, 10], [2, 4, 8, 12]])
    assert d.score.tolist() == [0.5, 0.25] and d.cls.tolist() == [0, 1] and d.gt_id.tolist() == [7, 9]
    assert Detections.from_boxes(rows).gt_id is None and len(Detections.from_boxes(empty_boxes(0))) == 0
    with pytest.raises(ValueError, match="must index CLASSES"):
        Detections(np.zeros((1, 4)), [0.9], [5])


def test_lost_track_keeps_moving_but_stops_resizing():
    tracker = Tracker(TrackerConfig())
    for t in range(10):  # moving right 5 px/frame and widening 2 px/frame
        tracker.update(dets([(10 + 5 * t, 10, 20 + 2 * t, 40, 0.9, PERSON, 0)]), SIZE)
    seen = []
    for _ in range(3):
        tracker.update(dets([]), SIZE)
        (t,) = tracker.tracks
        seen.append(t.mean[:4].copy())
    assert t.state == TrackState.Lost
    x, w = np.array(seen)[:, 0], np.array(seen)[:, 2]
    assert np.all(np.diff(x) > 4)           # position velocity kept (~5 px/frame)
    np.testing.assert_allclose(np.diff(w), 0.0)  # size velocity zeroed while lost


@pytest.mark.parametrize("gate, same_id", [(None, True), (1e-6, False)])
def test_motion_gate_forbids_unlikely_jumps(gate, same_id):
    # a still box that jumps 4 px (IoU 0.67, fine for IoU) is beyond any Mahalanobis gate ~0
    frames = [dets([(10, 10, 20, 40, 0.9, PERSON, 0)]) for _ in range(5)] + [dets([(14, 10, 20, 40, 0.9, PERSON, 0)])] * 2
    ids = run(Tracker(TrackerConfig(motion_gate=gate)), frames)
    assert (ids[7] == {0: 1}) is same_id


def test_appearance_learns_only_from_confident_matches():
    # a track matched in round 2 by a low-score box keeps its embedding, whatever that box carries
    e1, e2 = np.array([[1, 0, 0, 0]], np.float32), np.array([[0, 1, 0, 0]], np.float32)
    tracker = Tracker(TrackerConfig())
    tracker.update(dets([(10, 10, 20, 40, 0.9, PERSON, 0)], e1), SIZE)
    tracker.update(dets([(12, 10, 20, 40, 0.2, PERSON, 0)], e2), SIZE)        # low score: round 2
    assert tracker.tracks[0].frame_id == 2 and np.allclose(tracker.tracks[0].emb, e1[0])
    tracker.update(dets([(14, 10, 20, 40, 0.9, PERSON, 0)], e2), SIZE)        # confident: EMA 0.9 / 0.1
    expected = 0.9 * e1[0] + 0.1 * e2[0]
    np.testing.assert_allclose(tracker.tracks[0].emb, expected / np.linalg.norm(expected), rtol=1e-6)


def test_unembedded_low_score_boxes_track_exactly_like_embedded_ones():
    # inference.observe leaves boxes below track_high_thresh unembedded (NaN rows): same tracks
    rng = np.random.default_rng(0)
    paths = [line(10, 10, 3, 0, 15, 0), line(10, 200, 0, 4, 15, 1), line(300, 100, -2, 2, 15, 2)]
    full, holes = [], []
    for t in range(15):
        rows = [p[t][:4] + ((0.3 if (t + k) % 4 == 0 else 0.9),) + p[t][5:] for k, p in enumerate(paths)]
        emb = rng.normal(size=(3, 8)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        full.append(dets(rows, emb))
        nan = emb.copy()
        nan[np.array([r[4] for r in rows]) < TrackerConfig().track_high_thresh] = np.nan
        holes.append(dets(rows, nan))
    a, b = Tracker(TrackerConfig()), Tracker(TrackerConfig())
    for f, h in zip(full, holes):
        ra, rb = a.update(f, SIZE), b.update(h, SIZE)
        np.testing.assert_array_equal(ra, rb)
    assert all(np.isfinite(t.emb).all() for t in b.tracks)
