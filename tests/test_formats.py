"""Readers and writers of the MOT, BDD100K and VisDrone layouts, and the sources layer.

Fixtures are the hand-written annotation files under ``tests/fixtures/formats``; their
64x48 images are generated here at test time (random noise JPEGs). Expected values below are
read off those files by hand (line numbers and columns are quoted next to each).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stagetrack import configtypes
from stagetrack.data import bdd, mot, sources, visdrone
from stagetrack.data.config import SourceConfig
from stagetrack.data.sequence import (
    FLAG_CROWD, FLAG_OCCLUDED, FLAG_TRUNCATED, IGNORE, PERSON, VEHICLE, Sequence, empty_boxes,
)
from stagetrack.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
W, H = 64, 48


def _noise(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of the fixture datasets with their images."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURES, root)
    rng = np.random.default_rng(0)
    for seq, n in (("MOTX-01", 4), ("MOTX-02", 2)):
        for k in range(1, n + 1):
            _noise(root / "mot" / seq / "img1" / f"{k:06d}.jpg", rng)
    for video, n in (("vid-a", 3), ("vid-b", 2)):
        for k in range(1, n + 1):
            _noise(root / "bdd/images/track/train" / video / f"{video}-{k:07d}.jpg", rng)
    for k in range(1, 4):
        _noise(root / "visdrone/sequences/uav01" / f"{k:07d}.jpg", rng)
    return root


def assert_same(a: Sequence, b: Sequence, *, exact: bool = True) -> None:
    assert (a.name, a.width, a.height, a.length, a.fps) == (b.name, b.width, b.height, b.length, b.fps)
    assert len(a.boxes) == len(b.boxes)
    for field in ("frame", "id", "cls", "category", "flags", "conf", "vis"):
        np.testing.assert_array_equal(a.boxes[field], b.boxes[field], err_msg=field)
    for field in "xywh":
        if exact:
            np.testing.assert_array_equal(a.boxes[field], b.boxes[field], err_msg=field)
        else:  # BDD stores x2 = x + w: exact only up to float rounding
            np.testing.assert_allclose(a.boxes[field], b.boxes[field], rtol=0, atol=1e-9, err_msg=field)


def by_id(seq: Sequence, frame: int, track: int) -> np.void:
    rows = seq.boxes[(seq.boxes["frame"] == frame) & (seq.boxes["id"] == track)]
    assert len(rows) == 1
    return rows[0]


# ----------------------------------------------------------------------------- MOT

def test_mot_read_gt_class_map(data: Path) -> None:
    seq = mot.read_sequence(data / "mot" / "MOTX-01", source="fixture")
    assert (seq.name, seq.width, seq.height, seq.length, seq.fps, seq.source) == ("MOTX-01", 64, 48, 4, 30.0, "fixture")
    assert [p.name for p in seq.image_paths] == [f"{k:06d}.jpg" for k in range(1, 5)]
    assert len(seq.boxes) == 11  # every line is kept, distractors included
    # gt.txt column 8 (class): 1 pedestrian, 3 car, 8 distractor, 12 reflection, 7 static, 2 on vehicle
    expected = {(1, 1): PERSON, (1, 2): PERSON, (1, 3): IGNORE, (1, 4): VEHICLE, (2, 5): IGNORE,
                (4, 6): IGNORE, (4, 7): IGNORE}
    for (frame, track), cls in expected.items():
        assert by_id(seq, frame, track)["cls"] == cls, (frame, track)
    row = by_id(seq, 1, 3)  # line 3: flag 0, class 8, vis 0.86364
    assert (row["conf"], row["category"]) == (0.0, "8")
    assert row["vis"] == np.float32(0.86364)
    row = by_id(seq, 4, 1)  # line 9: fractional box
    assert (row["x"], row["y"], row["w"], row["h"]) == (5.5, 3.25, 10.0, 20.0)
    np.testing.assert_array_equal(seq.track_ids, [1, 2, 4])


def test_mot15_style_rows_are_persons(data: Path) -> None:
    seq = mot.read_sequence(data / "mot" / "MOTX-02")
    # 10 columns, class and visibility columns are -1 (MOT15 world coordinates)
    assert seq.fps == 25.0
    assert seq.boxes["cls"].tolist() == [PERSON, PERSON]
    assert seq.boxes["vis"].tolist() == [1.0, 1.0]
    assert seq.boxes["category"].tolist() == ["-1", "-1"]


def test_mot_read_det_and_none(data: Path) -> None:
    seq = mot.read_sequence(data / "mot" / "MOTX-01", ann="det")
    assert seq.boxes["conf"].tolist() == [np.float32(0.9), np.float32(0.75)]
    assert seq.boxes["id"].tolist() == [-1, -1]
    assert seq.boxes["x"].tolist() == [2.0, 3.5]
    assert (seq.boxes["cls"] == PERSON).all()
    assert len(mot.read_sequence(data / "mot" / "MOTX-01", ann="none").boxes) == 0
    with pytest.raises(DataError, match="det.txt"):
        mot.read_sequence(data / "mot" / "MOTX-02", ann="det")


def test_mot_round_trip_read_write_read(data: Path, tmp_path: Path) -> None:
    seq = mot.read_sequence(data / "mot" / "MOTX-01")
    written = mot.write_sequence(seq, tmp_path / "out" / "MOTX-01")
    assert_same(seq, written)
    again = mot.read_sequence(tmp_path / "out" / "MOTX-01")
    assert_same(seq, again)
    assert again.image_paths == written.image_paths
    assert [p.read_bytes() for p in again.image_paths] == [p.read_bytes() for p in seq.image_paths]
    assert (tmp_path / "out/MOTX-01/seqinfo.ini").read_text() == (data / "mot/MOTX-01/seqinfo.ini").read_text()


def test_mot_write_link_makes_hardlinks(data: Path, tmp_path: Path) -> None:
    seq = mot.read_sequence(data / "mot" / "MOTX-01")
    written = mot.write_sequence(seq, tmp_path / "linked", link=True)
    assert all(os.path.samefile(a, b) for a, b in zip(seq.image_paths, written.image_paths))
    copied = mot.write_sequence(seq, tmp_path / "copied")
    assert not any(os.path.samefile(a, b) for a, b in zip(seq.image_paths, copied.image_paths))


def _synthetic(n_frames: int = 3) -> tuple[Sequence, list[np.ndarray]]:
    """A two-class sequence as the generator makes it (no category labels, no format)."""
    boxes = empty_boxes(4)
    boxes["frame"] = [1, 1, 2, 3]
    boxes["id"] = [1, 2, 1, 7]
    boxes["x"], boxes["y"], boxes["w"], boxes["h"] = [1.5, 20, 2.25, 30], [2, 5, 2, 1], [10, 30, 10, 5], [20, 12, 20, 5]
    boxes["cls"] = [PERSON, VEHICLE, PERSON, IGNORE]
    boxes["vis"] = [1.0, 0.75, 0.25, 1.0]
    frames = [np.full((H, W, 3), 40 * k, dtype=np.uint8) for k in range(n_frames)]
    return Sequence(name="synth-0001", width=W, height=H, length=n_frames, fps=20.0, boxes=boxes), frames


def test_mot_write_frames_then_read(tmp_path: Path) -> None:
    seq, frames = _synthetic()
    written = mot.write_sequence(seq, tmp_path / "synth-0001", iter(frames), jpeg_quality=95)
    # two-class GT is written as MOT class numbers 1 (person), 3 (vehicle), 8 (ignored)
    assert written.boxes["category"].tolist() == ["1", "3", "1", "8"]
    np.testing.assert_array_equal(written.boxes["cls"], seq.boxes["cls"])
    for field in ("frame", "id", "x", "y", "w", "h", "vis", "conf"):
        np.testing.assert_array_equal(written.boxes[field], seq.boxes[field])
    assert [p.name for p in written.image_paths] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    img = cv2.imread(str(written.image_paths[2]))
    assert img.shape == (H, W, 3) and abs(int(img.mean()) - 80) <= 2
    assert not list((tmp_path / "synth-0001" / "img1").glob(".*tmp*"))  # atomic writes left nothing
    assert_same(written, mot.read_sequence(tmp_path / "synth-0001"))


def test_mot_write_rejects_wrong_frames(tmp_path: Path) -> None:
    seq, frames = _synthetic()
    with pytest.raises(ValueError, match="2 frames given for length 3"):
        mot.write_sequence(seq, tmp_path / "a", frames[:2])
    with pytest.raises(ValueError, match="expected \\(48, 64, 3\\) uint8"):
        mot.write_sequence(seq, tmp_path / "b", [np.zeros((10, 10, 3), np.uint8)] * 3)


@pytest.mark.parametrize("kind", ["gt", "det", "result"])
def test_txt_write_read_round_trip(tmp_path: Path, kind: str) -> None:
    seq, _ = _synthetic()
    boxes = seq.boxes.copy()
    boxes["conf"] = [1.0, 0.5, 0.0, 0.125]
    boxes["category"] = ["1", "3", "1", "8"]
    path = tmp_path / f"{kind}.txt"
    mot.write_txt(path, boxes, kind)
    back = mot.read_txt(path, kind)
    for field in ("frame", "x", "y", "w", "h", "conf"):
        np.testing.assert_array_equal(back[field], boxes[field], err_msg=field)
    if kind == "det":  # frame,-1,x,y,w,h,score,-1,-1,-1: no ids, no classes (read as persons)
        assert back["id"].tolist() == [-1] * 4 and (back["cls"] == PERSON).all()
        assert path.read_text().splitlines()[0] == "1,-1,1.5,2,10,20,1,-1,-1,-1"
    else:
        np.testing.assert_array_equal(back["id"], boxes["id"])
        np.testing.assert_array_equal(back["cls"], boxes["cls"])
    if kind == "result":  # column 8 carries the MOT class number of cls
        assert [line.split(",")[7] for line in path.read_text().splitlines()] == ["1", "3", "1", "8"]
    if kind == "gt":
        np.testing.assert_array_equal(back["vis"], boxes["vis"])
        assert path.read_text().splitlines()[1] == "1,2,20,5,30,12,0.5,3,0.75"


def test_txt_result_without_class_column_reads_as_person(tmp_path: Path) -> None:
    path = tmp_path / "res.txt"
    path.write_text("1,3,1,2,3,4,0.9\n\n2,3,1,2,3,4,0.8\n")  # 7 columns and a blank line
    boxes = mot.read_txt(path, "result")
    assert boxes["id"].tolist() == [3, 3] and (boxes["cls"] == PERSON).all()


def test_txt_rows_longer_than_the_first_keep_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,2,3,10,20\n2,1,2,3,10,20,0,3,0.5\n")  # 6 then 9 columns
    boxes = mot.read_txt(path, "gt")
    # line 1: defaults (flag 1, class -1 -> person, vis 1); line 2: flag 0, car, vis 0.5
    assert boxes[["conf", "category", "cls", "vis"]].tolist() == [(1.0, "-1", PERSON, 1.0), (0.0, "3", VEHICLE, 0.5)]


@pytest.mark.parametrize(
    "line, field, message",
    [
        ("2,1,abc,3,10,20,1,1,1", "x", "not a number: 'abc'"),
        ("2,1,3,3,10", "h", "missing: 5 column(s)"),
        ("2.5,1,3,3,10,20,1,1,1", "frame", "expected an integer"),
        ("2,1,3,3,nan,20,1,1,1", "w", "not a finite number"),
        ("2,1,3,3,10,inf,1,1,1", "h", "not a finite number"),
        ("2,1,3,3,10,20,1,1.5,1", "class", "expected an integer"),
    ],
)
def test_malformed_line_names_file_line_and_field(tmp_path: Path, line: str, field: str, message: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(f"1,1,2,3,10,20,1,1,1\n\n{line}\n")  # the bad row is on line 3
    with pytest.raises(DataError) as err:
        mot.read_txt(path, "gt")
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 3, field)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}:3: {field}: ")


def test_parse_collects_every_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,2,3,10,20\nx,1,2,3,10,20\n3,1,2,3,10,20\n4,1,2,3\n5,1.5,2,3,4,5\n")
    values, lines, problems = mot.parse_csv(path, mot.FIELDS["gt"])
    assert [(p.line, p.field) for p in problems] == [(2, "frame"), (4, "w"), (5, "id")]
    assert lines.tolist() == [1, 3]  # the good rows, with their lines
    assert values[:, 0].tolist() == [1, 3]
    assert np.isnan(values[:, 6:]).all()  # absent optional columns


def test_mot_seqinfo_missing_key(data: Path) -> None:
    info = data / "mot" / "MOTX-01" / "seqinfo.ini"
    info.write_text(info.read_text().replace("imHeight=48\n", ""))
    with pytest.raises(DataError) as err:
        mot.read_sequence(data / "mot" / "MOTX-01")
    assert (err.value.file, err.value.field) == (str(info), "imHeight")


def test_mot_without_seqinfo_is_inferred_from_images(data: Path) -> None:
    (data / "mot" / "MOTX-02" / "seqinfo.ini").unlink()
    seq = mot.read_sequence(data / "mot" / "MOTX-02")
    assert (seq.name, seq.width, seq.height, seq.length, seq.fps) == ("MOTX-02", 64, 48, 2, 30.0)
    assert len(seq.boxes) == 2


def test_mot_list_sequences_and_seqmap(data: Path, tmp_path: Path) -> None:
    (data / "mot" / "not-a-seq").mkdir()
    assert [p.name for p in mot.list_sequences(data / "mot")] == ["MOTX-01", "MOTX-02"]
    mot.write_seqmap(tmp_path / "seqmaps" / "val.txt", ["MOTX-01", "MOTX-02"])
    assert (tmp_path / "seqmaps" / "val.txt").read_text() == "name\nMOTX-01\nMOTX-02\n"
    with pytest.raises(DataError, match="missing-root"):
        mot.list_sequences(tmp_path / "missing-root")


# ----------------------------------------------------------------------------- BDD100K

def _bdd(data: Path, video: str) -> Sequence:
    return bdd.read_sequence(data / f"bdd/labels/box_track_20/train/{video}.json",
                             data / f"bdd/images/track/train/{video}")


def test_bdd_read(data: Path) -> None:
    seq = _bdd(data, "vid-a")
    assert (seq.name, seq.width, seq.height, seq.length, seq.fps) == ("vid-a", 64, 48, 3, 5.0)
    assert [p.name for p in seq.image_paths] == ["vid-a-0000001.jpg", "vid-a-0000002.jpg", "vid-a-0000003.jpg"]
    car = by_id(seq, 1, 2)  # frame 0, id "00000002": car x1 20 y1 10 x2 50.5 y2 30, occluded+truncated
    assert (car["x"], car["y"], car["w"], car["h"]) == (20.0, 10.0, 30.5, 20.0)
    assert (car["cls"], car["vis"], car["flags"]) == (VEHICLE, 0.5, FLAG_OCCLUDED | FLAG_TRUNCATED)
    crowd = by_id(seq, 2, 3)  # a pedestrian marked crowd: an ignored region
    assert (crowd["cls"], crowd["category"], crowd["flags"]) == (IGNORE, "pedestrian", FLAG_CROWD)
    assert by_id(seq, 2, 4)["cls"] == IGNORE  # other vehicle
    assert by_id(seq, 3, 5)["cls"] == PERSON  # rider, no attributes
    assert by_id(seq, 1, 1)["vis"] == 1.0


def test_bdd_non_numeric_ids_and_frame_order(data: Path) -> None:
    seq = _bdd(data, "vid-b")
    # the file lists frameIndex 1 first; ids "b2" then "a1" are numbered in first-seen order
    assert [p.name for p in seq.image_paths] == ["vid-b-0000001.jpg", "vid-b-0000002.jpg"]
    assert seq.boxes[["frame", "id"]].tolist() == [(1, 2), (2, 1), (2, 2)]
    assert by_id(seq, 2, 1)["category"] == "bus"


def test_bdd_without_images_uses_bdd_size(data: Path) -> None:
    seq = bdd.read_sequence(data / "bdd/labels/box_track_20/train/vid-a.json")
    assert (seq.width, seq.height, seq.image_paths) == (1280, 720, [])


@pytest.mark.parametrize("video", ["vid-a", "vid-b"])
def test_bdd_round_trip(data: Path, tmp_path: Path, video: str) -> None:
    seq = _bdd(data, video)
    written = bdd.write_sequence(seq, tmp_path / "bdd", link=True)
    assert written.image_paths[0] == tmp_path / f"bdd/images/track/train/{video}/{video}-0000001.jpg"
    assert_same(seq, written, exact=False)
    assert_same(seq, _bdd(tmp_path, video), exact=False)


def test_bdd_write_frames_then_read(tmp_path: Path) -> None:
    seq, frames = _synthetic()
    written = bdd.write_sequence(seq, tmp_path, frames, split="val")
    assert (tmp_path / "labels/box_track_20/val/synth-0001.json").is_file()
    assert written.boxes["category"].tolist() == ["pedestrian", "car", "pedestrian", "other vehicle"]
    np.testing.assert_array_equal(written.boxes["cls"], seq.boxes["cls"])
    # vis below 1 is written as occluded and reads back as 0.5
    assert written.boxes["vis"].tolist() == [1.0, 0.5, 0.5, 1.0]
    np.testing.assert_allclose(written.boxes["w"], seq.boxes["w"], atol=1e-9)
    assert written.fps == 20.0 and written.length == 3


# ----------------------------------------------------------------------------- VisDrone

def _vis(data: Path, sub: str = "visdrone", **kw: object) -> Sequence:
    return visdrone.read_sequence(data / sub / "annotations/uav01.txt", data / sub / "sequences/uav01", **kw)


def test_visdrone_read_class_map(data: Path) -> None:
    seq = _vis(data)
    assert (seq.name, seq.width, seq.height, seq.length, seq.fps) == ("uav01", 64, 48, 3, 25.0)
    b = seq.boxes
    # rows of uav01.txt by (frame, id): category, score -> class
    expected = {(1, 1): PERSON, (1, 2): VEHICLE, (1, 0): IGNORE, (1, 3): IGNORE, (2, 1): PERSON,
                (2, 2): VEHICLE, (2, 4): IGNORE, (3, 1): PERSON, (3, 5): IGNORE, (3, 6): VEHICLE}
    for (frame, track), cls in expected.items():
        assert by_id(seq, frame, track)["cls"] == cls, (frame, track)
    assert by_id(seq, 2, 4)["category"] == "1"  # pedestrian with score 0: an ignored region
    car = by_id(seq, 1, 2)  # truncation 1, occlusion 1
    assert (car["vis"], car["flags"]) == (0.75, FLAG_OCCLUDED | FLAG_TRUNCATED)
    assert by_id(seq, 2, 1)["vis"] == 0.25  # occlusion 2
    assert len(b) == 10


def test_visdrone_class_map_by_name(data: Path) -> None:
    seq = _vis(data, class_map={"pedestrian": "person", "bicycle": "vehicle", "others": "vehicle", "0": "person"})
    assert by_id(seq, 3, 5)["cls"] == VEHICLE   # bicycle, mapped by name
    assert by_id(seq, 1, 3)["cls"] == VEHICLE   # others
    assert by_id(seq, 1, 0)["cls"] == IGNORE    # category 0 stays ignored whatever the map says
    assert by_id(seq, 2, 1)["cls"] == IGNORE    # people: not in this map
    with pytest.raises(ConfigError, match="class_map.lorry"):
        _vis(data, class_map={"lorry": "vehicle"})


def test_visdrone_round_trip(data: Path, tmp_path: Path) -> None:
    seq = _vis(data)
    written = visdrone.write_sequence(seq, tmp_path / "vd")
    assert written.image_paths[2] == tmp_path / "vd/sequences/uav01/0000003.jpg"
    assert_same(seq, written)
    assert_same(seq, _vis(tmp_path, "vd"))


def test_visdrone_write_frames_then_read(tmp_path: Path) -> None:
    seq, frames = _synthetic()
    written = visdrone.write_sequence(seq, tmp_path, frames)
    assert written.boxes["category"].tolist() == ["1", "4", "1", "0"]
    assert written.boxes["vis"].tolist() == [1.0, 0.75, 0.25, 1.0]
    np.testing.assert_array_equal(written.boxes["cls"], seq.boxes["cls"])
    assert (tmp_path / "annotations/synth-0001.txt").read_text().splitlines()[0] == "1,1,1.5,2,10,20,1,1,0,0"


# ----------------------------------------------------------------------------- across formats

def test_bdd_to_mot_derives_mot_classes(data: Path, tmp_path: Path) -> None:
    seq = _bdd(data, "vid-a")
    written = mot.write_sequence(seq, tmp_path / "vid-a", link=True)
    # pedestrian/rider -> 1, car -> 3, crowd pedestrian and other vehicle -> 8 (ignored)
    cats = {(int(r["frame"]), int(r["id"])): r["category"] for r in written.boxes}
    assert cats == {(1, 1): "1", (1, 2): "3", (2, 1): "1", (2, 3): "8", (2, 4): "8", (3, 2): "3", (3, 5): "1"}
    np.testing.assert_array_equal(written.boxes["cls"], seq.boxes["cls"])
    assert (written.width, written.height, written.fps) == (64, 48, 5.0)


def test_visdrone_to_bdd_derives_bdd_labels(data: Path, tmp_path: Path) -> None:
    seq = _vis(data)
    written = bdd.write_sequence(seq, tmp_path)
    assert set(written.boxes["category"][written.boxes["cls"] == PERSON]) == {"pedestrian"}
    assert set(written.boxes["category"][written.boxes["cls"] == VEHICLE]) == {"car"}
    np.testing.assert_array_equal(written.boxes["cls"], seq.boxes["cls"])


# ----------------------------------------------------------------------------- sources

def _cfg(data: Path, fmt: str, **kw: object) -> SourceConfig:
    return SourceConfig(format=fmt, root=str(data / fmt), **kw)


@pytest.mark.parametrize("fmt, videos", [("mot", ["MOTX-01", "MOTX-02"]), ("bdd", ["vid-a", "vid-b"]),
                                         ("visdrone", ["uav01"])])
def test_sources_list_read_open(data: Path, fmt: str, videos: list[str]) -> None:
    cfg = _cfg(data, fmt)
    assert sources.list_videos(cfg) == videos
    assert sources.detect_format(data / fmt) == fmt
    seqs = sources.open_source("src", cfg)
    assert [s.name for s in seqs] == videos and all(s.source == "src" for s in seqs)
    assert all(s.meta["class_map"] == sources.DEFAULT_CLASS_MAPS[fmt] for s in seqs)


def test_sources_options(data: Path) -> None:
    cfg = _cfg(data, "mot", include=["*-02"], fps=12.5, class_map={"1": "vehicle"})
    assert sources.list_videos(cfg) == ["MOTX-02"]
    seq = sources.read_video(cfg, "MOTX-01")
    assert seq.fps == 12.5
    assert by_id(seq, 1, 1)["cls"] == VEHICLE and by_id(seq, 1, 4)["cls"] == IGNORE  # '3' not listed


def test_sources_errors_name_the_path(data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        sources.list_videos(SourceConfig(format="mot", root=str(tmp_path / "nowhere")))
    for fmt, missing in (("mot", "MOTX-09"), ("bdd", "vid-z.json"), ("visdrone", "uav09.txt")):
        with pytest.raises(DataError, match=missing):
            sources.read_video(_cfg(data, fmt), missing.split(".")[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="box_track_20"):
        sources.detect_format(tmp_path / "empty")


@pytest.mark.parametrize("fmt, where", [("mot", "synth-0001/gt/gt.txt"),
                                        ("bdd", "labels/box_track_20/train/synth-0001.json"),
                                        ("visdrone", "annotations/synth-0001.txt")])
def test_write_video_dispatch(tmp_path: Path, fmt: str, where: str) -> None:
    seq, frames = _synthetic()
    written = sources.write_video(fmt, seq, tmp_path, frames, jpeg_quality=80)
    assert (tmp_path / where).is_file()
    assert sources.detect_format(tmp_path) == fmt
    assert sources.list_videos(SourceConfig(format=fmt, root=str(tmp_path))) == ["synth-0001"]
    assert_same(written, sources.read_video(SourceConfig(format=fmt, root=str(tmp_path), fps=20.0), "synth-0001"),
                exact=fmt != "bdd")


def test_source_config_from_yaml() -> None:
    cfg = configtypes.build(SourceConfig, {"format": "visdrone", "root": "x", "class_map": {1: "person"}})
    assert cfg.class_map == {"1": "person"}
    with pytest.raises(ConfigError, match="fps"):
        configtypes.build(SourceConfig, {"root": "x", "fps": 0})
    with pytest.raises(ConfigError, match="allowed: person, vehicle, ignore"):
        configtypes.build(SourceConfig, {"root": "x", "class_map": {"1": "car"}})


def test_mot15_world_coordinates_read_as_rows_without_class(tmp_path):
    # 2D MOT 2015 ground truth: frame,id,x,y,w,h,conf,worldX,worldY,worldZ (TUD-Stadtmitte)
    path = tmp_path / "gt.txt"
    path.write_text("1,1,88,99,61.08,218.56,1,4.4852,5.5016,0\n1,2,181,95,75.8,227.01,0,4.4091,4.4283,0\n")
    boxes = mot.read_txt(path, "gt")
    assert boxes["category"].tolist() == ["-1", "-1"] and boxes["cls"].tolist() == [PERSON, PERSON]
    assert boxes["vis"].tolist() == [1.0, 1.0] and boxes["conf"].tolist() == [1.0, 0.0]
    # nine columns (MOT16/17 layout): a fractional class is a typo, named with its line
    path.write_text("1,1,88,99,61,218,1,1,1\n2,1,88,99,61,218,1,1.5,1\n")
    with pytest.raises(DataError) as err:
        mot.read_txt(path, "gt")
    assert err.value.line == 2 and err.value.field == "class"
