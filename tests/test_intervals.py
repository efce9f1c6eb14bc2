"""Bootstrap intervals over videos, paired differences and verdicts, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from stagetrack.data.sequence import ANN_DTYPE, Sequence, empty_boxes
from stagetrack.evaluate import intervals
from stagetrack.evaluate.metrics import combine, evaluate, sequence_results


def test_percentile_interval_and_verdict_rule():
    values = np.arange(1, 1001, dtype=float)  # 1..1000
    lo, hi = intervals.percentile_interval(values, 0.95)
    # numpy's linear percentile: position p/100 * (n - 1) -> 2.5% of 999 = 24.975 -> 25.975
    assert lo == pytest.approx(25.975) and hi == pytest.approx(975.025)
    assert intervals.verdict(0.1, 2.0) == "gain"
    assert intervals.verdict(-2.0, -0.1) == "loss"
    assert intervals.verdict(-0.1, 2.0) == intervals.verdict(0.0, 0.0) == "indistinguishable"
    assert intervals.verdict(0.0, 1.0) == "indistinguishable"  # touching 0 is not excluding it


def test_draws_are_stratified_seeded_and_with_replacement():
    groups = [["a1", "a2"], ["b1", "b2", "b3"]]
    d = intervals.draws(groups, 200, seed=7)
    assert d == intervals.draws(groups, 200, seed=7)
    assert all(len(x) == 5 and set(x[:2]) <= {"a1", "a2"} and set(x[2:]) <= {"b1", "b2", "b3"} for x in d)
    assert any(x[0] == x[1] for x in d)  # replacement


def _seq(name: str, n_frames: int, boxes_per_frame: int) -> Sequence:
    rows = []
    for f in range(1, n_frames + 1):
        for i in range(boxes_per_frame):
            r = empty_boxes(1)
            r["frame"], r["id"], r["x"], r["y"], r["w"], r["h"] = f, i + 1, 10 + 40 * i, 10, 20, 40
            r["conf"], r["cls"], r["category"] = 1.0, 0, "person"
            rows.append(r)
    gt = np.concatenate(rows)
    return Sequence(name=name, source="test", length=n_frames, width=200, height=100, fps=10.0, boxes=gt)


def _pred(seq: Sequence, keep_every: int) -> np.ndarray:
    """Ground truth as predictions, keeping every ``keep_every``-th frame (the rest missed)."""
    pred = seq.boxes.copy()
    return pred[pred["frame"] % keep_every == 0].astype(ANN_DTYPE)


def test_combine_counts_a_repeated_video_twice():
    """Combining [a, a, b] is TrackEval on a set holding video a twice: detection-weighted, so it
    differs from combining [a, b] when a and b score differently, and from averaging per video."""
    a, b = _seq("a", 20, 1), _seq("b", 20, 3)
    res = sequence_results([(a, a.boxes.astype(ANN_DTYPE)), (b, _pred(b, 2))], classes=("person",))
    once = combine(res, ["a", "b"])["combined"]
    assert once == pytest.approx(evaluate([(a, a.boxes.astype(ANN_DTYPE)), (b, _pred(b, 2))], classes=("person",))["combined"])
    twice = combine(res, ["a", "a", "b"])["combined"]
    # DetA = TP / (TP + FN + FP) over the set: a: 20 TP; b: 30 TP, 30 FN
    assert once["DetA"] == pytest.approx(100 * 50 / 80, abs=1e-6)
    assert twice["DetA"] == pytest.approx(100 * 70 / 100, abs=1e-6)


def test_bootstrap_of_two_videos_spans_their_scores():
    """With videos a (DetA 100) and b (DetA 50), a draw of two is aa, ab, ba or bb: the 95%
    interval runs from b's score to a's."""
    a, b = _seq("a", 10, 2), _seq("b", 10, 2)
    res = sequence_results([(a, a.boxes.astype(ANN_DTYPE)), (b, _pred(b, 2))], classes=("person",))
    ci = intervals.bootstrap(res, [["a", "b"]], ("DetA",), n=400, seed=0, level=0.95)
    assert ci["combined"]["DetA"] == {"lo": pytest.approx(50.0), "hi": pytest.approx(100.0)}


def test_paired_difference_and_verdicts():
    """Run B finds every box, run A misses half on every video: a paired gain whose interval
    excludes 0; the same run against itself is indistinguishable with a zero-width interval."""
    seqs = [_seq(f"v{i}", 10, 2) for i in range(4)]
    res_a = sequence_results([(s, _pred(s, 2)) for s in seqs], classes=("person",))
    res_b = sequence_results([(s, s.boxes.astype(ANN_DTYPE)) for s in seqs], classes=("person",))
    names = [[s.name for s in seqs]]

    def keys(report):
        return {"person_DetA": report["per_class"]["person"]["DetA"]}

    gain = intervals.paired(res_a, res_b, names, keys, n=200, seed=0, level=0.95, fields=("DetA",))["person_DetA"]
    assert gain["delta"] == pytest.approx(50.0) and gain["lo"] == pytest.approx(50.0) and gain["verdict"] == "gain"
    loss = intervals.paired(res_b, res_a, names, keys, n=200, seed=0, level=0.95, fields=("DetA",))["person_DetA"]
    assert loss["verdict"] == "loss" and loss["hi"] == pytest.approx(-50.0)
    same = intervals.paired(res_a, res_a, names, keys, n=50, seed=0, level=0.95, fields=("DetA",))["person_DetA"]
    assert same == {"delta": 0.0, "lo": 0.0, "hi": 0.0, "verdict": "indistinguishable"}
