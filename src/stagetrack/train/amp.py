"""Mixed precision: which autocast dtype and whether a GradScaler is needed.

On CUDA with ``amp``: bf16 when ``bf16`` and the GPU supports it (no scaler needed: bf16 has
fp32's exponent range), else fp16 with a ``GradScaler`` (dynamic loss scaling; steps whose
gradients overflow are skipped by the scaler). On CPU everything runs in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from .config import EngineConfig


def amp_dtype(cfg: EngineConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if not cfg.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if cfg.bf16 and torch.cuda.is_bf16_supported() else torch.float16


def autocast_factory(dtype: torch.dtype | None, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A zero-argument callable returning a fresh autocast context (or a null context)."""
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 autocast, else None."""
    if dtype is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None
