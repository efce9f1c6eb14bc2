"""``stagetrack compare A B``: per metric, B minus A with its 95% interval and a verdict.

A and B are experiment names, seed groups (``NAME`` for the experiments ``NAME-seed*`` that
``stagetrack seeds`` runs) or git revisions (their committed ``metrics/eval.json``). The
statistics are :func:`stagetrack.seeds.difference`'s: paired over shared seeds, else Welch.
"""

from __future__ import annotations

import argparse
import json

from .errors import StagetrackError
from .seeds import DEFAULT_METRICS, EVAL_METRICS, compare_runs, format_compare, resolve, show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="experiment, seed group or git revision (the baseline)")
    parser.add_argument("b", help="experiment, seed group or git revision (the change)")
    parser.add_argument("--metric", action="append",
                        help=f"dotted key of {EVAL_METRICS} (repeatable; default: HOTA/IDF1/AssA/DetA per domain)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")


def run(args: argparse.Namespace) -> int:
    shown = show()
    a, b = resolve(args.a, shown), resolve(args.b, shown)
    rows = compare_runs(a, b, args.metric or DEFAULT_METRICS)
    if not rows:
        raise StagetrackError("no metric is present on both sides", hint="check the --metric keys")
    print(json.dumps(rows, indent=2, sort_keys=True) if args.json else format_compare(rows, args.a, args.b))
    return 0
