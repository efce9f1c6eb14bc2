"""Pipeline overhead: ``dvc repro`` with nothing changed, and re-running only the eval stage.

Both run in the repository itself, so they only run when ``dvc status`` is clean (nothing to
re-run): then ``dvc repro`` must run no stage, and ``dvc repro -f -s eval`` re-computes
``metrics/eval.json`` and ``results/`` from unchanged inputs (checked: ``dvc status`` is clean
again afterwards and ``metrics/eval.json`` is byte-identical). When the workspace has changes,
both are skipped with the reason, and the eval stage's own command is timed instead with its
outputs in a temporary folder (the repository is not written to).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .world import ROOT

DVC = str(Path(sys.executable).parent / "dvc")
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def dvc_status() -> tuple[float, dict[str, Any] | None, str]:
    """(seconds, parsed ``dvc status --json`` or None if it failed, error text)."""
    seconds, proc = _timed([DVC, "status", "--json"])
    if proc.returncode != 0:
        return seconds, None, proc.stderr.strip()[-500:]
    return seconds, json.loads(proc.stdout or "{}"), ""


def _tail(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr).strip()[-400:]


def eval_command(tmp: Path) -> dict[str, Any]:
    """The eval stage's command with metrics/results in ``tmp`` (stage metrics copied there)."""
    metrics = tmp / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "metrics").glob("stage*.json")):
        shutil.copyfile(path, metrics / path.name)
    cmd = [sys.executable, "stages/evaluate.py", "--params", "params.yaml", "--data", "data/built",
           "--models", "models", "--metrics-dir", str(metrics), "--results", str(tmp / "results")]
    seconds, proc = _timed(cmd)
    return {"command": " ".join(["python", *cmd[1:]]), "seconds": round(seconds, 2), "ok": proc.returncode == 0,
            **({} if proc.returncode == 0 else {"error": _tail(proc)})}


def skipped(reason: str) -> dict[str, Any]:
    """The section when it does not run at all."""
    return {"repro_nothing_changed": {"skipped": reason}, "repro_eval_only": {"skipped": reason}}


def run(tmp: Path, *, with_eval: bool) -> dict[str, Any]:
    """Timings, or skips with reasons; ``with_eval`` False skips every eval re-run (tiny size)."""
    status_s, status, error = dvc_status()
    out: dict[str, Any] = {"dvc_status_s": round(status_s, 2)}
    if status is None:
        reason = f"`dvc status` failed: {error}"
        return {**out, "repro_nothing_changed": {"skipped": reason}, "repro_eval_only": {"skipped": reason}}
    if status:
        reason = f"`dvc status` is not clean (stages with changes: {', '.join(sorted(status))})"
        out["repro_nothing_changed"] = {"skipped": reason}
        out["repro_eval_only"] = {"skipped": reason + "; it would record the changed inputs in dvc.lock"}
        out["eval_command_tmp"] = eval_command(tmp) if with_eval else {"skipped": "tiny size"}
        return out
    seconds, proc = _timed([DVC, "repro"])
    out["repro_nothing_changed"] = {"command": "dvc repro", "seconds": round(seconds, 2),
                                    "ok": proc.returncode == 0, "output_tail": _tail(proc)}
    if not with_eval:
        out["repro_eval_only"] = {"skipped": "tiny size"}
        return out
    eval_json = ROOT / "metrics" / "eval.json"
    before = eval_json.read_bytes() if eval_json.is_file() else b""
    seconds, proc = _timed([DVC, "repro", "-f", "-s", "eval"])
    _, after_status, _ = dvc_status()
    out["repro_eval_only"] = {
        "command": "dvc repro -f -s eval", "seconds": round(seconds, 2), "ok": proc.returncode == 0,
        "status_clean_after": after_status == {},
        "eval_json_unchanged": eval_json.is_file() and eval_json.read_bytes() == before}
    return out
