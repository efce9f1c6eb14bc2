"""Crops per second of :class:`stagetrack.reid.features.ReidExtractor` on CPU.

Usage: ``.venv/bin/python bench/reid_speed.py [--threads 2] [--model osnet_x0_25] [--crops 256]``.
Builds randomly initialised weights (speed does not depend on their values) at each input
size, embeds ``--crops`` random crops of varied size once to warm up, then times ``--repeats``
passes and prints the best.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stagetrack.reid.features import ReidExtractor
from stagetrack.reid.model import build_model, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="128x64,256x128", help="comma-separated HxW input sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (int(rng.integers(40, 300)), int(rng.integers(20, 150)), 3), dtype=np.uint8)
             for _ in range(args.crops)]
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            height, width = (int(v) for v in size.split("x"))
            model = build_model(args.model, num_classes=10)
            path = Path(tmp) / f"{size}.pt"
            save_weights(path, model, {"model": args.model, "num_classes": 10,
                                       "feature_dim": int(model.feature_dim), "height": height, "width": width})
            ext = ReidExtractor(path, batch_size=args.batch)
            ext(crops[: args.batch])  # warm-up
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                ext(crops)
                best = min(best, time.perf_counter() - start)
            print(f"{args.model} {height}x{width} threads={args.threads} batch={args.batch}: "
                  f"{args.crops / best:.0f} crops/s ({1000 * best / args.crops:.2f} ms/crop)")


if __name__ == "__main__":
    main()
