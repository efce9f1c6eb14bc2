"""`stagetrack eval`: flavours on a hand-built fixture, JSON output, user errors (exit 2)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from stagetrack.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "eval"

# Fixture (see fixtures/eval/README.md): person with an ID switch after frame 2, a perfect
# vehicle, and a person box (id 9) inside an ignored region (class 8) in all 4 frames.
#
# project flavour: box 9 is unmatched (IoU 800/10000 with the region) and wholly inside it ->
#   dropped. person: AssA 2/(4+2-2) = 1/2, DetA 1 -> HOTA sqrt(1/2); IDF1 2*2/(4+2+2) = 50;
#   MOTA (4-0-1)/4 = 75. vehicle: all 100. combined: TP 8, AssA (4*.5 + 4*1)/8 = .75 -> HOTA
#   sqrt(.75); IDF1 2*6/(12+2+2) = 75; MOTA (8-1)/8 = 87.5.
# mot17 flavour: person only; class 8 is a distractor but box 9 does not match it (IoU < 0.5)
#   and regions do not exist in the devkit -> 4 FPs. DetA 4/8, AssA 1/2 -> HOTA 50;
#   IDF1 2*2/(4+6+2) = 33.3; MOTA (4-4-1)/4 = -25.
EXPECTED = {
    "project": {
        "person": {"HOTA": 100 * math.sqrt(0.5), "DetA": 100.0, "AssA": 50.0, "IDF1": 50.0, "MOTA": 75.0, "IDSW": 1},
        "vehicle": {"HOTA": 100.0, "DetA": 100.0, "AssA": 100.0, "IDF1": 100.0, "MOTA": 100.0, "IDSW": 0},
        "combined": {"HOTA": 100 * math.sqrt(0.75), "AssA": 75.0, "IDF1": 75.0, "MOTA": 87.5, "IDSW": 1},
    },
    "mot17": {
        "person": {"HOTA": 50.0, "DetA": 50.0, "AssA": 50.0, "IDF1": 100 / 3, "MOTA": -25.0, "IDSW": 1,
                   "CLR_FP": 4},
        "combined": {"HOTA": 50.0, "MOTA": -25.0},
    },
}


def _run(tmp_path: Path, *extra: str, gt: Path | None = None, pred: Path | None = None) -> tuple[int, Path]:
    out = tmp_path / "out" / "metrics.json"
    code = main(["eval", "--gt-dir", str(gt or FIXTURE / "gt"), "--pred-dir", str(pred or FIXTURE / "pred"),
                 "--out", str(out), *extra])
    return code, out


@pytest.mark.parametrize("flavour, args", [("project", ()), ("project", ("--flavour", "auto")),
                                           ("project", ("--flavour", "project", "--classes", "person,vehicle")),
                                           ("mot17", ("--flavour", "mot17"))])
def test_eval_writes_json_and_table(tmp_path, capsys, flavour, args):
    code, out = _run(tmp_path, *args)
    assert code == 0
    result = json.loads(out.read_text())
    expected = EXPECTED[flavour]
    assert set(result["per_class"]) == set(expected) - {"combined"}
    for cls, fields in expected.items():
        got = result["combined"] if cls == "combined" else result["per_class"][cls]
        for field, value in fields.items():
            assert got[field] == pytest.approx(value, abs=1e-9), (cls, field)
    assert set(result["per_sequence"]) == {"SEQ-A"}
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["class", "HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW"]
    assert table[-1].split()[0] == "combined"
    assert table[1].split()[:2] == ["person", f"{expected['person']['HOTA']:.2f}"]
    assert list(out.parent.iterdir()) == [out]  # written atomically: no temporary left behind


def test_classes_option_restricts_the_project_flavour(tmp_path):
    code, out = _run(tmp_path, "--classes", "vehicle")
    assert code == 0
    result = json.loads(out.read_text())
    assert list(result["per_class"]) == ["vehicle"]
    assert result["combined"]["HOTA"] == pytest.approx(100.0)


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(FIXTURE / "gt", tmp_path / "gt")
    shutil.copytree(FIXTURE / "pred", tmp_path / "pred")
    return tmp_path / "gt", tmp_path / "pred"


def _errors(capsys, level: str = "E") -> list[str]:
    # the CLI's logging goes to stderr as "HH:MM:SS L logger: message"
    return [line for line in capsys.readouterr().err.splitlines() if f" {level} " in line]


def test_malformed_prediction_file_exits_2_naming_file_and_line(tmp_path, capsys):
    gt, pred = _copy(tmp_path)
    lines = (pred / "SEQ-A.txt").read_text().splitlines()
    lines[2] = "1,9,210,abc,20,40,0.5,1,-1,-1"
    (pred / "SEQ-A.txt").write_text("\n".join(lines) + "\n")
    code, out = _run(tmp_path, gt=gt, pred=pred)
    assert code == 2
    errors = _errors(capsys)
    assert len(errors) == 1
    assert f"{pred / 'SEQ-A.txt'}:3" in errors[0] and "abc" in errors[0]
    assert not out.exists()


def test_prediction_without_ground_truth_is_an_error(tmp_path, capsys):
    gt, pred = _copy(tmp_path)
    shutil.copy(pred / "SEQ-A.txt", pred / "SEQ-Z.txt")
    code, _ = _run(tmp_path, gt=gt, pred=pred)
    assert code == 2
    (error,) = _errors(capsys)
    assert "SEQ-Z.txt" in error and "no ground-truth" in error


def test_missing_prediction_file_is_an_error_naming_it(tmp_path, capsys):
    gt, pred = _copy(tmp_path)
    shutil.copytree(gt / "SEQ-A", gt / "SEQ-B")
    code, out = _run(tmp_path, gt=gt, pred=pred)
    assert code == 2 and not out.exists()
    (error,) = _errors(capsys)
    assert "SEQ-B.txt: no prediction file for this ground-truth sequence" in error and "--missing-as-empty" in error


def test_missing_prediction_file_scores_empty_when_asked_with_a_warning(tmp_path, capsys):
    # a second sequence with the same ground truth and no result file: its 8 GT boxes (person +
    # vehicle) are all misses -> combined MOTA (8 - 0 - 1)/16
    gt, pred = _copy(tmp_path)
    shutil.copytree(gt / "SEQ-A", gt / "SEQ-B")
    code, out = _run(tmp_path, "--missing-as-empty", gt=gt, pred=pred)
    assert code == 0
    assert any("SEQ-B.txt" in line for line in _errors(capsys, "W"))
    result = json.loads(out.read_text())
    assert result["combined"]["CLR_FN"] == 8
    assert result["combined"]["MOTA"] == pytest.approx(100 * 7 / 16)
    assert result["per_sequence"]["SEQ-B"]["person"]["HOTA"] == 0.0


def test_seqmap_selects_sequences(tmp_path):
    gt, pred = _copy(tmp_path)
    shutil.copytree(gt / "SEQ-A", gt / "SEQ-B")
    (gt / "seqmaps").mkdir()
    (gt / "seqmaps" / "val.txt").write_text("name\nSEQ-A\n")
    code, out = _run(tmp_path, gt=gt, pred=pred)
    assert code == 0
    assert list(json.loads(out.read_text())["per_sequence"]) == ["SEQ-A"]


def test_unknown_class_exits_2(tmp_path, capsys):
    code, _ = _run(tmp_path, "--classes", "person,bus")
    assert code == 2
    (error,) = _errors(capsys)
    assert "'bus'" in error and "person, vehicle" in error
