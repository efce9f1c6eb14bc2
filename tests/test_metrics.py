"""stagetrack.evaluate: hand-derived cases, preprocessing rules, and parity with TrackEval's own
pipeline (``trackeval.Evaluator`` + ``MotChallenge2DBox`` reading files from disk)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import trackeval

from stagetrack.data.sequence import IGNORE, PERSON, VEHICLE, Sequence, empty_boxes
from stagetrack.errors import ConfigError, DataError
from stagetrack.evaluate.metrics import evaluate, read_mot_dir, summarize
from stagetrack.evaluate.preprocess import (
    detect_flavour,
    flavour_settings,
    ignore_coverage_tlwh,
    sequence_data,
)

ALPHAS = 19  # TrackEval's HOTA thresholds 0.05, 0.10, ..., 0.95


def rows(*spec: tuple) -> np.ndarray:
    """ANN_DTYPE rows from (frame, id, x, y, w, h, cls[, category[, conf]])."""
    b = empty_boxes(len(spec))
    for i, r in enumerate(spec):
        frame, tid, x, y, w, h, cls = r[:7]
        category = r[7] if len(r) > 7 else {PERSON: "1", VEHICLE: "3", IGNORE: "8"}[cls]
        conf = r[8] if len(r) > 8 else 1.0
        b[i] = (frame, tid, x, y, w, h, conf, cls, category, 1.0, 0)
    return b


def track(tid: int, frames, box=(10, 10, 20, 40), cls=PERSON, category=None, conf=1.0) -> list[tuple]:
    out = []
    for f in frames:
        r = (f, tid, *box, cls)
        if category is not None:
            r = (*r, category, conf)
        out.append(r)
    return out


def seq_of(gt: np.ndarray, length: int = 4, name: str = "s") -> Sequence:
    return Sequence(name=name, width=640, height=480, length=length, boxes=gt)


F4 = range(1, 5)
GT1 = rows(*track(1, F4))                       # one person, frames 1-4
DISTRACTOR = track(2, F4, (100, 10, 20, 40), IGNORE, "7", 0.0)  # MOT17 static person, flag 0

# Each case: (gt rows, pred rows, mode, expected fields), the values derived by hand below.
CASES = {
    # identical boxes: every alpha matches, one id on each side
    "perfect": (GT1, rows(*track(5, F4)), "project",
                {"HOTA": 100.0, "DetA": 100.0, "AssA": 100.0, "LocA": 100.0, "IDF1": 100.0,
                 "MOTA": 100.0, "MOTP": 100.0, "IDSW": 0, "CLR_TP": 4, "MT": 1, "GT_IDs": 1, "IDs": 1}),
    # pred id 7 on frames 1-2, id 8 on 3-4. HOTA: every TP pair's Ass-IoU is 2/(4+2-2) = 1/2, so
    # AssA 50, DetA 100, HOTA sqrt(1/2). IDF1: gt->7 gives IDTP 2, IDFN 2, IDFP 2 (id 8),
    # 2*2/(2*2+2+2) = 50. MOTA (4 - 0 - 1 switch)/4 = 75.
    "id_switch_halfway": (GT1, rows(*track(7, [1, 2]), *track(8, [3, 4])), "project",
                          {"HOTA": 100 * math.sqrt(0.5), "DetA": 100.0, "AssA": 50.0, "AssRe": 50.0,
                           "AssPr": 100.0, "IDF1": 50.0, "IDTP": 2, "IDFP": 2, "IDFN": 2,
                           "MOTA": 75.0, "IDSW": 1, "Frag": 0}),
    # an extra box far away in frame 1: DetA 4/(4+0+1) = 80, AssA 100, HOTA sqrt(0.8);
    # IDF1 2*4/(8+1+0) = 8/9; MOTA (4-1)/4 = 75
    "false_positive": (GT1, rows(*track(5, F4), (1, 9, 300, 300, 20, 40, PERSON)), "project",
                       {"HOTA": 100 * math.sqrt(0.8), "DetA": 80.0, "AssA": 100.0, "IDF1": 800 / 9,
                        "IDFP": 1, "MOTA": 75.0, "CLR_FP": 1, "Dets": 5}),
    # frames 3-4 missed: DetA 2/4 = 50, AssA 2/(4+2-2) = 50, HOTA 50; IDF1 2*2/(4+0+2) = 66.7;
    # MOTA (2-0-0)/4 = 50; tracked 2/4 = 0.5 of its life: partly tracked
    "false_negatives": (GT1, rows(*track(5, [1, 2])), "project",
                        {"HOTA": 50.0, "DetA": 50.0, "AssA": 50.0, "IDF1": 400 / 6, "CLR_FN": 2,
                         "MOTA": 50.0, "MT": 0, "PT": 1, "ML": 0}),
    # IoU 62/100 = 0.62 every frame: alphas 0.05..0.60 (12 of 19) match, 0.65..0.95 (7) do not.
    # DetA = AssA = HOTA = 12/19. LocA is 0.62 at matching alphas and, TrackEval's convention,
    # 1 where nothing matched: (12*0.62 + 7)/19. CLEAR (IoU >= 0.5): all TPs, MOTP 62.
    "loose_boxes": (GT1, rows(*track(5, F4, (10, 10, 20, 40 * 0.62))), "project",
                    {"HOTA": 1200 / 19, "DetA": 1200 / 19, "AssA": 1200 / 19,
                     "LocA": 100 * (12 * 0.62 + 7) / 19, "MOTA": 100.0, "MOTP": 62.0, "IDF1": 100.0}),
    # a MOT17 static person (class 7, flag 0) with a box on it at IoU 19*40/(2*800-760) = 0.905:
    # the devkit matches it to the distractor and removes it -> as "perfect"
    "distractor_match_removed": (rows(*track(1, F4), *DISTRACTOR),
                                 rows(*track(5, F4), *track(6, F4, (101, 10, 20, 40))), "mot",
                                 {"HOTA": 100.0, "MOTA": 100.0, "IDF1": 100.0, "CLR_FP": 0, "Dets": 4}),
    # the same in project mode: an IGNORE row is a distractor for every class
    "ignore_match_removed_project": (rows(*track(1, F4), *DISTRACTOR),
                                     rows(*track(5, F4), *track(6, F4, (101, 10, 20, 40))), "project",
                                     {"HOTA": 100.0, "CLR_FP": 0, "Dets": 4}),
    # without preprocessing the 4 boxes on the distractor are FPs: DetA 4/8 = 50, AssA 100,
    # MOTA (4-4)/4 = 0, IDF1 2*4/(8+4+0) = 66.7
    "distractor_kept_without_preproc": (rows(*track(1, F4), *DISTRACTOR),
                                        rows(*track(5, F4), *track(6, F4, (101, 10, 20, 40))), "none",
                                        {"HOTA": 100 * math.sqrt(0.5), "DetA": 50.0, "MOTA": 0.0,
                                         "IDF1": 400 / 6, "CLR_FP": 4, "Dets": 8}),
    # IoU with the distractor 10*40/(2*800-400) = 1/3 < 0.5: not matched, so kept as FP
    "distractor_low_iou_kept": (rows(*track(1, F4), *DISTRACTOR),
                                rows(*track(5, F4), *track(6, F4, (110, 10, 20, 40))), "mot",
                                {"CLR_FP": 4, "MOTA": 0.0, "Dets": 8}),
    # a zero-flagged person row is not scored, and (devkit) a box on it is not removed: FP
    "zero_flag_gt_dropped": (rows(*track(1, F4), *track(3, F4, (200, 10, 20, 40), PERSON, "1", 0.0)),
                             rows(*track(5, F4), *track(6, F4, (200, 10, 20, 40))), "mot",
                             {"GT_Dets": 4, "GT_IDs": 1, "CLR_FP": 4, "CLR_TP": 4, "MOTA": 0.0}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_derived_cases(name):
    gt, pred, mode, expected = CASES[name]
    res = evaluate([(seq_of(gt), pred)], classes=("person",), preprocess=mode)
    got = res["per_class"]["person"]
    for field, value in expected.items():
        if isinstance(value, int):
            assert got[field] == value, field
        else:
            assert got[field] == pytest.approx(value, abs=1e-9), field
    # one class: the detection-averaged combination is that class
    assert res["combined"] == got


def test_two_classes_combined_by_detection_average_and_classes_split():
    # person: perfect (4 TP). vehicle: 2 TP (id 1, like the person's: classes are scored apart)
    # then 2 far FPs. vehicle DetA 2/4, AssA 1 -> HOTA sqrt(.5).
    # combined: TP 6, FP 2 -> DetA 6/8; AssA (4*1 + 2*1)/6 = 1; HOTA sqrt(.75);
    # MOTA (6-2)/6; IDF1 2*6/(12+2+0)
    veh_box = (300, 200, 40, 30)
    gt = rows(*track(1, F4), *track(2, [1, 2], veh_box, VEHICLE))
    pred = rows(*track(1, F4), *track(1, [1, 2], veh_box, VEHICLE),
                *track(2, [3, 4], (500, 400, 40, 30), VEHICLE))
    res = evaluate([(seq_of(gt), pred)])
    assert set(res["per_class"]) == {"person", "vehicle"}
    assert res["per_class"]["person"]["HOTA"] == pytest.approx(100.0)
    assert res["per_class"]["vehicle"]["HOTA"] == pytest.approx(100 * math.sqrt(0.5))
    comb = res["combined"]
    assert comb["DetA"] == pytest.approx(75.0)
    assert comb["AssA"] == pytest.approx(100.0)
    assert comb["HOTA"] == pytest.approx(100 * math.sqrt(0.75))
    assert comb["MOTA"] == pytest.approx(400 / 6)
    assert comb["IDF1"] == pytest.approx(1200 / 14)
    assert (comb["CLR_TP"], comb["CLR_FP"], comb["GT_IDs"], comb["IDs"]) == (6, 2, 2, 3)


def test_class_without_boxes_is_omitted_and_sequences_are_summed():
    # two sequences of the "id_switch_halfway" case: IDSW 1 + 1, IDF1 unchanged (counts double)
    gt, pred, _, _ = CASES["id_switch_halfway"]
    res = evaluate([(seq_of(gt, name="a"), pred), (seq_of(gt, name="b"), pred)])
    assert list(res["per_class"]) == ["person"]          # no vehicle GT nor predictions
    assert res["per_class"]["person"]["IDSW"] == 2
    assert res["per_class"]["person"]["IDF1"] == pytest.approx(50.0)
    assert res["per_sequence"] == {
        s: {"person": {"HOTA": pytest.approx(100 * math.sqrt(0.5)), "IDF1": pytest.approx(50.0),
                       "MOTA": pytest.approx(75.0), "IDSW": 1}} for s in ("a", "b")}


def test_empty_predictions_score_zero_and_only_fn():
    res = evaluate([(seq_of(GT1), empty_boxes(0))], classes=("person",))
    p = res["per_class"]["person"]
    assert (p["HOTA"], p["IDF1"], p["MOTA"], p["CLR_FN"], p["ML"]) == (0.0, 0.0, 0.0, 4, 1)


# ----------------------------------------------------------------------------- ignore regions

@pytest.mark.parametrize(
    "box, regions, expected",
    [
        ((10, 10, 20, 20), [(0, 0, 100, 100)], 1.0),                      # inside
        ((90, 10, 20, 20), [(0, 0, 100, 100)], 0.5),                      # half: 10*20/400
        ((91, 10, 20, 20), [(0, 0, 100, 100)], 0.45),                     # 9*20/400
        ((0, 0, 10, 10), [(0, 0, 3, 10), (7, 0, 3, 10)], 0.6),            # union of disjoint: 30+30
        ((0, 0, 10, 10), [(0, 0, 4, 10), (0, 0, 4, 10)], 0.4),            # overlap counted once
        ((0, 0, 10, 10), [(0, 0, 6, 10), (4, 0, 6, 10)], 1.0),            # 60 + 60 - 20 overlap
        ((0, 0, 10, 10), [(50, 50, 5, 5)], 0.0),                          # apart
        ((0, 0, 0, 10), [(0, 0, 10, 10)], 0.0),                           # empty box
    ],
)
def test_ignore_coverage_is_union_area_fraction(box, regions, expected):
    got = ignore_coverage_tlwh(np.array([box], float), np.array(regions, float))
    assert got[0] == pytest.approx(expected)


def test_project_mode_drops_unmatched_predictions_mostly_inside_ignore_regions():
    # VisDrone-style: a parking lot ignored region (category 0 in VisDrone, IGNORE here), one
    # scored vehicle inside it too. Predictions (one frame):
    #   a on the scored vehicle (matched: kept, TP even though inside the region)
    #   b fully inside the region -> dropped;  c exactly half inside -> dropped (>= 0.5)
    #   d 45% inside -> kept, FP
    gt = rows((1, -1, 0, 0, 100, 100, IGNORE, "0"), (1, 1, 10, 60, 20, 20, VEHICLE, "4"))
    pred = rows((1, 1, 10, 60, 20, 20, VEHICLE), (1, 2, 10, 10, 20, 20, VEHICLE),
                (1, 3, 90, 10, 20, 20, VEHICLE), (1, 4, 91, 40, 20, 20, VEHICLE))
    data = sequence_data(seq_of(gt, 1), pred, VEHICLE, mode="project")
    assert data["tracker_dets"][0].tolist() == [[10, 60, 20, 20], [91, 40, 20, 20]]
    assert data["num_gt_dets"] == 1
    res = evaluate([(seq_of(gt, 1), pred)], classes=("vehicle",))
    assert (res["per_class"]["vehicle"]["CLR_TP"], res["per_class"]["vehicle"]["CLR_FP"]) == (1, 1)
    # the threshold is a parameter; above 1 no region drops anything (b, c become FPs)
    loose = evaluate([(seq_of(gt, 1), pred)], classes=("vehicle",), ignore_coverage=1.5)
    assert loose["per_class"]["vehicle"]["CLR_FP"] == 3
    # without preprocessing every box counts
    assert evaluate([(seq_of(gt, 1), pred)], classes=("vehicle",),
                    preprocess="none")["per_class"]["vehicle"]["CLR_FP"] == 3


def test_mot_mode_ignores_regions_and_uses_only_mot17_distractor_classes():
    # an occluder (class 9) is IGNORE for training, but the devkit does not remove boxes on it
    gt = rows(*track(1, F4), *track(2, F4, (100, 10, 20, 40), IGNORE, "9", 0.0))
    pred = rows(*track(5, F4), *track(6, F4, (100, 10, 20, 40)))
    assert evaluate([(seq_of(gt), pred)], classes=("person",), preprocess="mot")["per_class"]["person"]["CLR_FP"] == 4
    assert evaluate([(seq_of(gt), pred)], classes=("person",), preprocess="project")["per_class"]["person"]["CLR_FP"] == 0


def test_mot15_style_ground_truth_has_no_distractor_matching():
    # class -1 everywhere (MOT15): every flagged row is a person, the flag-0 row is dropped
    gt = rows(*track(1, F4, category="-1"), *track(2, F4, (100, 10, 20, 40), PERSON, "-1", 0.0))
    pred = rows(*track(5, F4), *track(6, F4, (100, 10, 20, 40)))
    p = evaluate([(seq_of(gt), pred)], classes=("person",), preprocess="mot")["per_class"]["person"]
    assert (p["GT_Dets"], p["CLR_TP"], p["CLR_FP"]) == (4, 4, 4)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize(
    "gt, pred, kwargs, error, words",
    [
        (GT1, rows((1, 5, 0, 0, 5, 5, PERSON), (1, 5, 50, 0, 5, 5, PERSON)), {}, DataError, "id 5 more than once in frame 1"),
        (GT1, rows((9, 5, 0, 0, 5, 5, PERSON)), {}, DataError, "frame 9 outside 1..4"),
        (GT1, empty_boxes(0), {"classes": ("cat",)}, ConfigError, "unknown class 'cat'"),
        (GT1, empty_boxes(0), {"preprocess": "devkit"}, ConfigError, "devkit"),
        (rows(*track(1, F4), (1, 2, 0, 0, 5, 5, IGNORE, "0")), empty_boxes(0), {"preprocess": "mot"},
         DataError, "mixes MOT16/17 class numbers"),
        (empty_boxes(0), empty_boxes(0), {}, DataError, "nothing to evaluate"),
    ],
    ids=["duplicate-id", "frame-outside", "unknown-class", "unknown-mode", "mot-mixed-labels", "empty"],
)
def test_user_errors_name_the_problem(gt, pred, kwargs, error, words):
    with pytest.raises(error, match=words) as info:
        evaluate([(seq_of(gt), pred)], **kwargs)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- flavours

@pytest.mark.parametrize(
    "categories, name, flavour",
    [
        (["-1"], "TUD-Campus", "mot15"),
        (["1", "3", "7"], "x", "mot17"),
        (["1"], "MOT17-02-FRCNN", "mot17"),
        (["1"], "dancetrack0004", "dancetrack"),
        (["1", "3", "8"], "uav0000001", "project"),   # the project's own GT: 1 person, 3 vehicle, 8 ignored
    ],
)
def test_detect_flavour(categories, name, flavour):
    cls = {"-1": PERSON, "1": PERSON, "3": VEHICLE}
    gt = rows(*[(1, i, 0, 0, 5, 5, cls.get(c, IGNORE), c) for i, c in enumerate(categories)])
    assert detect_flavour([seq_of(gt, name=name)]) == flavour


def test_mot_flavours_score_person_only():
    gt = rows((1, 1, 0, 0, 5, 5, PERSON, "1"), (1, 2, 9, 0, 5, 5, IGNORE, "7"))
    assert flavour_settings("mot17", [seq_of(gt)], ("person", "vehicle")) == ("mot17", ("person",), "mot")
    assert flavour_settings("project", [seq_of(gt)]) == ("project", ("person", "vehicle"), "project")
    with pytest.raises(DataError, match="not MOT15 style"):
        flavour_settings("mot15", [seq_of(gt)])


# ----------------------------------------------------------------------------- parity with TrackEval

MOT17_VEHICLES = (3, 4, 5, 6)


def _random_dataset(seed: int, mot15: bool, n_seqs: int = 3, length: int = 25):
    """Random ground truth (MOTChallenge numbering) and 2-class predictions, as text rows.

    Returns {seq: (gt_rows, pred_rows)} with gt rows (frame, id, x, y, w, h, flag, class) and
    pred rows (frame, id, x, y, w, h, score, pred_class) where pred_class is 1 or 3.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(n_seqs):
        gt, pred = [], []
        next_gt, next_pred = 1, {1: 1, 3: 1}
        # (MOT class, probability of a zero flag per row); MOT17 flags most non-pedestrians 0
        kinds = [(1, 0.1)] * 6 if mot15 else (
            [(1, 0.1)] * 5 + [(1, 1.0)] + [(3, 0.1)] * 3
            + [(c, 0.6) for c in (2, 7, 8, 12, 2, 7, 4, 5, 6, 9, 10, 13)])
        paths = []
        for kind, flag_p in kinds:
            if kind in (2, 7, 8, 12) and paths and rng.random() < 0.6:
                # a distractor shadowing another object a few pixels off, so that boxes on it
                # compete between rows in the devkit's Hungarian matching
                start, end, x, y, vx, vy, w, h = paths[int(rng.integers(len(paths)))]
                x, y = x + rng.normal(0, 3), y + rng.normal(0, 3)
                w, h = w * (1 + rng.normal(0, 0.05)), h * (1 + rng.normal(0, 0.05))
            else:
                start = int(rng.integers(1, length))
                end = int(rng.integers(start, length + 1))
                w, h = (rng.uniform(15, 40), rng.uniform(40, 90)) if kind != 3 else (rng.uniform(40, 90),) * 2
                x, y = rng.uniform(0, 500), rng.uniform(0, 350)
                vx, vy = rng.normal(0, 3, 2)
            paths.append((start, end, x, y, vx, vy, w, h))
            gid, next_gt = next_gt, next_gt + 1
            pred_cls = 3 if kind in MOT17_VEHICLES else 1
            seen = rng.random() < 0.85  # the tracker follows this object at all
            pid = None
            for f in range(start, end + 1):
                bx, by = x + vx * (f - start), y + vy * (f - start)
                flag = int(rng.random() >= flag_p)
                gt.append((f, gid, round(bx, 2), round(by, 2), round(w, 2), round(h, 2), flag, -1 if mot15 else kind))
                if not seen or rng.random() < 0.12:          # missed frame
                    continue
                if pid is None or rng.random() < 0.08:        # (re)start or ID switch
                    pid, next_pred[pred_cls] = next_pred[pred_cls], next_pred[pred_cls] + 1
                jitter = rng.normal(0, rng.choice([1.5, 6.0]), 4)  # mostly tight, sometimes loose
                pred.append((f, pid, round(bx + jitter[0], 2), round(by + jitter[1], 2),
                             round(max(2.0, w + jitter[2]), 2), round(max(2.0, h + jitter[3]), 2),
                             round(float(rng.uniform(0.3, 1)), 3), pred_cls))
        for _ in range(int(rng.integers(5, 15))):                # false positives of both classes
            pred_cls = int(rng.choice([1, 3]))
            pid, next_pred[pred_cls] = next_pred[pred_cls], next_pred[pred_cls] + 1
            f0 = int(rng.integers(1, length + 1))
            for f in range(f0, min(length, f0 + int(rng.integers(1, 4))) + 1):
                pred.append((f, pid, round(rng.uniform(0, 600), 2), round(rng.uniform(0, 400), 2),
                             round(rng.uniform(10, 60), 2), round(rng.uniform(20, 90), 2), 0.5, pred_cls))
        out[f"SEQ-{s:02d}"] = (sorted(gt, key=lambda r: (r[0], r[1])), sorted(pred, key=lambda r: (r[0], r[1])))
    return out


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def _write_gt(root: Path, data, length: int, mot15: bool, relabel=None) -> None:
    for seq, (gt, _) in data.items():
        _write(root / seq / "seqinfo.ini", ["[Sequence]", f"name={seq}", "imDir=img1", "frameRate=30",
                                            f"seqLength={length}", "imWidth=640", "imHeight=480", "imExt=.jpg"])
        lines = []
        for f, i, x, y, w, h, flag, c in gt:
            c = relabel(c) if relabel else c
            lines.append(f"{f},{i},{x},{y},{w},{h},{flag},-1,-1,-1" if mot15 else f"{f},{i},{x},{y},{w},{h},{flag},{c},1")
        _write(root / seq / "gt" / "gt.txt", lines)


