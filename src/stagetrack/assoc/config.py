"""Typed params of the learned association transformer (seed 000)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AssocConfig:
    history: int = 8
    max_candidates: int = 16
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    dropout: float = 0.1
    epochs: int = 6
    batch_size: int = 64
    val_split: float = 0.1
    weight_decay: float = 0.01
    det_jitter: float = 0.05
    det_drop: float = 0.1
