"""The pull-request review: ci/review_report.py end to end, the run cache through S3, the workflow.

A temporary git+DVC repo with a tiny pipeline (a param, metrics in eval.json's shape with
forgetting verdicts, a plot, a dashboard PNG) has a ``main`` commit and a second commit that
changes the param; the report must show the changed metric with both values, the param change,
the verdict rows, and images that decode. The run cache goes to a moto S3 server on loopback and
comes back into a fresh clone, whose `dvc repro` then runs nothing. The workflow is validated
against GitHub's workflow schema (vendored by check-jsonschema, offline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_s3_remote import BUCKET, _env, _run, s3_endpoint  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "ci" / "review_report.py"
WORKFLOW = REPO / ".github" / "workflows" / "review.yml"

pytestmark = pytest.mark.slow

TRAIN = '''\
import json, pathlib, yaml
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
lr = float(yaml.safe_load(open("params.yaml"))["lr"])
hota = 50 + 100 * lr
row = lambda d: {"delta": d, "lo": d - 1.0, "hi": d + 1.0, "verdict": "gain" if d - 1 > 0 else "loss" if d + 1 < 0 else "indistinguishable"}
metrics = {"all": {"combined": {"HOTA": hota, "IDF1": hota + 1}},
           "forgetting": {"stage2": {"bdd_person_HOTA": row(10 * lr - 5)}},
           "change_vs_previous": {"stage3": {"bdd_vehicle_HOTA": row(-30 * lr)}}}
pathlib.Path("metrics/plots").mkdir(parents=True, exist_ok=True)
pathlib.Path("metrics/eval.json").write_text(json.dumps(metrics, indent=2))
pathlib.Path("metrics/plots/loss.json").write_text(json.dumps([{"step": s, "loss": 1 / (1 + lr * s)} for s in range(5)]))
pathlib.Path("plots").mkdir(exist_ok=True)
fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([0, 1], [0, hota]); fig.savefig("plots/dashboard.png"); plt.close(fig)
'''
DVC_YAML = '''\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [lr]
    metrics:
      - metrics/eval.json:
          cache: false
    plots:
      - metrics/plots/loss.json:
          cache: false
          x: step
          y: loss
    outs:
      - plots/dashboard.png:
          cache: false
'''


def _git_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_EMAIL": "t@example.invalid"}


@pytest.fixture(scope="module")
def review_repo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    repo = tmp / "repo"
    repo.mkdir()
    env = _git_env(_env(tmp))
    (repo / "train.py").write_text(TRAIN)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("lr: 0.1\n")
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    _run([sys.executable, "-m", "dvc", "init", "-q"], repo, env)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo, env)
    _run([sys.executable, "-m", "dvc", "repro"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "main"], repo, env)
    _run(["git", "checkout", "-q", "-b", "change"], repo, env)
    (repo / "params.yaml").write_text("lr: 0.2\n")
    _run([sys.executable, "-m", "dvc", "repro"], repo, env)
    _run(["git", "commit", "-qam", "lr 0.2"], repo, env)
    return tmp, repo, env


def test_report_shows_the_changed_metric_param_verdicts_and_images(review_repo):
    tmp, repo, env = review_repo
    out = _run([sys.executable, str(REPORT), "--base", "main", "--out", "review"], repo, env)
    report = Path(out.strip().splitlines()[-1])
    text = (repo / report).read_text() if not report.is_absolute() else report.read_text()
    metric_rows = [line for line in text.splitlines() if "all.combined.HOTA" in line]
    assert metric_rows and "60" in metric_rows[0] and "70" in metric_rows[0], text
    param_rows = [line for line in text.splitlines() if line.startswith("| params.yaml") and "lr" in line]
    assert param_rows and "0.1" in param_rows[0] and "0.2" in param_rows[0], text
    assert "| stage3 | bdd_vehicle_HOTA | -6.00 | [-7.00, -5.00] | **loss** | -3.00 |" in text
    assert "| stage2 | bdd_person_HOTA | -3.00 | [-4.00, -2.00] | **loss** | -4.00 |" in text
    from PIL import Image

    images = sorted((repo / "review").glob("*.png"))
    assert {p.name for p in images} >= {"dashboard.png", "metrics_plots_loss.json.png"}
    for path in images:
        assert f"]({path.name})" in text
        with Image.open(path) as im:
            im.verify()
    log = tmp / "network.log"
    assert not log.exists() or log.read_text() == "", "the report reached the network"


def test_run_cache_round_trip_through_s3(review_repo, s3_endpoint, tmp_path):  # noqa: F811
    """`dvc push --run-cache` to the S3 remote; a fresh clone pulls it and reproduces nothing."""
    import boto3

    _, repo, env = review_repo
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=f"{BUCKET}-review")
    dvc = [sys.executable, "-m", "dvc"]
    _run([*dvc, "remote", "add", "-d", "store", f"s3://{BUCKET}-review/cache"], repo, env)
    _run([*dvc, "remote", "modify", "store", "endpointurl", s3_endpoint], repo, env)
    _run(["git", "commit", "-qam", "remote"], repo, env)
    _run([*dvc, "push", "--run-cache"], repo, env)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", "-b", "change", str(repo), str(clone)], tmp_path, env)
    _run([*dvc, "pull", "--run-cache"], clone, env)
    out = _run([*dvc, "repro"], clone, env)
    assert "Running stage" not in out, out
    assert (clone / "metrics" / "eval.json").read_bytes() == (repo / "metrics" / "eval.json").read_bytes()


def test_workflow_is_valid_and_calls_the_scripts(tmp_path):
    check = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    ok = subprocess.run([check, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = yaml.safe_load(WORKFLOW.read_text())
    steps = doc["jobs"]["review"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "ci/review_report.py" in runs and "ci/smoke_repro.sh" in runs
    assert "dvc pull --run-cache" in runs and "dvc push --run-cache" in runs
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    assert "pull_request" in doc[True]  # PyYAML reads the key `on` as True
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    bad = subprocess.run([check, "--builtin-schema", "vendor.github-workflows", str(broken)],
                         capture_output=True, text=True)
    assert bad.returncode != 0
