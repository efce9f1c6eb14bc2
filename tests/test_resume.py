"""The stage resume state (stagetrack/resume.py): when a run continues, when it starts fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stagetrack import resume
from stagetrack.errors import CheckpointError
from stagetrack.resume import FAULT_ENV, STATE_NAME, RecordingLive, StageResume, kill_point, stage_key


def _started(tmp_path, key="k1"):
    root = tmp_path / "stage1.resume"
    state = StageResume.open(root, "stage1", key)
    part = state.part_dir("detector")
    (part / "state.pt").write_bytes(b"epoch 1")
    out = tmp_path / "out" / "detector"
    out.mkdir(parents=True)
    (out / "best.pt").write_bytes(b"weights")
    state.finish("detector", {"detector": out}, {"metrics": {"mAP50": 0.5}})
    (state.part_dir("reid") / "state.pt").write_bytes(b"reid epoch 2")
    return root, out


def test_a_matching_interrupted_run_continues(tmp_path):
    root, out = _started(tmp_path)
    assert not (root / "detector" / "state.pt").exists(), "a finished part's epoch checkpoints are dropped"
    again = StageResume.open(root, "stage1", "k1")
    assert again.resumed and set(again.done) == {"detector"}
    assert (root / "reid" / "state.pt").read_bytes() == b"reid epoch 2"  # the interrupted part's checkpoint stays
    dest = tmp_path / "fresh" / "detector"
    assert again.restore("detector", {"detector": dest}) == {"metrics": {"mAP50": 0.5}}
    assert (dest / "best.pt").read_bytes() == b"weights"
    assert again.restore("reid", {"reid": tmp_path / "x"}) is None


def test_other_params_or_inputs_start_fresh(tmp_path, caplog):
    root, _ = _started(tmp_path)
    with caplog.at_level("INFO"):
        fresh = StageResume.open(root, "stage1", "k2")
    assert not fresh.resumed and fresh.done == {}
    assert sorted(p.name for p in root.iterdir()) == [STATE_NAME]
    assert "had other params, inputs or code: starting fresh" in caplog.text


def test_a_completed_stage_keeps_only_its_state_and_is_not_resumed(tmp_path):
    root, _ = _started(tmp_path)
    state = StageResume.open(root, "stage1", "k1")
    state.complete()
    assert sorted(p.name for p in root.iterdir()) == [STATE_NAME]
    doc = json.loads((root / STATE_NAME).read_text())
    assert doc == {"stage": "stage1", "key": "k1", "status": "complete", "done": {}}
    assert not StageResume.open(root, "stage1", "k1").resumed


def test_a_damaged_state_is_an_error_naming_the_file(tmp_path):
    root, _ = _started(tmp_path)
    (root / STATE_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="STATE.json.*resume state cannot be read"):
        StageResume.open(root, "stage1", "k1")
    root2, _ = _started(tmp_path / "b")
    state = StageResume.open(root2, "stage1", "k1")
    import shutil
    shutil.rmtree(root2 / "detector" / "done")
    with pytest.raises(CheckpointError, match="says detector finished, but its output 'detector' is missing"):
        state.restore("detector", {"detector": tmp_path / "y"})


def test_the_key_follows_params_inputs_and_code(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("1")
    base = stage_key({"lr": 1}, "stage1", {"data": data, "init": None})
    assert stage_key({"lr": 1}, "stage1", {"data": data, "init": None}) == base
    assert stage_key({"lr": 2}, "stage1", {"data": data, "init": None}) != base
    assert stage_key({"lr": 1}, "stage2", {"data": data, "init": None}) != base
    (data / "a.txt").write_text("2")
    assert stage_key({"lr": 1}, "stage1", {"data": data, "init": None}) != base
    (data / "a.txt").write_text("1")
    monkeypatch.setattr(resume, "source_hash", lambda: "other code")
    assert stage_key({"lr": 1}, "stage1", {"data": data, "init": None}) != base


class Live:
    def __init__(self):
        self.rows, self.row = [], {}

    def log_metric(self, name, val):
        self.row[name] = val

    def next_step(self):
        self.rows.append(self.row)
        self.row = {}


def test_recording_live_replays_then_records():
    live = Live()
    rec = RecordingLive(live, [{"a": 1.0}, {"a": 2.0}])
    rec.log_metric("a", 3.0)
    rec.next_step()
    assert live.rows == [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}] and rec.steps == live.rows


def test_kill_point_kills_only_where_asked(monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    kill_point("detector", 2, 2)  # unset: nothing
    monkeypatch.setenv(FAULT_ENV, "reid:2:2")
    kill_point("detector", 2, 2)
    kill_point("reid", 2, 1)
    code = "from stagetrack.resume import kill_point; kill_point('reid', 2, 2); print('alive')"
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, FAULT_ENV: "reid:2:2"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9 and "alive" not in proc.stdout
