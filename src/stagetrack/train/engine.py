"""The training loop shared by every plain-torch model (deep-person-reid's engine pattern).

The engine owns the loop: mixed precision, gradient accumulation and clipping, the learning
rate schedule, EMA, validation, early stopping, checkpoints, resume, alarms, logging and DDP.
A model plugs in through a :class:`Task` with two methods: ``forward(model, batch) -> (loss,
logs)`` and ``evaluate(model, loader) -> metrics``.

Contracts
---------
* ``Task.forward`` receives the (possibly DDP-wrapped / compiled) training model and a batch
  already moved to the engine's device by :func:`move_to`; it returns the scalar loss (mean over
  the batch) and a dict of floats. A ``pred_std`` entry (std of the predictions across the
  batch) feeds the collapse alarm. All ranks must return the same log keys.
* ``Task.evaluate`` receives the plain model to evaluate (the EMA copy when ``ema > 0``) in
  ``eval()`` mode, under ``torch.no_grad()`` and autocast, and the validation loader (batches
  not moved: use ``move_to(batch, next(model.parameters()).device)``). It returns means over
  its loader; under DDP they are averaged over ranks weighted by each rank's sample count.
* Gradient checkpointing: with ``memory_efficient``, the engine calls
  ``model.set_grad_checkpointing(checkpoint_ratio)`` once, before training, if the model has
  that method (it should checkpoint the activations of that fraction of its blocks, 1.0 = all,
  when training); a model without it gets a warning and trains normally.
* Loaders must have a length (the last, possibly partial accumulation group of an epoch is
  known in advance): micro-batch losses are divided by the size of their group, so a group of
  ``k`` micro-batches of equal size gives the gradient of one batch ``k`` times larger.
* Optimizer steps are counted from 1 in messages; the schedule is ``schedule.lr_at``.

Starting points (decided in ``__init__``, so the state can be inspected before ``fit``)
* ``resume=True`` and ``out_dir/last.pt`` exists: everything continues (weights, EMA, optimizer,
  schedule, scaler, RNG of every rank, counters, history); ``init_from`` is then ignored. A run
  killed mid-epoch repeats that epoch from its start and ends bitwise equal to an uninterrupted
  one (same world size; DataLoader workers need ``persistent_workers: false`` for that, since
  persistent workers keep the worker seeds of the epoch the process started in).
* else ``init_from``: the file's ``model`` weights (or a plain state_dict); its optimizer state
  if ``resume_optimizer`` (current hyperparameters such as weight decay are kept) and its
  schedule position if ``resume_scheduler`` (RESUME_OPTIMIZER / RESUME_SCHEDULER of the seed
  plan). Epochs and the best metric start afresh.
* else a fresh run, seeded with ``seed + rank`` when ``fit`` starts.

Logging: one ``live.next_step()`` per epoch (rank 0), after ``live.log_metric`` of every entry
of the epoch record: ``train_loss``, ``train_<log>`` (epoch means of the task's logs),
``grad_norm`` (mean, before clipping), ``grad_norm_max``, ``lr`` and ``lr_group<i>`` (rate at the
epoch's last step), the task's validation metrics and the ``alarm_*`` counters. Per-step values go
to the progress bar and, every ``log_every`` steps, to ``logging`` (dvclive's x-axis is the
epoch, so per-step rows would pile up on one x). Pass a ``Live(..., resume=True)`` when resuming.

After :meth:`Engine.fit`, ``engine.model`` holds the best weights (the EMA weights when on).
The checkpoint payload is described in ``checkpoint.ENGINE_KEYS``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from tqdm import tqdm

from ..configtypes import to_dict
from ..errors import CheckpointError, ConfigError, DataError
from . import distributed
from .alarms import Alarms, nonfinite_alarm
from .amp import amp_dtype, autocast_factory, make_scaler
from .checkpoint import (FORMAT, check_engine_payload, check_plain, copy_checkpoint, load_checkpoint,
                         save_rotating)
from .config import EngineConfig
from .ema import ModelEMA
from .loader import set_epoch
from .schedule import Plateau, lr_at
from .. import devices
from ..resume import kill_point, timed
from .seeding import get_rng_state, seed_everything, set_deterministic, set_rng_state

log = logging.getLogger(__name__)


class Task(Protocol):
    def forward(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: nn.Module, loader: Any) -> dict[str, float]: ...


@dataclass
class FitResult:
    best_path: Path
    last_path: Path
    best_metric: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    epochs_run: int = 0


def resolve_device(name: str) -> torch.device:
    """:func:`stagetrack.devices.resolve_device` of ``train.device``; under torchrun, this rank's GPU."""
    if devices.resolve_device(name, field="train.device") == "cpu":
        return torch.device("cpu")
    return torch.device("cuda", distributed.dist_info().local_rank)


