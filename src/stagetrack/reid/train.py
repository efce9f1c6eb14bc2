"""Train OSNet on one stage's ReID crops with torchreid's data manager and triplet engine.

torchreid does the work: ``ImageDataManager`` (``RandomIdentitySampler``: P identities x K
crops per batch, its transforms), ``ImageTripletEngine`` (hard-mining triplet + label-smoothed
softmax, its two-step transfer learning with frozen base layers) and ``torchreid.optim``.
Its ``Engine.run`` is not used: it writes tensorboard runs and pickled checkpoints and prints.
Instead this module calls the engine's per-epoch ``train()``, records each batch's losses
through ``forward_backward``, evaluates with :mod:`.evaluate`, logs to dvclive and saves plain
weights (:mod:`.model`).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..configtypes import to_dict
from ..devices import resolve_device
from ..errors import CheckpointError, ConfigError, DataError, TrainingAlarm
from ..io import atomic_torch_save
from ..resume import kill_point, timed
from ..train.seeding import get_rng_state, set_rng_state
from . import backend
from .config import ReidConfig
from .dataset import SPLITS, build_datamanager, list_split
from .evaluate import evaluate_extractor
from .features import ReidExtractor
from .model import CLASSIFIER, build_model, load_backbone, save_weights

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.pt"
STATE_FORMAT = "stagetrack-reid-resume/1"


class MetricLogger(Protocol):
    """The part of ``dvclive.Live`` used here."""

    def log_metric(self, name: str, val: float) -> None: ...

    def next_step(self) -> None: ...


@dataclass
class ReidResult:
    weights: Path
    feature_dim: int
    metrics: dict[str, float]  # rank1/5/10/20, mAP (0-100), and "<class>/rank1"...
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: losses, lr, metrics
    kept_epoch: int = 0  # the epoch saved (``keep: best``: highest query/gallery mAP; ``last``: the final one)


class _RecordingEngine(backend.engine.ImageTripletEngine):
    """torchreid's triplet engine that also keeps the epoch's per-batch loss summaries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_losses = backend.utils.MetricMeter()

    def forward_backward(self, data: dict[str, Any]) -> dict[str, float]:
        kill_point("reid", self.epoch + 1, self.batch_idx + 1)
        summary = super().forward_backward(data)
        total = self.weight_t * summary.get("loss_t", 0.0) + self.weight_x * summary.get("loss_x", 0.0)
        if not math.isfinite(total):
            raise TrainingAlarm(f"non-finite ReID loss at epoch {self.epoch + 1}, batch {self.batch_idx + 1}: {summary}")
        self.epoch_losses.update({"loss": total, **summary, "grad_norm": grad_norm(self.model)})
        return summary

    def take_epoch_losses(self) -> dict[str, float]:
        """Mean of each loss over the epoch's batches; resets the meter."""
        means = {name: float(meter.avg) for name, meter in self.epoch_losses.meters.items()}
        self.epoch_losses = backend.utils.MetricMeter()
        return means


