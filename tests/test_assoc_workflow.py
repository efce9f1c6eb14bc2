"""Seed 000's workflow through the CLI: log samples while tracking, train, blend, check widths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from stagetrack.cli import main
from stagetrack.data import mot, synth
from stagetrack.data.config import SynthDomainConfig


@pytest.fixture
def det_dir(tmp_path):
    """Two tiny dancetrack-like videos with public detections = jittered ground truth."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mot"
    cfg = SynthDomainConfig(videos=2, frames=24, locked_videos=0, width=128, height=96, min_objects=3, max_objects=4)
    for i in range(2):
        seq, frames = synth.render_video("dancetrack", i, cfg, seed=5)
        written = mot.write_sequence(seq, root / seq.name, frames)
        dets = written.boxes.copy()
        dets["x"] += rng.normal(0, 1.0, len(dets))
        dets["conf"] = rng.uniform(0.6, 1.0, len(dets))
        mot.write_txt(root / seq.name / "det" / "det.txt", dets, "det")
    return root


def test_log_train_blend(det_dir, tmp_path, monkeypatch, capsys):
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)  # ./params.yaml: the repository's
    logs, weights = tmp_path / "logs", tmp_path / "assoc.pt"
    monkeypatch.setenv("TRANSFORMER_LOG_ENABLE", "1")
    monkeypatch.setenv("TRANSFORMER_LOG_DIR", str(logs))
    assert main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out1")]) == 0
    header = json.loads((logs / "manifest.jsonl").read_text().splitlines()[0])
    shards = [json.loads(x) for x in (logs / "manifest.jsonl").read_text().splitlines()[1:]]
    assert header["embed_dim"] == 0 and sum(s["samples"] for s in shards) > 50
    monkeypatch.delenv("TRANSFORMER_LOG_ENABLE")

    assert main(["train-assoc", "--data", str(logs), "--output", str(weights), "--epochs", "2",
                 "--batch-size", "32", "--device", "cpu"]) == 0
    assert weights.exists()

    monkeypatch.setenv("TRANSFORMER_ASSOC_ENABLE", "1")
    monkeypatch.setenv("TRANSFORMER_ASSOC_WEIGHTS", str(weights))
    monkeypatch.setenv("TRANSFORMER_ASSOC_WEIGHT", "0.7")
    assert main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out2")]) == 0
    err = capsys.readouterr().err
    assert "learned association" in err and "weight 0.70" in err
    assert len(list((tmp_path / "out2").glob("*.txt"))) == 2

    monkeypatch.setenv("TRANSFORMER_ASSOC_EMBED_DIM", "256")  # the checkpoint was logged without ReID (0)
    assert main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out3")]) == 2
    err = capsys.readouterr().err
    assert "TRANSFORMER_ASSOC_EMBED_DIM" in err and "256" in err and "Traceback" not in err


def test_logging_without_ground_truth_is_a_clear_error(det_dir, tmp_path, monkeypatch, capsys):
    for gt in det_dir.glob("*/gt/gt.txt"):
        gt.unlink()
    monkeypatch.setenv("TRANSFORMER_LOG_ENABLE", "1")
    monkeypatch.setenv("TRANSFORMER_LOG_DIR", str(tmp_path / "logs"))
    assert main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out")]) == 2
    assert "gt/gt.txt: sample logging needs ground truth" in capsys.readouterr().err


def test_repo_params_track_without_a_checkpoint_falls_back_to_classical(det_dir, tmp_path, capsys):
    # the repo's params with the learned scorer switched on and `weights: null` (= a stage's own model)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["tracker"]["assoc"].update(enable=True, weights=None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out"),
                 "--params", str(tmp_path / "params.yaml")]) == 0
    assert "tracking with classical costs" in capsys.readouterr().err
