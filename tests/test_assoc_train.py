"""Training the association transformer on synthetic samples, the exported checkpoint, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from stagetrack import cli
from stagetrack.assoc import train as assoc_train
from stagetrack.assoc.config import AssocConfig
from stagetrack.assoc.logger import AssocLogger
from stagetrack.assoc.scorer import LearnedScorer
from stagetrack.errors import ConfigError
from stagetrack.train.config import EngineConfig
from test_assoc_features import IMAGE, synthetic_frames

# small enough for 2 shared CPU cores; 4 objects per frame, so picking at random is right ~25-30%
CFG = AssocConfig(history=2, max_candidates=4, d_model=32, heads=2, layers=1, track_layers=1, dropout=0.0,
                  aug_jitter=0.0, aug_drop=0.0)
ENGINE = EngineConfig(device="cpu", scheduler="none", log_every=1000)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_log(out_dir, frames: int, seed: int = 0):
    with AssocLogger(out_dir, embed_dim=8, history=CFG.history, max_candidates=CFG.max_candidates,
                     shard_size=128) as logger:
        for tracks, dets in synthetic_frames(frames, objects=4, embed_dim=8, seed=seed):
            logger.log(tracks, dets, IMAGE)
    return out_dir


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return write_log(tmp_path_factory.mktemp("assoc") / "log", frames=100)   # 400 samples


@pytest.fixture(scope="module")
def trained(log_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "assoc.pt"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    summary = assoc_train.train_assoc(log_dir, out, cfg=CFG, engine_cfg=ENGINE, lr=3e-3, epochs=4, batch_size=32,
                                      val_split=0.2, device="cpu")
    torch.set_num_threads(before)
    return out, summary


def test_training_learns_the_appearance_match(trained):
    path, summary = trained
    history = torch.load(path.parent / "assoc.work" / "last.pt", weights_only=True)["history"]
    # the true detection is identifiable only by appearance; always taking the nearest box is
    # right ~1/4 of the time (val_nearest_acc), the trained model far more often
    assert history[-1]["train_loss"] < 0.75 * history[0]["train_loss"]
    assert summary["val_acc"] > 0.6 and summary["val_acc"] > 2 * summary["val_nearest_acc"]
    assert summary["val_loss"] == min(h["val_loss"] for h in history)  # the best epoch is exported
    assert summary["train_samples"] == 320 and summary["val_samples"] == 80


def test_exported_checkpoint(trained):
    path, summary = trained
    payload = torch.load(path, weights_only=True)
    assert payload["embed_dim"] == 8 and payload["hsv_bins"] == 0
    assert payload["features"]["history"] == 2 and payload["model_args"]["d_model"] == 32
    assert payload["metrics"]["val_loss"] == pytest.approx(summary["val_loss"])
    assert payload["train"]["lr"] == 3e-3 and payload["train"]["engine"]["device"] == "cpu"
    scorer = LearnedScorer.load(path, expected_embed_dim=8)
    tracks, dets = next(synthetic_frames(1, objects=4, embed_dim=8, seed=99))
    scores = scorer.score(tracks, dets, IMAGE)
    # each track's highest score is its own object's detection (appearance is the only cue)
    own = {int(g): j for j, g in enumerate(dets.gt_id)}
    hits = [scores[i].argmax() == own[t.gt_id] for i, t in enumerate(tracks) if t.gt_id in own]
    assert sum(hits) >= len(hits) - 1


def test_fine_tune_from_export_and_shape_check(trained, log_dir, tmp_path):
    path, _ = trained
    summary = assoc_train.train_assoc(log_dir, tmp_path / "ft.pt", cfg=CFG, engine_cfg=ENGINE, lr=1e-4, epochs=1,
                                      batch_size=64, val_split=0.2, device="cpu", init_from=path)
    assert summary["val_acc"] > 0.6   # started from the trained weights, not from scratch
    with pytest.raises(ConfigError, match="another shape: d_model 32 vs 16"):
        assoc_train.train_assoc(log_dir, tmp_path / "x.pt", cfg=AssocConfig(history=2, max_candidates=4, d_model=16,
                                heads=2), engine_cfg=ENGINE, lr=1e-4, epochs=1, batch_size=64, val_split=0.2,
                                device="cpu", init_from=path)


def test_a_separate_validation_log_validates_while_all_samples_train(log_dir, tmp_path):
    """The pipeline's selection split: samples of held-out clips validate; every training sample trains."""
    val_dir = write_log(tmp_path / "val", frames=20, seed=7)
    summary = assoc_train.train_assoc(log_dir, tmp_path / "m.pt", cfg=CFG, engine_cfg=ENGINE, lr=3e-3, epochs=1,
                                      batch_size=32, val_split=0.2, device="cpu", val_data=val_dir)
    assert (summary["split"], summary["train_samples"], summary["val_samples"]) == ("selection", 400, 80)
    assert torch.load(tmp_path / "m.pt", weights_only=True)["train"]["val_data"] == val_dir.as_posix()
    other = tmp_path / "wide"
    with AssocLogger(other, embed_dim=4, history=CFG.history, max_candidates=CFG.max_candidates,
                     shard_size=128) as logger:
        for tracks, dets in synthetic_frames(5, objects=4, embed_dim=4, seed=1):
            logger.log(tracks, dets, IMAGE)
    with pytest.raises(ConfigError, match="validation samples were logged with embed_dim=4"):
        assoc_train.train_assoc(log_dir, tmp_path / "x.pt", cfg=CFG, engine_cfg=ENGINE, lr=1e-3, epochs=1,
                                batch_size=8, val_split=0.2, device="cpu", val_data=other)


