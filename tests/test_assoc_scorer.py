"""Runtime scorer: checkpoint loading, (N, M) scores, embed-dim checks, env precedence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stagetrack.assoc.config import AssocConfig
from stagetrack.assoc.dataset import AssocDataset, read_log
from stagetrack.assoc.logger import AssocLogger
from stagetrack.assoc.model import AssocTransformer
from stagetrack.assoc.scorer import LearnedScorer, checkpoint_payload, resolve_learned_assoc, scorer_from_config
from stagetrack.errors import CheckpointError, ConfigError
from stagetrack.track.config import LearnedAssocConfig
from stagetrack.train.checkpoint import save_checkpoint
from test_assoc_features import IMAGE, make_dets, two_tracks_three_dets

CFG = AssocConfig(history=3, max_candidates=2, d_model=16, heads=2, layers=1, track_layers=1, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def ckpt(tmp_path):
    """An untrained 3-dim-embedding model exported like train.py does."""
    torch.manual_seed(0)
    model = AssocTransformer(CFG, embed_dim=3, hsv_bins=0)
    path = tmp_path / "assoc.pt"
    save_checkpoint(path, checkpoint_payload(model, train={"lr": 1e-3}, metrics={"val_loss": 1.0}))
    return path


def test_checkpoint_loads_weights_only_and_carries_embed_dim(ckpt):
    payload = torch.load(ckpt, weights_only=True)
    assert payload["embed_dim"] == 3 and payload["hsv_bins"] == 0 and payload["format"] == "stagetrack-assoc"
    assert payload["features"]["version"] == 1 and payload["model_args"]["max_candidates"] == 2


def test_scores_match_the_model_on_logged_samples(ckpt, tmp_path):
    tracks, dets = two_tracks_three_dets()
    scorer = LearnedScorer.load(ckpt)
    scores = scorer.score(tracks, dets, IMAGE)
    assert scores.shape == (2, 3) and scorer.embed_dim == 3
    # max_candidates=2: A's candidates are d0, d2 (d1 is far), B's are d1, d2 (d0 is far)
    assert scores[0, 1] == 0 and scores[1, 0] == 0
    assert (scores[[0, 0, 1, 1], [0, 2, 1, 2]] > 0).all() and (scores.sum(1) < 1).all()  # rest is "no match"
    # logger + dataset + model give the same probabilities: one feature path for both sides
    with AssocLogger(tmp_path / "log", embed_dim=3, history=3, max_candidates=2, shard_size=8) as logger:
        logger.log(tracks, dets, IMAGE)
    ds = AssocDataset(read_log(tmp_path / "log"))
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    with torch.no_grad():
        prob = scorer.model(batch).softmax(-1).numpy()
    np.testing.assert_allclose(prob[:, :2], scores[[[0, 0], [1, 1]], [[0, 2], [1, 2]]], rtol=1e-5)


def test_empty_and_missing_appearance(ckpt):
    tracks, dets = two_tracks_three_dets()
    scorer = LearnedScorer.load(ckpt)
    assert scorer.score([], dets, IMAGE).shape == (0, 3)
    assert scorer.score(tracks, make_dets(np.zeros((0, 4)), [], []), IMAGE).shape == (2, 0)
    # detections without ReID (the tracker warns and scores on motion alone)
    no_emb = make_dets(dets.tlwh, dets.score, dets.cls)
    assert np.isfinite(scorer.score(tracks, no_emb, IMAGE)).all()
    wrong = make_dets(dets.tlwh, dets.score, dets.cls, emb=np.ones((3, 5)))
    with pytest.raises(ConfigError, match=r"assoc.pt expects embed_dim=3, the detections carry 5"):
        scorer.score(tracks, wrong, IMAGE)


def _enabled(path, **kw):
    return LearnedAssocConfig(enable=True, weights=str(path), **kw)


def test_checkpoint_vs_runtime_width_is_config_error(ckpt):
    with pytest.raises(ConfigError, match=r"embed_dim=3.*tracker.assoc.embed_dim=unset.*"
                                          r"TRANSFORMER_LOG_EMBED_DIM=unset.*runtime ReID width=512"):
        scorer_from_config(_enabled(ckpt), reid_dim=512, environ={})
    with pytest.raises(ConfigError, match=r"runtime ReID width=0"):
        scorer_from_config(_enabled(ckpt), reid_dim=None, environ={})
    with pytest.raises(ConfigError, match=r"trained on embed_dim=3, expected 8"):
        LearnedScorer.load(ckpt, expected_embed_dim=8)


@pytest.mark.parametrize("env,cfg_dim,named", [
    ({"TRANSFORMER_ASSOC_EMBED_DIM": "256"}, None, "TRANSFORMER_ASSOC_EMBED_DIM=256"),
    ({}, 4, "tracker.assoc.embed_dim=4"),
    ({"TRANSFORMER_LOG_EMBED_DIM": "7"}, None, "TRANSFORMER_LOG_EMBED_DIM=7"),
    ({"TRANSFORMER_ASSOC_EMBED_DIM": "9"}, 3, "TRANSFORMER_ASSOC_EMBED_DIM=9"),   # env wins over params
])
def test_configured_width_vs_checkpoint_is_config_error(ckpt, env, cfg_dim, named):
    with pytest.raises(ConfigError, match=rf"checkpoint .*assoc.pt embed_dim=3.*{named}.*runtime ReID width=3"):
        scorer_from_config(_enabled(ckpt, embed_dim=cfg_dim), reid_dim=3, environ=env)


def test_env_precedence(ckpt):
    env = {"TRANSFORMER_ASSOC_ENABLE": "1", "TRANSFORMER_ASSOC_WEIGHTS": str(ckpt),
           "TRANSFORMER_ASSOC_WEIGHT": "0.3", "TRANSFORMER_ASSOC_EMBED_DIM": "3", "TRANSFORMER_LOG_EMBED_DIM": "3"}
    scorer = scorer_from_config(LearnedAssocConfig(), reid_dim=3, environ=env)
    assert isinstance(scorer, LearnedScorer) and scorer.weight == 0.3
    assert resolve_learned_assoc(LearnedAssocConfig(), env).weight == 0.3
    assert scorer_from_config(_enabled(ckpt), reid_dim=3, environ={"TRANSFORMER_ASSOC_ENABLE": "0"}) is None
    assert scorer_from_config(LearnedAssocConfig(), reid_dim=3, environ={}) is None
    assert scorer_from_config(_enabled(ckpt, weight=0.7), reid_dim=3, environ={}).weight == 0.7
    with pytest.raises(ConfigError, match=r"TRANSFORMER_ASSOC_WEIGHT: must be in \[0, 1\], got 1.5"):
        scorer_from_config(_enabled(ckpt), reid_dim=3, environ={"TRANSFORMER_ASSOC_WEIGHT": "1.5"})
    with pytest.raises(ConfigError, match="no checkpoint"):
        scorer_from_config(LearnedAssocConfig(), reid_dim=3, environ={"TRANSFORMER_ASSOC_ENABLE": "yes"})


def test_bad_checkpoints_are_checkpoint_errors(ckpt, tmp_path):
    payload = torch.load(ckpt, weights_only=True)
    payload["features"]["pair_fields"] = payload["features"]["pair_fields"][:-1]
    payload["features"]["version"] = 0
    save_checkpoint(tmp_path / "old.pt", payload)
    with pytest.raises(CheckpointError, match="old.pt.*feature layout version 0"):
        LearnedScorer.load(tmp_path / "old.pt")
    save_checkpoint(tmp_path / "engine.pt", {"format": "stagetrack.engine.v1"})
    with pytest.raises(CheckpointError, match="not an association checkpoint"):
        LearnedScorer.load(tmp_path / "engine.pt")
    (tmp_path / "cut.pt").write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cut.pt"):
        LearnedScorer.load(tmp_path / "cut.pt")
