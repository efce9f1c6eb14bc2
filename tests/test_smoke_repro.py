"""End to end: `dvc repro` of the whole pipeline on tiny params, in a temporary copy of the repo.

One module-scoped run feeds several assertions: the pipeline completes with no network access
outside loopback (a sitecustomize guard is injected into every Python process, DVC's stage
commands included), metrics are complete and non-trivial, a second repro runs nothing, editing a
stage-3 key re-runs only stage3 and what follows it, and `dvc exp run -S lr=1e-5` works as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stagetrack.config import load_params, merge

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE / "netguard"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["STAGETRACK_NETGUARD_LOG"] = str(tmp / "network.log")
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "smoke"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "smoke@example.invalid"
    env.pop("STAGETRACK_CACHE", None)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def copy_repo(dst: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), like a fresh clone."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict[str, str], subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("smoke")
    repo = tmp / "repo"
    repo.mkdir()
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    overlay = yaml.safe_load((HERE / "smoke" / "params_overlay.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(merge(params, overlay), sort_keys=False))
    load_params(repo / "params.yaml")  # the overlay itself must be valid params
    env = _env(tmp)
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "smoke"], repo, env)
    proc = run(["dvc", "repro"], repo, env)
    return repo, env, proc


def test_repro_completes_without_network(smoke):
    repo, env, _ = smoke
    log = Path(env["STAGETRACK_NETGUARD_LOG"])
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"network access attempted during repro:\n{attempts[:4000]}"


def test_eval_metrics_are_complete(smoke):
    repo, _, _ = smoke
    metrics = json.loads((repo / "metrics" / "eval.json").read_text())
    for domain in ("dancetrack", "bdd", "visdrone", "all"):
        combined = metrics[domain]["combined"]
        assert set(combined) == {"HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW"}
        assert all(isinstance(v, (int, float)) for v in combined.values())
    assert "person" in metrics["dancetrack"]
    assert set(metrics["compare"]) == {"classical", "learned", "new_id_per_box"}
    assert set(metrics["forgetting"]) == set(metrics["change_vs_previous"]) == {"stage2", "stage3"}
    for stage in ("stage1", "stage2", "stage3"):
        stage_metrics = json.loads((repo / "metrics" / f"{stage}.json").read_text())
        assert {"detector", "reid", "assoc", "val"} <= set(stage_metrics)
        for part in ("detector", "reid", "assoc"):
            assert list((repo / "metrics" / "live" / stage / part / "plots" / "metrics").rglob("*.tsv")), part
        assert (repo / "models" / stage / "assoc.pt").exists()
    assert list((repo / "results" / "classical").rglob("*.txt"))
    # review material: curves for dvc plots, GT-vs-prediction renders, the dashboard
    for stage in ("stage1", "stage2", "stage3"):
        curves = repo / "metrics" / "live" / stage / "curves"
        assert json.loads((curves / "reid_cmc.json").read_text())[0]["rank"] == 1
        assert isinstance(json.loads((curves / "detector_pr.json").read_text()), list)
    assert len(json.loads((repo / "metrics" / "plots" / "val_by_stage.json").read_text())) == 3
    for domain in ("dancetrack", "bdd", "visdrone"):
        assert len(list((repo / "results" / "viz" / domain).glob("*.mp4"))) == 1
        assert len(list((repo / "results" / "viz" / domain).glob("*.png"))) == 1
    assert (repo / "plots" / "dashboard.png").stat().st_size > 10_000


def test_second_repro_runs_nothing(smoke):
    repo, env, _ = smoke
    status = run(["dvc", "status", "--json"], repo, env)
    assert json.loads(status.stdout) == {}
    again = run(["dvc", "repro"], repo, env)
    assert "Running stage" not in again.stdout, again.stdout


def test_stage3_key_invalidates_only_stage3_and_downstream(smoke):
    repo, env, _ = smoke
    original = (repo / "params.yaml").read_text()
    try:
        params = yaml.safe_load(original)
        params["stage3"]["lr_scale"] = 0.25
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        # `dvc status` names only the stage whose own deps changed; reproducing must then run
        # stage3 and what depends on it (eval, dashboard), and reuse stages 1-2 as they are.
        status = json.loads(run(["dvc", "status", "--json"], repo, env).stdout)
        assert set(status) == {"stage3"}, status
        out = run(["dvc", "repro"], repo, env).stdout
        ran = set(re.findall(r"Running stage '([^']+)'", out))
        assert ran == {"stage3", "eval", "dashboard"}, out
    finally:
        (repo / "params.yaml").write_text(original)


def test_dvc_exp_run_with_exponent_lr(smoke):
    repo, env, _ = smoke
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "after repro"], repo, env)
    run(["dvc", "exp", "run", "-S", "lr=1e-5", "-n", "lr-1e-5"], repo, env)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, env).stdout)
    text = json.dumps(shown)
    assert "lr-1e-5" in text and "1e-05" in text
    assert "HOTA" in text
