"""Bitwise resume of a detector run: the exact state ultralytics' own ``last.pt`` does not keep.

ultralytics resumes from ``last.pt``, which holds the EMA weights in fp16, the optimizer state
in fp16 and no RNG state; the training weights are rebuilt from the fp16 EMA and the data order
restarts. A resumed run therefore trains other weights than an uninterrupted one. The state
file written here after every epoch (``state_file`` of :func:`..yolo.train_detector`) keeps what
is missing, in full precision:

* the training weights, the EMA weights and its update count, optimizer and scaler state;
* the RNG states (Python, NumPy, torch) and the train loader's generator (its shuffle order);
* the indices in the data set's mosaic buffer (which images mosaic draws its partners from);
* the run folder's files as they were after that epoch (``weights/last.pt``, ``best.pt``,
  ``results.csv``, ``args.yaml``), restored before ultralytics reads them, so a kill between
  ultralytics' (non-atomic) writes and this file never mixes two epochs;
* the dvclive rows logged so far (replayed into the stage's fresh ``Live``).

It is written at ``on_fit_epoch_end`` (after the epoch's dvclive row, before the next epoch draws
a random number) with one atomic rename, and applied at the first resumed epoch's
``on_train_epoch_start``. Exactness needs ``workers: 0`` (worker processes keep RNG states that
no checkpoint can read) and an epoch's batch count that ``accumulate`` divides (ultralytics
carries an unfinished accumulation into the next epoch); the stage logs a WARNING otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import atomic_torch_save
from ..train.seeding import get_rng_state, set_rng_state

log = logging.getLogger(__name__)

FORMAT = "stagetrack-detector-resume/1"
RUN_FILES = ("weights/last.pt", "weights/best.pt", "results.csv", "args.yaml")


def _bytes(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def capture(trainer: Any, run_dir: Path, live_steps: list[dict[str, float]]) -> dict[str, Any]:
    """The exact state after the trainer's current epoch (see the module docstring)."""
    from ultralytics.utils.torch_utils import unwrap_model

    loader = trainer.train_loader
    files = {name: _bytes((run_dir / name).read_bytes()) for name in RUN_FILES if (run_dir / name).is_file()}
    return {
        "format": FORMAT,
        "epoch": int(trainer.epoch),
        "stop": bool(trainer.stop),
        "epochs": int(trainer.epochs),
        "model": unwrap_model(trainer.model).state_dict(),
        "ema": trainer.ema.ema.state_dict(),
        "ema_updates": int(trainer.ema.updates),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "rng": get_rng_state(),
        "loader_generator": loader.generator.get_state(),
        "buffer": [int(i) for i in getattr(loader.dataset, "buffer", [])],
        "files": files,
        "live_steps": [dict(row) for row in live_steps],
    }


def save(path: Path, state: dict[str, Any]) -> None:
    atomic_torch_save(path, state)


def load(path: Path) -> dict[str, Any]:
    """A state file, checked; a damaged or foreign file is an error naming it (never a restart)."""
    from ..train.checkpoint import load_checkpoint

    state = load_checkpoint(Path(path))  # integrity (zip CRC) and weights_only loading
    if state.get("format") != FORMAT:
        raise CheckpointError(f"not a detector resume state (format {state.get('format')!r})", file=path,
                              hint="delete it to train the detector from the start")
    return state


def restore_run_dir(state: dict[str, Any], run_dir: Path) -> None:
    """Put back the run folder's files of the state's epoch (removing any later ones)."""
    for name in RUN_FILES:
        target = run_dir / name
        if name in state["files"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(state["files"][name].numpy().tobytes())
        elif target.exists():
            target.unlink()


def finished(state: dict[str, Any]) -> bool:
    return state["stop"] or state["epoch"] + 1 >= state["epochs"]


def apply(trainer: Any, state: dict[str, Any]) -> None:
    """Overwrite what ultralytics restored from ``last.pt`` with the exact state; at epoch start."""
    from ultralytics.utils.torch_utils import unwrap_model

    if trainer.epoch != state["epoch"] + 1:
        raise CheckpointError(f"the run resumed at epoch {trainer.epoch + 1}, the state is of epoch "
                              f"{state['epoch'] + 1}", file=trainer.last)
    unwrap_model(trainer.model).load_state_dict(state["model"])
    trainer.ema.ema.load_state_dict(state["ema"])
    trainer.ema.updates = state["ema_updates"]
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    loader, dataset = trainer.train_loader, trainer.train_loader.dataset
    if hasattr(dataset, "buffer"):  # reload the buffered images in order: load_image appends each
        dataset.buffer = []
        for index in state["buffer"]:
            dataset.load_image(index)
    set_rng_state(state["rng"])
    generator = state["loader_generator"]
    close = int(trainer.args.close_mosaic or 0)
    epoch = trainer.epoch
    # ultralytics' loop rebuilds the loader's iterator (one draw from its generator) when it
    # closes mosaic; a resumed run closes at its first epoch, the uninterrupted one at
    # epochs - close_mosaic only: set the shuffle state after whichever rebuild this epoch has.
    # An iterator that carried on from the previous epoch first finishes that epoch's sampler,
    # whose last line draws one more permutation (torch's RandomSampler: the num_samples % n
    # tail); the resumed run draws it too, unless the uninterrupted run rebuilt its iterator.
    if close and epoch > trainer.epochs - close:
        original = loader.reset

        def reset_then_restore() -> None:
            original()
            loader.iterator = loader._get_iterator()
            _continue_sampler(loader, generator)
            del loader.reset  # back to the class's method

        loader.reset = reset_then_restore
    else:
        if loader.iterator is None:
            loader.iterator = loader._get_iterator()
        if close and epoch == trainer.epochs - close:
            loader.generator.set_state(generator)  # both runs rebuild the iterator now
        else:
            _continue_sampler(loader, generator)
    log.info("detector: exact state of epoch %d restored (weights, EMA, optimizer, RNG, data order)",
             state["epoch"] + 1)


def _continue_sampler(loader: Any, generator: torch.Tensor) -> None:
    """Set the shuffle state, then draw what the previous epoch's sampler drew on finishing."""
    loader.generator.set_state(generator)
    sampler = loader.sampler
    if getattr(sampler, "generator", None) is loader.generator and not getattr(sampler, "replacement", True):
        torch.randperm(len(sampler.data_source), generator=loader.generator)


def check_exact(trainer: Any) -> None:
    """WARN where a resumed run cannot be bitwise equal to an uninterrupted one."""
    from torch.utils.data import RandomSampler

    sampler = trainer.train_loader.sampler
    if not (isinstance(sampler, RandomSampler) and not sampler.replacement
            and sampler.generator is trainer.train_loader.generator):
        log.warning("the detector's train sampler is %s: a resumed run continues from the epoch, its "
                    "data order may differ from an uninterrupted run's", type(sampler).__name__)
    if trainer.args.workers:
        log.warning("detector.workers=%d: a resumed run continues from the epoch but not bitwise "
                    "(worker processes' RNG cannot be saved); workers: 0 resumes exactly", trainer.args.workers)
    if len(trainer.train_loader) % max(int(trainer.accumulate), 1):
        log.warning("accumulate=%d does not divide the %d batches of an epoch: an interrupted "
                    "accumulation is lost on resume (not bitwise)", trainer.accumulate, len(trainer.train_loader))
