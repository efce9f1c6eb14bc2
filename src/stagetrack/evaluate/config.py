"""Typed params of evaluation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    det_conf: float = 0.1
    stages: tuple[str, ...] = ("stage1", "stage2", "stage3")
    compare_learned: bool = True
