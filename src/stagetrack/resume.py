"""Resumable stages: what an interrupted training stage keeps, and how the next run picks it up.

A training stage (``pipeline.train_stage``) has three parts that train for epochs (detector,
ReID, association) and a validation pass. ``models/<stage>.resume/`` is the stage's resume
state, a DVC output with ``persist: true`` (DVC deletes the stage's other outputs before it runs
the command again; this one it leaves): ::

    STATE.json           {"stage", "key", "status": "running" | "complete", "done": {part: result}}
    <part>/              the part's checkpoints while it trains (``detector/state.pt``,
                         ``reid/state.pt``, ``assoc/work/last.pt``: every epoch, RNG states included)
    <part>/done/         a copy of the part's finished outputs, restored into ``models/<stage>/``

``key`` is a hash of everything the stage's result depends on: the params, the stage name, the
stage's inputs (its built data, the locked val set, the previous stage's models) and the
package's source. A run whose key matches a ``running`` state continues: finished parts are
restored, the interrupted part continues from its last finished epoch, and the stage ends with
the same bytes as a run that was never interrupted (CPU; the detector's DataLoader with
``workers: 0``). Another key, or a ``complete`` state, starts fresh: the directory is emptied
first, so no checkpoint of another configuration can be picked up. A completed stage leaves only
``STATE.json`` with ``status: complete`` (no checkpoints), so the output's bytes are those of its
configuration alone.

:func:`kill_point` is the fault-injection hook of the resume test: with
``STAGETRACK_FAULT_KILL=<part>:<epoch>:<batch>`` (1-based epoch and batch) in the environment,
the process SIGKILLs itself when that part reaches that batch. Unset, it does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .io import atomic_write_json, dumps_json, sha256_tree

log = logging.getLogger(__name__)

STATE_NAME = "STATE.json"
PARTS = ("detector", "reid", "assoc")
FAULT_ENV = "STAGETRACK_FAULT_KILL"
PACKAGE = Path(__file__).resolve().parent


# wall-clock seconds this process spent writing resume state, per part (timings/<stage>.json)
CHECKPOINT_SECONDS: dict[str, float] = defaultdict(float)


@contextlib.contextmanager
def timed(part: str) -> Iterator[None]:
    """Count the block's seconds as checkpointing cost of ``part``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        CHECKPOINT_SECONDS[part] += time.perf_counter() - start


def resume_dir(models: Path, stage: str) -> Path:
    return Path(models) / f"{stage}.resume"


def source_hash(root: Path = PACKAGE) -> str:
    """The package's Python source (what a stage's code is), independent of bytecode caches."""
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes() + b"\n")
    return digest.hexdigest()


def stage_key(params: dict[str, Any], stage: str, inputs: dict[str, Path | None]) -> str:
    """Hash of the params, the stage, its input trees (by name, relative path and content) and the code."""
    with timed("stage"):
        return _stage_key(params, stage, inputs)


def _stage_key(params: dict[str, Any], stage: str, inputs: dict[str, Path | None]) -> str:
    digest = hashlib.sha256()
    digest.update(dumps_json({"stage": stage, "params": params}).encode())
    for name, path in sorted(inputs.items()):
        tree = sha256_tree(path) if path is not None and Path(path).is_dir() else "none"
        digest.update(f"{name}\0{tree}\n".encode())
    digest.update(source_hash().encode())
    return digest.hexdigest()


