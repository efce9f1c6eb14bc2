"""Stage-to-stage wiring of the association model (seed plan's RESUME_OPTIMIZER / RESUME_SCHEDULER)."""

from __future__ import annotations

import pytest

from stagetrack.errors import CheckpointError
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


def test_missing_engine_checkpoint_is_an_error_naming_the_key(tmp_path):
    """RESUME_OPTIMIZER asked for and no state to resume: no quiet fall-back to the weights alone."""
    prev = _prev(tmp_path, work=False)
    with pytest.raises(CheckpointError, match=r"assoc.work/last.pt: train.resume_optimizer asks for .* missing; "
                                              r"re-run .*, or set train.resume_optimizer: false"):
        assoc_init(prev, EngineConfig(resume_optimizer=True))
    with pytest.raises(CheckpointError, match="train.resume_scheduler"):
        assoc_init(prev, EngineConfig(resume_scheduler=True))


def test_missing_previous_association_model_is_an_error_not_a_fresh_start(tmp_path):
    with pytest.raises(CheckpointError, match=r"assoc.pt: the previous stage's association model is missing"):
        assoc_init(tmp_path, EngineConfig())
