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
from conftest import leaf_paths

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
    env["STAGETRACK_PARAMS_TRACE"] = str(tmp / "params-trace")
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


def smoke_repro(tmp: Path) -> tuple[Path, dict[str, str], subprocess.CompletedProcess]:
    """A fresh copy of the repo with the smoke params, committed, then `dvc repro`."""
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


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict[str, str], subprocess.CompletedProcess]:
    return smoke_repro(tmp_path_factory.mktemp("smoke"))


def test_a_second_copy_writes_the_same_lock(smoke, tmp_path_factory):
    """Same code, params and seeds in another folder: the same dvc.lock, byte for byte (every
    model, metric and plot hashed equal), and the same metrics files."""
    repo, _, _ = smoke
    twin, _, _ = smoke_repro(tmp_path_factory.mktemp("twin"))
    assert (twin / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()
    for path in sorted((repo / "metrics").glob("*.json")):
        assert (twin / "metrics" / path.name).read_bytes() == path.read_bytes(), path.name
    assert not list((repo / "metrics").rglob("*timing*")), "wall-clock timings must stay out of metrics/"
    assert json.loads((repo / "timings" / "stage1.json").read_text())["detector_s"] > 0


def _stage_of(argv: list[str], stages: dict) -> str | None:
    """The dvc.yaml stage whose command this process ran (script + first argument)."""
    for name, spec in stages.items():
        words = spec["cmd"].split()
        if len(argv) >= 1 and argv[0] == words[1] and (len(words) < 3 or words[2].startswith("-")
                                                       or (len(argv) > 1 and argv[1] == words[2])):
            return name
    return None


def test_each_stage_lists_exactly_the_params_it_reads(smoke):
    """What each stage's processes read through the typed config (recorded under
    STAGETRACK_PARAMS_TRACE) against its ``params:`` list: a key read but not listed would let
    DVC serve a stale result; a listed section never read re-runs the stage for nothing."""
    repo, env, _ = smoke
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    read: dict[str, set[str]] = {name: set() for name in stages}
    for trace in Path(env["STAGETRACK_PARAMS_TRACE"]).glob("*.json"):
        record = json.loads(trace.read_text())
        stage = _stage_of(record["argv"], stages)
        if stage is not None:
            read[stage] |= set(record["keys"])
    problems = []
    for name, spec in stages.items():
        listed = [p if isinstance(p, str) else next(iter(p)) for p in spec.get("params", [])]
        assert read[name], f"no params trace from stage {name}"
        for key in sorted(read[name]):
            # `params.stage1` on the way to a listed `stage1.data` is no read of its own
            if not any(key == p or key.startswith(p + ".") or p.startswith(key + ".") for p in listed):
                problems.append(f"{name} reads {key} but does not list it")
        for p in listed:
            if not any(k == p or k.startswith(p + ".") for k in read[name]):
                problems.append(f"{name} lists {p} but never reads it")
    assert not problems, "\n".join(problems)


# params.yaml keys the smoke run's processes do not read, each with the code path that does (the
# test below fails on any other unread key, on an entry the smoke run does read, and on an entry
# whose field no code in src/ reads)
# key pattern -> (the module under src/stagetrack that reads it, when it does)
READ_OFF_THE_SMOKE_PATH = {
    "synth.*.frames": ("data/synth.py", "synth's worker processes (configs pickled to workers are not traced)"),
    "sources.*.split": ("data/sources.py", "the BDD reader's split: read for a source of format bdd only"),
    "build.allow_partial": ("data/builder.py", "the builder, when a stage's budget exceeds its pool"),
    "stage*.data.*.frame_budget": ("data/builder.py", "the builder, for a mix that is enabled (smoke: visdrone off "
                                                      "in stages 1-2)"),
    "stage*.data.*.replay_from": ("data/builder.py", "the builder, for a mix that is enabled"),
    "tracker.costs.iou": ("track/costs.py", "costs.blend, when a ReID or HSV cost is blended in (smoke: IoU only)"),
    "train.accumulate_steps": ("train/engine.py", "stagetrack train-assoc by hand (stages pass "
                                                  "stageN.accumulate_steps)"),
    "plan.*": ("plan.py", "stagetrack plan (the compute plan; no DVC stage)"),
    "viz.switch_highlight_frames": ("visual/truth.py", "classify_frame, for a prediction matched to ground truth"),
}


def test_every_params_key_is_read_by_some_code_path(smoke):
    """No dead knob: every leaf of params.yaml is read through the typed config by a process of
    the smoke run, named as ``${key}`` in dvc.yaml, or listed above with the path that reads it."""
    import fnmatch

    repo, env, _ = smoke
    read = set()
    for trace in Path(env["STAGETRACK_PARAMS_TRACE"]).glob("*.json"):
        read |= set(json.loads(trace.read_text())["keys"])
    leaves_read = {k for k in read if not any(o.startswith(k + ".") for o in read)}
    templated = set(re.findall(r"\$\{([^}]+)\}", (repo / "dvc.yaml").read_text()))
    keys = leaf_paths(yaml.safe_load((REPO / "params.yaml").read_text()), empty_mappings=False)

    def is_read(key: str) -> bool:
        return key in templated or any(key == r or key.startswith(r + ".") for r in leaves_read)

    unread = [k for k in keys if not is_read(k)]
    listed = {k: next((p for p in READ_OFF_THE_SMOKE_PATH if fnmatch.fnmatchcase(k, p)), None) for k in unread}
    assert not [k for k, p in listed.items() if p is None], \
        f"params keys no code path reads (remove them, wire them, or list the path that reads them): " \
        f"{[k for k, p in listed.items() if p is None]}"
    stale = [p for p in READ_OFF_THE_SMOKE_PATH if p not in listed.values()]
    assert not stale, f"listed as read off the smoke path but the smoke run reads them (drop the entry): {stale}"
    for pattern, (module, _) in READ_OFF_THE_SMOKE_PATH.items():   # the listed module really reads it
        field = pattern.rsplit(".", 1)[-1]
        code = (REPO / "src" / "stagetrack" / module).read_text()
        if field == "*":   # a whole section: the module reads that section
            field = pattern.split(".")[0]
        assert re.search(rf"\.{field}\b(?!\s*[:=][^=])", code), f"{pattern}: {module} does not read .{field}"


def test_bytecode_and_editor_files_change_no_stage(smoke):
    """.dvcignore: a __pycache__ (pytest, an import), an editor backup or an OS file appearing in
    a dependency folder leaves every stage up to date."""
    repo, env, _ = smoke
    junk = [repo / "src/stagetrack/detect/__pycache__/yolo.cpython-311.pyc", repo / "src/stagetrack/track/tracker.py~",
            repo / "src/stagetrack/.DS_Store", repo / "src/stagetrack/reid/.model.py.swp"]
    for path in junk:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk")
    try:
        assert json.loads(run(["dvc", "status", "--json"], repo, env).stdout) == {}
    finally:
        for path in junk:
            path.unlink()


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


def test_test_metrics_come_from_the_locked_test_videos_only(smoke):
    repo, _, _ = smoke
    test = json.loads((repo / "metrics" / "test.json").read_text())
    assert test["tracker"]["stage"] == "stage3" and set(test["compare"]) == {"classical", "learned", "new_id_per_box"}
    assert "HOTA" in test["ci"]["all"]["combined"] and "forgetting" not in test
    tracked = {p.stem for p in (repo / "results" / "test" / "classical").rglob("*.txt")}
    manifest = json.loads((repo / "tests" / "smoke" / "manifest.json").read_text())["sources"]
    assert tracked == {v for splits in manifest.values() for v in splits["test"]}
    assert tracked.isdisjoint({p.stem for p in (repo / "models" / "stage3" / "val_results").rglob("*.txt")})


def test_training_a_stage_needs_no_test_video(smoke, tmp_path):
    """The runtime half of tests/test_locked_splits.py: with the locked test videos gone from
    disk (the built export and every raw file of theirs), a training stage, which chooses its
    checkpoints, runs exactly as before: it never reads them."""
    repo, env, _ = smoke
    manifest = json.loads((repo / "tests" / "smoke" / "manifest.json").read_text())["sources"]
    ids = {v for splits in manifest.values() for v in splits["test"]}
    aside = tmp_path / "aside"
    moved = [p for p in (repo / "data" / "raw").rglob("*") if any(p.name.startswith(v) for v in ids)]
    moved = [p for p in moved if not any(q in p.parents for q in moved)] + [repo / "data" / "built" / "test"]
    for i, path in enumerate(moved):
        (aside / str(i)).mkdir(parents=True)
        shutil.move(path, aside / str(i) / path.name)
    try:
        assert not any(v in p.name for p in (repo / "data").rglob("*") for v in ids)
        run([sys.executable, "stages/train_stage.py", "stage1", "--params", "params.yaml", "--data", "data/built",
             "--models", str(tmp_path / "models"), "--metrics-dir", str(tmp_path / "metrics"),
             "--timings-dir", str(tmp_path / "timings")], repo, env)
        again = json.loads((tmp_path / "metrics" / "stage1.json").read_text())
        before = json.loads((repo / "metrics" / "stage1.json").read_text())
        for part in ("detector", "reid", "val", "val_classical"):
            assert again[part] == before[part], part
    finally:
        for i, path in enumerate(moved):
            shutil.move(aside / str(i) / path.name, path)


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


def test_eval_reports_intervals_and_verdicts(smoke):
    repo, _, _ = smoke
    metrics = json.loads((repo / "metrics" / "eval.json").read_text())
    hota = metrics["all"]["combined"]["HOTA"]
    ci = metrics["ci"]["all"]["combined"]["HOTA"]
    assert ci["lo"] <= hota <= ci["hi"]
    for table, extra in ((metrics["forgetting"], {"vs"}), (metrics["change_vs_previous"], set())):
        for rows in table.values():
            for row in rows.values():
                assert set(row) == {"delta", "lo", "hi", "verdict"} | extra
                assert row["verdict"] in {"gain", "loss", "indistinguishable"}
    # where it forgets: each tracking row split into DetA and AssA, beside the detector and the ReID alone
    stage3 = metrics["forgetting"]["stage3"]
    for field in ("HOTA", "DetA", "AssA", "IDF1", "AP50", "rank1"):
        assert f"dancetrack_person_{field}" in stage3, field
    assert {"bdd_mAP50", "bdd_rank1"} <= set(stage3)
    for stage in ("stage1", "stage2", "stage3"):
        row = metrics["parts"][stage]["visdrone_mAP50"]
        assert row["lo"] <= row["value"] <= row["hi"]
    assert set(metrics["forgot"]) <= {"stage2", "stage3"}


def test_stage3_keeps_the_interpolated_detector(smoke):
    """The smoke params ask stage 3 for alpha 0 only (tests/smoke/params_overlay.yaml): its kept
    detector is stage 2's weights, the fine-tuned one stays beside it, the metrics say so."""
    import torch

    repo, _, _ = smoke
    det = repo / "models" / "stage3" / "detector"
    stage3 = json.loads((repo / "metrics" / "stage3.json").read_text())["detector"]
    assert stage3["interpolation"] == {"alpha": 0.0, "fitness": {"0": pytest.approx(stage3["mAP50-95"], abs=1e-5)}}
    kept = torch.load(det / "best.pt", weights_only=False)["model"].state_dict()
    previous = torch.load(repo / "models" / "stage2" / "detector" / "best.pt", weights_only=False)["model"].state_dict()
    finetuned = torch.load(det / "finetuned.pt", weights_only=False)["model"].state_dict()
    assert all(torch.equal(kept[k], previous[k]) for k in kept if kept[k].is_floating_point())
    assert not all(torch.equal(finetuned[k], previous[k]) for k in kept if finetuned[k].is_floating_point())


def test_seeds_run_and_compare(smoke):
    """Two seeds through DVC's queue: the aggregate file, then a comparison with the committed run."""
    repo, env, _ = smoke
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "before seeds", "--allow-empty"], repo, env)
    run([sys.executable, "-m", "stagetrack.cli", "seeds", "--n", "2", "--name", "smoke"], repo, env)
    agg = json.loads((repo / "metrics" / "seeds.json").read_text())
    assert agg["seeds"] == [0, 1]
    hota = agg["metrics"]["all.combined.HOTA"]
    assert hota["min"] <= hota["mean"] <= hota["max"] and hota["n"] == 2
    per_seed = json.loads((repo / "metrics" / "seeds_per_seed.json").read_text())["metrics"]["all.combined.HOTA"]
    assert set(per_seed) == {"0", "1"} and min(per_seed.values()) == hota["min"]
    out = run([sys.executable, "-m", "stagetrack.cli", "compare", "HEAD", "smoke", "--json"], repo, env).stdout
    rows = json.loads(out)
    assert rows["all.combined.HOTA"]["n_b"] == 2 and rows["all.combined.HOTA"]["verdict"] in {
        "gain", "loss", "indistinguishable"}
