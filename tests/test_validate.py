"""``stagetrack validate``: one defect per case, each finding naming its file, line and field.

Each case starts from the clean fixture datasets (``tests/fixtures/formats``, images made
here), plants one defect at a known place, and checks that exactly that finding is reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from stagetrack import cli
from stagetrack.data import validate
from stagetrack.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
W, H = 64, 48
GT = "mot/MOTX-01/gt/gt.txt"
INFO = "mot/MOTX-01/seqinfo.ini"
BDD_A = "bdd/labels/box_track_20/train/vid-a.json"
VD = "visdrone/annotations/uav01.txt"


def _noise(path: Path, rng: np.random.Generator, shape: tuple[int, int] = (H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (*shape, 3), dtype=np.uint8))


@pytest.fixture
def data(tmp_path: Path) -> Path:
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


def set_line(path: Path, line: int, text: str) -> None:
    """Replace 1-based ``line`` of a text file (or append it when ``line`` is one past the end)."""
    lines = path.read_text().splitlines()
    lines[line - 1:line] = [text]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fmt", ["mot", "bdd", "visdrone"])
def test_clean_fixtures_pass(data: Path, fmt: str) -> None:
    report = validate.validate_path(data / fmt)
    assert report.format == fmt
    assert report.errors == [] and report.warnings == []
    assert report.ok


# (name, defect planted in the dataset, severity, file, line, field, words of the message)
Defect = Callable[[Path], None]
CASES: list[tuple[str, Defect, str, str, int | None, str | None, str]] = [
    ("not a number", lambda d: set_line(d / GT, 5, "2,1,3,abc,10,20,1,1,1"), "error", GT, 5, "y", "not a number: 'abc'"),
    ("too few columns", lambda d: set_line(d / GT, 2, "1,2,30,5"), "error", GT, 2, "w", "missing"),
    ("nan box", lambda d: set_line(d / GT, 8, "3,1,4,3,nan,20,1,1,1"), "error", GT, 8, "w", "not a finite number"),
    ("inf box", lambda d: set_line(d / GT, 8, "3,1,4,3,10,-inf,1,1,1"), "error", GT, 8, "h", "not a finite number"),
    ("negative width", lambda d: set_line(d / GT, 8, "3,1,4,3,-10,20,1,1,1"), "error", GT, 8, "w", "negative (-10) box width"),
    ("zero height", lambda d: set_line(d / GT, 8, "3,1,4,3,10,0,1,1,1"), "error", GT, 8, "h", "zero box height"),
    ("duplicate id", lambda d: set_line(d / GT, 6, "2,1,31,5,12,22,1,1,0.25"), "error", GT, 6, "id",
     "id 1 appears twice in frame 2 (also line 5)"),
    ("frame beyond seqLength", lambda d: set_line(d / GT, 12, "5,1,4,3,10,20,1,1,1"), "error", GT, 12, "frame",
     "frame 5 outside 1..4 (seqLength)"),
    ("frame 0", lambda d: set_line(d / GT, 1, "0,1,2,3,10,20,1,1,1"), "error", GT, 1, "frame", "frame 0 outside 1..4"),
    ("box fully outside", lambda d: set_line(d / GT, 8, "3,1,64,3,10,20,1,1,1"), "error", GT, 8, "x,y,w,h",
     "lies entirely outside the 64x48 image"),
    ("box partly outside", lambda d: set_line(d / GT, 8, "3,1,-4,40,10,20,1,1,1"), "warning", GT, 8, "x,y,w,h",
     "lies partly outside the 64x48 image"),
    ("visibility above 1", lambda d: set_line(d / GT, 8, "3,1,4,3,10,20,1,1,1.5"), "error", GT, 8, "vis", "above 1"),
    ("unknown class", lambda d: set_line(d / GT, 8, "3,1,4,3,10,20,1,14,1"), "warning", GT, None, "category",
     "'14' is not in the class map"),
    ("missing seqinfo key", lambda d: set_line(d / INFO, 7, "imHeightt=48"), "error", INFO, None, "imHeight", "missing key"),
    ("bad seqinfo value", lambda d: set_line(d / INFO, 5, "seqLength=four"), "error", INFO, 5, "seqLength",
     "expected a positive integer"),
    ("seqLength vs images", lambda d: (d / "mot/MOTX-01/img1/000004.jpg").unlink(), "error", INFO, 5, "seqLength",
     "seqLength 4 but img1/ has 3 .jpg file(s)"),
    ("missing image, frame without image", lambda d: (d / "mot/MOTX-01/img1/000004.jpg").unlink(), "error", GT, 9,
     "frame", "frame 4 has no image (3 images)"),
    ("image gap", lambda d: (d / "mot/MOTX-01/img1/000002.jpg").unlink(), "error", "mot/MOTX-01/img1/000002.jpg",
     None, None, "image of frame 2 not found"),
    ("truncated image", lambda d: _truncate(d / "mot/MOTX-01/img1/000004.jpg"), "error",
     "mot/MOTX-01/img1/000004.jpg", None, None, "unreadable image"),
    ("image of another size", lambda d: _noise(d / "mot/MOTX-01/img1/000002.jpg", np.random.default_rng(1), (48, 60)),
     "error", "mot/MOTX-01/img1/000002.jpg", None, None, "image is 60x48, the sequence is 64x48"),
    ("no seqinfo", lambda d: (d / INFO).unlink(), "warning", INFO, None, None, "missing: size and length inferred"),
    ("no gt", lambda d: (d / GT).unlink(), "warning", GT, None, None, "missing (a test sequence?)"),
    ("seqinfo name", lambda d: set_line(d / INFO, 2, "name=MOTX-99"), "warning", INFO, 2, "name", "differs from the folder"),
    # BDD100K: findings point at the line where the frame starts and the element's JSON path
    ("bdd box not a number", lambda d: _bdd_edit(d, 1, 0, {"box2d": {"x1": 2, "y1": "two", "x2": 12, "y2": 22}}),
     "error", BDD_A, 8, "[1].labels[0].box2d.y1", "expected a finite number, got 'two'"),
    ("bdd zero-size box", lambda d: _bdd_edit(d, 2, 0, {"box2d": {"x1": 22, "y1": 10, "x2": 22, "y2": 30}}),
     "error", BDD_A, 16, "[2].labels[0].box2d.x2", "zero box width"),
    ("bdd duplicate id", lambda d: _bdd_edit(d, 1, 2, {"id": "00000001"}), "error", BDD_A, 8,
     "[1].labels[2].id", "id 1 appears twice in frame 2 (also [1].labels[0].id)"),
    ("bdd missing image", lambda d: (d / "bdd/images/track/train/vid-a/vid-a-0000002.jpg").unlink(), "error", BDD_A, 8,
     "[1].name", "image not found"),
    ("bdd frameIndex gap", lambda d: _bdd_edit(d, 2, None, {"frameIndex": 5}), "error", BDD_A, 16,
     "[2].frameIndex", "frameIndex 5 leaves a gap"),
    ("bdd invalid json", lambda d: set_line(d / BDD_A, 3, "    {\"id\": \"00000001\",, "), "error", BDD_A, 3, None,
     "invalid JSON"),
    ("bdd box outside", lambda d: _bdd_edit(d, 0, 0, {"box2d": {"x1": 70, "y1": 2, "x2": 80, "y2": 22}}),
     "error", BDD_A, 2, "[0].labels[0].box2d", "entirely outside"),
    # VisDrone
    ("visdrone category", lambda d: set_line(d / VD, 4, "1,3,30,2,6,6,1,12,0,0"), "error", VD, 4, "category",
     "invalid value 12 (allowed: 0..11)"),
    ("visdrone occlusion", lambda d: set_line(d / VD, 4, "1,3,30,2,6,6,1,11,0,3"), "error", VD, 4, "occlusion",
     "invalid value 3"),
    ("visdrone frame beyond images", lambda d: set_line(d / VD, 11, "4,1,4,3,10,20,1,1,0,0"), "error", VD, 11, "frame",
     "frame 4 outside 1..3 (images)"),
    ("visdrone missing column", lambda d: set_line(d / VD, 2, "1,2,20,5,8,8,1,4,1"), "error", VD, 2, "occlusion",
     "missing: 9 column(s)"),
    ("visdrone duplicate id", lambda d: set_line(d / VD, 4, "1,2,30,2,6,6,1,11,0,0"), "error", VD, 4, "id",
     "id 2 appears twice in frame 1 (also line 2)"),
]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bdd_edit(data: Path, frame: int, label: int | None, patch: dict) -> None:
    """Patch one frame (label None) or label of vid-a.json, keeping one frame per line group."""
    path = data / BDD_A
    frames = json.loads(path.read_text())
    (frames[frame] if label is None else frames[frame]["labels"][label]).update(patch)
    # the fixture's layout: '[' then each frame starting on lines 2, 8 and 16 as in the file
    starts = (2, 8, 16)
    lines = ["["]
    for i, f in enumerate(frames):
        while len(lines) < starts[i] - 1:
            lines.append("")
        lines.append("  " + json.dumps(f) + ("," if i < len(frames) - 1 else ""))
    lines.append("]")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name, defect, severity, file, line, field, words", CASES, ids=[c[0] for c in CASES])
def test_defect_is_reported(data: Path, name: str, defect: Defect, severity: str, file: str, line: int | None,
                            field: str | None, words: str) -> None:
    defect(data)
    report = validate.validate_path(data / file.split("/")[0])
    found = report.errors if severity == "error" else report.warnings
    hits = [f for f in found if f.file == str(data / file) and f.line == line and f.field == field and words in f.message]
    assert hits, f"no {severity} at {file}:{line} {field} '{words}' in:\n" + "\n".join(map(str, found))
    text = str(hits[0])
    assert text.startswith(str(data / file) + (f":{line}" if line else "")) and (field or "") in text
    if severity == "warning":
        assert report.errors == [] and report.ok


def test_bdd_edit_helper_keeps_lines(data: Path) -> None:
    """The patched file keeps the frames on lines 2, 8, 16 as in the fixture (cases rely on it)."""
    _bdd_edit(data, 0, 0, {})
    from stagetrack.data import bdd

    labels, problems = bdd.scan_labels(data / BDD_A)
    assert problems == [] and labels.frame_lines == [2, 8, 16]


def test_findings_are_all_collected_and_listing_capped(data: Path) -> None:
    gt = data / GT
    gt.write_text("".join(f"{f},{i},1,1,0,5,1,1,1\n" for f in (1, 2) for i in range(1, 31)))  # 60 zero widths
    report = validate.validate_path(data / "mot")
    assert len(report.errors) == 60
    assert [e.line for e in report.errors] == list(range(1, 61))
    text = report.render(max_listed=50)
    assert "... and 10 more error(s)" in text
    assert text.count("zero box width") == 50
    assert text.splitlines()[-1] == "60 error(s), 0 warning(s)"


def test_visdrone_ignored_regions_may_share_ids(data: Path) -> None:
    set_line(data / VD, 11, "1,0,1,30,5,5,0,0,-1,-1")  # a second ignored region with id 0 in frame 1
    assert validate.validate_path(data / "visdrone").errors == []


def test_single_mot_sequence_folder(data: Path) -> None:
    report = validate.validate_path(data / "mot" / "MOTX-02")
    assert [s.name for s in report.sequences] == ["MOTX-02"] and report.ok


def test_summary_counts(data: Path) -> None:
    report = validate.validate_path(data / "visdrone")
    (s,) = report.sequences
    # uav01.txt: persons = cat 1/2 with score 1 (3 rows); vehicles = 4, 5, 9; the rest ignored
    assert (s.frames, s.images, s.boxes, s.tracks) == (3, 3, 10, 3)
    assert s.classes == {"person": 3, "vehicle": 3, "ignore": 4}


def test_missing_path_and_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="path not found"):
        validate.validate_path(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        validate.validate_path(tmp_path / "empty")


def test_cli_exit_codes(data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", {"validate": ("stagetrack.data.validate", "check a dataset")})
    monkeypatch.setenv("STAGETRACK_CACHE", str(data.parent / ".cache"))
    assert cli.main(["validate", str(data / "mot")]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    set_line(data / GT, 8, "3,1,4,3,10,0,1,1,1")
    assert cli.main(["validate", str(data / "mot"), "--format", "mot", "--decode", "all"]) == 1
    out = capsys.readouterr().out
    assert f"{data / GT}:8: h: zero box height" in out
    assert cli.main(["validate", str(data / "nothing")]) == 2


def test_run_with_namespace(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(path=str(data / "bdd"), format="bdd", split="train", decode="ends", max_listed=5)
    assert validate.run(args) == 0
    assert "vid-a" in capsys.readouterr().out
