"""`stagetrack plan`: projections follow from measured timings by hand-checkable arithmetic."""

from __future__ import annotations

import json

import pytest

from stagetrack.cli import main
from stagetrack.config import load_params
from stagetrack.errors import DataError
from stagetrack.plan import plan, plan_stage


@pytest.fixture()
def params():
    return load_params("params.yaml")


def _timing(frames: int, det: float, reid: float, assoc: float) -> dict:
    return {"detector_s": det, "reid_s": reid, "assoc_s": assoc, "val_s": 99.0,
            "train_frames": frames, "device": "cpu"}


def test_projection_scales_seconds_per_frame_epoch(params):
    epochs = params.stage_section("stage1", "detector").epochs
    budget = sum(m.frame_budget for m in params.stage1.data.values() if m.enabled)
    row = plan_stage(params, "stage1", _timing(200, 100.0, 50.0, 50.0))
    # 200 s over 200 frames x epochs; projected: budget x frame_scale frames x plan.epochs
    per = 200.0 / (200 * epochs)
    assert row.s_per_frame_epoch == pytest.approx(per)
    assert row.projected_frames == round(budget * params.plan.frame_scale)
    hours = per * row.projected_frames * params.plan.epochs / 3600
    assert row.projected_hours == pytest.approx(hours)
    assert row.projected_cost == pytest.approx(hours * params.plan.price_per_hour)
    assert row.train_s == 200.0  # validation time is not training time


def test_missing_timing_is_a_clear_error(params):
    with pytest.raises(DataError, match="stage2 has no timing"):
        plan_stage(params, "stage2", {})


def test_plan_skips_untrained_stages_and_needs_one(params, tmp_path):
    with pytest.raises(DataError, match="no stage timings"):
        plan(params, tmp_path)
    (tmp_path / "stage1.json").write_text(json.dumps(_timing(100, 10.0, 10.0, 10.0)))
    assert [r.stage for r in plan(params, tmp_path)] == ["stage1"]


def test_cli_prints_the_table(tmp_path, capsys):
    for stage in ("stage1", "stage2"):
        (tmp_path / f"{stage}.json").write_text(json.dumps(_timing(100, 60.0, 30.0, 30.0)))
    assert main(["plan", "--timings-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| stage1 | 100 x" in out and "| stage2 |" in out and "| total |" in out
