"""stagetrack's benchmark suite against peers; the single entry point.

Usage: ``python bench/run.py [--size default|tiny] [--out bench/results.json] [--plots plots/bench]``.

Writes ``--out`` (results.json), ``RESULTS.md`` next to it and the PNG plots, after running, in
one process: tracking quality on identical detections (``bench/tracking.py``), the experiments
behind the goal verdicts (``bench/experiments.py``, the ablation of the tracker's defaults), tracking
speed and ReID inference (``bench/speed.py``), data build (``bench/build.py``), training
throughput (``bench/training.py``), pipeline overhead (``bench/overhead.py``) and the cost of the
pinned numerics (``bench/pinning.py``). See
``bench/README.md`` for what each measures and the sizes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Size:
    """How much each benchmark does."""

    speed_sizes: tuple[int, ...]      # objects per frame of the association timing
    speed_frames: int                 # frames per timed run
    speed_repeats: int                # interleaved repeats (best is reported)
    reid_sizes: tuple[tuple[int, int], ...]  # ReID input sizes timed
    reid_crops: int                   # crops per timed ReID pass
    build_factors: tuple[float, ...]  # budget factors of the two data builds
    eval_rerun: bool                  # time the eval stage re-run


SIZES = {
    "default": Size((10, 50, 200), 60, 3, ((128, 64), (256, 128)), 256, (0.25, 1.0), True),
    "tiny": Size((10, 50, 200), 8, 1, ((128, 64),), 32, (0.2, 0.6), False),
}


def main(argv: list[str] | None = None) -> int:
    """``python bench/run.py``: user errors (bad params, a missing world) are one line and exit 2."""
    from stagetrack.cli import run_guarded

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    return run_guarded(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="default",
                        help="default: the full suite (< 15 min on 2 cores); tiny: a synthetic smoke run (< 60 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json",
                        help="results.json path; RESULTS.md is written beside it")
    parser.add_argument("--plots", type=Path, default=ROOT / "plots" / "bench", help="folder of the PNG plots")
    args = parser.parse_args(argv)
    for noisy in ("stagetrack.evaluate.metrics", "stagetrack.track.cli", "ultralytics"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from stagetrack import numerics, offline

    numerics.pin(numerics.read_config(ROOT / "params.yaml"))  # the bench computes as the pipeline does
    offline.configure()
    from stagetrack.io import atomic_write_json

    from bench import build, experiments, overhead, pinning, report, speed, training, tracking, world

    size = SIZES[args.size]
    started = time.perf_counter()
    results: dict = {
        "command": " ".join(["python bench/run.py", shlex.join(sys.argv[1:] if argv is None else argv)]).strip(),
        "size": args.size,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "section_seconds": {},
    }

    def timed(name: str, fn, *a, **kw):
        start = time.perf_counter()
        log.info("== %s", name)
        out = fn(*a, **kw)
        results["section_seconds"][name] = round(time.perf_counter() - start, 1)
        return out

    with tempfile.TemporaryDirectory(prefix="stagetrack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        the_world = (world.repo_world() if args.size == "default" else None) or \
            timed("world", world.synthetic_world, tmp / "world", tiny=args.size == "tiny")
        results["world"] = the_world.kind
        results["tracking"], e2e, inputs = timed("tracking", tracking.run, the_world, tmp / "tracking")
        results["experiments"] = timed("experiments", experiments.run, the_world, results["tracking"], inputs)
        results["speed"] = {
            "association": timed("speed", speed.association, the_world.params.tracker, size.speed_sizes,
                                 size.speed_frames, size.speed_repeats),
            "reid_inference": timed("reid_inference", speed.reid_inference, the_world.params.reid.model,
                                    size.reid_sizes, size.reid_crops, 32, 3 if args.size == "default" else 1),
            "end_to_end": e2e if e2e is not None else {"skipped": "no trained models in this world"},
        }
        results["build"] = timed("build", build.run, the_world, tmp / "build", size.build_factors)
        small = tmp / "build" / f"build_{size.build_factors[0]}" / "built"
        results["training"] = timed("training", training.run, the_world, small, tmp / "training")
        results["overhead"] = timed("overhead", overhead.run, tmp / "overhead", with_eval=size.eval_rerun) \
            if args.size == "default" else overhead.skipped("tiny size")
        parts, rounds = (("detector", "reid", "assoc"), 3) if args.size == "default" else (("assoc",), 1)
        results["pinning"] = timed("pinning", pinning.run, parts, rounds)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    results = json.loads(args.out.read_text())  # RESULTS.md and plots come from the file, as a re-render would
    report.write(results, args.out.parent / "RESULTS.md")
    written = report.plots(results, args.plots)
    print(f"wrote {args.out}, {args.out.parent / 'RESULTS.md'} and {len(written)} plots in {args.plots} "
          f"({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
