"""Typed params of the shared training engine (``train:`` in params.yaml; seeds 002/004).

Units: ``*_steps`` count optimizer steps (one per ``accumulate_steps`` micro-batches);
``lr_drop``, ``t_0``, ``early_stop`` and ``plateau_patience`` count epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EngineConfig:
    # hardware and precision
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True                  # autocast on CUDA (bf16 where supported, else fp16 + GradScaler)
    bf16: bool = True                 # prefer bf16 over fp16 when the GPU supports it
    compile: bool = False             # torch.compile the training forward
    memory_efficient: bool = False    # gradient checkpointing via model.set_grad_checkpointing(ratio)
    checkpoint_ratio: float = 1.0     # fraction of blocks to checkpoint when memory_efficient
    # optimisation
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.9             # SGD momentum
    accumulate_steps: int = 1         # micro-batches per optimizer step
    grad_clip: float = 1.0            # max global grad norm; 0 = no clipping
    # learning-rate schedule (schedule.py)
    scheduler: Literal["none", "step", "cosine", "plateau"] = "cosine"
    warmup_steps: int = 0             # linear warm-up over this many optimizer steps
    min_lr: float = 0.0               # floor of the scheduled rate
    lr_drop: int | None = None        # scheduler "step": multiply by lr_drop_gamma from this epoch on
    lr_drop_gamma: float = 0.1
    t_0: int = 10                     # scheduler "cosine": epochs of the first cycle
    t_mult: int = 2                   # scheduler "cosine": cycle length multiplier after each restart
    plateau_patience: int = 3         # scheduler "plateau": epochs without improvement before a cut
    plateau_factor: float = 0.1       # scheduler "plateau": multiply the rate by this on a cut
    # model selection
    early_stop: int = 0               # epochs without improvement before stopping; 0 = off
    ema: float = 0.0                  # EMA decay of the weights (evaluated, saved as best); 0 = off
    # stage-to-stage starts (seed plan's RESUME_OPTIMIZER / RESUME_SCHEDULER): also carry over the
    # previous stage's optimizer moments / schedule position, not only its weights
    resume_optimizer: bool = False
    resume_scheduler: bool = False
    # reproducibility and data loading
    seed: int = 0
    deterministic: bool = True        # deterministic algorithms + cudnn flags (required while numerics.pin)
    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int = 2          # batches prefetched per worker (only used when num_workers > 0)
    persistent_workers: bool = True   # keep workers alive between epochs (only when num_workers > 0)
    # distributed
    find_unused_parameters: bool = False  # DDP option for models with conditionally used params
    # alarms (alarms.py)
    nan_retry_lr_scale: float = 0.5   # non-finite loss: retry the epoch from its start at lr x this; 0 = stop
    grad_spike_factor: float = 10.0   # warn when grad norm > factor x running median; 0 = off
    grad_spike_window: int = 50       # optimizer steps in the running median
    grad_spike_warmup: int = 10       # steps of history needed before spikes are judged
    collapse_std: float = 1e-3        # warn when the task's pred_std stays below this ...
    collapse_patience: int = 20       # ... for this many consecutive optimizer steps; 0 = off
    log_every: int = 10               # optimizer steps between progress log lines

    def validate(self) -> tuple[str, str] | None:
        positive_ints = ("accumulate_steps", "t_0", "t_mult", "plateau_patience", "prefetch_factor",
                         "grad_spike_window", "log_every")
        for name in positive_ints:
            if getattr(self, name) < 1:
                return name, f"must be >= 1, got {getattr(self, name)}"
        for name in ("warmup_steps", "early_stop", "num_workers", "grad_spike_warmup", "collapse_patience"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        for name in ("grad_clip", "min_lr", "grad_spike_factor", "collapse_std", "momentum"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        if not 0.0 < self.checkpoint_ratio <= 1.0:
            return "checkpoint_ratio", f"must be in (0, 1], got {self.checkpoint_ratio}"
        if not 0.0 <= self.ema < 1.0:
            return "ema", f"must be in [0, 1), got {self.ema}"
        if not 0.0 <= self.nan_retry_lr_scale < 1.0:
            return "nan_retry_lr_scale", f"must be in [0, 1), got {self.nan_retry_lr_scale}"
        for name in ("lr_drop_gamma", "plateau_factor"):
            if not 0.0 < getattr(self, name) < 1.0:
                return name, f"must be in (0, 1), got {getattr(self, name)}"
        if self.scheduler == "step" and self.lr_drop is None:
            return "lr_drop", "scheduler 'step' needs lr_drop (the epoch at which the rate drops)"
        if self.lr_drop is not None and self.scheduler != "step":
            return "lr_drop", f"only used by scheduler 'step', but scheduler is {self.scheduler!r}"
        if self.lr_drop is not None and self.lr_drop < 0:
            return "lr_drop", f"must be >= 0, got {self.lr_drop}"
        return None
