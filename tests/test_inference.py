"""inference: ReID only for the boxes the tracker uses appearance for; camera motion per frame."""

from __future__ import annotations

import cv2
import numpy as np

from stagetrack.inference import _features
from stagetrack.track.config import TrackerConfig


def _embedder(calls):
    """A frames embedder recording the crops per call (one call per chunk of frames)."""
    def embed(images, boxes):
        assert len(images) == len(boxes)
        calls.append([len(b) for b in boxes])
        out = []
        for b in boxes:
            part = np.zeros((len(b), 4), np.float32)
            part[:, 0] = 1
            out.append(part)
        return out
    return embed


def _one(image, boxes, scores, embed, cfg, embed_all=False):
    [(emb, hsv)] = _features([image], [boxes], [scores], embed, cfg, embed_all)
    return emb, hsv


def test_only_confident_boxes_are_embedded_unless_asked():
    cfg = TrackerConfig(track_high_thresh=0.5)
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [20, 20, 10, 10], [40, 40, 10, 10]], float)
    scores = np.array([0.9, 0.2, 0.6])
    calls = []
    emb, hsv = _one(image, boxes, scores, _embedder(calls), cfg)
    assert calls == [[2]] and emb.shape == (3, 4) and hsv.shape[0] == 3
    assert np.isfinite(emb[[0, 2]]).all() and np.isnan(emb[1]).all()
    calls.clear()
    emb, _ = _one(image, boxes, scores, _embedder(calls), cfg, embed_all=True)
    assert calls == [[3]] and np.isfinite(emb).all()
    calls.clear()
    emb, _ = _one(image, boxes, np.full(3, 0.1), _embedder(calls), cfg)   # none confident
    assert calls == [[0]] and emb.shape == (3, 4) and np.isnan(emb).all()  # no crop, only the width
    emb, hsv = _one(None, np.zeros((0, 4)), np.zeros(0), _embedder(calls), cfg)
    assert emb is None and hsv.shape == (0, cfg.hsv_h_bins * cfg.hsv_s_bins)


def test_the_crops_of_a_chunk_of_frames_are_embedded_in_one_call():
    """Frames without boxes (image None) are left out of the call; each frame gets its own rows."""
    cfg = TrackerConfig(track_high_thresh=0.5)
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = [np.array([[0, 0, 10, 10], [20, 20, 10, 10]], float), np.zeros((0, 4)),
             np.array([[40, 40, 10, 10]], float)]
    scores = [np.array([0.9, 0.2]), np.zeros(0), np.array([0.7])]
    calls = []
    out = _features([image, None, image], boxes, scores, _embedder(calls), cfg)
    assert calls == [[1, 1]]
    assert [None if e is None else e.shape for e, _ in out] == [(2, 4), None, (1, 4)]
    assert np.isnan(out[0][0][1]).all() and np.isfinite(out[2][0]).all()
    assert [h.shape[0] for _, h in out] == [2, 0, 1]


def test_reid_from_frames_equals_one_frame_at_a_time_and_splits_per_frame():
    """ReidExtractor.from_frames: one batch over several frames, rows back per frame, the same
    embeddings as frame by frame up to the batch's float rounding."""
    import torch

    from stagetrack.reid.features import ReidExtractor

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    model.feature_dim = 4
    ext = ReidExtractor.from_model(model, height=32, width=16, batch_size=64)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    boxes = [np.array([[1, 2, 20, 30], [30, 5, 10, 40]], float), np.zeros((0, 4)), np.array([[5, 5, 50, 50]], float)]
    parts = ext.from_frames(images, boxes)
    assert [p.shape for p in parts] == [(2, 4), (0, 4), (1, 4)]
    for image, b, part in zip(images, boxes, parts):
        np.testing.assert_allclose(part, ext.from_boxes(image, b), atol=1e-6)
    assert ext.from_frames([], []) == []


def test_observations_from_boxes_measure_the_camera(tmp_path):
    from stagetrack.data import mot
    from stagetrack.data.sequence import empty_boxes
    from stagetrack.inference import observations_from_boxes

    rng = np.random.default_rng(0)
    world = cv2.resize(rng.integers(0, 255, (60, 100, 3)).astype(np.uint8), (400, 240), interpolation=cv2.INTER_CUBIC)
    seq_dir = tmp_path / "pan"
    (seq_dir / "img1").mkdir(parents=True)
    for t in range(3):   # the camera pans right 4 px per frame; no detections at all
        cv2.imwrite(str(seq_dir / "img1" / f"{t + 1:06d}.png"), world[:, 4 * t:4 * t + 320])
    (seq_dir / "seqinfo.ini").write_text("[Sequence]\nname=pan\nimDir=img1\nframeRate=30\nseqLength=3\n"
                                         "imWidth=320\nimHeight=240\nimExt=.png\n")
    seq = mot.read_sequence(seq_dir, ann="none")
    frames = [empty_boxes(0) for _ in range(3)]
    obs = observations_from_boxes(seq, frames, None, TrackerConfig())
    assert len(obs.camera) == 3
    np.testing.assert_allclose([a[0, 2] for a in obs.camera], [0, -4, -4], atol=0.05)
    assert observations_from_boxes(seq, frames, None, TrackerConfig(), images=False).camera is None
