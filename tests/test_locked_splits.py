"""The locked test videos are for the final report only: no code path that chooses reads them.

Choosing happens on the selection split (checkpoints, early stopping) and on the locked val
videos (params). A static scan finds every place in the code that names the test split (the
string ``"test"`` as a split, ``metrics/test.json``, ``data/built/test``) and checks it against the
list of places allowed to: the builder that exports it, the eval stage that scores it, the seeds
aggregate and ``compare --split test`` that report it, the sweep that refuses it, and the
benchmark's final table. A runtime check (tests/test_smoke_repro.py) trains a stage with the
test videos removed from disk.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stagetrack.errors import StagetrackError
from stagetrack.sweep import SweepSpec, metric_value

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("src/stagetrack", "stages", "bench", "ci")

# (file, enclosing function or class or "<module>") allowed to name the test split, and why
ALLOWED = {
    ("src/stagetrack/data/builder.py", "<module>"): "SPLITS: the builder exports both locked splits",
    ("src/stagetrack/evaluate/pipeline.py", "run_eval"): "the eval stage scores test into metrics/test.json",
    ("src/stagetrack/cli.py", "<module>"): "the evaluate-stages help line names metrics/test.json",
    ("src/stagetrack/seeds.py", "<module>"): "TEST_METRICS: the seeds aggregate reports test.* beside val",
    ("src/stagetrack/seeds.py", "run"): "the aggregate (a report) reads val and test",
    ("src/stagetrack/compare.py", "add_arguments"): "--split test: the final report of a choice made on val",
    ("src/stagetrack/compare.py", "run"): "--split test, with a WARNING that it is no way to choose",
    ("src/stagetrack/sweep.py", "<module>"): "CHOOSING_FORBIDDEN: the sweep refuses to rank on test",
    ("src/stagetrack/seeds.py", "split_metrics"): "the test document's keys get the test. prefix",
    ("bench/experiments.py", "_test_videos"): "the benchmark's final held-out table",
    ("bench/world.py", "synthetic_world"): "the benchmark's tiny manifest locks a test video",
    ("bench/forgetting.py", "main"): "--split test: the forgetting ablation's final report of the alpha chosen on val",
}


def _mentions(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        v = node.value
        return v == "test" or "test.json" in v or v.rstrip("/").endswith("built/test")
    return False


def split_sites(root: Path = REPO) -> set[tuple[str, str]]:
    sites = set()
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(), rel)
            parents: dict[ast.AST, ast.AST] = {}
            for parent in ast.walk(tree):
                for child in ast.iter_child_nodes(parent):
                    parents[child] = parent
            docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)
                          and isinstance(n.value, ast.Constant)}
            for node in ast.walk(tree):
                if not _mentions(node) or id(node) in docstrings:
                    continue
                owner, up = "<module>", parents.get(node)
                while up is not None:
                    if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        owner = up.name
                        break
                    up = parents.get(up)
                sites.add((rel, owner))
    return sites




def test_only_reporting_code_names_the_test_split():
    sites = split_sites()
    unexpected = sorted(sites - set(ALLOWED))
    assert not unexpected, f"code that may not read the locked test videos names them: {unexpected}"
    # the scan is live: the allowed sites exist (a renamed function would leave a stale entry)
    assert set(ALLOWED) <= sites, sorted(set(ALLOWED) - sites)


def test_the_scan_catches_a_new_reader(tmp_path):
    (tmp_path / "src" / "stagetrack").mkdir(parents=True)
    (tmp_path / "src" / "stagetrack" / "tune.py").write_text(
        'def choose(data):\n    return data / "test"\n')
    assert ("src/stagetrack/tune.py", "choose") in split_sites(tmp_path)


def test_a_sweep_refuses_to_rank_on_the_test_metrics():
    spec = SweepSpec(metric="metrics/test.json:all.combined.HOTA", params={"lr": [1e-3]})
    assert spec.validate()[0] == "metric"
    shown = {"metrics/eval.json": {"data": {"all": {"HOTA": 40.0}}},
             "metrics/test.json": {"data": {"all": {"HOTA": 99.0}, "only": {"here": 1.0}}}}
    assert metric_value(shown, "all.HOTA") == 40.0  # a bare key never resolves to test
    assert metric_value(shown, "only.here") is None
    with pytest.raises(StagetrackError, match="locked test videos"):
        metric_value(shown, "metrics/test.json:all.HOTA")
