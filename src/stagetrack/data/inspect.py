"""``stagetrack inspect``: per-stage dataset statistics from params, without building anything.

The seed's ``--inspect``: it checks the manifest lock against the sources, chooses every stage's
clips exactly as ``stagetrack build`` would, and prints frames, clips, boxes per class and
identities per source, plus the class balance (and the same for the held-out selection clips), then exits. Nothing is written.
"""

from __future__ import annotations

import argparse
import json

from ..config import STAGES, load_params
from .builder import Builder


def inspect(params_path: str) -> dict:
    builder = Builder(load_params(params_path), out="/nonexistent", workers=1)
    plan = builder.plan()
    report = {stage: builder.stats(plan.stages[stage]) for stage in STAGES}
    report["selection"] = builder.stats(plan.held_out)
    return report


def render(report: dict) -> str:
    lines = [f"{'stage':<8} {'source':<12} {'frames':>7} {'clips':>6} {'person':>7} {'vehicle':>8} {'ids':>5}"]
    for stage, summary in report.items():
        for source, st in summary["sources"].items():
            lines.append(f"{stage:<8} {source:<12} {st['frames']:>7} {st['clips']:>6} {st['boxes_person']:>7} "
                         f"{st['boxes_vehicle']:>8} {st['identities']:>5}")
        bal = summary["class_balance"]
        lines.append(f"{stage:<8} {'total':<12} {summary['frames']:>7}   balance person {bal['person']:.2f} / "
                     f"vehicle {bal['vehicle']:.2f}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    report = inspect(args.params)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else render(report))
    return 0
