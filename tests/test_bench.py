"""The benchmark suite (bench/): its pieces on hand-made inputs, and a tiny end-to-end run."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import build, experiments, peers, speed, tracking  # noqa: E402
from stagetrack.data.sequence import Sequence, empty_boxes  # noqa: E402
from stagetrack.track.config import TrackerConfig  # noqa: E402
from stagetrack.track.tracker import Detections, Tracker  # noqa: E402


# ----------------------------------------------------------------------------- peers adapter

def test_detboxes_converts_tlwh_to_centre_xywh_and_back():
    # tlwh (10, 20, 4, 6): centre (12, 23); corners (10, 20) and (14, 26)
    boxes = peers.DetBoxes.from_detections(Detections([[10, 20, 4, 6], [0, 0, 2, 2]], [0.9, 0.3], [1, 0]))
    assert np.allclose(boxes.xywh[0], [12, 23, 4, 6])
    assert np.allclose(boxes.xyxy[0], [10, 20, 14, 26])
    high = boxes[boxes.conf > 0.5]
    assert len(high) == 1 and high.cls.tolist() == [1.0]


def test_rows_from_output_reads_ultralytics_columns():
    # [x1, y1, x2, y2, id, score, cls, idx] -> tlwh (10, 20, 4, 6), id 7, vehicle ('3' in MOT numbering)
    rows = peers.rows_from_output(np.array([[10, 20, 14, 26, 7, 0.9, 1, 0]]), frame=5)
    assert rows[0]["frame"] == 5 and rows[0]["id"] == 7
    assert (rows[0]["x"], rows[0]["y"], rows[0]["w"], rows[0]["h"]) == (10, 20, 4, 6)
    assert rows[0]["cls"] == 1 and rows[0]["category"] == "3"
    assert len(peers.rows_from_output(np.empty((0,)), frame=1)) == 0


@pytest.mark.parametrize("name", ["bytetrack", "botsort+reid"])
def test_peer_keeps_one_identity_on_a_straight_path(name):
    # one box moving 2 px per frame: every peer should output a single track id after confirmation
    spec = next(s for s in peers.available_peers(True) if s.name == name)
    emb = np.ones((1, 4), np.float32) / 2
    frames = [Detections([[10 + 2 * t, 10, 20, 40]], [0.9], [0], emb=emb) for t in range(10)]
    rows = peers.track_peer(spec, frames)
    assert len(rows) >= 8 and len(set(rows["id"].tolist())) == 1


# ----------------------------------------------------------------------------- noisy detections

def _seq() -> Sequence:
    boxes = empty_boxes(4)
    boxes["frame"] = [1, 1, 2, 2]
    boxes["id"] = [1, 2, 1, 2]
    boxes["x"], boxes["y"], boxes["w"], boxes["h"] = [10, 50, 12, 52], [10, 10, 10, 10], 20, 40
    boxes["cls"] = [0, 1, 0, 1]
    boxes["category"] = ["1", "3", "1", "3"]
    return Sequence(name="S", width=200, height=100, length=2, boxes=boxes)


def test_noisy_detections_without_noise_are_the_ground_truth_boxes():
    clean = tracking.Noise(jitter=0.0, drop=0.0, min_vis=0.0, fp_rate=0.0)
    frames = tracking.noisy_detections(_seq(), clean, min_score=0.0)
    assert [len(f) for f in frames] == [2, 2]
    assert frames[1]["x"].tolist() == [12, 52] and frames[1]["cls"].tolist() == [0, 1]
    assert (np.concatenate(frames)["id"] == -1).all()


def test_noisy_detections_are_seeded_and_thresholded():
    noise = tracking.Noise(fp_rate=2.0)  # ~4 false positives per frame of 2 boxes
    a = tracking.noisy_detections(_seq(), noise, min_score=0.3)
    b = tracking.noisy_detections(_seq(), noise, min_score=0.3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all((f["conf"] >= 0.3).all() for f in a)
    assert sum(len(f) for f in a) > 4  # false positives were added


# ----------------------------------------------------------------------------- verdicts, budgets

def _result(side, hota):
    return {"side": side, "scores": {"bdd": {"combined": {"HOTA": hota}}, "dancetrack": {"combined": {"HOTA": hota}}}}


def test_goal_is_strict_on_dancetrack_only():
    # a tie with the best peer meets ">=" (bdd) but not ">" (dancetrack)
    results = {"stagetrack": _result("stagetrack", 50.0), "a": _result("ultralytics", 50.0),
               "b": _result("ultralytics", 40.0)}
    verdict = tracking.goals(results, ["bdd", "dancetrack"], "stagetrack")
    assert verdict["bdd"]["met"] and not verdict["dancetrack"]["met"]
    assert verdict["bdd"]["best_peer"] == "a" and verdict["bdd"]["margin"] == 0.0


class _World:
    """The part of World that budget_overrides reads."""

    def __init__(self):
        from stagetrack.config import load_params

        self.params = load_params(ROOT / "params.yaml")


@pytest.mark.parametrize("factor", [0.25, 0.01, 1.0])
def test_budget_overrides_round_up_to_whole_clips(factor):
    world = _World()
    clip = world.params.build.clip_length
    over = build.budget_overrides(world, factor)
    assert over["build"]["allow_partial"] is True
    for stage in build.STAGE_KEYS:
        for source, mix in world.params.stage(stage).data.items():
            if mix.enabled and mix.frame_budget > 0:
                got = over[stage]["data"][source]["frame_budget"]
                assert got % clip == 0 and got >= clip and got >= mix.frame_budget * factor
                assert got - clip < max(mix.frame_budget * factor, clip)  # the smallest such multiple
            else:
                assert source not in over[stage]["data"]


# ----------------------------------------------------------------------------- speed scene, experiments

def test_random_walk_scene_is_deterministic_with_unit_embeddings():
    a = speed.random_walk_scene(20, 3, emb_dim=8)
    b = speed.random_walk_scene(20, 3, emb_dim=8)
    assert len(a) == 3 and 15 <= len(a[0]) <= 20  # 5% misses per frame
    assert np.array_equal(a[2].tlwh, b[2].tlwh)
    assert np.allclose(np.linalg.norm(a[0].emb, axis=1), 1.0, atol=1e-5)


def _flat(cfg, prefix=""):
    """A nested config as {dotted field: value}."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_flat(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


