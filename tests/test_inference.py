"""inference: ReID only for the boxes the tracker uses appearance for; camera motion per frame."""

from __future__ import annotations

import cv2
import numpy as np

from stagetrack.inference import _features
from stagetrack.track.config import TrackerConfig


def _embedder(calls):
    def embed(image, boxes):
        calls.append(len(boxes))
        out = np.zeros((len(boxes), 4), np.float32)
        out[:, 0] = 1
        return out
    return embed


def test_only_confident_boxes_are_embedded_unless_asked():
    cfg = TrackerConfig(track_high_thresh=0.5)
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [20, 20, 10, 10], [40, 40, 10, 10]], float)
    scores = np.array([0.9, 0.2, 0.6])
    calls = []
    emb, hsv = _features(image, boxes, scores, _embedder(calls), cfg)
    assert calls == [2] and emb.shape == (3, 4) and hsv.shape[0] == 3
    assert np.isfinite(emb[[0, 2]]).all() and np.isnan(emb[1]).all()
    calls.clear()
    emb, _ = _features(image, boxes, scores, _embedder(calls), cfg, embed_all=True)
    assert calls == [3] and np.isfinite(emb).all()
    calls.clear()
    emb, _ = _features(image, boxes, np.full(3, 0.1), _embedder(calls), cfg)   # none confident
    assert calls == [0] and emb.shape == (3, 4) and np.isnan(emb).all()        # no crop, only the width
    emb, hsv = _features(None, np.zeros((0, 4)), np.zeros(0), _embedder(calls), cfg)
    assert emb is None and hsv.shape == (0, cfg.hsv_h_bins * cfg.hsv_s_bins)


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