def _pred_lines(pred, cls=None, class_column=True):
    return [f"{f},{i},{x},{y},{w},{h},{sc},{c if class_column else -1},-1,-1"
            for f, i, x, y, w, h, sc, c in pred if cls is None or c == cls]


def _trackeval(gt_root: Path, trk_root: Path, seqs: list[str], mot15: bool, out: Path) -> dict:
    """TrackEval's full pipeline on a pedestrian-only MOTChallenge folder."""
    seqmap = out / "seqmap.txt"
    _write(seqmap, ["name", *seqs])
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trk_root), "OUTPUT_FOLDER": str(out / "te"),
        "TRACKERS_TO_EVAL": ["trk"], "CLASSES_TO_EVAL": ["pedestrian"], "SEQMAP_FILE": str(seqmap),
        "SKIP_SPLIT_FOL": True, "BENCHMARK": "MOT15" if mot15 else "MOT17", "SPLIT_TO_EVAL": "train",
        "DO_PREPROC": not mot15, "PRINT_CONFIG": False,
    })
    evaluator = trackeval.Evaluator({
        "USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
        "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None,
    })
    quiet = {"PRINT_CONFIG": False}
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    raw, msg = evaluator.evaluate([dataset], metrics)
    assert msg["MotChallenge2DBox"]["trk"] == "Success"
    return {seq: res["pedestrian"] for seq, res in raw["MotChallenge2DBox"]["trk"].items()}


