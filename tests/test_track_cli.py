"""`stagetrack track`: public detections of MOTChallenge folders -> result files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stagetrack.cli import main
from stagetrack.data import mot
from stagetrack.errors import DataError
from stagetrack.track import cli as track_cli
from stagetrack.track.config import TrackerConfig

W, H = 160, 120


def write_seq(root, name, paths, frames, images=False):
    """paths: per object, per frame (x, y) of a 20 x 40 box (score 0.9)."""
    seq = root / name
    (seq / "det").mkdir(parents=True)
    lines = [f"{f},-1,{x},{y},20,40,0.9,-1,-1,-1" for p in paths for f, (x, y) in enumerate(p[:frames], 1)]
    (seq / "det" / "det.txt").write_text("\n".join(lines) + "\n")
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={frames}\n"
                                     f"imWidth={W}\nimHeight={H}\nimExt=.png\n")
    if images:
        (seq / "img1").mkdir()
        for f in range(1, frames + 1):
            img = np.full((H, W, 3), 90, np.uint8)
            for p in paths:
                x, y = p[f - 1]
                img[y:y + 40, x:x + 20] = (0, 0, 200)
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.png"), img)
    return seq


@pytest.fixture
def det_dir(tmp_path):
    root = tmp_path / "dets"
    write_seq(root, "SEQ-A", [[(5 + 3 * t, 10) for t in range(8)], [(100, 5 + 2 * t) for t in range(8)]], 8)
    write_seq(root, "SEQ-B", [[(10 + 4 * t, 50) for t in range(6)]], 6, images=True)
    return root


@pytest.fixture
def hsv_calls(monkeypatch):
    calls = []
    import stagetrack.inference as inference

    real = inference.hsv_histogram

    def spy(image, boxes, bins, crop):
        calls.append((image.shape, len(boxes)))
        return real(image, boxes, bins, crop)

    monkeypatch.setattr(inference, "hsv_histogram", spy)
    return calls


def params(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return str(path)


def test_track_writes_one_result_file_per_sequence(det_dir, tmp_path, hsv_calls, capsys):
    out = tmp_path / "out"
    rc = main(["track", "--det-dir", str(det_dir), "--out-dir", str(out),
               "--params", params(tmp_path, "tracker:\n  track_buffer: 10\n")])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["SEQ-A.txt", "SEQ-B.txt"]
    a = mot.read_txt(out / "SEQ-A.txt", "result")
    assert len(a) == 16 and sorted(set(a["id"].tolist())) == [1, 2]
    assert a["frame"].min() == 1 and a["frame"].max() == 8
    assert set(a["category"].tolist()) == {"1"}                       # MOT class 1: person
    first = a[a["frame"] == 1]
    np.testing.assert_allclose(np.sort(first["x"]), [5, 100])
    b = mot.read_txt(out / "SEQ-B.txt", "result")
    assert len(b) == 6 and set(b["id"].tolist()) == {1}              # IDs restart per sequence
    # HSV only where images exist: once per frame of SEQ-B, never for SEQ-A
    assert hsv_calls == [((H, W, 3), 1)] * 6
    assert "tracked 2 sequence(s)" in capsys.readouterr().out


def test_no_cue_needing_images_reads_no_images(det_dir, tmp_path, hsv_calls, monkeypatch):
    import stagetrack.inference as inference

    reads = []
    real = inference.read_image
    monkeypatch.setattr(inference, "read_image", lambda path: reads.append(path) or real(path))
    rc = main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out"),
               "--params", params(tmp_path, "tracker:\n  costs:\n    hsv: 0.0\n  gmc:\n    method: none\n")])
    assert rc == 0 and hsv_calls == [] and reads == []
    # camera motion compensation alone reads SEQ-B's frames (SEQ-A has none)
    rc = main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out2"),
               "--params", params(tmp_path, "tracker:\n  costs:\n    hsv: 0.0\n")])
    assert rc == 0 and len(reads) == 6


@pytest.mark.parametrize("text, message", [
    ("tracker:\n  bogus: 1\n", "tracker.bogus: unknown key"),
    ("tracker:\n  track_low_thresh: 0.9\n", "track_low_thresh: must be <= track_high_thresh"),
    ("tracker:\n  new_track_thresh_vehicle: 1.5\n", "new_track_thresh_vehicle: must be in [0, 1] or null"),
])
def test_bad_tracker_params_exit_2_naming_the_key(det_dir, tmp_path, capsys, text, message):
    rc = main(["track", "--det-dir", str(det_dir), "--out-dir", str(tmp_path / "out"),
               "--params", params(tmp_path, text)])
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_sequences_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["track", "--det-dir", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out"),
               "--params", params(tmp_path, "tracker: {}\n")])
    assert rc == 2 and "no MOTChallenge sequences" in capsys.readouterr().err


def test_embedder_gets_every_frame_and_needs_images(det_dir):
    calls = []

    def embed(images, boxes):  # a frames embedder: one call per chunk of frames
        calls.extend((image.shape, b.shape) for image, b in zip(images, boxes, strict=True))
        return [np.tile(np.eye(4, dtype=np.float32)[:1], (len(b), 1)) for b in boxes]

    rows = track_cli.track_sequence(mot.read_sequence(det_dir / "SEQ-B", ann="det"), TrackerConfig(), embedder=embed)
    assert calls == [((H, W, 3), (1, 4))] * 6 and set(rows["id"].tolist()) == {1}
    with pytest.raises(DataError, match="no images"):
        track_cli.track_sequence(mot.read_sequence(det_dir / "SEQ-A", ann="det"), TrackerConfig(), embedder=embed)
