"""`stagetrack sweep`: grid/random expansion, override syntax, metric look-up, spec errors, and a
real sweep through DVC's queue on a toy one-stage pipeline."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stagetrack import cli, sweep
from stagetrack.errors import ConfigError, StagetrackError

BIN = Path(sys.executable).parent

# params.yaml of the toy repo: two real stagetrack keys (the rest take their defaults), so the
# typed validation through load_params applies as in the project
TOY_PARAMS = "lr: 1.0e-3\ntracker:\n  match_thresh: 0.8\n"
# the stage: HOTA = 1000 * lr + match_thresh; YAML 1.1 may read a dot-less exponent as a string
SCORE = """\
import json, yaml
p = yaml.safe_load(open("params.yaml"))
hota = 1000 * float(p["lr"]) + p["tracker"]["match_thresh"]
json.dump({"all": {"HOTA": hota}}, open("metrics.json", "w"))
"""
DVC_YAML = """\
stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [lr, tracker.match_thresh]
    metrics:
      - metrics.json:
          cache: false
"""


def write_spec(path: Path, **fields) -> Path:
    spec = {"metric": "metrics.json:all.HOTA", "params": {"lr": [1.0e-4, 1.0e-3], "tracker.match_thresh": [0.7]}}
    spec.update(fields)
    path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))  # lists inline
    return path


@pytest.fixture
def toy_params(tmp_path, monkeypatch) -> Path:
    (tmp_path / "params.yaml").write_text(TOY_PARAMS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- pure parts


def test_grid_is_the_product_in_spec_order():
    spec = sweep.SweepSpec(metric="m", params={"a": [1, 2], "b.c": ["x", "y", "z"]})
    trials = sweep.expand(spec)
    assert [t.values for t in trials] == [{"a": a, "b.c": c} for a in (1, 2) for c in ("x", "y", "z")]
    assert len({t.name for t in trials}) == 6 and all(t.name.startswith("sweep-") for t in trials)


@pytest.mark.parametrize("sizes", [(1,), (3,), (2, 3), (3, 1, 2)])
def test_combination_index_follows_product_order(sizes):
    params = {f"k{i}": list(range(n)) for i, n in enumerate(sizes)}
    product = [dict(zip(params, c)) for c in itertools.product(*params.values())]
    assert [sweep.combination(params, i) for i in range(len(product))] == product


def test_random_draws_distinct_combinations_reproducibly():
    params = {"a": list(range(10)), "b": list(range(10)), "c": list(range(10))}
    spec = sweep.SweepSpec(method="random", trials=7, seed=3, metric="m", params=params)
    first, again = sweep.expand(spec), sweep.expand(spec)
    assert [t.values for t in first] == [t.values for t in again]
    assert len({t.name for t in first}) == 7
    assert all(t.values["a"] in params["a"] and set(t.values) == {"a", "b", "c"} for t in first)
    other = sweep.expand(sweep.SweepSpec(method="random", trials=7, seed=4, metric="m", params=params))
    assert [t.values for t in other] != [t.values for t in first]


def test_random_over_a_huge_grid_is_cheap():
    params = {f"k{i}": list(range(10)) for i in range(12)}  # 10**12 combinations, never listed
    trials = sweep.expand(sweep.SweepSpec(method="random", trials=3, seed=0, metric="m", params=params))
    assert len(trials) == 3


@pytest.mark.parametrize("value, text", [
    (1e-4, "0.0001"), (1e-5, "1.0e-05"), (2.5, "2.5"), (3, "3"), (True, "true"), (None, "null"),
    ("a b: c", "'a b: c'"), ("it's", r"'it\'s'"), ("1e-3", "'1e-3'"), ([1, "x"], "[1,'x']"),
])
def test_format_value_in_override_syntax(value, text):
    assert sweep.format_value(value) == text


def test_trial_name_depends_on_values_not_order():
    assert sweep.trial_name({"a": 1, "b": 2}) == sweep.trial_name({"b": 2, "a": 1})
    assert sweep.trial_name({"a": 1, "b": 2}) != sweep.trial_name({"a": 1, "b": 3})
    trial = sweep.Trial("n", {"lr": 1e-5, "tracker.match_thresh": 0.7})
    assert trial.overrides == ["lr=1.0e-05", "tracker.match_thresh=0.7"]


@pytest.mark.parametrize("value, base, expected", [
    ("1e-4", 1e-3, 1e-4),          # YAML 1.1 string meant as a float for a numeric key
    ("1e-4", "1e-05", 1e-4),       # params.yaml as dvc exp run -S writes it
    ("1e-4", "name", "1e-4"),      # a string key keeps its string
    ("x", 1.0, "x"),               # not a number: left for the typed check to reject
    (5, 1.0, 5),
])
def test_coerce(value, base, expected):
    assert sweep.coerce(value, base) == expected


METRICS = {
    "metrics/eval.json": {"data": {"all": {"combined": {"HOTA": 61.5}}, "n": True}},
    "metrics/stage1.json": {"data": {"val": {"HOTA": 40.0}, "all": {"combined": {"HOTA": 1.0}}}},
}


@pytest.mark.parametrize("metric, expected", [
    ("metrics/eval.json:all.combined.HOTA", 61.5),
    ("metrics/stage1.json:all.combined.HOTA", 1.0),
    ("val.HOTA", 40.0),                       # only stage1.json has it
    ("metrics/eval.json:val.HOTA", None),     # not in the named file
    ("missing.key", None),
    ("metrics/eval.json:n", None),            # a bool is not a metric
])
def test_metric_value(metric, expected):
    assert sweep.metric_value(METRICS, metric) == expected


def test_metric_in_several_files_must_name_one():
    with pytest.raises(StagetrackError, match="several files.*FILE:all.combined.HOTA"):
        sweep.metric_value(METRICS, "all.combined.HOTA")


def _shown(*exps: tuple[str, float | None, bool]) -> list[dict]:
    revs = [{"revs": [{"name": n, "error": {"msg": "failed"} if failed else None,
                       "data": {"params": {"params.yaml": {"data": {"lr": 1.0}}},
                                "metrics": {} if m is None else {"m.json": {"data": {"v": m}}}}}]}
            for n, m, failed in exps]
    return [{"rev": "workspace", "experiments": None}, {"rev": "abc", "name": "main", "experiments": revs}]


@pytest.mark.parametrize("mode, order", [("max", ["b", "a", "c", "d", "e"]), ("min", ["a", "b", "c", "d", "e"])])
def test_collect_ranks_and_marks_failures(mode, order):
    trials = [sweep.Trial(n, {"lr": 0.5}) for n in "abcde"]
    # a: 1, b: 3, c: failed run, d: queued/no metric, e: never queued
    shown = _shown(("a", 1.0, False), ("b", 3.0, False), ("c", 2.0, True), ("d", None, False))
    spec = sweep.SweepSpec(metric="m.json:v", mode=mode, params={"lr": [0.5]})
    results = sweep.collect(trials, shown, spec)
    assert [r.name for r in results] == order
    assert [r.metric for r in results][2:] == [None, None, None]
    assert results[0].params == {"lr": 1.0}  # the value the experiment really ran with


# ---------------------------------------------------------------- spec errors


def test_unknown_param_key_names_spec_and_key(toy_params):
    spec = write_spec(toy_params / "spec.yaml", params={"lr": [0.1], "tracker.match_thres": [0.5]})
    with pytest.raises(ConfigError) as err:
        sweep.load_spec(spec)
    text = str(err.value)
    # line 4: metric, params, lr, then the misspelt key
    assert text == (f"{spec}:4: params.tracker.match_thres: not a key of params.yaml; "
                    "did you mean 'tracker.match_thresh'?")


def test_invalid_value_is_caught_before_queuing(toy_params):
    spec = write_spec(toy_params / "spec.yaml", params={"tracker.match_thresh": [0.5, "high"]})
    # line 3: metric, params, then the key whose inline list holds the bad value
    with pytest.raises(ConfigError, match=r"spec.yaml:3: params.tracker.match_thresh: value 'high' .*expected a number"):
        sweep.load_spec(spec)


@pytest.mark.parametrize("fields, message", [
    ({"method": "bayes"}, "method: invalid value 'bayes' (allowed: grid, random)"),
    ({"method": "random", "trials": 3}, "trials: random search needs 1 <= trials <= 2"),
    ({"metric": ""}, "metric: required"),
    ({"jobs": 0}, "jobs: must be >= 1"),
    ({"params": {"lr": []}}, "params.lr: needs at least one value"),
    ({"trails": 3}, "trails: unknown key"),
])
def test_bad_spec_fields(toy_params, fields, message):
    with pytest.raises(ConfigError) as err:
        sweep.load_spec(write_spec(toy_params / "spec.yaml", **fields))
    assert message in str(err.value)


def test_yaml_exponent_without_dot_is_a_float(toy_params):
    (toy_params / "spec.yaml").write_text("metric: m.json:v\nparams:\n  lr: [1e-4, 3e-4]\n")
    assert sweep.load_spec(toy_params / "spec.yaml").params == {"lr": [1e-4, 3e-4]}


def test_dry_run_prints_the_commands(toy_params, capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "sweep", ("stagetrack.sweep", "sweep"))
    spec = write_spec(toy_params / "spec.yaml", jobs=2)
    assert cli.main(["sweep", str(spec), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [sweep.trial_name({"lr": lr, "tracker.match_thresh": 0.7}) for lr in (1e-4, 1e-3)]
    assert lines == [
        f"dvc exp run --queue -n {names[0]} -S lr=0.0001 -S tracker.match_thresh=0.7",
        f"dvc exp run --queue -n {names[1]} -S lr=0.001 -S tracker.match_thresh=0.7",
        "dvc exp run --run-all -j 2",
        "dvc queue stop",
    ]
    assert cli.main(["sweep", str(spec), "--dry-run", "--no-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_cli_error_is_one_line(toy_params, capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "sweep", ("stagetrack.sweep", "sweep"))
    spec = write_spec(toy_params / "spec.yaml", params={"nope": [1]})
    assert cli.main(["sweep", str(spec), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "params.nope: not a key of params.yaml" in err and "Traceback" not in err


# ---------------------------------------------------------------- through DVC's queue


def _git_dvc(repo: Path, *cmd: str) -> str:
    return subprocess.run(list(cmd), cwd=repo, check=True, text=True, capture_output=True, timeout=120).stdout


def _stop_workers(repo: Path) -> None:
    """`dvc queue stop`, then wait until no worker is left (they exit asynchronously)."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "queue", "stop"], cwd=repo, capture_output=True, timeout=60)
    for _ in range(30):
        status = subprocess.run([*dvc, "queue", "status"], cwd=repo, capture_output=True, text=True, timeout=60).stdout
        if "0 active, 0 idle" in status:
            return
        time.sleep(1)
    raise AssertionError(f"queue workers still alive in {repo}:\n{status}")


