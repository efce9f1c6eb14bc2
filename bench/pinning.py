"""What the pinned numerics cost: each learned part trained pinned and unpinned, in turn.

Each round trains the part tiny in a fresh process (``tests/repro/worker.py``, the same job the
reproducibility tests run) once with the project's pinning and once without it
(``STAGETRACK_REPRO_UNPINNED=1``: each library's own kernel choice and thread count), the two
alternated so that a drift of the machine's speed hits both. Reported per part: the median
wall seconds of each and the median of the per-round ratios pinned / unpinned (> 1 = pinning
costs time). On a machine whose best kernels are AVX512 the ratio also holds the AVX2 cap; on an
AVX2 machine only the fixed threads and deterministic algorithms remain.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stagetrack import numerics

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "repro" / "worker.py"


def _once(part: str, pinned: bool) -> float:
    env = {**os.environ}
    if not pinned:
        env["STAGETRACK_REPRO_UNPINNED"] = "1"
    for var in numerics.environment(numerics.NumericsConfig()):
        env.pop(var, None)  # the bench's own process is pinned: its children must choose for themselves
    with tempfile.TemporaryDirectory(prefix="stagetrack-pinning-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(WORKER), part], cwd=tmp, env=env, capture_output=True,
                              text=True, timeout=600)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{part} ({'pinned' if pinned else 'unpinned'}) failed: {proc.stderr[-600:]}")
    return seconds


def run(parts: tuple[str, ...] = ("detector", "reid", "assoc"), rounds: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "cpu_count": os.cpu_count()}
    for part in parts:
        pinned, unpinned = [], []
        for _ in range(rounds):
            pinned.append(_once(part, True))
            unpinned.append(_once(part, False))
        out[part] = {
            "pinned_s": round(statistics.median(pinned), 2),
            "unpinned_s": round(statistics.median(unpinned), 2),
            "ratio": round(statistics.median(p / u for p, u in zip(pinned, unpinned)), 3),
        }
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
