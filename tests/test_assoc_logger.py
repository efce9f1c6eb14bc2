"""Sample logger -> manifest.jsonl + shards -> dataset reads back identical arrays; env handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stagetrack.assoc.config import AssocConfig
from stagetrack.assoc.dataset import AssocDataset, ShardGroupSampler, inspect, load_shard, read_log, split_indices
from stagetrack.assoc.features import GEOM_FIELDS, build_inputs, pair_geometry
from stagetrack.assoc.logger import FEATURE_KEYS, MANIFEST, AssocLogger, logger_from_env_or_params
from stagetrack.errors import ConfigError, DataError
from test_assoc_features import IMAGE, make_track, synthetic_frames, two_tracks_three_dets


def _log_frames(out_dir, frames, *, shard_size=5, embed_dim=None, history=3, max_candidates=4):
    with AssocLogger(out_dir, embed_dim=embed_dim, history=history, max_candidates=max_candidates,
                     shard_size=shard_size) as logger:
        for tracks, dets in frames:
            logger.log(tracks, dets, IMAGE)
    return logger


def test_logger_writes_manifest_and_shards(tmp_path):
    frames = list(synthetic_frames(6, objects=3, embed_dim=8, seed=1))   # 18 samples (all tracks have gt)
    logger = _log_frames(tmp_path, frames, shard_size=5)
    assert logger.samples_written == 18
    lines = [json.loads(x) for x in (tmp_path / MANIFEST).read_text().splitlines()]
    header, shards = lines[0], lines[1:]
    assert header["type"] == "header" and header["embed_dim"] == 8 and header["hsv_bins"] == 0
    assert header["version"] == 1 and header["history"] == 3 and header["max_candidates"] == 4
    assert "emb_cos" in header["pair_fields"]
    # frames of 3 samples accumulate; full shards of 5 while logging, the remainder at close
    assert [s["samples"] for s in shards] == [5, 5, 5, 3]
    assert [s["file"] for s in shards] == [f"shard_{i:05d}.npz" for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST] + [s["file"] for s in shards]


def test_dataset_reads_back_identical_arrays(tmp_path):
    frames = list(synthetic_frames(5, objects=3, embed_dim=8, seed=2))
    _log_frames(tmp_path, frames, shard_size=4)
    expected = [build_inputs(t, d, IMAGE, history=3, max_candidates=4, embed_dim=8, hsv_bins=0).arrays()
                for t, d in frames]
    want = {k: np.concatenate([e[k] for e in expected]) for k in FEATURE_KEYS}
    ds = AssocDataset(read_log(tmp_path), cache_shards=1)
    assert len(ds) == 15
    for i in range(len(ds)):
        got = ds.arrays(i)
        for k in ("hist", "hist_mask", "track", "track_emb", "cand", "cand_mask", "cand_box", "cand_emb"):
            np.testing.assert_array_equal(got[k], want[k][i], err_msg=f"{k}[{i}]")
    # labels: the candidate whose detection has the track's gt id, else max_candidates (4)
    labels = []
    for tracks, dets in frames:
        inp = build_inputs(tracks, dets, IMAGE, history=3, max_candidates=4, embed_dim=8, hsv_bins=0)
        for i, t in enumerate(tracks):
            hits = [s for s in range(4) if inp.cand_mask[i, s] and dets.gt_id[inp.cand_index[i, s]] == t.gt_id]
            labels.append(hits[0] if hits else 4)
    assert [int(ds[i]["label"]) for i in range(len(ds))] == labels
    assert 4 in labels and any(lab < 4 for lab in labels)  # both kinds present in this draw


def test_label_hand_case_and_skips(tmp_path):
    tracks, dets = two_tracks_three_dets()
    tracks.append(make_track(3, 0, 0.5, [0, 0, 5, 5], [[0, 0, 5, 5]], emb=[0, 0, 1], gt_id=-1))  # unknown gt: skipped
    tracks[1].gt_id = 99  # B's object is not among the detections -> "no match"
    _log_frames(tmp_path, [(tracks, dets)], max_candidates=2)
    meta = load_shard(read_log(tmp_path), 0, ("label", "track_id", "gt_id", "n_cand", "cls"))
    assert meta["track_id"].tolist() == [1, 2] and meta["gt_id"].tolist() == [7, 99]
    assert meta["label"].tolist() == [0, 2] and meta["n_cand"].tolist() == [2, 2] and meta["cls"].tolist() == [0, 1]


def test_logger_requires_gt_ids(tmp_path):
    tracks, dets = two_tracks_three_dets()
    dets.gt_id = None
    logger = AssocLogger(tmp_path, embed_dim=3, history=2, max_candidates=2, shard_size=4)
    with pytest.raises(DataError, match="gt_id"):
        logger.log(tracks, dets, IMAGE)
    logger.close()


def test_logged_width_differs_from_env_is_config_error(tmp_path):
    env = {"TRANSFORMER_LOG_ENABLE": "1", "TRANSFORMER_LOG_DIR": str(tmp_path), "TRANSFORMER_LOG_EMBED_DIM": "16"}
    logger = logger_from_env_or_params(AssocConfig(), environ=env)
    tracks, dets = two_tracks_three_dets()   # 3-dim embeddings
    with pytest.raises(ConfigError, match=r"TRANSFORMER_LOG_EMBED_DIM=16.*embed_dim=16, the detections carry 3"):
        logger.log(tracks, dets, IMAGE)
    logger.close()
    assert not (tmp_path / MANIFEST).exists()


def test_env_embed_dim_vs_runtime_reid_fails_at_startup(tmp_path):
    env = {"TRANSFORMER_LOG_ENABLE": "true", "TRANSFORMER_LOG_DIR": str(tmp_path), "TRANSFORMER_LOG_EMBED_DIM": "256"}
    with pytest.raises(ConfigError, match=r"LOG_EMBED_DIM=256 but the tracker's ReID features have width 512"):
        logger_from_env_or_params(AssocConfig(), reid_dim=512, environ=env)


def test_env_overrides_params(tmp_path):
    params = AssocConfig(log_enable=True, log_dir=str(tmp_path / "params"), log_embed_dim=3, shard_size=7)
    assert logger_from_env_or_params(params, environ={"TRANSFORMER_LOG_ENABLE": "0"}) is None
    assert logger_from_env_or_params(AssocConfig(), environ={}) is None
    logger = logger_from_env_or_params(params, environ={"TRANSFORMER_LOG_DIR": str(tmp_path / "env")})
    assert logger.out_dir == tmp_path / "env" and logger.embed_dim == 3 and logger.shard_size == 7
    logger.close()
    logger = logger_from_env_or_params(params, reid_dim=3, environ={"TRANSFORMER_LOG_EMBED_DIM": ""})  # empty = unset
    assert logger.embed_dim == 3
    logger.close()
    with pytest.raises(ConfigError, match=r"TRANSFORMER_LOG_ENABLE.*invalid value 'maybe'.*allowed"):
        logger_from_env_or_params(params, environ={"TRANSFORMER_LOG_ENABLE": "maybe"})
    with pytest.raises(ConfigError, match="no directory"):
        logger_from_env_or_params(AssocConfig(), environ={"TRANSFORMER_LOG_ENABLE": "1"})


def test_reopening_appends_a_session_and_checks_the_header(tmp_path):
    frames = list(synthetic_frames(2, objects=2, embed_dim=8, seed=3))
    _log_frames(tmp_path, frames, shard_size=10)
    _log_frames(tmp_path, frames, shard_size=10)
    alog = read_log(tmp_path)
    assert [s["file"] for s in alog.shards] == ["shard_00000.npz", "shard_00001.npz"]
    assert [s["session"] for s in alog.shards] == [0, 1] and alog.samples == 8
    with pytest.raises(ConfigError, match=r"holds embed_dim=8, this logger expects 4"):
        AssocLogger(tmp_path, embed_dim=4, history=3, max_candidates=4, shard_size=10)
    with pytest.raises(ConfigError, match="max_candidates=4, this logger 5"):
        AssocLogger(tmp_path, embed_dim=None, history=3, max_candidates=5, shard_size=10)


def test_corrupt_shard_and_manifest_are_data_errors(tmp_path):
    _log_frames(tmp_path, list(synthetic_frames(2, objects=2, seed=4)), shard_size=10)
    shard = tmp_path / "shard_00000.npz"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError, match="shard_00000.npz.*sha256"):
        AssocDataset(read_log(tmp_path))[0]
    (tmp_path / MANIFEST).write_text('{"type": "shard"}\n')
    with pytest.raises(DataError, match=r"manifest.jsonl:1: type: expected the header"):
        read_log(tmp_path)


def test_inspect_statistics(tmp_path):
    tracks, dets = two_tracks_three_dets()
    tracks[1].gt_id = 99
    _log_frames(tmp_path, [(tracks, dets)] * 3, max_candidates=2, shard_size=4)
    stats = inspect(tmp_path)
    assert stats["samples"] == 6 and stats["shards"] == 2 and stats["embed_dim"] == 3
    assert stats["positives"] == 3 and stats["no_match"] == 3 and stats["no_match_ratio"] == 0.5
    assert stats["candidates_hist"] == {"2": 6} and stats["true_rank_hist"] == {"0": 3}
    assert stats["per_class"] == {"person": {"samples": 3, "no_match": 0}, "vehicle": {"samples": 3, "no_match": 3}}


@pytest.mark.parametrize("n_shards,val_split,mode,n_val", [(10, 0.2, "shard", 2), (3, 0.2, "sample", 5)])
def test_split_is_deterministic_and_disjoint(tmp_path, n_shards, val_split, mode, n_val):
    frames = list(synthetic_frames(n_shards * 2, objects=4, miss=0.0, seed=5))   # 8 samples per shard
    _log_frames(tmp_path, frames, shard_size=8)
    alog = read_log(tmp_path)
    train, val, got_mode = split_indices(alog, val_split, seed=0)
    assert got_mode == mode
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(alog.samples))
    # by shard: whole shards of 8 go to val (round(0.2*10) = 2); by sample: round(0.2*24) = 5
    assert len(val) == (n_val * 8 if mode == "shard" else n_val)
    again = split_indices(alog, val_split, seed=0)
    assert again[1].tolist() == val.tolist()
    assert split_indices(alog, val_split, seed=1)[1].tolist() != val.tolist()


def test_augmentation_drop_and_jitter(tmp_path):
    tracks, dets = two_tracks_three_dets()
    _log_frames(tmp_path, [(tracks, dets)], max_candidates=3, shard_size=4)
    alog = read_log(tmp_path)
    plain = AssocDataset(alog)[0]
    dropped = AssocDataset(alog, drop=1.0)[0]
    label = int(plain["label"])
    assert label == 0 and int(dropped["label"]) == 3 and not bool(dropped["cand_mask"][label])
    torch.manual_seed(0)
    ds = AssocDataset(alog, jitter=0.1)
    jittered = ds[0]
    raw = ds.arrays(0)
    geo = jittered["cand"][:, :len(GEOM_FIELDS)].numpy()
    assert not np.allclose(geo, plain["cand"][:, :len(GEOM_FIELDS)].numpy())
    # non-geometry columns untouched; geometry consistent with *some* boxes: IoU stays in [0, 1]
    np.testing.assert_array_equal(jittered["cand"][:, len(GEOM_FIELDS):], plain["cand"][:, len(GEOM_FIELDS):])
    assert (geo[:, GEOM_FIELDS.index("iou")] <= 1).all()
    np.testing.assert_allclose(pair_geometry(raw["track_box"][0].astype(float), raw["track_box"][1].astype(float),
                                             raw["cand_box"].astype(float)), plain["cand"][:, :len(GEOM_FIELDS)],
                               atol=1e-6)


def test_shard_group_sampler(tmp_path):
    frames = list(synthetic_frames(8, objects=2, miss=0.0, seed=6))     # 16 samples, 4 shards of 4
    _log_frames(tmp_path, frames, shard_size=4)
    ds = AssocDataset(read_log(tmp_path))
    sampler = ShardGroupSampler(ds, group=2, seed=0)
    first = list(sampler)
    second = list(sampler)
    assert sorted(first) == list(range(16)) and sorted(second) == list(range(16)) and first != second
    # each consecutive block of 8 comes from exactly 2 shards (one cache-sized group)
    assert all(len(set(ds.shard_of[first[i:i + 8]].tolist())) == 2 for i in (0, 8))
    sampler.set_epoch(0)
    assert list(sampler) == first
