"""`stagetrack eval` reproduces the official MOTChallenge devkit's published numbers.

The data are the two MOT15 sequences that py-motmetrics ships in its wheel (installed from the
package registry as a test dependency, so nothing is downloaded at test time): TUD-Campus and
TUD-Stadtmitte ground truth with one tracker's result files. py-motmetrics' own test suite
(`test_motchallenge_files`) pins the numbers the official MATLAB devkit printed for them; they are
written out below, each column as the devkit names it, and our evaluation must give the same
counts and the same ratios (to the devkit's printed precision, 1e-6).

TrackEval's HOTA has no published reference for these files, so HOTA's correctness rests on the
parity tests against TrackEval's code (tests/test_metrics.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import require

from stagetrack.cli import main

motmetrics = require("motmetrics")

DATA = Path(motmetrics.__file__).parent / "data"
LENGTH = {"TUD-Campus": 71, "TUD-Stadtmitte": 179}   # frames (MOT15 seqinfo), 640 x 480

# The devkit's rows: IDF1 IDP IDR Rcll Prcn GT MT PT ML FP FN IDs FM MOTA
DEVKIT = {
    "TUD-Campus": (0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462),
    "TUD-Stadtmitte": (0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014),
    "combined": (0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116),
}
OURS = ("IDF1", "IDP", "IDR", "Rcll", "Prcn", "GT_IDs", "MT", "PT", "ML", "CLR_FP", "CLR_FN", "IDSW", "Frag", "MOTA")


@pytest.fixture(scope="module")
def tud(tmp_path_factory):
    root = tmp_path_factory.mktemp("tud")
    gt, pred = root / "gt", root / "pred"
    pred.mkdir()
    for name, length in LENGTH.items():
        seq = gt / name
        (seq / "gt").mkdir(parents=True)
        (seq / "gt" / "gt.txt").write_text((DATA / name / "gt.txt").read_text())
        (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=25\nseqLength={length}\n"
                                         "imWidth=640\nimHeight=480\nimExt=.jpg\n")
        (pred / f"{name}.txt").write_text((DATA / name / "test.txt").read_text())
    out = root / "metrics.json"
    assert main(["eval", "--gt-dir", str(gt), "--pred-dir", str(pred), "--out", str(out), "--flavour", "mot15"]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", list(DEVKIT))
def test_devkit_numbers(tud, name):
    if name == "combined":   # every field
        got = dict(tud["combined"])
        tp = got["CLR_TP"]
        got["Rcll"], got["Prcn"] = 100 * tp / (tp + got["CLR_FN"]), 100 * tp / (tp + got["CLR_FP"])
    else:                    # per sequence the JSON holds the headline fields
        got = tud["per_sequence"][name]["person"]
        assert {"IDF1", "MOTA", "IDSW"} <= set(got)
    for field, expected in zip(OURS, DEVKIT[name]):
        if field not in got:
            continue
        value = got[field]
        if isinstance(expected, int):
            assert value == expected, (name, field)
        else:
            assert value / 100 == pytest.approx(expected, abs=1e-6), (name, field)