# written out by hand from the commits that made them defaults: params.yaml has track_buffer_fps 0.0,
# costs.fusion min, kalman.std_weight_velocity 0.0125 (1/80) for people and 0.00625 for vehicles,
# gmc.method sparse_flow, reid_gate 2.0 (off), iou_min_size 20 and new_track_thresh_vehicle 0.45;
# before they were 30, mean, 0.00625 for both classes, none, 0.5, 0 and null (as people)
PREVIOUS = {"track_buffer_fps": 30.0, "costs.fusion": "mean", "kalman.std_weight_velocity": 0.00625,
            "kalman.std_weight_velocity_vehicle": None, "gmc.method": "none", "reid_gate": 0.5, "iou_min_size": 0.0,
            "new_track_thresh_vehicle": None}
CURRENT = {"track_buffer_fps": 0.0, "costs.fusion": "min", "kalman.std_weight_velocity": 0.0125,
           "kalman.std_weight_velocity_vehicle": 0.00625, "gmc.method": "sparse_flow", "reid_gate": 2.0,
           "iou_min_size": 20.0, "new_track_thresh_vehicle": 0.45}
VARIANT_NAMES = ["stagetrack", "fps_scaled_buffer", "mean_fusion", "kalman_velocity_1/160",
                 "vehicle_velocity_as_people", "no_gmc", "reid_gate_0.5", "no_iou_min_size",
                 "vehicle_birth_as_people", "previous_defaults"]


@pytest.mark.parametrize("name, changed", [
    ("stagetrack", {}),
    ("fps_scaled_buffer", {"track_buffer_fps": 30.0}),
    ("mean_fusion", {"costs.fusion": "mean"}),
    ("kalman_velocity_1/160", {"kalman.std_weight_velocity": 0.00625, "kalman.std_weight_velocity_vehicle": None}),
    ("vehicle_velocity_as_people", {"kalman.std_weight_velocity_vehicle": None}),
    ("no_gmc", {"gmc.method": "none"}),
    ("reid_gate_0.5", {"reid_gate": 0.5}),
    ("no_iou_min_size", {"iou_min_size": 0.0}),
    ("vehicle_birth_as_people", {"new_track_thresh_vehicle": None}),
    ("previous_defaults", PREVIOUS),
    ("stagetrack+learned", {}),
])
def test_variant_differs_from_params_exactly_in_its_fields(name, changed):
    params = _World().params.tracker
    variant = next(v for v in experiments.VARIANTS if v.name == name)
    before, after = _flat(params), _flat(variant.config(params))
    assert {k: v for k, v in after.items() if v != before[k]} == changed
    assert variant.learned == (name == "stagetrack+learned")


def test_params_hold_the_current_defaults_and_every_variant_is_tested():
    params = _flat(_World().params.tracker)
    assert {k: params[k] for k in PREVIOUS} == CURRENT
    assert [v.name for v in experiments.VARIANTS] == VARIANT_NAMES + ["stagetrack+learned"]