@dataclass
class StageResume:
    """The resume state of one stage (see the module docstring)."""

    root: Path
    stage: str
    key: str
    done: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False

    @classmethod
    def open(cls, root: Path, stage: str, key: str) -> "StageResume":
        """Continue a matching interrupted run, else start fresh (emptying ``root``)."""
        root = Path(root)
        state_file = root / STATE_NAME
        state: dict[str, Any] | None = None
        if state_file.is_file():
            try:
                state = json.loads(state_file.read_text())
                if not isinstance(state, dict) or not isinstance(state.get("done", {}), dict):
                    raise ValueError("not a state object")
            except ValueError as err:
                raise CheckpointError(f"the stage's resume state cannot be read ({err})", file=state_file,
                                      hint=f"delete {root} to start the stage afresh") from None
        if state is not None and state.get("status") == "running" and state.get("key") == key:
            done = dict(state.get("done", {}))
            unknown = sorted(set(done) - set(PARTS))
            if unknown:
                raise CheckpointError(f"unknown parts {unknown} in the resume state", file=state_file,
                                      field="done", allowed=PARTS)
            log.info("%s: resuming an interrupted run (finished parts: %s)", stage,
                     ", ".join(done) or "none")
            return cls(root, stage, key, done, resumed=True)
        if state is not None and state.get("status") == "running":
            log.info("%s: the interrupted run in %s had other params, inputs or code: starting fresh", stage, root)
        if root.exists():
            shutil.rmtree(root)
        resume = cls(root, stage, key)
        resume._write("running")
        return resume

    def _write(self, status: str) -> None:
        atomic_write_json(self.root / STATE_NAME, {"stage": self.stage, "key": self.key, "status": status,
                                                   "done": self.done})

    def part_dir(self, part: str) -> Path:
        """Where ``part`` keeps its checkpoints while it trains."""
        path = self.root / part
        path.mkdir(parents=True, exist_ok=True)
        return path

    def restore(self, part: str, outputs: dict[str, Path]) -> dict[str, Any] | None:
        """If ``part`` finished in the interrupted run: copy its kept outputs back to ``outputs``
        (name -> path, as given to :meth:`finish`) and return its result; else None."""
        if part not in self.done:
            return None
        archive = self.root / part / "done"
        for name, dest in outputs.items():
            kept = archive / name
            if not kept.exists():
                raise CheckpointError(f"the resume state says {part} finished, but its output {name!r} is missing",
                                      file=kept, hint=f"delete {self.root} to start the stage afresh")
            _copy(kept, Path(dest))
        log.info("%s: %s finished in the interrupted run: restored, not trained again", self.stage, part)
        return self.done[part]

    def finish(self, part: str, outputs: dict[str, Path], result: dict[str, Any]) -> None:
        """Record that ``part`` finished: keep a copy of ``outputs`` (name -> file or folder) and its
        JSON ``result``; its epoch checkpoints are deleted."""
        with timed(part):
            archive = self.root / part / "done"
            if archive.exists():
                shutil.rmtree(archive)
            archive.mkdir(parents=True)
            for name, path in outputs.items():
                _copy(Path(path), archive / name)
            for leftover in sorted((self.root / part).iterdir()):
                if leftover.name != "done":
                    _remove(leftover)
            self.done[part] = json.loads(dumps_json(result))
            self._write("running")

    def complete(self) -> None:
        """The stage finished: drop every checkpoint, leave ``STATE.json`` saying so."""
        with timed("stage"):
            for item in sorted(self.root.iterdir()):
                if item.name != STATE_NAME:
                    _remove(item)
            self.done = {}
            self._write("complete")


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        _remove(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


class RecordingLive:
    """A ``dvclive.Live`` stand-in that forwards to ``live`` and records each step's metrics.

    ``steps`` (recorded by an interrupted run) are replayed into ``live`` first, so the curves of
    a resumed part equal an uninterrupted run's. ``live`` may be None (records only).
    """

    def __init__(self, live: Any, steps: list[dict[str, float]] | None = None) -> None:
        self.live = live
        self.steps: list[dict[str, float]] = []
        self._row: dict[str, float] = {}
        for row in steps or []:
            for name, value in row.items():
                self.log_metric(name, value)
            self.next_step()

    def log_metric(self, name: str, val: float, **kwargs: Any) -> None:
        if self.live is not None:
            self.live.log_metric(name, val, **kwargs)
        self._row[name] = float(val)

    def next_step(self) -> None:
        if self.live is not None:
            self.live.next_step()
        self.steps.append(self._row)
        self._row = {}


def kill_point(part: str, epoch: int, batch: int) -> None:
    """SIGKILL this process if ``STAGETRACK_FAULT_KILL`` names ``part:epoch:batch`` (1-based)."""
    target = os.environ.get(FAULT_ENV)
    if target and target == f"{part}:{epoch}:{batch}":
        log.warning("%s=%s: killing this process (fault test)", FAULT_ENV, target)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
