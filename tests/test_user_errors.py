"""No traceback for a user error: bad specs, params and paths given to every subcommand end in
one line naming the problem (file, line, key where there is one) and exit 2."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from stagetrack import cli

REPO = Path(__file__).resolve().parents[1]


def _params(tmp: Path, **changes) -> Path:
    """The repository's params.yaml with dotted-key ``changes`` (``a__b=v`` sets a.b), in ``tmp``."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in changes.items():
        node, *path, leaf = [data, *key.split("__")]
        for part in path:
            node = node[part]
        node[leaf] = value
    out = tmp / "bad_params.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _spec(tmp: Path, text: str) -> Path:
    (tmp / "spec.yaml").write_text(text)
    return tmp / "spec.yaml"


# (case id, argv builder (tmp -> argv), what the one line must say)
CASES = [
    ("sweep-dict-value", lambda t: ["sweep", str(_spec(t, "metric: metrics/eval.json:all.HOTA\nparams:\n"
                                                      "  stage2.detector: [{epochs: 2}]\n")), "--dry-run"],
     r"spec.yaml:3: params.stage2.detector: value \{'epochs': 2\} cannot be passed to `dvc exp run -S`"),
    ("sweep-on-test", lambda t: ["sweep", str(_spec(t, "metric: metrics/test.json:all.combined.HOTA\nparams:\n"
                                                   "  lr: [1.0e-3]\n")), "--dry-run"],
     r"metric: 'metrics/test.json:all.combined.HOTA' is on the locked test videos"),
    ("sweep-unknown-key", lambda t: ["sweep", str(_spec(t, "metric: m\nparams:\n  stage9.lr: [1]\n")), "--dry-run"],
     r"params.stage9.lr: not a key of params.yaml"),
    ("stage-init-weights-path", lambda t: ["inspect", "--params", str(_params(t, stage2__init="x.pt"))],
     r"stage2.init: must be null or an earlier stage \(stage1\), got 'x.pt'"),
    ("tracker-history-short", lambda t: ["inspect", "--params", str(_params(t, tracker__history=2))],
     r"tracker.history: 2 boxes kept per track, but the learned scorer reads assoc.history = 8"),
    ("unknown-param", lambda t: ["inspect", "--params", str(_params(t, detector__epoch=3))],
     r"bad_params.yaml:\d+: detector.epoch: unknown key.*did you mean 'epochs'"),
    ("selection-clips-zero", lambda t: ["inspect", "--params", str(_params(t, build__selection_clips=0))],
     r"build.selection_clips: must be >= 1, got 0"),
    ("params-file-missing", lambda t: ["inspect", "--params", str(t / "nope.yaml")], r"nope.yaml"),
    ("track-missing-dets", lambda t: ["track", "--det-dir", str(t / "none"), "--out-dir", str(t / "o"),
                                      "--params", str(REPO / "params.yaml")], r"none"),
    ("eval-missing-gt", lambda t: ["eval", "--gt-dir", str(t / "gt"), "--pred-dir", str(t), "--out", str(t / "m.json")],
     r"gt: ground-truth folder not found"),
    ("eval-unknown-class", lambda t: ["eval", "--gt-dir", str(t), "--pred-dir", str(t), "--out", str(t / "m.json"),
                                      "--classes", "car"], r"--classes: unknown class 'car'"),
    ("train-assoc-missing-log", lambda t: ["train-assoc", "--data", str(t / "log"), "--output", str(t / "a.pt")],
     r"log"),
    ("train-assoc-bad-split", lambda t: ["train-assoc", "--data", str(t), "--output", str(t / "a.pt"),
                                         "--val-split", "1.5"], r"assoc.val_split: must be in \(0, 1\), got 1.5"),
    ("validate-missing-folder", lambda t: ["validate", str(t / "nothing")], r"nothing"),
    ("seeds-zero", lambda t: ["seeds", "--n", "0", "--dry-run"], r"--n: must be >= 1"),
    ("dashboard-no-logs", lambda t: ["dashboard", "--params", str(REPO / "params.yaml"), "--metrics-dir",
                                     str(t / "m"), "--out", str(t / "d.png")], r"no run logs to draw"),
    ("viz-unknown-seq", lambda t: ["viz", "--params", str(REPO / "params.yaml"), "--seq", "NOPE", "--data", str(t),
                                   "--pred", str(t / "p.txt")], r"seqmap"),
    ("train-stage-no-data", lambda t: ["train-stage", "stage1", "--params", str(REPO / "params.yaml"), "--data",
                                       str(t / "built"), "--models", str(t / "models"), "--metrics-dir",
                                       str(t / "metrics"), "--timings-dir", str(t / "timings")],
     r"val/LOCK.json: the val lock is missing or unreadable; run the build stage"),
    ("evaluate-stages-no-data", lambda t: ["evaluate-stages", "--params", str(REPO / "params.yaml"), "--data",
                                           str(t / "built"), "--models", str(t / "models"), "--metrics-dir",
                                           str(t / "metrics"), "--results", str(t / "results")],
     r"val/LOCK.json: the val lock is missing"),
]


@pytest.mark.parametrize("case, argv, message", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_and_exit_2(case, argv, message, tmp_path, capsys):
    command, *rest = argv(tmp_path)
    code = cli.main([command, "-q", *rest])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if " E stagetrack: " in x]
    assert len(lines) == 1, err
    assert re.search(message, lines[0]), lines[0]


def test_bench_run_turns_user_errors_into_one_line(monkeypatch, capsys):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench import run as bench_run
    from stagetrack.errors import ConfigError

    def broken(argv):
        raise ConfigError("must be positive", field="bench.size")

    monkeypatch.setattr(bench_run, "_main", broken)
    assert bench_run.main([]) == 2
    err = capsys.readouterr().err
    assert "bench.size: must be positive" in err and "Traceback" not in err


def test_the_cases_cover_at_least_fifteen_inputs_of_ten_commands(tmp_path):
    assert len(CASES) >= 15 and len({c[1](tmp_path)[0] for c in CASES}) >= 10
