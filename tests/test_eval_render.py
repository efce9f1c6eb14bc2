"""The eval stage draws the headline's val tracks it scored, from memory (not files read back),
and tracks the locked test videos once (one track_stage call, scored once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stagetrack.config import STAGES, load_params
from stagetrack.evaluate import pipeline as P

REPO = Path(__file__).resolve().parents[1]


def test_eval_draws_the_scored_headline_tracks_and_tracks_test_once(tmp_path, monkeypatch):
    params = load_params(REPO / "params.yaml")
    final = STAGES[-1]
    for variant in ("classical", "learned"):
        (tmp_path / "models" / final / P.VAL_RESULTS / variant).mkdir(parents=True)
    val = {"dancetrack": ["val-video"]}
    test = {"dancetrack": ["test-video"]}
    rows = {v: {"val-video": np.zeros(3)} for v in ("classical", "learned")}
    read, scored, tracked, drawn = [], [], [], []

    monkeypatch.setattr(P, "verify_lock", lambda path: None)
    monkeypatch.setattr(P, "load_locked", lambda path: val if path.name == "val" else test)
    monkeypatch.setattr(P.StageModels, "find", staticmethod(lambda path: f"models of {path.name}"))

    def read_results(path, videos):
        read.append(path.name)
        return rows[path.name]

    def report_split(params, gt, preds, stage, weight):
        scored.append((gt, preds))
        return {"tracker": {"association": "classical"}, "dancetrack": {"combined": {"HOTA": 1.0, "IDF1": 1.0}},
                "ci": {"dancetrack": {"combined": {"HOTA": {"lo": 0.0, "hi": 2.0}}}}}

    def track_stage(params, videos, models, headline_only=False):
        tracked.append((videos, models, headline_only))
        return P.StageTracks({"classical": {"test-video": np.ones(2)}}, {}, "classical", 0.75, None)

    monkeypatch.setattr(P, "read_results", read_results)
    monkeypatch.setattr(P, "report_split", report_split)
    monkeypatch.setattr(P, "stage_changes", lambda *a: {})
    monkeypatch.setattr(P, "track_stage", track_stage)
    monkeypatch.setattr(P, "write_tracks", lambda run, videos, out: None)
    monkeypatch.setattr(P, "atomic_write_json", lambda path, data: None)

    P.run_eval(params, tmp_path / "data", tmp_path / "models", tmp_path / "metrics", tmp_path / "results",
               render=lambda videos, preds, out: drawn.append((videos, preds, out)))
    assert sorted(read) == ["classical", "learned"]                  # each variant's val tracks read once
    assert len(drawn) == 1 and drawn[0][0] is val and drawn[0][2] == tmp_path / "results" / "viz"
    assert drawn[0][1] is rows["classical"]                         # the very rows eval.json scored
    assert scored[0][1]["classical"] is rows["classical"]
    assert tracked == [(test, f"models of {final}", False)]        # test tracked once, by the final stage
    assert len(scored) == 2 and scored[1][0] is test               # and scored once


def _learned_headline(params):
    import dataclasses

    assoc = dataclasses.replace(params.tracker.assoc, enable=True, weights=None)
    return dataclasses.replace(params, tracker=dataclasses.replace(params.tracker, assoc=assoc))


def test_learned_headline_without_a_model_is_an_error_not_the_classical_tracker(tmp_path, monkeypatch):
    """`tracker.assoc.enable: true` and a stage with no assoc.pt: an error naming the key, not
    the classical tracker reported as the headline (issue 18's silent fallback)."""
    import pytest

    from stagetrack.artifacts import StageModels
    from stagetrack.errors import ConfigError

    for var in ("TRANSFORMER_ASSOC_ENABLE", "TRANSFORMER_ASSOC_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    params = _learned_headline(load_params(REPO / "params.yaml"))
    models = StageModels(tmp_path / "best.pt", tmp_path / "model.pt", None)
    with pytest.raises(ConfigError, match="has no assoc.pt") as err:
        P.track_stage(params, {"dancetrack": []}, models)
    assert err.value.field == "tracker.assoc.enable"
    with pytest.raises(ConfigError, match="no learned results"):   # eval, from the stage's val tracks
        P.headline_variant(params, {"classical": {}})
    assert P.headline_variant(params, {"classical": {}, "learned": {}}) == "learned"
    assert P.headline_variant(load_params(REPO / "params.yaml"), {"classical": {}, "learned": {}}) == "classical"
