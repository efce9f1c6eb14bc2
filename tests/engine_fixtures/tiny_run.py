"""A tiny deterministic CPU training run for the engine's subprocess tests.

Used in-process (``run``), in forked child processes (``fork_run``: the kill/resume test, whose
child SIGKILLs itself after a given number of training forwards, and the DDP test, one child per
rank with torchrun's environment variables), or as a script, also under
``torchrun --nproc_per_node 2 tests/engine_fixtures/tiny_run.py --out DIR``. Forking skips the
interpreter and torch start-up (seconds each on a loaded 2-core machine); ``run`` sets one
intra-op thread first, so the child never touches the parent's OpenMP pool.
Prints the FitResult as one JSON line on rank 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from stagetrack.configtypes import build
from stagetrack.train import distributed
from stagetrack.train.config import EngineConfig
from stagetrack.train.engine import Engine, FitResult
from stagetrack.train.loader import make_loader
from stagetrack.train.seeding import seed_everything


class RegressionTask:
    """MSE regression; ``kill_at`` > 0 SIGKILLs the process at that training forward."""

    def __init__(self, kill_at: int = 0) -> None:
        self.calls = 0
        self.kill_at = kill_at

    def forward(self, model: nn.Module, batch):
        x, y = batch
        self.calls += 1
        if self.kill_at and self.calls == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        pred = model(x)  # (B, 2)
        return nn.functional.mse_loss(pred, y), {"pred_std": float(pred.detach().std(0).mean())}

    def evaluate(self, model: nn.Module, loader) -> dict[str, float]:
        total, count = 0.0, 0
        for x, y in loader:
            total += float(nn.functional.mse_loss(model(x), y, reduction="sum"))
            count += y.numel()
        return {"val_loss": total / count}


def make_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0], [0.0, 1.5], [-1.0, 1.0]])
    return TensorDataset(x, torch.tanh(x @ w) + 0.05 * torch.randn(n, 2, generator=g))


def make_model(dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 2))


def run(out: Path, cfg: EngineConfig, *, epochs: int, batch_size: int, kill_at: int = 0,
        resume: bool = False, dropout: float = 0.1, n_train: int = 48, lr: float = 0.05) -> FitResult:
    torch.set_num_threads(1)
    seed_everything(cfg.seed, cfg.deterministic)
    model = make_model(dropout)
    train = make_loader(make_data(n_train, 1), batch_size, True, cfg)
    val = make_loader(make_data(16, 2), 4, False, cfg)
    engine = Engine(cfg, model, RegressionTask(kill_at), lr=lr, epochs=epochs, out_dir=out,
                    resume=resume, config={"batch_size": batch_size}, metadata={"fixture": "tiny_run"})
    return engine.fit(train, val)


def fork_run(out: Path, cfg: EngineConfig, env: dict[str, str] | None = None,
             **kwargs) -> multiprocessing.Process:
    """Start :func:`run` in a forked process with extra environment variables."""
    child = multiprocessing.get_context("fork").Process(target=_child, args=(out, cfg, env or {}, kwargs))
    child.start()
    return child


def _child(out: Path, cfg: EngineConfig, env: dict[str, str], kwargs: dict) -> None:
    os.environ.update(env)
    run(out, cfg, **kwargs)
    distributed.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--cfg", default="{}", help="EngineConfig fields as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = build(EngineConfig, json.loads(args.cfg), key="train")
    result = run(args.out, cfg, epochs=args.epochs, batch_size=args.batch_size, kill_at=args.kill_at,
                 resume=args.resume, dropout=args.dropout)
    if distributed.dist_info().is_main:
        print(json.dumps({"best_metric": result.best_metric, "epochs_run": result.epochs_run,
                          "history": result.history}))
    distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