def _assert_same(ours: dict, theirs: dict) -> float:
    worst = 0.0
    for field, value in ours.items():
        if isinstance(value, int):
            assert value == theirs[field], field
        else:
            worst = max(worst, abs(value - theirs[field]))
            assert value == pytest.approx(theirs[field], abs=1e-9, rel=0), field
    return worst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_trackeval_mot17_preprocessing(tmp_path, seed):
    length = 25
    data = _random_dataset(seed, mot15=False, length=length)
    seqs = list(data)
    # ours: MOT17-numbered GT with both classes' predictions (class column 1 / 3)
    _write_gt(tmp_path / "gt", data, length, mot15=False)
    for seq, (_, pred) in data.items():
        _write(tmp_path / "pred" / f"{seq}.txt", _pred_lines(pred))
    pairs = read_mot_dir(tmp_path / "gt", tmp_path / "pred")
    ours = evaluate(pairs, classes=("person", "vehicle"), preprocess="mot")

    # TrackEval, person: the same GT, person predictions only (class column -1)
    for seq, (_, pred) in data.items():
        _write(tmp_path / "te_p" / "trk" / "data" / f"{seq}.txt", _pred_lines(pred, 1, class_column=False))
    te_person = _trackeval(tmp_path / "gt", tmp_path / "te_p", seqs, False, tmp_path / "o_p")
    # TrackEval, vehicle: a pedestrian-only view with MOT vehicle classes renumbered to 1
    # (and pedestrians to 3, neither scored nor a distractor), vehicle predictions only
    _write_gt(tmp_path / "gt_v", data, length, mot15=False,
              relabel=lambda c: 1 if c in MOT17_VEHICLES else (3 if c == 1 else c))
    for seq, (_, pred) in data.items():
        _write(tmp_path / "te_v" / "trk" / "data" / f"{seq}.txt", _pred_lines(pred, 3, class_column=False))
    te_vehicle = _trackeval(tmp_path / "gt_v", tmp_path / "te_v", seqs, False, tmp_path / "o_v")

    worst = 0.0
    for cls, te in (("person", te_person), ("vehicle", te_vehicle)):
        worst = max(worst, _assert_same(ours["per_class"][cls], summarize({**te["COMBINED_SEQ"]})))
        for seq in seqs:
            worst = max(worst, _assert_same(ours["per_sequence"][seq][cls],
                                            summarize(te[seq], ("HOTA", "IDF1", "MOTA", "IDSW"))))
    # classes combined by TrackEval's det-averaging of TrackEval's own per-class results
    metrics = {"HOTA": trackeval.metrics.HOTA(), "CLEAR": trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               "Identity": trackeval.metrics.Identity({"PRINT_CONFIG": False}), "Count": trackeval.metrics.Count()}
    combined = {name: m.combine_classes_det_averaged(
        {"p": te_person["COMBINED_SEQ"][name], "v": te_vehicle["COMBINED_SEQ"][name]}) for name, m in metrics.items()}
    worst = max(worst, _assert_same(ours["combined"], summarize(combined)))
    assert worst < 1e-9

    # the data exercised what it should: distractor matches removed boxes, zero flags dropped GT
    n_person_preds = sum(1 for _, p in data.values() for r in p if r[7] == 1)
    assert 0 < ours["per_class"]["person"]["Dets"] < n_person_preds
    raw = evaluate(pairs, classes=("person",), preprocess="none")["per_class"]["person"]
    assert raw["Dets"] == n_person_preds
    assert ours["per_class"]["person"]["IDSW"] > 0
    # project mode equals the devkit here once occluder/crowd rows (IGNORE in the project,
    # not distractors for the devkit) are absent and the region rule is off
    no_occluders = [(Sequence(name=s.name, width=s.width, height=s.height, length=s.length,
                              boxes=s.boxes[~np.isin(s.boxes["category"], ["9", "10", "11", "13"])]), p)
                    for s, p in pairs]
    assert evaluate(no_occluders, preprocess="project", ignore_coverage=2.0) == \
        evaluate(no_occluders, preprocess="mot")