def move_to(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move the tensors of a batch (nested dicts, lists, tuples, namedtuples) to ``device``.

    Other objects with a ``to(device)`` method are moved with it; anything else is kept.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device, non_blocking) for v in batch)
    mover = getattr(batch, "to", None)
    if callable(mover):
        return mover(device)
    return batch


class _NonFinite(Exception):
    """Internal: an optimizer step saw a non-finite loss or gradient norm."""

    def __init__(self, step: int, epoch: int, batch: int, loss: float, grad_norm: float) -> None:
        super().__init__(f"non-finite step {step}")
        self.step, self.epoch, self.batch, self.loss, self.grad_norm = step, epoch, batch, loss, grad_norm


def _is_better(value: float, best: float | None, mode: str) -> bool:
    """Strict improvement; NaN never improves, anything beats a NaN or missing best."""
    if math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value < best if mode == "min" else value > best


def _to_cpu(obj: Any) -> Any:
    """Deep copy of a state (dicts, lists, tuples of tensors and scalars) onto the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def build_optimizer(cfg: EngineConfig, model: nn.Module, lr: float, weight_decay: float,
                    param_groups: list[dict] | None) -> tuple[torch.optim.Optimizer, list[float]]:
    """The optimizer and each group's ``lr_scale``. Other keys of a group go to the optimizer."""
    if param_groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        scales = [1.0]
    else:
        groups = [{k: v for k, v in g.items() if k != "lr_scale"} for g in param_groups]
        scales = [float(g.get("lr_scale", 1.0)) for g in param_groups]
    for group, scale in zip(groups, scales):
        group["params"] = list(group["params"])
        group["lr"] = lr * scale
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=weight_decay), scales
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay), scales


