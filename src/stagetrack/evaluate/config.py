"""Typed params of evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..data.sequence import CLASSES


@dataclass(frozen=True)
class EvalConfig:
    # classes scored by stagetrack.evaluate.metrics.evaluate (subset of person, vehicle)
    classes: tuple[str, ...] = ("person", "vehicle")
    # which boxes are scored: see stagetrack.evaluate.preprocess
    preprocess: Literal["project", "mot", "none"] = "project"
    # project mode: an unmatched prediction this much inside ignore regions is dropped (VisDrone 0.5)
    ignore_coverage: float = 0.5
    # confidence intervals: bootstrap draws over videos (stratified by domain), their seed, the level
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    ci_level: float = 0.95

    def validate(self) -> tuple[str, str] | None:
        for name in self.classes:
            if name not in CLASSES:
                return "classes", f"unknown class {name!r} (allowed: {', '.join(CLASSES)})"
        if not self.classes:
            return "classes", "at least one class is needed"
        if self.bootstrap < 1:
            return "bootstrap", f"must be >= 1, got {self.bootstrap}"
        if not 0 < self.ci_level < 1:
            return "ci_level", f"must be in (0, 1), got {self.ci_level}"
        if self.ignore_coverage <= 0:
            return "ignore_coverage", f"must be > 0, got {self.ignore_coverage}"
        return None