def grad_norm(model: nn.Module) -> float:
    """L2 norm of all parameter gradients (torchreid steps but never clears them after)."""
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def seed_everything(seed: int) -> None:
    """Seed every RNG torchreid draws from (its sampler uses ``random`` and ``np.random``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: nn.Module, cfg: ReidConfig, lr: float) -> torch.optim.Optimizer:
    """torchreid's optimizer (Adam/SGD) or torch's AdamW; ``backbone_lr_mult`` != 1 stages the LR
    (backbone at ``lr * backbone_lr_mult``, classifier at ``lr``)."""
    staged = cfg.backbone_lr_mult != 1.0
    if cfg.optim == "adamw":
        groups: Any = model.parameters()
        if staged:
            groups = [
                {"params": [p for n, m in model.named_children() if n != CLASSIFIER for p in m.parameters()],
                 "lr": lr * cfg.backbone_lr_mult},
                {"params": list(getattr(model, CLASSIFIER).parameters())},
            ]
        return torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    return backend.optim.build_optimizer(
        model, optim=cfg.optim, lr=lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum,
        staged_lr=staged, new_layers=CLASSIFIER, base_lr_mult=cfg.backbone_lr_mult,
    )


def _check(cfg: ReidConfig) -> None:
    problem = cfg.validate()
    if problem:
        key, message = problem
        raise ConfigError(message, field=f"reid.{key}")


def _log(live: MetricLogger | None, values: dict[str, float], prefix: str = "reid/") -> None:
    if live is not None:
        for name, value in values.items():
            live.log_metric(prefix + name, value)


def _load_state(path: Path) -> dict[str, Any]:
    from ..train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"not a ReID resume state (format {state.get('format')!r})", file=path,
                              hint="delete it to train ReID from the start")
    return state


def _save_state(path: Path, epoch: int, model: nn.Module, optimizer: Any, scheduler: Any,
                history: list[dict[str, float]], metrics: dict[str, float], best: tuple | None) -> None:
    atomic_torch_save(path, {
        "format": STATE_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": get_rng_state(),
        "history": history, "metrics": metrics,
        "best": None if best is None else {"mAP": best[0], "epoch": best[1], "state": best[2], "metrics": best[3]},
    })


def train_reid(cfg: ReidConfig, *, data_dir: Path, out_dir: Path, init: Path | None, lr_scale: float = 1.0,
               live: MetricLogger | None = None, seed: int = 0, device: str = "cpu",
               state_file: Path | None = None) -> ReidResult:
    """Train ``cfg.model`` on ``data_dir`` (Market-1501 layout) and save ``out_dir/model.pt``.

    ``init`` (the previous stage's weights) or else ``cfg.weights`` (a local file) initialises
    the backbone; the classifier is always new. With either, the first
    ``freeze_backbone_epochs`` epochs train only the classifier. Every ``eval_freq`` epochs and
    after the last, rank-k/mAP on the query/gallery split are logged (in the pipeline: the
    stage's held-out selection clips); each epoch logs the mean losses (``reid/train/loss``,
    ``loss_t``, ``loss_x``, ``acc``) and LR, then calls ``live.next_step()``, so give ReID its own
    ``Live``. ``keep: best`` saves the evaluated epoch with the highest mAP there (ties: the later),
    ``last`` the final epoch; the returned metrics are the saved epoch's.

    ``state_file``: after every epoch the complete training state (weights, optimizer, schedule,
    RNG, the kept epoch, the logged rows) is written there atomically; when it exists at the
    start, training continues after its epoch (its rows replayed into ``live``) and ends with the
    bytes of an uninterrupted run.
    """
    _check(cfg)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    device = resolve_device(device)
    use_gpu = device == "cuda"
    seed_everything(seed)

    num_pids = len({crop.pid for crop in list_split(data_dir, SPLITS[0])})
    if num_pids < 2:
        raise DataError(f"{num_pids} training identities; the triplet loss needs at least 2",
                        file=data_dir / SPLITS[0])
    # RandomIdentitySampler yields nothing when a batch asks for more identities than exist
    batch_size = cfg.num_instances * min(cfg.batch_size // cfg.num_instances, num_pids)
    if batch_size != cfg.batch_size:
        log.warning("ReID batch %d -> %d: only %d training identities", cfg.batch_size, batch_size, num_pids)
    datamanager = build_datamanager(data_dir, height=cfg.height, width=cfg.width, batch_size=batch_size,
                                    num_instances=cfg.num_instances, transforms=cfg.transforms,
                                    workers=cfg.workers, test_batch=cfg.feature_batch, use_gpu=use_gpu)
    assert datamanager.num_train_pids == num_pids, (datamanager.num_train_pids, num_pids)

    model = build_model(cfg.model, num_pids)
    source = init if init is not None else (Path(cfg.weights) if cfg.weights else None)
    if source is not None:
        load_backbone(model, Path(source), model_name=cfg.model, require_all=init is not None)
    elif cfg.freeze_backbone_epochs:
        log.warning("freeze_backbone_epochs=%d ignored: no init or weights to keep", cfg.freeze_backbone_epochs)
    fixbase = cfg.freeze_backbone_epochs if source is not None else 0
    model = model.to(device)

    lr = cfg.lr * lr_scale
    optimizer = build_optimizer(model, cfg, lr)
    scheduler = backend.optim.build_lr_scheduler(
        optimizer, lr_scheduler=cfg.scheduler,
        stepsize=cfg.stepsize[-1] if cfg.scheduler == "single_step" else list(cfg.stepsize),
        gamma=cfg.gamma, max_epoch=max(cfg.epochs, 1),
    )
    engine = _RecordingEngine(datamanager, model, optimizer, margin=cfg.margin, weight_t=cfg.weight_t,
                              weight_x=cfg.weight_x, scheduler=scheduler, use_gpu=use_gpu,
                              label_smooth=cfg.label_smooth)
    engine.max_epoch = cfg.epochs
    extractor = ReidExtractor.from_model(model, height=cfg.height, width=cfg.width, device=device,
                                         batch_size=cfg.feature_batch)
    log.info("ReID %s: %d train identities, %d batches of %d per epoch, lr %.2e, %s", cfg.model, num_pids,
             len(datamanager.train_loader), batch_size, lr, f"init {source}" if source else "random init")

    history: list[dict[str, float]] = []
    metrics: dict[str, float] = {}
    best: tuple[float, int, dict, dict] | None = None  # (mAP, epoch, state, metrics) of the kept epoch
    start = 0
    if state_file is not None and Path(state_file).is_file():
        saved = _load_state(Path(state_file))
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"the ReID resume state does not fit this model: {str(err)[:300]}",
                                  file=state_file, hint="delete it to train ReID from the start") from None
        scheduler.load_state_dict(saved["scheduler"])
        start, history, metrics = int(saved["epoch"]), [dict(r) for r in saved["history"]], dict(saved["metrics"])
        if saved["best"] is not None:
            b = saved["best"]
            best = (float(b["mAP"]), int(b["epoch"]), b["state"], dict(b["metrics"]))
        for row in history:
            _log(live, row)
            if live is not None:
                live.next_step()
        set_rng_state(saved["rng"])
        log.info("ReID: resuming after epoch %d of %d (%s)", start, cfg.epochs, state_file)
    for epoch in range(start, cfg.epochs):
        engine.epoch = epoch
        lr_now = engine.get_current_lr()
        with backend.quiet():
            engine.train(print_freq=sys.maxsize, fixbase_epoch=fixbase, open_layers=[CLASSIFIER])
        row = {f"train/{k}": v for k, v in engine.take_epoch_losses().items()}
        row["lr"] = lr_now
        if epoch + 1 == cfg.epochs or (cfg.eval_freq and (epoch + 1) % cfg.eval_freq == 0):
            metrics = evaluate_extractor(extractor, data_dir, cfg.ranks)
            row.update(metrics)
            if cfg.keep == "best" and (best is None or metrics["mAP"] >= best[0]):
                best = (metrics["mAP"], epoch + 1, copy.deepcopy(model.state_dict()), dict(metrics))
        log.info("ReID epoch %d/%d: loss %.4f%s", epoch + 1, cfg.epochs, row.get("train/loss", float("nan")),
                 f", rank1 {row['rank1']:.1f}, mAP {row['mAP']:.1f}" if "rank1" in row else "")
        _log(live, row)
        if live is not None:
            live.next_step()
        history.append(row)
        if state_file is not None:
            with timed("reid"):
                _save_state(state_file, epoch, model, optimizer, scheduler, history, metrics, best)
    if cfg.epochs == 0:  # nothing trained: report the initial model
        metrics = evaluate_extractor(extractor, data_dir, cfg.ranks)
        _log(live, metrics)

    kept_epoch = cfg.epochs
    if best is not None:
        _, kept_epoch, state, metrics = best
        model.load_state_dict(state)
        log.info("ReID keeps epoch %d of %d (selection mAP %.1f)", kept_epoch, cfg.epochs, metrics["mAP"])
    weights = out_dir / WEIGHTS_NAME
    save_weights(weights, model, {
        "model": cfg.model, "num_classes": num_pids, "feature_dim": int(model.feature_dim),
        "height": cfg.height, "width": cfg.width, "epochs": cfg.epochs, "kept_epoch": kept_epoch,
        "seed": seed, "lr": lr,
        "init": str(source) if source else None, "config": to_dict(cfg), "metrics": dict(metrics),
    })
    return ReidResult(weights=weights, feature_dim=int(model.feature_dim), metrics=metrics, history=history,
                      kept_epoch=kept_epoch)
