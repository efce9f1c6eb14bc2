"""``stagetrack``: the user-facing command line.

Each subcommand lives in the module that owns the concept; that module defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only for the command
being run, so ``stagetrack --help`` stays fast. A :class:`~stagetrack.errors.StagetrackError`
becomes one line on stderr and exit status 2; no traceback for user errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__, numerics, offline
from .errors import StagetrackError

# name -> (module, one-line help). Order is the order of `stagetrack --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("stagetrack.data.synth", "generate the synthetic default datasets (DanceTrack/BDD/VisDrone formats)"),
    "build": ("stagetrack.data.builder", "build the stages' data mixes, their selection splits and the locked val/test sets"),
    "validate": ("stagetrack.data.validate", "check a dataset on disk before anything trains"),
    "inspect": ("stagetrack.data.inspect", "print per-stage dataset statistics and exit"),
    "train-stage": ("stagetrack.pipeline", "train one stage: detector, ReID and association model"),
    "train-assoc": ("stagetrack.assoc.train", "train the association transformer from logged samples"),
    "track": ("stagetrack.track.cli", "track MOTChallenge sequences (public detections or a detector)"),
    "eval": ("stagetrack.evaluate.cli", "HOTA/IDF1/MOTA of result files against MOTChallenge ground truth"),
    "viz": ("stagetrack.visual.truth", "render ground truth against predictions of one video (MP4 + contact sheet)"),
    "dashboard": ("stagetrack.visual.dashboard", "plot the run's validation metrics, losses and grad norms into one PNG"),
    "seeds": ("stagetrack.seeds", "run the pipeline for N training seeds through DVC's queue; aggregate over them"),
    "compare": ("stagetrack.compare", "B minus A per metric, with its interval and a verdict (experiments, seed groups, revisions)"),
    "sweep": ("stagetrack.sweep", "hyperparameter search through DVC's experiment queue; ranks the runs by one metric"),
    "plan": ("stagetrack.plan", "the seed plan's time/cost table from measured stage timings"),
    "evaluate-stages": ("stagetrack.evalstage", "the eval stage: metrics/eval.json from the stages' val tracks, metrics/test.json from the locked test videos"),
}


def setup_logging(verbose: int = 0) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose >= 0 else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stagetrack",
        description="Staged training and evaluation of a multi-class multi-object tracker. "
        "Run `stagetrack COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<16} {h}" for n, (_, h) in COMMANDS.items()),
    )
    parser.add_argument("--version", action="version", version=f"stagetrack {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see below")
    return parser


def main(argv: list[str] | None = None, *, pipeline: bool = False) -> int:
    """Run one subcommand. ``pipeline`` (the DVC stage scripts) refuses environment overrides of
    params: DVC hashes params.yaml, not the environment, so a variable would change a stage's
    output behind the lock's back."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv or ["--help"])
        return 0
    name = argv[0]
    if name not in COMMANDS:
        top.error(f"unknown command {name!r} (choose from {', '.join(COMMANDS)})")
    module_name, help_text = COMMANDS[name]
    if pipeline:
        code = run_guarded(refuse_param_overrides, os.environ)
        if code:
            return code
    if "-h" not in argv and "--help" not in argv:  # pinning reads the command's params file
        code = run_guarded(numerics.pin_for_argv, argv[1:])
        if code:
            return code
    offline.configure()
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"stagetrack {name}", description=(module.__doc__ or help_text).strip().split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    setup_logging(-1 if args.quiet else args.verbose)
    return run_guarded(module.run, args)


def refuse_param_overrides(environ) -> None:
    """A pipeline stage with one of the seed's ``TRANSFORMER_*`` variables set is an error naming it."""
    from .assoc.config import ENV_PARAMS

    for var, key in ENV_PARAMS.items():
        if (environ.get(var) or "").strip():
            raise StagetrackError(f"{var} is set, but a DVC stage takes its settings from params.yaml only "
                                  "(DVC cannot see the environment, so the lock would not record it)",
                                  field=var, hint=f"unset it and set {key} instead (dvc exp run -S {key}=...)")


def run_guarded(fn, *args) -> int:
    """Run ``fn``; user errors become one line and exit 2, Ctrl-C exits 130."""
    try:
        result = fn(*args)
        return result if isinstance(result, int) else 0
    except StagetrackError as exc:
        logging.getLogger("stagetrack").error("%s", exc)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("stagetrack").error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