def test_params_must_match_the_logged_layout(log_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"assoc.history: the samples .* were logged with history=2, params say 8"):
        assoc_train.train_assoc(log_dir, tmp_path / "m.pt", cfg=AssocConfig(max_candidates=4), engine_cfg=ENGINE,
                                lr=1e-3, epochs=1, batch_size=8, val_split=0.2, device="cpu")


def test_inspect_prints_stats_and_trains_nothing(log_dir, tmp_path, capsys):
    out = tmp_path / "never.pt"
    rc = assoc_train.main(["--data", str(log_dir), "--output", str(out), "--inspect"])
    assert rc == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 400 and stats["embed_dim"] == 8 and stats["max_candidates"] == 4
    assert stats["positives"] + stats["no_match"] == 400
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_writes_the_output(tmp_path, capsys):
    data = write_log(tmp_path / "log", frames=12, seed=1)
    (tmp_path / "params.yaml").write_text(
        "assoc:\n  history: 2\n  max_candidates: 4\n  d_model: 16\n  heads: 2\n  layers: 1\n  epochs: 5\n"
        "train:\n  device: cpu\n  scheduler: none\n")
    out = tmp_path / "weights" / "assoc.pt"
    rc = cli.main(["train-assoc", "--data", str(data), "--output", str(out), "--epochs", "1", "--batch-size", "16",
                   "--lr", "1e-3", "--val-split", "0.25", "--params", str(tmp_path / "params.yaml")])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_run"] == 1 and summary["val_samples"] == 12   # --epochs 1 overrode params' 5
    payload = torch.load(out, weights_only=True)
    assert payload["embed_dim"] == 8 and payload["model_args"]["d_model"] == 16 and payload["train"]["lr"] == 1e-3


def test_cli_errors_are_one_line(tmp_path, log_dir, capsys):
    assert assoc_train.main(["--data", str(log_dir), "--output", str(tmp_path / "m.pt"), "--val-split", "1.5"]) == 2
    assert "assoc.val_split: must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert assoc_train.main(["--data", str(log_dir)]) == 2
    assert "--output: is required unless --inspect" in capsys.readouterr().err
    assert assoc_train.main(["--data", str(tmp_path), "--inspect"]) == 2
    err = capsys.readouterr().err
    assert "no manifest.jsonl" in err and "Traceback" not in err


def test_cli_resume_continues_a_killed_run_bitwise(tmp_path):
    """`train-assoc --resume` after a SIGKILL in epoch 2 of 3 writes the uninterrupted run's bytes;
    resuming with other params is an error naming the checkpoint."""
    import os
    import subprocess
    import sys

    from stagetrack.resume import FAULT_ENV

    log_dir = write_log(tmp_path / "log", frames=40)  # 160 samples: three batches an epoch
    (tmp_path / "params.yaml").write_text(
        "assoc:\n  history: 2\n  max_candidates: 4\n  d_model: 16\n  heads: 2\n  layers: 1\n  epochs: 3\n"
        "train:\n  device: cpu\n  scheduler: none\n")

    def train(out, *extra, kill=None):
        env = {**os.environ, **({FAULT_ENV: kill} if kill else {})}
        env.pop(FAULT_ENV, None) if not kill else None
        return subprocess.run([sys.executable, "-m", "stagetrack.assoc.train", "--data", str(log_dir), "--output",
                               str(out), "--batch-size", "64", "--params", str(tmp_path / "params.yaml"), *extra],
                              capture_output=True, text=True, timeout=300, env=env)

    assert train(tmp_path / "a" / "assoc.pt").returncode == 0
    killed = train(tmp_path / "b" / "assoc.pt", kill="assoc:2:2")
    assert killed.returncode == -9 and not (tmp_path / "b" / "assoc.pt").exists()
    other = train(tmp_path / "b" / "assoc.pt", "--resume", "--lr", "0.5")
    assert other.returncode == 2 and "assoc.work/last.pt" in other.stderr and "cannot resume" in other.stderr
    assert "Traceback" not in other.stderr
    resumed = train(tmp_path / "b" / "assoc.pt", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "epoch 0 done" in resumed.stderr
    assert (tmp_path / "b" / "assoc.pt").read_bytes() == (tmp_path / "a" / "assoc.pt").read_bytes()
    fresh = train(tmp_path / "c" / "assoc.pt", "--resume")
    assert fresh.returncode == 0 and "nothing to resume" in fresh.stderr
