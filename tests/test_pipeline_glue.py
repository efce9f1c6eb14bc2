"""Stage-to-stage wiring of the association model (seed plan's RESUME_OPTIMIZER / RESUME_SCHEDULER)."""

from __future__ import annotations

from stagetrack.pipeline import assoc_init
from stagetrack.train.config import EngineConfig


def _prev(tmp_path, *, work: bool = True):
    (tmp_path / "assoc.pt").write_bytes(b"exported")
    if work:
        (tmp_path / "assoc.work").mkdir()
        (tmp_path / "assoc.work" / "last.pt").write_bytes(b"engine")
    return tmp_path


def test_first_stage_starts_fresh():
    assert assoc_init(None, EngineConfig()) is None


def test_weights_only_by_default(tmp_path):
    assert assoc_init(_prev(tmp_path), EngineConfig()) == tmp_path / "assoc.pt"


def test_resume_switches_take_the_engine_checkpoint(tmp_path):
    prev = _prev(tmp_path)
    assert assoc_init(prev, EngineConfig(resume_optimizer=True)) == prev / "assoc.work" / "last.pt"
    assert assoc_init(prev, EngineConfig(resume_scheduler=True)) == prev / "assoc.work" / "last.pt"


def test_missing_engine_checkpoint_falls_back_to_weights_with_a_warning(tmp_path, caplog):
    prev = _prev(tmp_path, work=False)
    assert assoc_init(prev, EngineConfig(resume_optimizer=True)) == prev / "assoc.pt"
    assert "cannot be resumed" in caplog.text
