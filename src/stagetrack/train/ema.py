"""Exponential moving average of a model's weights (evaluated and saved as best when on).

After each optimizer step: ``ema = d * ema + (1 - d) * weights`` for floating-point parameters
and buffers (integer buffers such as BatchNorm's counter are copied), with the usual warm-up of
the decay, ``d = min(decay, (1 + updates) / (10 + updates))``, so that early on the average is
not dominated by the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            value = current[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(value.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(value)

    def state(self) -> dict:
        return {"decay": self.decay, "updates": self.updates}
