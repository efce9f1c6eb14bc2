"""`stagetrack viz`: per-frame classification, drawing, MP4 + contact sheet, command line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stagetrack import cli
from stagetrack.data import mot
from stagetrack.data.sequence import IGNORE, PERSON, VEHICLE, Sequence, empty_boxes
from stagetrack.errors import StagetrackError
from stagetrack.visual import truth
from stagetrack.evaluate.config import EvalConfig
from stagetrack.visual.config import VizConfig
from stagetrack.visual.truth import (COLOURS, MISSED_COLOUR, FrameTruth, IdentityHistory, Status, classify_frame,
                                     classify_sequence, draw_frame, render_sequence)

W, H = 200, 160
# two well separated boxes (tlwh); any prediction on one of them has IoU 1 with it and 0 with the other
BOX_A, BOX_B = (20, 40, 40, 80), (120, 40, 40, 80)


def rows(*boxes: tuple) -> np.ndarray:
    """ANN_DTYPE rows from (frame, id, (x, y, w, h)[, cls[, conf]]) tuples."""
    out = empty_boxes(len(boxes))
    for r, (frame, ident, (x, y, w, h), *rest) in zip(out, boxes):
        r["frame"], r["id"], r["x"], r["y"], r["w"], r["h"] = frame, ident, x, y, w, h
        r["cls"] = rest[0] if rest else PERSON
        r["conf"] = rest[1] if len(rest) > 1 else 1.0
    return out


def by_id(t: FrameTruth) -> dict[int, Status]:
    return {int(i): Status(int(s)) for i, s in zip(t.pred["id"], t.status)}


def run_seq(gt: np.ndarray, pred: np.ndarray, length: int, coverage: float = 0.5, **kw) -> list[FrameTruth]:
    return list(classify_sequence(gt, pred, length, VizConfig(**kw), ignore_coverage=coverage))


# ----------------------------------------------------------------------------- classification

def steady_gt(length: int) -> np.ndarray:
    return rows(*[(f, i, box) for f in range(1, length + 1) for i, box in ((1, BOX_A), (2, BOX_B))])


@pytest.mark.parametrize("highlight, expected_f3, expected_f4", [
    # switch at frame 2; it stays orange while frame - 2 < highlight
    (1, Status.STABLE, Status.STABLE),
    (2, Status.SWITCH, Status.STABLE),
    (3, Status.SWITCH, Status.SWITCH),
])
def test_swapped_ids_are_orange_for_the_highlight_frames(highlight, expected_f3, expected_f4):
    # frame 1: pred 10 on A, 20 on B; frames 2-4: swapped (20 on A, 10 on B) and then steady
    pred = rows((1, 10, BOX_A), (1, 20, BOX_B),
                *[(f, i, box) for f in (2, 3, 4) for i, box in ((20, BOX_A), (10, BOX_B))])
    frames = run_seq(steady_gt(4), pred, 4, switch_highlight_frames=highlight)
    assert by_id(frames[0]) == {10: Status.STABLE, 20: Status.STABLE}      # first matches are stable
    assert by_id(frames[1]) == {10: Status.SWITCH, 20: Status.SWITCH}
    assert frames[1].switched.all() and frames[1].counts()["switches"] == 2
    assert not frames[2].switched.any()                                   # the switch is marked once
    assert set(by_id(frames[2]).values()) == {expected_f3}
    assert set(by_id(frames[3]).values()) == {expected_f4}


def test_dropped_prediction_is_missed_extra_is_false_positive_steady_is_green():
    # frame 2: B's prediction is gone (B missed), a prediction lands on empty ground (FP)
    pred = rows((1, 10, BOX_A), (1, 20, BOX_B), (2, 10, BOX_A), (2, 30, (80, 100, 20, 20)))
    f1, f2 = run_seq(steady_gt(2), pred, 2)
    assert by_id(f1) == {10: Status.STABLE, 20: Status.STABLE}
    assert by_id(f2) == {10: Status.STABLE, 30: Status.FALSE_POSITIVE}
    assert f2.missed["id"].tolist() == [2]
    assert f2.matched_gt.tolist() == [1, -1]
    assert f2.counts() == {"matched": 1, "switches": 0, "missed": 1, "fp": 1, "ignored": 0}


def test_prediction_following_another_object_is_a_switch():
    # pred 10 follows GT 1 in frame 1; in frame 2 GT 1 has left and pred 10 sits on GT 2 (seen for
    # the first time): GT 2 has no earlier match, but the predicted identity changed object
    gt = rows((1, 1, BOX_A), (2, 2, BOX_B))
    pred = rows((1, 10, BOX_A), (2, 10, BOX_B))
    f1, f2 = run_seq(gt, pred, 2)
    assert by_id(f1) == {10: Status.STABLE}
    assert by_id(f2) == {10: Status.SWITCH} and f2.switched.tolist() == [True]


@pytest.mark.parametrize("pred_box, matched", [
    ((20, 40, 40, 160), True),    # A doubled in height: IoU = 3200 / 6400 = 0.5 exactly, matches
    ((20, 40, 40, 161), False),   # IoU = 3200 / 6440 < 0.5
    ((40, 40, 40, 80), False),    # half-width shift: IoU = 1600 / 4800 = 1/3
])
def test_match_needs_iou_at_least_half(pred_box, matched):
    (t,) = run_seq(rows((1, 1, BOX_A)), rows((1, 10, pred_box)), 1)
    assert by_id(t) == {10: Status.STABLE if matched else Status.FALSE_POSITIVE}
    assert len(t.missed) == (0 if matched else 1)


def test_class_must_agree_and_low_scores_are_dropped():
    gt = rows((1, 1, BOX_A, PERSON), (1, 2, BOX_B, PERSON))
    pred = rows((1, 10, BOX_A, VEHICLE), (1, 20, BOX_B, PERSON, 0.3))
    (t,) = run_seq(gt, pred, 1, score_thresh=0.4)
    assert by_id(t) == {10: Status.FALSE_POSITIVE}          # 20 is below the threshold: not drawn
    assert sorted(t.missed["id"].tolist()) == [1, 2]


def test_ignored_regions_and_unflagged_ground_truth():
    # an IGNORE region covers (100..180, 20..140); GT 3 is flagged 0 ("do not consider")
    gt = rows((1, 9, (100, 20, 80, 120), IGNORE), (1, 3, BOX_A, PERSON, 0.0))
    pred = rows((1, 10, (110, 30, 20, 20)),   # fully inside the region: ignored
                (1, 11, (170, 30, 20, 20)),   # half inside (coverage 0.5 >= 0.5): ignored
                (1, 12, (175, 30, 20, 20)),   # a quarter inside: false positive
                (1, 13, BOX_A))               # on the unflagged GT: false positive, and no miss
    (t,) = run_seq(gt, pred, 1)
    assert by_id(t) == {10: Status.IGNORED, 11: Status.IGNORED, 12: Status.FALSE_POSITIVE,
                        13: Status.FALSE_POSITIVE}
    assert len(t.missed) == 0


def test_an_earlier_match_is_kept_while_it_still_overlaps():
    # both predictions overlap A at IoU >= 0.5 in both frames; pred 10 fits best in frame 1,
    # pred 20 in frame 2, but 10 still overlaps enough, so A stays with 10 (CLEAR-MOT rule)
    near, nearer = (20, 50, 40, 80), (20, 42, 40, 80)  # IoU with A: 2800/3600 = 0.78, 3120/3280 = 0.95
    gt = rows((1, 1, BOX_A), (2, 1, BOX_A))
    pred = rows((1, 10, BOX_A), (1, 20, near), (2, 10, near), (2, 20, nearer))
    f1, f2 = run_seq(gt, pred, 2)
    assert by_id(f1) == {10: Status.STABLE, 20: Status.FALSE_POSITIVE}
    assert by_id(f2) == {10: Status.STABLE, 20: Status.FALSE_POSITIVE}


def test_classify_frame_updates_the_history_in_place():
    history = IdentityHistory()
    classify_frame(rows((1, 1, BOX_A)), rows((1, 10, BOX_A)), 1, history, VizConfig(), ignore_coverage=0.5)
    assert history.pred_of_gt == {(PERSON, 1): 10} and history.gt_of_pred == {(PERSON, 10): 1}


# ----------------------------------------------------------------------------- drawing

def edge_pixels(canvas: np.ndarray, box: tuple) -> np.ndarray:
    """Pixels of the box's left edge (column x, rows y..y+h)."""
    x, y, _, h = box
    return canvas[y:y + h + 1, x]


