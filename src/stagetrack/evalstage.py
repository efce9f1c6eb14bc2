"""The DVC `eval` stage (``stagetrack evaluate-stages``): score, then draw.

Data flows one way: :func:`stagetrack.evaluate.pipeline.run_eval` loads the locked val videos
once (:mod:`stagetrack.artifacts`), reads each stage's own validation tracks and part records
once, scores them and writes ``metrics/eval.json``, hands the headline's val tracks, as scored,
to :func:`stagetrack.visual.truth.render_results` (drawn from memory, nothing read back), and
tracks the locked test videos for ``metrics/test.json``. Evaluation imports no drawing code and
drawing imports evaluation only to track a video itself (``stagetrack viz --stage``, the
headline variant only): no import cycle (``tests/test_imports.py``).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--data", default="data/built", type=Path, help="built data root (with val/)")
    parser.add_argument("--models", default="models", type=Path, help="trained models root (models/<stage>/)")
    parser.add_argument("--metrics-dir", default="metrics", type=Path,
                        help="where eval.json goes (and stage metrics are read)")
    parser.add_argument("--results", default="results", type=Path,
                        help="MOTChallenge result files of the final stage: <variant>/ (val), test/<variant>/, viz/")


def run(args: argparse.Namespace) -> int:
    from .config import load_params
    from .evaluate.pipeline import run_eval
    from .visual.truth import render_results

    params = load_params(args.params)
    run_eval(params, args.data, args.models, args.metrics_dir, args.results,
             render=functools.partial(render_results, params))
    return 0
