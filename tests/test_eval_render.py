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