@pytest.mark.parametrize("seed", [3, 4])
def test_parity_with_trackeval_mot15_style(tmp_path, seed):
    length = 25
    data = _random_dataset(seed, mot15=True, length=length)
    seqs = list(data)
    _write_gt(tmp_path / "gt", data, length, mot15=True)
    for seq, (_, pred) in data.items():
        _write(tmp_path / "pred" / f"{seq}.txt", _pred_lines(pred, 1, class_column=False))
        _write(tmp_path / "te" / "trk" / "data" / f"{seq}.txt", _pred_lines(pred, 1, class_column=False))
    ours = evaluate(read_mot_dir(tmp_path / "gt", tmp_path / "pred"), preprocess="mot")
    te = _trackeval(tmp_path / "gt", tmp_path / "te", seqs, True, tmp_path / "o")
    assert list(ours["per_class"]) == ["person"]
    assert _assert_same(ours["per_class"]["person"], summarize(te["COMBINED_SEQ"])) < 1e-9
    for seq in seqs:
        _assert_same(ours["per_sequence"][seq]["person"], summarize(te[seq], ("HOTA", "IDF1", "MOTA", "IDSW")))
    assert ours["per_class"]["person"]["GT_Dets"] < sum(len(g) for g, _ in data.values())  # zero flags dropped
