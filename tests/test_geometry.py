"""One box IoU and one IoU matching rule (stagetrack.geometry) for the tracker, evaluation and drawings."""

from __future__ import annotations

import numpy as np
import pytest
from trackeval.datasets._base_dataset import _BaseDataset

from stagetrack.geometry import box_iou, box_iou_tlwh, match_by_iou
from stagetrack.track.costs import iou_distance


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    tlwh = np.concatenate([rng.uniform(0, 100, (n, 2)), rng.uniform(0.5, 40, (n, 2))], axis=1)
    tlwh[::7, 2] = 0.0          # degenerate: no width
    tlwh[3::11, 3] = -2.0       # degenerate: negative height
    tlwh[5::13, 2:] = 1e-9      # degenerate: area below float eps
    return tlwh


def test_box_iou_is_trackevals_to_the_bit():
    rng = np.random.default_rng(0)
    a, b = _boxes(rng, 60), _boxes(rng, 45)
    b[:10] = a[:10]                                    # identical boxes too
    ours = box_iou_tlwh(a, b)
    theirs = _BaseDataset._calculate_box_ious(a.copy(), b.copy(), box_format="xywh")
    assert ours.tobytes() == theirs.tobytes()
    assert (ours[:10, :10].diagonal()[np.prod(a[:10, 2:], axis=1) > 1e-6] == 1.0).all()


def test_tracker_cost_is_one_minus_the_shared_iou():
    rng = np.random.default_rng(1)
    a, b = _boxes(rng, 20), _boxes(rng, 30)
    ta, tb = a.copy(), b.copy()
    ta[:, 2:] += ta[:, :2]
    tb[:, 2:] += tb[:, :2]
    assert np.array_equal(iou_distance(ta, tb), 1.0 - box_iou(ta, tb))
    assert iou_distance(ta[:0], tb).shape == (0, 30) and box_iou(ta, tb[:0]).shape == (20, 0)


def test_match_by_iou_maximises_total_iou_above_the_threshold():
    # greedy would take (0, 0) at 0.9 and leave row 1 unmatched; the assignment takes both rows
    iou = np.array([[0.9, 0.8],
                    [0.85, 0.1]])
    rows, cols = match_by_iou(iou, 0.5)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    # below the threshold nothing matches, at it (within TrackEval's eps) it does
    assert match_by_iou(np.array([[0.49]]), 0.5)[0].size == 0
    assert match_by_iou(np.array([[0.5 - 1e-17]]), 0.5)[0].tolist() == [0]
    assert match_by_iou(np.zeros((0, 3)), 0.5)[0].size == 0


def test_a_continuing_pair_wins_over_a_larger_iou():
    iou = np.array([[0.6, 0.95]])
    keep = np.array([[True, False]])
    assert match_by_iou(iou, 0.5)[1].tolist() == [1]
    assert match_by_iou(iou, 0.5, keep)[1].tolist() == [0]
    # but never below the threshold
    assert match_by_iou(np.array([[0.3, 0.95]]), 0.5, keep)[1].tolist() == [1]


@pytest.mark.parametrize("module", ["stagetrack.evaluate.preprocess", "stagetrack.visual.truth", "stagetrack.inference",
                                    "stagetrack.track.costs", "stagetrack.evaluate.parts"])
def test_no_other_module_computes_iou_or_runs_the_hungarian(module):
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(module))
    assert "linear_sum_assignment" not in source and "_calculate_box_ious" not in source
    assert "np.minimum(a[:, None, 2]" not in source
