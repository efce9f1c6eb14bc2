"""Same params and seed, same bytes: each learned part trained twice in fresh processes.

The two runs of each pair get different ``ATEN_CPU_CAPABILITY`` values in their environment
(``avx2``/``avx512``, as two machines would pick): the project's pinning must override them. An
unpinned control shows that the variable does change torch's results, so the equal bytes come
from the pinning, not from a machine on which the variable happens to do nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parent / "repro" / "worker.py"

pytestmark = pytest.mark.timeout(300)


def train(part: str, cwd: Path, **env: str) -> dict[str, str]:
    """Run the worker in ``cwd``; sha256 of every file it wrote under ``out/``."""
    cwd.mkdir(parents=True)
    full = {**os.environ, **env}
    proc = subprocess.run([sys.executable, str(WORKER), part], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = cwd / "out"
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file()}
    assert files, f"{part} wrote nothing"
    return files


@pytest.mark.parametrize("part", ["detector", "reid", "assoc"])
def test_part_trains_to_identical_bytes(part, tmp_path):
    first = train(part, tmp_path / "a", ATEN_CPU_CAPABILITY="avx2")
    second = train(part, tmp_path / "b", ATEN_CPU_CAPABILITY="avx512")
    assert first == second


def test_unpinned_kernel_level_changes_the_weights(tmp_path):
    """The control: without the pinning, torch's kernel level alone changes the trained bytes."""
    avx2 = train("assoc", tmp_path / "a", ATEN_CPU_CAPABILITY="avx2", STAGETRACK_REPRO_UNPINNED="1")
    default = train("assoc", tmp_path / "b", ATEN_CPU_CAPABILITY="default", STAGETRACK_REPRO_UNPINNED="1")
    assert avx2["assoc.pt"] != default["assoc.pt"]
    pinned = train("assoc", tmp_path / "c", ATEN_CPU_CAPABILITY="default")
    assert pinned == train("assoc", tmp_path / "d", ATEN_CPU_CAPABILITY="avx2")
