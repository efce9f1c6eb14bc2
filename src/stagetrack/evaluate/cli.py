"""Score MOTChallenge result files against ground truth: HOTA, IDF1, MOTA (TrackEval's numbers).

``stagetrack eval --gt-dir GT --pred-dir PRED --out metrics.json`` reads ``GT/SEQ/gt/gt.txt``
(+ ``seqinfo.ini``) and ``PRED/SEQ.txt``, evaluates with the flavour's protocol (see
:func:`stagetrack.evaluate.preprocess.flavour_settings`), writes the result of
:func:`stagetrack.evaluate.metrics.evaluate` as JSON and prints one row per class.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..data.sequence import CLASSES
from ..errors import ConfigError
from ..io import atomic_write_json
from .metrics import evaluate, read_mot_dir
from .preprocess import FLAVOURS, flavour_settings

log = logging.getLogger(__name__)

TABLE_FIELDS: tuple[str, ...] = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt-dir", required=True, help="MOTChallenge ground truth: GT/SEQ/gt/gt.txt + seqinfo.ini")
    parser.add_argument("--pred-dir", required=True, help="result files PRED/SEQ.txt (MOTChallenge format)")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--seqmap", default=None,
                        help="TrackEval seqmap of the sequences to score (default: the one in GT/seqmaps/, else all)")
    parser.add_argument("--classes", default=None,
                        help=f"comma-separated classes to score in the project flavour (default: {','.join(CLASSES)})")
    parser.add_argument("--missing-as-empty", action="store_true",
                        help="score a sequence without a prediction file as empty (every box a miss) instead of "
                             "stopping with an error")
    parser.add_argument("--flavour", choices=FLAVOURS, default="auto",
                        help="evaluation protocol; mot17/mot15/dancetrack score person only, as the devkit "
                             "(default: auto, from the ground truth)")


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    classes = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in classes if c not in CLASSES]
    if bad or not classes:
        raise ConfigError(f"unknown class {bad[0]!r}" if bad else "no class given",
                          field="--classes", allowed=CLASSES)
    return classes


def format_table(result: dict[str, Any]) -> str:
    """One row per class and the detection-averaged combination."""
    rows = [("class", *TABLE_FIELDS)]
    named = [*result["per_class"].items(), ("combined", result["combined"])]
    for name, fields in named:
        rows.append((name, *(f"{fields[k]:.2f}" if isinstance(fields[k], float) else str(fields[k])
                             for k in TABLE_FIELDS)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    )


def run(args: argparse.Namespace) -> int:
    classes = parse_classes(args.classes)
    pairs = read_mot_dir(args.gt_dir, args.pred_dir, seqmap=args.seqmap, missing_as_empty=args.missing_as_empty)
    flavour, classes, mode = flavour_settings(args.flavour, [seq for seq, _ in pairs], classes)
    log.info("%d sequence(s), flavour %s, classes %s, preprocess %s", len(pairs), flavour, ",".join(classes), mode)
    result = evaluate(pairs, classes=classes, preprocess=mode)
    atomic_write_json(args.out, result)
    print(format_table(result))
    return 0