@pytest.fixture
def toy_repo(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for var, value in (("NAME", "sweep"), ("EMAIL", "sweep@example.invalid")):
        monkeypatch.setenv(f"GIT_AUTHOR_{var}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{var}", value)
    (repo / "params.yaml").write_text(TOY_PARAMS)
    (repo / "score.py").write_text(SCORE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _git_dvc(repo, "git", "init", "-q", "-b", "main")
    _git_dvc(repo, sys.executable, "-m", "dvc", "init", "-q")
    _git_dvc(repo, sys.executable, "-m", "dvc", "repro", "-q")
    write_spec(repo / "spec.yaml")  # committed too: queued runs see only what git tracks
    _git_dvc(repo, "git", "add", "-A")
    _git_dvc(repo, "git", "commit", "-qm", "toy pipeline")
    monkeypatch.chdir(repo)
    yield repo
    _stop_workers(repo)


@pytest.mark.slow
def test_sweep_runs_every_trial_through_the_queue(toy_repo, capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "sweep", ("stagetrack.sweep", "sweep"))
    assert cli.main(["sweep", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    best, worst = (sweep.trial_name({"lr": lr, "tracker.match_thresh": 0.7}) for lr in (1e-3, 1e-4))
    # HOTA = 1000 * lr + 0.7: lr 1e-3 -> 1.7 (best, mode max), lr 1e-4 -> 0.8
    assert f"best: {best}  lr=0.001 tracker.match_thresh=0.7  all.HOTA=1.7" in out
    table = [line.split() for line in out.splitlines() if line.startswith(("1 ", "2 "))]
    assert table == [["1", best, "0.001", "0.7", "1.7"], ["2", worst, "0.0001", "0.7", "0.8"]]

    shown = json.loads(_git_dvc(toy_repo, sys.executable, "-m", "dvc", "exp", "show", "--json"))
    found = sweep.experiments(shown)
    assert {best, worst} <= set(found)
    assert found[worst]["metrics"]["metrics.json"]["data"]["all"]["HOTA"] == pytest.approx(0.8)
    assert found[worst]["params"]["params.yaml"]["data"]["lr"] == pytest.approx(1e-4)

    # the same sweep again queues nothing and reports the same ranking
    assert cli.main(["sweep", "spec.yaml"]) == 0
    captured = capsys.readouterr()
    assert f"best: {best}" in captured.out and "2 of 2 experiments exist already" in captured.err
