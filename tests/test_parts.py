"""The detector and the ReID model scored on their own (issue 16): AP50, rank-1, and which part forgot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stagetrack.data import mot
from stagetrack.data.sequence import IGNORE, PERSON, VEHICLE, Sequence, empty_boxes
from stagetrack.errors import CheckpointError, DataError
from stagetrack.evaluate import intervals, parts
from stagetrack.evaluate.changes import best_earlier, forgetting, forgot_parts


def boxes(rows: list[tuple]) -> np.ndarray:
    """(frame, x, y, w, h, conf, cls) -> ANN_DTYPE rows (ids 1..n)."""
    out = empty_boxes(len(rows))
    for i, (f, x, y, w, h, c, k) in enumerate(rows):
        out[i]["frame"], out[i]["id"] = f, i + 1
        out[i]["x"], out[i]["y"], out[i]["w"], out[i]["h"], out[i]["conf"], out[i]["cls"] = x, y, w, h, c, k
    return out


def test_average_precision_by_hand_and_as_ultralytics():
    # 2 ground-truth boxes; ranked detections hit, miss, hit: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # The envelope is 1 up to recall 1/2 and 2/3 beyond: AP = 1/2 + 1/2 * 2/3 = 5/6 (to the 101-point grid)
    ap = parts.average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx(5 / 6, abs=0.01)
    assert parts.average_precision(np.zeros(0), np.zeros(0, bool), 3) == 0.0
    from ultralytics.utils.metrics import compute_ap

    rng = np.random.default_rng(0)
    for _ in range(5):
        n_gt = int(rng.integers(5, 40))
        conf, tp = rng.random(60), rng.random(60) < 0.4
        tp[np.flatnonzero(tp)[n_gt:]] = False  # never more hits than ground truth
        order = np.argsort(-conf, kind="stable")
        ctp, cfp = np.cumsum(tp[order]), np.cumsum(~tp[order])
        expected, _, _ = compute_ap(ctp / n_gt, ctp / (ctp + cfp))
        assert parts.average_precision(conf, tp, n_gt) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError):
        parts.average_precision(conf, tp, 0)


def test_detections_match_greedily_by_score_and_ignored_regions_drop_misses():
    gt = boxes([(1, 0, 0, 10, 10, 1, PERSON), (1, 50, 0, 10, 10, 1, PERSON), (1, 100, 100, 40, 40, 1, IGNORE),
                (1, 0, 50, 10, 10, 0, PERSON)])  # the last is flagged 0: not scored
    seq = Sequence("v", 200, 200, 2, boxes=gt)
    dets = boxes([(1, 1, 0, 10, 10, 0.6, PERSON),     # the first person (IoU 0.82), lower score
                  (1, 0, 0, 10, 10, 0.9, PERSON),     # the first person exactly: taken first
                  (1, 110, 110, 10, 10, 0.8, PERSON),  # a miss inside the ignored region: dropped
                  (1, 150, 0, 10, 10, 0.5, PERSON),   # a miss in the open: kept as a false positive
                  (1, 50, 0, 10, 10, 0.7, VEHICLE),   # the second person, but as a vehicle: a vehicle miss
                  (2, 0, 0, 10, 10, 0.4, PERSON)])    # frame 2 has no ground truth
    rec = parts.match_detections(seq, dets, ignore_coverage=0.5)
    assert rec.n_gt == {"person": 2, "vehicle": 0}
    assert rec.conf["person"].tolist() == pytest.approx([0.9, 0.6, 0.5, 0.4])
    assert rec.tp["person"].tolist() == [True, False, False, False]
    assert rec.tp["vehicle"].tolist() == [False]
    values = parts.detector_values({"v": rec}, ["v"], "dom")
    assert set(values) == {"dom_person_AP50", "dom_mAP50"}          # no vehicle ground truth: no vehicle AP
    # precision 1 up to recall 1/2, 0 beyond (nothing found the second person)
    assert values["dom_mAP50"] == values["dom_person_AP50"] == pytest.approx(50.0, abs=0.5)
    # a video drawn twice counts twice: the same precision, so the same AP
    assert parts.detector_values({"v": rec}, ["v", "v"], "dom")["dom_person_AP50"] == pytest.approx(50.0, abs=0.5)


def test_query_hits_average_to_the_per_class_rank1():
    from stagetrack.reid.dataset import Crop
    from stagetrack.reid.evaluate import query_hits, split_metrics

    rng = np.random.default_rng(3)
    pid_class = {p: ("person" if p < 6 else "vehicle") for p in range(10)}
    query = [Crop(Path(f"q{p}.jpg"), p, 0) for p in range(10)]
    gallery = [Crop(Path(f"g{p}_{k}.jpg"), p, 1) for p in range(10) for k in range(3)]
    gallery.append(Crop(Path("same_cam.jpg"), 0, 0))  # same pid and camid as query 0: never counts
    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    centres = rng.normal(size=(10, 16))
    q = unit(centres + rng.normal(scale=1.2, size=(10, 16)))
    g = unit(np.vstack([centres[c.pid] + rng.normal(scale=1.2, size=16) for c in gallery[:-1]] + [q[0]]))
    hits = query_hits(q, g, query, gallery, pid_class)
    assert hits[0] is not None  # query 0 still has gallery crops under camid 1
    metrics = split_metrics(q, g, query, gallery, pid_class, ranks=(1,))
    for cls in ("person", "vehicle"):
        mine = [h for c, h in zip(query, hits) if pid_class[c.pid] == cls]
        assert 100.0 * np.mean(mine) == pytest.approx(metrics[f"{cls}/rank1"])
    assert 0 < sum(hits) < len(hits)  # the case is not trivial
    values = parts.reid_values({"a": {"person": [True, False]}, "b": {"vehicle": [True]}}, ["a", "b", "b"], "d")
    assert values == {"d_person_rank1": 50.0, "d_vehicle_rank1": 100.0, "d_rank1": 75.0}


def test_interval_and_paired_values_over_drawn_videos():
    groups = [["a", "b", "c"]]
    score = {"a": 1.0, "b": 2.0, "c": 3.0}
    mean = lambda names: {"m": float(np.mean([score[s] for s in names]))}  # noqa: E731
    out = intervals.interval_values(mean, groups, n=200, seed=0, level=0.95)["m"]
    assert out["value"] == 2.0 and 1.0 <= out["lo"] < 2.0 < out["hi"] <= 3.0
    shifted = lambda names: {"m": mean(names)["m"] - 0.5}  # noqa: E731
    row = intervals.paired_values(mean, shifted, groups, n=200, seed=0, level=0.95)["m"]
    assert row == {"delta": -0.5, "lo": -0.5, "hi": -0.5, "verdict": "loss"}  # paired: the video spread cancels
    same = intervals.paired_values(mean, mean, groups, n=50, seed=0, level=0.95)["m"]
    assert same["verdict"] == "indistinguishable" and same["delta"] == 0.0


def change(delta: float, lo: float, hi: float) -> dict:
    return {"delta": delta, "lo": lo, "hi": hi, "verdict": intervals.verdict(lo, hi)}


def test_each_stage_is_held_against_its_best_earlier_stage_and_the_forgetting_part_is_named():
    points = {
        "stage1": {"bdd_vehicle_HOTA": 50.0, "bdd_vehicle_DetA": 40.0, "bdd_vehicle_AssA": 60.0,
                   "bdd_vehicle_AP50": 70.0, "bdd_rank1": 60.0},
        "stage2": {"bdd_vehicle_HOTA": 45.0, "bdd_vehicle_DetA": 42.0, "bdd_vehicle_AssA": 50.0,
                   "bdd_vehicle_AP50": 75.0, "bdd_rank1": 80.0},
        "stage3": {"bdd_vehicle_HOTA": 40.0, "bdd_vehicle_DetA": 41.0, "bdd_vehicle_AssA": 40.0,
                   "bdd_vehicle_AP50": 74.0, "bdd_rank1": 50.0},
    }
    # the tracking rows follow the row's HOTA (stage 1 is best), a part's score its own (stage 2)
    assert best_earlier(points, "stage3", "bdd_vehicle_DetA") == "stage1"
    assert best_earlier(points, "stage3", "bdd_vehicle_AP50") == "stage2"
    assert best_earlier(points, "stage3", "bdd_rank1") == "stage2"
    assert best_earlier(points, "stage1", "bdd_vehicle_HOTA") is None
    changes = {
        ("stage1", "stage2"): {k: change(points["stage2"][k] - v, -1, 1) for k, v in points["stage1"].items()},
        ("stage1", "stage3"): {"bdd_vehicle_HOTA": change(-10, -14, -6), "bdd_vehicle_DetA": change(1, -2, 4),
                               "bdd_vehicle_AssA": change(-20, -25, -15), "bdd_vehicle_AP50": change(4, -1, 9),
                               "bdd_rank1": change(-10, -20, -1)},
        ("stage2", "stage3"): {"bdd_vehicle_HOTA": change(-5, -9, -1), "bdd_vehicle_DetA": change(-1, -3, 1),
                               "bdd_vehicle_AssA": change(-10, -12, -8), "bdd_vehicle_AP50": change(-1, -2, -0.5),
                               "bdd_rank1": change(-30, -40, -20)},
    }
    table = forgetting(points, changes)
    assert set(table) == {"stage2", "stage3"}
    assert {k: r["vs"] for k, r in table["stage3"].items()} == {
        "bdd_vehicle_HOTA": "stage1", "bdd_vehicle_DetA": "stage1", "bdd_vehicle_AssA": "stage1",
        "bdd_vehicle_AP50": "stage2", "bdd_rank1": "stage2"}
    assert table["stage3"]["bdd_vehicle_HOTA"]["delta"] == -10
    assert forgot_parts(table) == {"stage3": {"bdd_vehicle": {"HOTA": "loss", "parts": ["association", "detector"]},
                                              "bdd": {"parts": ["reid"]}}}


def test_part_records_read_back_and_bad_files_name_themselves(tmp_path):
    gt = boxes([(1, 0, 0, 10, 10, 1, PERSON)])
    val = {"dom": [Sequence("v1", 100, 100, 1, boxes=gt, source="dom")]}
    results = tmp_path / "val_results"
    with pytest.raises(CheckpointError, match="detections"):
        parts.read_part_records(results, val, 0.5)
    mot.write_txt(results / parts.DETECTIONS / "dom" / "v1.txt", boxes([(1, 0, 0, 10, 10, 0.9, PERSON)]), "result")
    with pytest.raises(CheckpointError) as err:
        parts.read_part_records(results, val, 0.5)
    assert parts.REID_QUERIES in str(err.value)
    (results / parts.REID_QUERIES).write_text(json.dumps([{"video": "v1", "class": "person", "hit": True}]))
    rec = parts.read_part_records(results, val, 0.5)
    # a perfect detector: 99.5, the 101-point trapezoid's last half step (ultralytics reports the same)
    assert rec.values(["v1"], "dom") == {"dom_person_AP50": pytest.approx(99.5), "dom_mAP50": pytest.approx(99.5),
                                          "dom_person_rank1": 100.0, "dom_rank1": 100.0}
    (results / parts.REID_QUERIES).write_text(json.dumps([{"video": "elsewhere", "class": "person", "hit": True}]))
    with pytest.raises(DataError) as err:
        parts.read_part_records(results, val, 0.5)
    assert "[0]" in str(err.value) and parts.REID_QUERIES in str(err.value)
