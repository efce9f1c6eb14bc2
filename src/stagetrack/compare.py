"""``stagetrack compare A B``: per metric, B minus A with its 95% interval and a verdict.

A and B are experiment names, seed groups (``NAME`` for the experiments ``NAME-seed*`` that
``stagetrack seeds`` runs) or git revisions (their committed ``metrics/eval.json``). The
statistics are :func:`stagetrack.seeds.difference`'s: paired over shared seeds, else Welch.

It compares on the locked validation videos (``metrics/eval.json``), where settings are chosen.
``--split test`` compares on the locked test videos (``metrics/test.json``) for the final report
of a choice already made on val; the command says so at WARNING.
"""

from __future__ import annotations

import argparse
import json

import logging

from .errors import StagetrackError
from .seeds import DEFAULT_METRICS, EVAL_METRICS, TEST_METRICS, compare_runs, format_compare, resolve, show

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="experiment, seed group or git revision (the baseline)")
    parser.add_argument("b", help="experiment, seed group or git revision (the change)")
    parser.add_argument("--metric", action="append",
                        help=f"dotted key of {EVAL_METRICS} (repeatable; default: HOTA/IDF1/AssA/DetA per domain)")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help=f"val: {EVAL_METRICS} (choose here); test: {TEST_METRICS}, the final report of a "
                             "choice made on val (keys are then the same, read from the test file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")


def run(args: argparse.Namespace) -> int:
    shown = show()
    splits = ("val",) if args.split == "val" else ("val", "test")
    a, b = resolve(args.a, shown, splits), resolve(args.b, shown, splits)
    keys = list(args.metric or DEFAULT_METRICS)
    if args.split == "test":
        log.warning("comparing on the locked test videos: a final report of a choice made on val, never a way "
                    "to make one")
        keys = [f"test.{k}" for k in keys]
    rows = compare_runs(a, b, keys)
    if not rows:
        raise StagetrackError("no metric is present on both sides", hint="check the --metric keys")
    print(json.dumps(rows, indent=2, sort_keys=True) if args.json else format_compare(rows, args.a, args.b))
    return 0
