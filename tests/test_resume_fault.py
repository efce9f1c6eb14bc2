"""The resume fault test: SIGKILL a training stage inside an epoch of each part, re-run `dvc repro`.

In a temporary copy of the repo with the smoke params (two epochs per part), stage 1 first runs
uninterrupted; its outputs are the reference. Then `dvc repro -f -s stage1` is killed
(``STAGETRACK_FAULT_KILL``, a real SIGKILL of the stage's process) in the second epoch of the
detector, and each following `dvc repro -s stage1` is killed in the second epoch of the next part
(ReID, then association), the last one runs to the end. Each re-run must say in its log that it
resumed (the finished parts restored, the interrupted one continued after its first epoch, never
trained from the start), and the stage must end with the reference's bytes: every model file,
the metrics, the dvclive curves and the resume state. A corrupt checkpoint in the resume state
is an error naming it, not a silent restart.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from stagetrack.config import merge
from stagetrack.io import sha256_file
from stagetrack.resume import FAULT_ENV

from test_smoke_repro import HERE, _env, copy_repo, run

pytestmark = pytest.mark.slow

TWO_EPOCHS = {"detector": {"epochs": 2}, "reid": {"epochs": 2}, "assoc": {"epochs": 2}}
OUTPUTS = ("models/stage1", "models/stage1.resume", "metrics/live/stage1")


def _fingerprint(repo: Path) -> dict[str, str]:
    out = {f"{path}/{file.relative_to(repo / path).as_posix()}": sha256_file(file)
           for path in OUTPUTS for file in sorted((repo / path).rglob("*")) if file.is_file()}
    out["metrics/stage1.json"] = (repo / "metrics" / "stage1.json").read_text()
    return out


def _log(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fault")
    repo = tmp / "repo"
    repo.mkdir()
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    overlay = merge(yaml.safe_load((HERE / "smoke" / "params_overlay.yaml").read_text()), TWO_EPOCHS)
    (repo / "params.yaml").write_text(yaml.safe_dump(merge(params, overlay), sort_keys=False))
    env = _env(tmp)
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "fault"], repo, env)
    run(["dvc", "repro", "build_data"], repo, env)
    start = time.perf_counter()
    run(["dvc", "repro", "-s", "stage1"], repo, env)
    seconds = time.perf_counter() - start
    shutil.copytree(repo / "models" / "stage1", tmp / "reference")  # to compare by hand when this test fails
    return repo, env, _fingerprint(repo), seconds


def _killed(repo: Path, env: dict, part: str, *, force: bool = False) -> tuple[str, float]:
    start = time.perf_counter()
    proc = run(["dvc", "repro", *(["-f"] if force else []), "-s", "stage1"], repo,
               {**env, FAULT_ENV: f"{part}:2:2"}, check=False)
    assert proc.returncode != 0, f"the kill in {part} did not happen:\n{_log(proc)[-3000:]}"
    assert f"{FAULT_ENV}={part}:2:2: killing this process" in _log(proc), _log(proc)[-3000:]
    return _log(proc), time.perf_counter() - start


def test_killed_in_each_part_resumes_to_the_same_bytes(reference):
    repo, env, expected, uninterrupted_s = reference
    state = repo / "models" / "stage1.resume"
    assert json.loads((state / "STATE.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in state.iterdir()) == ["STATE.json"], "a finished stage keeps no checkpoint"

    log1, t1 = _killed(repo, env, "detector", force=True)
    assert "detector: exact state" not in log1  # the first run trained from the start
    assert (state / "detector" / "state.pt").is_file()

    # a corrupt checkpoint in the resume state: an error naming it, no traceback, nothing lost
    good = (state / "detector" / "state.pt").read_bytes()
    (state / "detector" / "state.pt").write_bytes(good[: len(good) // 2])
    bad = run(["dvc", "repro", "-s", "stage1"], repo, env, check=False)
    assert bad.returncode != 0
    assert "stage1.resume/detector/state.pt" in _log(bad) and "Traceback" not in _log(bad), _log(bad)[-3000:]
    (state / "detector" / "state.pt").write_bytes(good)

    log2, t2 = _killed(repo, env, "reid")
    assert "resuming an interrupted run (finished parts: none)" in log2
    assert re.search(r"detector: exact state of epoch 1 restored", log2), log2[-4000:]
    log3, t3 = _killed(repo, env, "assoc")
    assert "finished parts: detector" in log3 and "detector finished in the interrupted run" in log3
    assert "ReID: resuming after epoch 1 of 2" in log3, log3[-4000:]
    start = time.perf_counter()
    final = run(["dvc", "repro", "-s", "stage1"], repo, env)
    t4 = time.perf_counter() - start
    log4 = _log(final)
    assert "finished parts: detector, reid" in log4
    assert re.search(r"resuming from \S+last\.pt: epoch 0 done", log4), log4[-4000:]

    assert _fingerprint(repo) == expected
    status = json.loads(run(["dvc", "status", "--json", "stage1"], repo, env).stdout)
    assert status == {}, status
    print(f"\nuninterrupted {uninterrupted_s:.1f} s; killed runs {t1:.1f} + {t2:.1f} + {t3:.1f} s, "
          f"final {t4:.1f} s; total {t1 + t2 + t3 + t4:.1f} s")