class Engine:
    """Trains ``model`` on ``task``; see the module docstring for the contracts."""

    def __init__(self, cfg: EngineConfig, model: nn.Module, task: Task, *, lr: float, epochs: int,
                 out_dir: Path, param_groups: list[dict] | None = None, weight_decay: float = 0.0,
                 monitor: str = "val_loss", mode: Literal["min", "max"] = "min", live: Any = None,
                 config: dict | None = None, metadata: dict | None = None,
                 resume: bool = False, init_from: Path | None = None,
                 resume_optimizer: bool = True, resume_scheduler: bool = True, name: str = "engine") -> None:
        problem = cfg.validate()
        if problem:
            raise ConfigError(problem[1], field=f"train.{problem[0]}")
        if mode not in ("min", "max"):
            raise ConfigError(f"invalid mode {mode!r}", field="mode", allowed=("min", "max"))
        self.config = dict(config or {})
        self.metadata = dict(metadata or {})
        check_plain(self.config, "config")
        check_plain(self.metadata, "metadata")
        self.cfg = cfg
        self.name = name  # what the fault test's kill point calls this run (stagetrack.resume.kill_point)
        self.device = resolve_device(cfg.device)
        self.dist = distributed.init_from_env(self.device)
        self.model = model.to(self.device)
        self.task = task
        self.lr = lr
        self.epochs = epochs
        self.out_dir = Path(out_dir)
        self.monitor = monitor
        self.mode = mode
        self.live = live if self.dist.is_main else None
        self.last_path = self.out_dir / "last.pt"
        self.best_path = self.out_dir / "best.pt"

        if cfg.memory_efficient:
            setter = getattr(self.model, "set_grad_checkpointing", None)
            if callable(setter):
                setter(cfg.checkpoint_ratio)
            else:
                log.warning("train.memory_efficient is on but %s has no set_grad_checkpointing(ratio); "
                            "training without gradient checkpointing", type(self.model).__name__)

        self.optimizer, self.lr_scales = build_optimizer(cfg, self.model, lr, weight_decay, param_groups)
        self.amp_dtype = amp_dtype(cfg, self.device)
        self.autocast = autocast_factory(self.amp_dtype, self.device)
        self.scaler = make_scaler(self.amp_dtype, self.device)
        self.ema = ModelEMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.plateau = Plateau(mode=mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
        self.alarms = Alarms(cfg, emit=self.dist.is_main)

        self.sched_step = 0       # position in the lr schedule (continues across stages if asked)
        self.lr_scale = 1.0       # product of NaN-retry cuts
        self.step = 0             # optimizer steps completed in this run
        self.epoch = -1           # last completed epoch
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.history: list[dict[str, float]] = []
        self._resume_rng: dict | None = None

        if resume and self.last_path.exists():
            self._resume(self.last_path)
        elif init_from is not None:
            self._init_from(Path(init_from), resume_optimizer, resume_scheduler)
        elif resume:
            log.info("resume requested but %s does not exist: starting fresh", self.last_path)

        self._ddp = distributed.wrap(self.model, self.device, cfg.find_unused_parameters)
        self._train_model = torch.compile(self._ddp) if cfg.compile else self._ddp

    # ------------------------------------------------------------------ loading
    def _load_weights(self, module: nn.Module, state: dict, path: Path) -> None:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not fit the model: {str(exc)[:500]}", file=path) from None

    def _load_optimizer(self, state: dict, path: Path) -> None:
        """Per-parameter state from the file; the current hyperparameters of every group stay."""
        current = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(state)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"optimizer state does not fit the parameter groups: {exc}", file=path) from None
        for group, hyper in zip(self.optimizer.param_groups, current):
            group.update(hyper)

    def _load_scheduler(self, state: dict) -> None:
        self.sched_step = int(state["step"])
        self.lr_scale = float(state["lr_scale"])
        self.plateau.load_state_dict(state["plateau"])

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        check_engine_payload(ckpt, path)
        raw = ckpt["train_model"] if ckpt["train_model"] is not None else ckpt["model"]
        self._load_weights(self.model, raw, path)
        if self.ema is not None:
            self._load_weights(self.ema.module, ckpt["model"] if ckpt["ema"] else raw, path)
            self.ema.updates = int(ckpt["ema"]["updates"]) if ckpt["ema"] else 0
        self._load_optimizer(ckpt["optimizer"], path)
        self._load_scheduler(ckpt["scheduler"])
        if self.scaler is not None and ckpt["scaler"] is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.alarms.load_state_dict(ckpt["alarms"])
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        self.best_metric, self.best_epoch = ckpt["best_metric"], ckpt["best_epoch"]
        self.bad_epochs = int(ckpt["bad_epochs"])
        self.history = [dict(h) for h in ckpt["history"]]
        rngs = ckpt["rng"]
        if len(rngs) == self.dist.world_size:
            self._resume_rng = rngs[self.dist.rank]
        else:
            log.warning("%s was written by %d processes, this run has %d: RNG reseeded, not restored",
                        path, len(rngs), self.dist.world_size)
        changed = sorted(k for k, v in to_dict(self.cfg).items() if ckpt["engine"].get(k) != v)
        if changed:
            log.warning("resuming %s with changed train params: %s", path, ", ".join(changed))
        log.info("resuming from %s: epoch %d done, %d steps, best %s = %s",
                 path, self.epoch, self.step, self.monitor, self.best_metric)

    def _init_from(self, path: Path, resume_optimizer: bool, resume_scheduler: bool) -> None:
        """Start a new run from another run's weights (stage to stage); epochs count from 0."""
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("format") is None and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            self._load_weights(self.model, ckpt, path)  # a plain state_dict (e.g. pretrained weights)
            if resume_optimizer or resume_scheduler:
                log.warning("%s is a plain state_dict: no optimizer or scheduler state to resume", path)
        else:
            check_engine_payload(ckpt, path)
            self._load_weights(self.model, ckpt["model"], path)
            if resume_optimizer:
                self._load_optimizer(ckpt["optimizer"], path)
            if resume_scheduler:
                self._load_scheduler(ckpt["scheduler"])
        if self.ema is not None:
            self.ema.module.load_state_dict(self.model.state_dict())
        log.info("initialised from %s (optimizer %s, scheduler %s)", path,
                 "resumed" if resume_optimizer else "fresh", "resumed" if resume_scheduler else "fresh")

    # ------------------------------------------------------------------ state
    def _payload(self) -> dict:
        """The checkpoint dict (``checkpoint.ENGINE_KEYS``). Collective under DDP (RNG gather)."""
        raw = self.model.state_dict()
        return {
            "format": FORMAT,
            "model": self.ema.module.state_dict() if self.ema is not None else raw,
            "train_model": raw if self.ema is not None else None,
            "ema": self.ema.state() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.sched_step, "lr_scale": self.lr_scale, "plateau": self.plateau.state_dict()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": distributed.gather_objects(get_rng_state()),
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "mode": self.mode,
            "bad_epochs": self.bad_epochs,
            "history": [dict(h) for h in self.history],
            "alarms": self.alarms.state_dict(),
            "engine": to_dict(self.cfg),
            "config": self.config,
            "metadata": self.metadata,
            "torch_version": str(torch.__version__),
        }

    def _snapshot(self) -> dict:
        """In-memory copy of everything an epoch changes (for the NaN retry)."""
        return _to_cpu({
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sched_step": self.sched_step,
            "plateau": self.plateau.state_dict(),
            "step": self.step,
            "rng": get_rng_state(),
        })

    def _restore(self, snap: dict) -> None:
        self.model.load_state_dict(snap["model"])
        if self.ema is not None:
            self.ema.module.load_state_dict(snap["ema"])
            self.ema.updates = snap["ema_updates"]
        self.optimizer.load_state_dict(snap["optimizer"])
        if self.scaler is not None:
            self.scaler.load_state_dict(snap["scaler"])
        self.sched_step = snap["sched_step"]
        self.plateau.load_state_dict(snap["plateau"])
        self.step = snap["step"]
        set_rng_state(snap["rng"])

    # ------------------------------------------------------------------ loop
    def fit(self, train_loader: Any, val_loader: Any) -> FitResult:
        """Train until ``epochs`` (or early stop); see the module docstring."""
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            set_deterministic(self.cfg.deterministic)
            self._resume_rng = None
        else:
            seed_everything(self.cfg.seed + self.dist.rank, self.cfg.deterministic)
        n_batches = len(train_loader)
        if n_batches == 0:
            raise DataError("the training loader yields no batches")
        steps_per_epoch = math.ceil(n_batches / self.cfg.accumulate_steps)
        stopped_early = self._should_stop()
        epoch = self.epoch + 1
        while epoch < self.epochs and not stopped_early:
            snapshot = self._snapshot() if self.cfg.nan_retry_lr_scale > 0 else None
            try:
                train_logs = self._train_epoch(epoch, train_loader, steps_per_epoch)
            except _NonFinite as bad:
                self.alarms.nonfinite(bad.step, bad.epoch, bad.batch, bad.loss, bad.grad_norm)
                if snapshot is None:
                    raise nonfinite_alarm(bad.step, bad.epoch, bad.batch, bad.loss, bad.grad_norm, None) from None
                self._restore(snapshot)
                self.lr_scale *= self.cfg.nan_retry_lr_scale
                log.warning("retrying epoch %d from its start at lr x%g", epoch, self.lr_scale)
                try:
                    train_logs = self._train_epoch(epoch, train_loader, steps_per_epoch)
                except _NonFinite as again:
                    self.alarms.nonfinite(again.step, again.epoch, again.batch, again.loss, again.grad_norm)
                    raise nonfinite_alarm(again.step, again.epoch, again.batch, again.loss,
                                          again.grad_norm, self.lr_scale) from None
            self._end_epoch(epoch, train_logs, val_loader)
            stopped_early = self._should_stop()
            if stopped_early:
                log.info("early stop after epoch %d: %s did not improve for %d epochs",
                         epoch, self.monitor, self.bad_epochs)
            epoch += 1
        distributed.barrier()
        if self.best_path.exists():
            best = load_checkpoint(self.best_path, map_location=self.device)
            self._load_weights(self.model, best["model"], self.best_path)
        return FitResult(
            best_path=self.best_path,
            last_path=self.last_path,
            best_metric=float("nan") if self.best_metric is None else float(self.best_metric),
            history=[dict(h) for h in self.history],
            stopped_early=stopped_early,
            epochs_run=self.epoch + 1,
        )

    def _should_stop(self) -> bool:
        return self.cfg.early_stop > 0 and self.bad_epochs >= self.cfg.early_stop

    def _train_epoch(self, epoch: int, loader: Any, steps_per_epoch: int) -> dict[str, float]:
        cfg = self.cfg
        set_epoch(loader, epoch, cfg.seed)
        self._ddp.train()
        n, k = len(loader), cfg.accumulate_steps
        sums: dict[str, float] = defaultdict(float)
        norm_max = 0.0
        steps = 0
        group_loss = torch.zeros((), device=self.device)
        group_logs: dict[str, float] = defaultdict(float)
        self.optimizer.zero_grad(set_to_none=True)
        show = self.dist.is_main and sys.stderr.isatty()
        with tqdm(loader, total=n, desc=f"epoch {epoch}", disable=not show, leave=False,
                  dynamic_ncols=True) as bar:
            for i, batch in enumerate(bar):
                kill_point(self.name, epoch + 1, i + 1)
                start = i - i % k
                size = min(k, n - start)            # the last group of an epoch may be partial
                last = i == start + size - 1
                batch = move_to(batch, self.device, non_blocking=cfg.pin_memory)
                sync = contextlib.nullcontext() if last or not self.dist.enabled else self._ddp.no_sync()
                with sync:
                    with self.autocast():
                        loss, logs = self.task.forward(self._train_model, batch)
                    scaled = loss / size
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                group_loss += loss.detach().float()
                for key, value in logs.items():
                    group_logs[key] += float(value) / size
                if not last:
                    continue
                lr, loss_value, norm, step_logs = self._optimizer_step(
                    epoch, i, steps_per_epoch, group_loss / size, group_logs)
                group_loss = torch.zeros((), device=self.device)
                group_logs = defaultdict(float)
                steps += 1
                sums["train_loss"] += loss_value
                sums["grad_norm"] += norm if math.isfinite(norm) else 0.0
                norm_max = max(norm_max, norm) if math.isfinite(norm) else norm_max
                for key, value in step_logs.items():
                    sums[f"train_{key}"] += value
                if show:
                    bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{lr:.3g}")
                if self.dist.is_main and self.step % cfg.log_every == 0:
                    log.info("epoch %d step %d: loss %.5g, lr %.4g, grad norm %.4g", epoch, self.step,
                             loss_value, lr, norm)
        out = {key: value / steps for key, value in sums.items()}
        out["grad_norm_max"] = norm_max
        for i, group in enumerate(self.optimizer.param_groups):
            out["lr" if i == 0 else f"lr_group{i}"] = float(group["lr"])
        return out

    def _optimizer_step(self, epoch: int, batch_index: int, steps_per_epoch: int, loss: torch.Tensor,
                        logs: dict[str, float]) -> tuple[float, float, float, dict[str, float]]:
        """Clip, check, step, update EMA and alarms. Returns (lr, loss, grad norm, logs)."""
        cfg = self.cfg
        lr = lr_at(cfg, self.lr * self.lr_scale, self.sched_step, steps_per_epoch, self.plateau.scale)
        for group, scale in zip(self.optimizer.param_groups, self.lr_scales):
            group["lr"] = lr * scale
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm_t = (torch.nn.utils.get_total_norm([p.grad for p in params]) if params
                  else torch.zeros((), device=self.device))
        # one all-reduce for the step's loss and logs: every rank takes the same decision
        keys = sorted(logs)
        stats = torch.stack([loss.float().to(self.device)] + [torch.tensor(float(logs[key]), device=self.device)
                                                              for key in keys])
        distributed.all_reduce_sum(stats)
        stats = (stats / self.dist.world_size).tolist()
        loss_value, step_logs = stats[0], dict(zip(keys, stats[1:]))
        norm = float(norm_t)
        if not math.isfinite(loss_value) or (self.scaler is None and not math.isfinite(norm)):
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.update()
            raise _NonFinite(self.step + 1, epoch, batch_index, loss_value, norm)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grads_with_norm_(params, cfg.grad_clip, norm_t)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.sched_step += 1
        if math.isfinite(norm):
            self.alarms.grad_norm(self.step, norm)
        if "pred_std" in step_logs:
            self.alarms.pred_std(self.step, step_logs["pred_std"])
        return lr, loss_value, norm, step_logs

    def _validate(self, loader: Any) -> dict[str, float]:
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        with torch.no_grad(), self.autocast():
            metrics = {k: float(v) for k, v in self.task.evaluate(model, loader).items()}
        sampler = getattr(loader, "sampler", None)
        weight = len(sampler) if sampler is not None and hasattr(sampler, "__len__") else len(loader)
        return distributed.mean_over_ranks(metrics, float(weight), self.device)

    def _end_epoch(self, epoch: int, train_logs: dict[str, float], val_loader: Any) -> None:
        record = {"epoch": float(epoch), **train_logs, **self._validate(val_loader)}
        record.update({name: float(count) for name, count in self.alarms.counts.items()})
        if self.monitor not in record:
            raise ConfigError(f"monitored metric {self.monitor!r} is not among this epoch's metrics",
                              field="monitor", allowed=sorted(record))
        value = record[self.monitor]
        if self.cfg.scheduler == "plateau":
            self.plateau.step(value)
        improved = self.best_epoch is None or _is_better(value, self.best_metric, self.mode)
        if improved:
            self.best_metric, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        self.epoch = epoch
        self.history.append(record)
        payload = self._payload()  # collective (RNG gather): every rank builds it
        if self.dist.is_main:
            with timed(self.name):
                save_rotating(self.last_path, payload)
                if improved:
                    copy_checkpoint(self.last_path, self.best_path)
            log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.5g}" for k, v in record.items() if k != "epoch"))
            if self.live is not None:
                for name, metric in record.items():
                    if name != "epoch":
                        self.live.log_metric(name, metric)
                self.live.next_step()
        distributed.barrier()

