"""Training alarms: non-finite loss, gradient-norm spikes, collapsed predictions.

* Non-finite loss (or, without a GradScaler, a non-finite gradient norm) at an optimizer step:
  the update is skipped; the engine reloads the state from the start of the epoch and retries it
  once at ``lr * nan_retry_lr_scale``; a second failure raises :class:`TrainingAlarm` naming
  the step (:func:`nonfinite_alarm`). Fatal.
* Gradient-norm spike: norm > ``grad_spike_factor`` x the median of the last
  ``grad_spike_window`` finite norms (judged once ``grad_spike_warmup`` norms are known). A
  warning; the step still happens (clipping, when on, bounds it).
* Collapse: the task's ``pred_std`` (std of predictions across the batch, mean over the
  accumulation group) below ``collapse_std`` for ``collapse_patience`` consecutive steps (seed
  002: "std = 0.0003 ... all predictions identical"). A warning, once per streak.

Every firing increments a counter (``alarm_nonfinite``, ``alarm_grad_spike``,
``alarm_collapse``) that the engine logs each epoch.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque

from ..errors import TrainingAlarm
from .config import EngineConfig

log = logging.getLogger(__name__)

COUNTERS = ("alarm_nonfinite", "alarm_grad_spike", "alarm_collapse")


class Alarms:
    """Per-step checks and their counters; state is saved in checkpoints."""

    def __init__(self, cfg: EngineConfig, emit: bool = True) -> None:
        self.emit = emit  # log warnings (rank 0 only under DDP: every rank sees the same values)
        self.spike_factor = cfg.grad_spike_factor
        self.spike_warmup = cfg.grad_spike_warmup
        self.collapse_std = cfg.collapse_std
        self.collapse_patience = cfg.collapse_patience
        self.norms: deque[float] = deque(maxlen=cfg.grad_spike_window)
        self.low_std_steps = 0
        self.counts = dict.fromkeys(COUNTERS, 0)

    def grad_norm(self, step: int, norm: float) -> bool:
        """Record a finite gradient norm; True (and a warning) if it is a spike."""
        spike = False
        if self.spike_factor > 0 and len(self.norms) >= max(1, self.spike_warmup):
            median = statistics.median(self.norms)
            if norm > self.spike_factor * median:
                spike = True
                self.counts["alarm_grad_spike"] += 1
                self._warn("gradient-norm spike at step %d: %.4g > %g x running median %.4g",
                            step, norm, self.spike_factor, median)
        self.norms.append(norm)
        return spike

    def pred_std(self, step: int, std: float) -> bool:
        """Record the batch prediction std; True (and a warning) when a collapse streak completes."""
        if self.collapse_patience <= 0:
            return False
        if std < self.collapse_std:
            self.low_std_steps += 1
            if self.low_std_steps == self.collapse_patience:
                self.counts["alarm_collapse"] += 1
                self._warn("collapse at step %d: prediction std %.3g < %g for %d steps "
                            "(all predictions nearly identical)", step, std, self.collapse_std,
                            self.collapse_patience)
                return True
        else:
            self.low_std_steps = 0
        return False

    def nonfinite(self, step: int, epoch: int, batch: int, loss: float, grad_norm: float) -> None:
        """Count a non-finite step and warn (the engine decides retry or stop)."""
        self.counts["alarm_nonfinite"] += 1
        self._warn("non-finite training step %d (epoch %d, batch %d): loss %s, grad norm %s",
                    step, epoch, batch, loss, grad_norm)

    def _warn(self, message: str, *args: object) -> None:
        if self.emit:
            log.warning(message, *args)

    def state_dict(self) -> dict:
        return {"counts": dict(self.counts), "norms": list(self.norms), "low_std_steps": self.low_std_steps}

    def load_state_dict(self, state: dict) -> None:
        self.counts.update({k: int(v) for k, v in state["counts"].items()})
        self.norms.clear()
        self.norms.extend(float(v) for v in state["norms"])
        self.low_std_steps = int(state["low_std_steps"])


def nonfinite_alarm(step: int, epoch: int, batch: int, loss: float, grad_norm: float,
                    retried_at: float | None) -> TrainingAlarm:
    """The fatal alarm for a non-finite step (after the retry, if one was allowed)."""
    retry = (f" after one retry of the epoch at lr x{retried_at:g}" if retried_at is not None
             else " (nan_retry_lr_scale is 0: no retry)")
    return TrainingAlarm(
        f"non-finite training loss at step {step} (epoch {epoch}, batch {batch}): loss {loss}, "
        f"grad norm {grad_norm}{retry}",
        hint="lower the learning rate, enable grad_clip, or check that batch for bad values",
    )
