"""Train one learned part tiny, in this fresh process, with the project's pinned numerics.

    python tests/repro/worker.py detector|reid|assoc

Run in an empty working directory: it writes ``data/`` (the tiny training set, generated from
fixed seeds) and ``out/`` (what training wrote), with every path relative, so that two runs in
two directories can be compared byte for byte (tests/test_reproducible.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stagetrack import numerics

# before numpy and torch load, as every entry point does; STAGETRACK_REPRO_UNPINNED=1 is the
# control that shows what the pinning prevents
numerics.pin(numerics.NumericsConfig(pin=os.environ.get("STAGETRACK_REPRO_UNPINNED") != "1"))

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))


def detector() -> None:
    import dataclasses

    from stagetrack.detect import yolo
    from test_detector_train import TINY, make_set

    make_set(Path("data").resolve())
    yolo.train_detector(dataclasses.replace(TINY, epochs=2, threads=0), data_yaml=Path("data/data.yaml"),
                        out_dir=Path("out"), init=None, seed=0, device="cpu")


def reid() -> None:
    from stagetrack.reid.config import ReidConfig
    from stagetrack.reid.train import train_reid
    from test_reid_data import write_reid_dir

    train = {pid: 8 for pid in range(1, 7)}
    val = {pid: 1 for pid in (101, 102, 9001, 9002)}
    classes = {p: ("vehicle" if p >= 9000 else "person") for p in (*train, *val)}
    data = write_reid_dir(Path("data"), train, val, {p: 2 for p in val}, classes)
    cfg = ReidConfig(epochs=2, height=64, width=32, batch_size=16, num_instances=4,
                     transforms=["random_flip", "random_crop"], eval_freq=1)
    train_reid(cfg, data_dir=data, out_dir=Path("out"), init=None, seed=0, device="cpu")


def assoc() -> None:
    from stagetrack.assoc import train as assoc_train
    from test_assoc_train import CFG, ENGINE, write_log

    import dataclasses

    log_dir = write_log(Path("data"), frames=40)
    cfg = dataclasses.replace(CFG, aug_jitter=0.05, aug_drop=0.1, dropout=0.1)
    engine = dataclasses.replace(ENGINE, deterministic=True)
    assoc_train.train_assoc(log_dir, Path("out/assoc.pt"), cfg=cfg, engine_cfg=engine, lr=3e-3, epochs=2,
                            batch_size=32, val_split=0.2, device="cpu")


if __name__ == "__main__":
    {"detector": detector, "reid": reid, "assoc": assoc}[sys.argv[1]]()