def test_previous_defaults_scale_the_buffer_by_fps():
    # at 5 fps: current defaults keep track_buffer = 30 frames; previous ones int(5 / 30 * 30) = 5
    params = _World().params.tracker
    previous = next(v for v in experiments.VARIANTS if v.name == "previous_defaults").config(params)
    assert Tracker(params, frame_rate=5.0).max_time_lost == 30
    assert Tracker(previous, frame_rate=5.0).max_time_lost == 5


def test_with_fields_rejects_unknown_fields():
    with pytest.raises(KeyError, match="costs"):
        experiments.with_fields(TrackerConfig(), {"kalman.costs": 1.0})


# ----------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--size", "tiny",
                           "--out", str(out / "results.json"), "--plots", str(out / "plots")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def shipped_peers(reid: bool) -> set[str]:
    return {s.name for s in peers.available_peers(reid)}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@pytest.mark.slow
def test_tiny_run_writes_the_schema(tiny_run):
    out, res = tiny_run
    assert {"command", "size", "date", "machine", "world", "tracking", "speed", "build", "training", "overhead",
            "wall_s"} <= set(res)
    assert res["size"] == "tiny" and res["world"] == "synthetic"
    assert {"cpu", "cores", "torch_threads", "versions"} <= set(res["machine"])
    assert set(res["tracking"]["datasets"]) == {"noisy_gt", "public_det"}
    for run in res["build"]["runs"].values():
        assert _finite(run["frames_per_s"]) and _finite(run["peak_rss_mb"])
    for part, key in (("detector", "images_per_s"), ("reid", "images_per_s"), ("association", "samples_per_s")):
        assert _finite(res["training"][part]["cpu"][key]) and res["training"][part]["cpu"][key] > 0
    text = (out / "RESULTS.md").read_text()
    assert res["command"] in text and "| tracker |" in text and "HOTA" in text
    exp = res["experiments"]  # no models: classical variants only, on noisy ground truth
    assert exp["variants"] == VARIANT_NAMES
    assert set(exp["datasets"]) == {"noisy_gt"}
    for r in exp["datasets"]["noisy_gt"]["results"].values():
        assert set(r["goal_met"]) == set(exp["datasets"]["noisy_gt"]["domains"])
    held = exp["held_out_test"]
    assert set(held["goals"]) == {"stagetrack", "previous_defaults"}
    assert shipped_peers(False) | {"stagetrack", "previous_defaults"} == set(held["results"])
    assert all(_finite(r["scores"][d]["combined"]["HOTA"]) for r in held["results"].values() for d in held["domains"])
    assert "## Experiments" in text and "| previous_defaults |" in text
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "association_speed.png", "hota_noisy_gt.png", "hota_public_det.png"]


@pytest.mark.slow
def test_tiny_run_every_peer_produced_finite_numbers(tiny_run):
    _, res = tiny_run
    shipped = {s.name for s in peers.available_peers(False)}
    for name, ds in res["tracking"]["datasets"].items():
        assert shipped | {"stagetrack"} <= set(ds["results"]), name
        for tracker, r in ds["results"].items():
            for domain in ds["domains"]:
                for metric in ("HOTA", "AssA", "DetA", "IDF1", "MOTA", "IDSW"):
                    assert _finite(r["scores"][domain]["combined"][metric]), (name, tracker, domain, metric)
    for n, size in res["speed"]["association"]["sizes"].items():
        assert shipped | {"stagetrack"} <= set(size["ms_per_frame"]), n
        assert all(_finite(v) and v > 0 for v in size["ms_per_frame"].values())
        assert all(_finite(v) for v in size["ratio_vs_stagetrack"].values())


def test_no_gmc_variant_drops_the_measured_camera_motion():
    # a still 4x4 box under a camera panning 25 px per frame: only the camera's motion keeps it (even
    # measured as a 20 px box, iou_min_size, it overlaps nothing of its last position)
    from stagetrack.inference import Observations
    from stagetrack.track.tracker import Detections

    frames = [Detections([[250.0 - 25 * t, 50.0, 4.0, 4.0]], [0.9], [0]) for t in range(8)]
    camera = [np.array([[1.0, 0.0, 0.0 if t == 0 else -25.0], [0.0, 1.0, 0.0]]) for t in range(8)]
    obs = Observations("pan", (320, 240), 30.0, frames, camera)
    params = _World().params.tracker
    by_name = {v.name: experiments._contender(v, params, None) for v in experiments.VARIANTS if not v.learned}
    assert len(by_name["stagetrack"].run(obs, None)) == 8
    assert len(by_name["no_gmc"].run(obs, None)) == 1
