"""Data build: frames per second and peak memory of ``stagetrack build`` at two budget sizes.

Each build runs in its own Python process (``python -m bench.build --child``) on the world's raw
sources, writing into a temporary folder, with every stage's frame budgets scaled by a factor
(rounded to whole clips; ``build.allow_partial`` on, so a budget above a small pool takes the
pool). The child reports the build's own wall time (imports excluded) and its peak resident
memory: ``VmHWM`` of ``/proc/self/status`` (the builder runs in threads, so this is all of it).
Not ``ru_maxrss``: on Linux it keeps the high-water mark of the process it was forked from across
``exec`` (measured: a child of a 600 MB parent reported 613 MB by ``ru_maxrss`` and 13 MB by
``VmHWM``), and the benchmark's parent holds models and cached frames.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .world import ROOT, World

STAGE_KEYS = ("stage1", "stage2", "stage3")


def budget_overrides(world: World, factor: float) -> dict[str, Any]:
    """Every enabled source's ``frame_budget`` times ``factor``, in whole clips (at least one)."""
    clip = int(world.params.build.clip_length)
    over: dict[str, Any] = {"build": {"allow_partial": True}}
    for stage in STAGE_KEYS:
        data = {}
        for source, mix in world.params.stage(stage).data.items():
            if mix.enabled and mix.frame_budget > 0:
                data[source] = {"frame_budget": max(clip, clip * math.ceil(mix.frame_budget * factor / clip))}
        over[stage] = {"data": data}
    return over


def run(world: World, tmp: Path, factors: tuple[float, ...]) -> dict[str, Any]:
    """One child build per budget factor; frames/s and peak RSS of each."""
    out: dict[str, Any] = {"world": world.kind, "runs": {}}
    for factor in factors:
        params = world.write_params(tmp / f"build_{factor}" / "params.yaml", budget_overrides(world, factor))
        target = tmp / f"build_{factor}" / "built"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bench.build", "--child", str(params), str(target)],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"build child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        report = child["report"]
        stage_frames = {s: report[s]["frames"] for s in STAGE_KEYS}
        frames = report["val"]["frames"] + sum(stage_frames.values())
        out["runs"][f"x{factor:g}"] = {
            "budget_factor": factor, "stage_frames": stage_frames, "val_frames": report["val"]["frames"],
            "frames": frames, "build_s": round(child["seconds"], 3), "process_wall_s": round(wall, 3),
            "frames_per_s": round(frames / child["seconds"], 1),
            "peak_rss_mb": round(child["peak_rss_kb"] / 1024, 1),
            "rss_after_imports_mb": round(child["peak_rss_before_build_kb"] / 1024, 1),
            "output_mb": round(sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 2**20, 1),
        }
    return out


def peak_rss_kb() -> int:
    """This process's peak resident set size in kB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(params_path: str, out: str) -> None:
    """Run one build; print its report, wall time and peak RSS (before and after) as one JSON line."""
    from stagetrack import offline

    offline.configure()
    from stagetrack.config import load_params
    from stagetrack.data.builder import build

    params = load_params(params_path)
    baseline_kb = peak_rss_kb()
    start = time.perf_counter()
    report = build(params, out, metrics_dir=None)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "report": report, "peak_rss_before_build_kb": baseline_kb,
                      "peak_rss_kb": peak_rss_kb()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="child process of the data-build benchmark")
    parser.add_argument("--child", nargs=2, metavar=("PARAMS", "OUT"), required=True)
    _child(*parser.parse_args().child)