def test_draw_frame_colours_box_edges_and_keeps_the_image():
    image = np.full((H, W, 3), 100, np.uint8)
    gt = rows((1, 1, BOX_A), (1, 2, BOX_B), (1, 3, (80, 100, 30, 40)))
    fp_box = (150, 130, 30, 20)
    (t,) = run_seq(gt, rows((1, 10, BOX_A), (1, 20, BOX_B), (1, 30, fp_box)), 1)
    t = dataclasses.replace(t, status=np.array([Status.STABLE, Status.SWITCH, Status.FALSE_POSITIVE], np.int8))
    canvas = draw_frame(image, t, 5, VizConfig(line_width=1))
    assert (image == 100).all()                                           # input untouched
    assert canvas.shape[1] == W and canvas.shape[0] > H                   # the band goes below
    for box, colour in ((BOX_A, COLOURS[Status.STABLE]), (BOX_B, COLOURS[Status.SWITCH]),
                        (fp_box, COLOURS[Status.FALSE_POSITIVE])):
        x, y, w, h = box
        assert tuple(canvas[y + h // 2, x]) == colour                     # left edge, mid-height
        assert tuple(canvas[y + h // 2, x + w]) == colour                 # right edge
        assert (canvas[y + h // 2, x + 3:x + w - 3] == 100).all()         # inside untouched
    # the missed GT 3 is dashed: its corner is blue, its left edge only partly
    left = edge_pixels(canvas, (80, 100, 30, 40))
    blue = (left == MISSED_COLOUR).all(axis=1)
    assert blue[0] and 0.3 < blue.mean() < 0.8


@pytest.mark.parametrize("line_width, columns", [
    (1, [20]),
    (3, [18, 19, 20, 21, 22]),  # OpenCV draws a thickness-3 line 5 pixels wide (measured), centred
])
def test_draw_frame_line_width(line_width, columns):
    image = np.full((H, W, 3), 100, np.uint8)
    (t,) = run_seq(rows((1, 1, BOX_A)), rows((1, 10, BOX_A)), 1)
    canvas = draw_frame(image, t, 1, VizConfig(line_width=line_width))
    x, y, _, h = BOX_A
    green = (canvas[y + h // 2, : x + 10] == COLOURS[Status.STABLE]).all(axis=1)
    assert np.flatnonzero(green).tolist() == columns


# ----------------------------------------------------------------------------- rendering

def make_sequence(root: Path, n: int = 3, images: bool = True) -> Sequence:
    gt = rows(*[(f, i, box) for f in range(1, n + 1) for i, box in ((1, BOX_A), (2, BOX_B))])
    seq = Sequence("SEQ-1", W, H, n, fps=10.0, boxes=gt, source="toy")
    if not images:
        return seq
    frames = [np.full((H, W, 3), 60 + 40 * f, np.uint8) for f in range(n)]
    return mot.write_sequence(seq, root / "toy" / "SEQ-1", iter(frames))


def predictions(n: int) -> np.ndarray:
    return rows(*[(f, i, box) for f in range(1, n + 1) for i, box in ((10, BOX_A), (20, BOX_B))])


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.mark.parametrize("max_frames, expected", [(0, 3), (2, 2)])
def test_render_sequence_writes_a_readable_mp4_and_a_contact_sheet(tmp_path, max_frames, expected):
    seq = make_sequence(tmp_path)
    cfg = VizConfig(max_frames=max_frames, sheet_frames=3, sheet_cols=2, sheet_width=200)
    mp4, png = render_sequence(seq, predictions(3), tmp_path / "out", cfg, ignore_coverage=0.5)
    assert (mp4, png) == (tmp_path / "out" / "SEQ-1.mp4", tmp_path / "out" / "SEQ-1.png")
    assert sorted(p.name for p in mp4.parent.iterdir()) == ["SEQ-1.mp4", "SEQ-1.png"]  # no temporaries left
    first = draw_frame(cv2.imread(str(seq.image(1))), next(classify_sequence(seq.boxes, predictions(3), 3, cfg, ignore_coverage=0.5)),
                       3, cfg)
    video = read_video(mp4)
    assert len(video) == expected
    assert video[0].shape == first.shape
    # mp4v is lossy: the green edge of A is still clearly green
    b, g, r = video[0][BOX_A[1] + BOX_A[3] // 2, BOX_A[0]].astype(int)
    assert g > 120 and b < 80 and r < 80
    # sheet: frames min(3, expected) evenly spaced, 2 columns of 100-pixel tiles (200 / 2)
    sheet = cv2.imread(str(png))
    tiles = min(3, expected)
    tile_h = round(first.shape[0] * 100 / W)
    assert sheet.shape == (((tiles + 1) // 2) * tile_h, 100 * min(2, tiles), 3)


def test_sheet_frames_are_evenly_spaced_and_include_the_ends():
    assert truth.sheet_frames(60, 4) == [1, 21, 40, 60]
    assert truth.sheet_frames(2, 12) == [1, 2]


def test_box_only_sequence_is_drawn_on_grey(tmp_path, caplog):
    seq = make_sequence(tmp_path, images=False)
    with caplog.at_level(logging.WARNING):
        mp4, png = render_sequence(seq, predictions(3), tmp_path / "out", VizConfig(sheet_frames=2), ignore_coverage=0.5)
    assert "0 of 3 frames have an image" in caplog.text
    assert len(read_video(mp4)) == 3 and png.is_file()


def test_render_domains_takes_the_first_videos_of_each_domain(tmp_path):
    seq = make_sequence(tmp_path)
    other = dataclasses.replace(seq, name="SEQ-2")
    paths = truth.render_domains({"toy": [seq, other]}, {"SEQ-1": predictions(3), "SEQ-2": predictions(3)},
                                 tmp_path / "viz", VizConfig(seqs_per_domain=1, sheet_frames=2), ignore_coverage=0.5)
    assert paths == [(tmp_path / "viz" / "toy" / "SEQ-1.mp4", tmp_path / "viz" / "toy" / "SEQ-1.png")]


# ----------------------------------------------------------------------------- command line

@pytest.fixture
def viz_cli(monkeypatch, tmp_path):
    """`stagetrack viz` registered, run from a folder holding the repository's params.yaml."""
    monkeypatch.setitem(cli.COMMANDS, "viz", ("stagetrack.visual.truth", "viz"))
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return lambda *argv: cli.main(["viz", "-q", *argv])


def test_cli_gt_and_pred_files(viz_cli, tmp_path, capsys):
    seq = make_sequence(tmp_path)
    mot.write_txt(tmp_path / "pred.txt", predictions(3), "result")
    assert viz_cli("--gt", str(tmp_path / "toy" / "SEQ-1"), "--pred", "pred.txt", "--out", "viz") == 0
    assert capsys.readouterr().out.split() == ["viz/SEQ-1.mp4", "viz/SEQ-1.png"]
    assert len(read_video(tmp_path / "viz" / "SEQ-1.mp4")) == seq.length


def test_cli_without_params_is_an_error_not_other_defaults(viz_cli, tmp_path, capsys):
    make_sequence(tmp_path)
    mot.write_txt(tmp_path / "pred.txt", predictions(3), "result")
    (tmp_path / "params.yaml").unlink()
    assert viz_cli("--gt", str(tmp_path / "toy" / "SEQ-1"), "--pred", "pred.txt", "--out", "viz") == 2
    assert "params.yaml: params file not found; run from the repository root or pass --params FILE" in \
        capsys.readouterr().err
    assert not (tmp_path / "viz").exists()


def test_cli_result_file_of_another_sequence_is_an_error(viz_cli, tmp_path, capsys):
    make_sequence(tmp_path)
    mot.write_txt(tmp_path / "pred.txt", predictions(5), "result")  # 5 frames, the sequence has 3
    assert viz_cli("--gt", str(tmp_path / "toy" / "SEQ-1"), "--pred", "pred.txt") == 2
    assert "pred.txt: frame 4 outside 1..3 of sequence SEQ-1" in capsys.readouterr().err


def write_val(root: Path) -> None:
    """A built val folder: seqmap + toy/SEQ-1."""
    make_sequence(root / "data" / "val")
    mot.write_seqmap(root / "data" / "val" / "seqmaps" / "val.txt", ["toy/SEQ-1"])


@pytest.mark.parametrize("name", ["SEQ-1", "toy/SEQ-1"])
def test_cli_val_sequence_by_name(viz_cli, tmp_path, name):
    write_val(tmp_path)
    mot.write_txt(tmp_path / "pred.txt", predictions(3), "result")
    assert viz_cli("--seq", name, "--data", "data", "--pred", "pred.txt", "--out", "viz") == 0
    assert (tmp_path / "viz" / "SEQ-1.png").is_file()


def test_unknown_sequence_names_the_available_ones(tmp_path, monkeypatch):
    write_val(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(params=Path(__file__).resolve().parents[1] / "params.yaml", gt=None, seq="SEQ-9", data=Path("data"), pred=Path("p.txt"),
                              stage=None, models=Path("models"), out=Path("viz"))
    with pytest.raises(StagetrackError, match=r"unknown validation sequence 'SEQ-9' \(allowed: toy/SEQ-1\)"):
        truth.run(args)


def test_cli_stage_needs_params(viz_cli, tmp_path, capsys):
    write_val(tmp_path)
    (tmp_path / "params.yaml").unlink()
    assert viz_cli("--seq", "SEQ-1", "--data", "data", "--stage", "stage1") == 2
    assert "params.yaml: params file not found" in capsys.readouterr().err


def test_cli_stage_tracks_with_the_stage_models(viz_cli, tmp_path, monkeypatch):
    """The --stage path tracks only the headline variant (track_stage(headline_only=True)) and
    draws its rows; nothing is written to read back."""
    import stagetrack.artifacts as artifacts
    import stagetrack.evaluate.pipeline as pipeline

    write_val(tmp_path)
    calls = []

    def fake_track_stage(params, val, models, *, headline_only):
        calls.append((sorted(val), [s.name for s in val["toy"]], models, headline_only))
        return pipeline.StageTracks({"learned": {"SEQ-1": predictions(3)}}, {}, "learned", 0.5, None)

    monkeypatch.setattr(pipeline, "track_stage", fake_track_stage)
    monkeypatch.setattr(pipeline, "score", lambda gt, preds, cfg: {"toy": {"combined": {"HOTA": 1.0, "IDF1": 2.0,
                                                                                         "IDSW": 0}}})
    monkeypatch.setattr(artifacts.StageModels, "find", classmethod(lambda cls, d: f"models of {d}"))
    import stagetrack.config as config

    monkeypatch.setattr(config, "command_params", lambda path: argparse.Namespace(viz=VizConfig(sheet_frames=2), eval=EvalConfig()))
    assert viz_cli("--seq", "SEQ-1", "--data", "data", "--stage", "stage2", "--out", "viz") == 0
    assert calls == [(["toy"], ["SEQ-1"], "models of models/stage2", True)]
    out = tmp_path / "viz" / "stage2"
    assert sorted(p.name for p in out.iterdir()) == ["SEQ-1.mp4", "SEQ-1.png", "SEQ-1.txt"]
    assert len(mot.read_txt(out / "SEQ-1.txt", "result")) == 6
