"""``stagetrack plan``: the seed plan's time/cost table, computed from measured stage timings.

Each trained stage records in ``timings/<stage>.json`` how long its detector, ReID and
association parts took, on how many training frames and on which device (wall-clock seconds
differ run to run, so they live outside every DVC dependency and outside git). Training
time grows with frames x epochs, so the measured seconds per frame-epoch project a run at
``plan.frame_scale`` times the stage's frame budget for ``plan.epochs`` epochs, priced at
``plan.price_per_hour``. The epoch count that normalises the measurement is the stage's
detector epochs (the longest part); validation time is reported but not projected.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .config import STAGES, Params
from .errors import DataError

log = logging.getLogger(__name__)

PARTS = ("detector", "reid", "assoc")


@dataclass(frozen=True)
class StagePlan:
    stage: str
    frames: int             # frames the measured run trained on
    epochs: int             # detector epochs of the measured run
    train_s: float          # measured seconds of detector + ReID + association training
    device: str
    projected_frames: int
    projected_hours: float
    projected_cost: float

    @property
    def s_per_frame_epoch(self) -> float:
        return self.train_s / max(1, self.frames * self.epochs)


def plan_stage(params: Params, stage: str, timing: dict) -> StagePlan:
    """Project one stage from its measured timing (``timings/<stage>.json``)."""
    if not timing or not timing.get("train_frames"):
        raise DataError(f"{stage} has no timing: re-run it (dvc repro {stage}) with this version")
    train_s = sum(float(timing.get(f"{p}_s", 0.0)) for p in PARTS)
    epochs = int(params.stage_section(stage, "detector").epochs)
    frames = int(timing["train_frames"])
    budget = sum(mix.frame_budget for mix in params.stage(stage).data.values() if mix.enabled)
    projected_frames = round(budget * params.plan.frame_scale)
    per = train_s / max(1, frames * epochs)
    hours = per * projected_frames * params.plan.epochs / 3600.0
    return StagePlan(stage, frames, epochs, train_s, str(timing.get("device", "unknown")),
                     projected_frames, hours, hours * params.plan.price_per_hour)


def plan(params: Params, timings_dir: Path) -> list[StagePlan]:
    rows = []
    for stage in STAGES:
        path = Path(timings_dir) / f"{stage}.json"
        if not path.is_file():
            log.warning("%s has no timing on this machine (%s missing): left out", stage, path)
            continue
        rows.append(plan_stage(params, stage, json.loads(path.read_text())))
    if not rows:
        raise DataError(f"no stage timings in {timings_dir}: run the stages here first (`dvc repro`; "
                        "a stage restored from DVC's cache measures nothing)")
    return rows


def format_table(rows: list[StagePlan], params: Params) -> str:
    head = ("| stage | measured frames x epochs | train time | s / frame-epoch | device "
            f"| projected frames x {params.plan.epochs} epochs | est. time | est. cost (${params.plan.price_per_hour}/h) |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r.stage} | {r.frames} x {r.epochs} | {r.train_s / 60:.1f} min | {r.s_per_frame_epoch:.3f} "
                     f"| {r.device} | {r.projected_frames} | {r.projected_hours:.1f} h | ${r.projected_cost:.2f} |")
    total_h = sum(r.projected_hours for r in rows)
    lines.append(f"| total | | {sum(r.train_s for r in rows) / 60:.1f} min | | | | {total_h:.1f} h "
                 f"| ${sum(r.projected_cost for r in rows):.2f} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (plan.* sets the projection)")
    parser.add_argument("--timings-dir", default="timings", type=Path,
                        help="where the training stages wrote <stage>.json with their wall-clock seconds")


def run(args: argparse.Namespace) -> int:
    from .config import load_params

    params = load_params(args.params)
    print(format_table(plan(params, args.timings_dir), params))
    return 0
