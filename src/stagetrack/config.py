"""The one typed config object: ``params.yaml`` -> :class:`Params`, validated once.

Library code never reads ``params.yaml``; stage scripts and CLI commands call
:func:`load_params` at the boundary and pass typed sections down. Each package owns the
dataclass of its own section (``stagetrack.detect.config`` ...); this module composes them.

Per-stage overrides (``stage1.detector: {epochs: 5}``) are merged over the global section and
validated against it by :meth:`Params.stage_section`, so an unknown or mistyped override key is
an error naming ``stage1.detector.<key>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from . import configtypes
from .assoc.config import AssocConfig
from .data.config import BuildConfig, SourceConfig, SynthConfig
from .detect.config import DetectorConfig
from .errors import ConfigError
from .evaluate.config import EvalConfig
from .numerics import NumericsConfig
from .reid.config import ReidConfig
from .stageconfig import PlanConfig, StageConfig
from .track.config import TrackerConfig
from .train.config import EngineConfig
from .visual.config import DashboardConfig, VizConfig

T = TypeVar("T")

STAGES: tuple[str, ...] = ("stage1", "stage2", "stage3")


@dataclass(frozen=True)
class Params:
    seed: int = 0
    lr: float = 1e-3
    device: Literal["auto", "cpu", "cuda"] = "auto"
    numerics: NumericsConfig = field(default_factory=NumericsConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    build: BuildConfig = field(default_factory=BuildConfig)
    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: StageConfig = field(default_factory=StageConfig)
    stage3: StageConfig = field(default_factory=StageConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    reid: ReidConfig = field(default_factory=ReidConfig)
    assoc: AssocConfig = field(default_factory=AssocConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    train: EngineConfig = field(default_factory=EngineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    viz: VizConfig = field(default_factory=VizConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)

    # where the params came from, for error messages of per-stage overrides
    _file: str | None = field(default=None, init=False, repr=False, compare=False)
    _lines: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def validate(self) -> tuple[str, str] | None:
        if self.numerics.pin:
            for key, value in (("train.deterministic", self.train.deterministic),
                               ("detector.deterministic", self.detector.deterministic)):
                if not value:
                    return key, "must be true while numerics.pin is true (pinned numerics are deterministic); " \
                                "set numerics.pin: false to trade reproducibility for speed"
        for name in STAGES:
            stage: StageConfig = getattr(self, name)
            for src in stage.data:
                if src not in self.sources:
                    return f"{name}.data.{src}", f"unknown source (sources: {', '.join(sorted(self.sources))})"
            if stage.init is not None and stage.init not in STAGES[: STAGES.index(name)]:
                earlier = ", ".join(STAGES[: STAGES.index(name)]) or "none: stage 1 starts from scratch"
                return f"{name}.init", (f"must be null or an earlier stage ({earlier}), got {stage.init!r}; local "
                                        "weight files go in detector.weights / reid.weights")
        if self.tracker.history < self.assoc.history:
            return "tracker.history", (f"{self.tracker.history} boxes kept per track, but the learned scorer reads "
                                       f"assoc.history = {self.assoc.history}: raise tracker.history to at least "
                                       "that (shorter histories would be cut silently)")
        return None

    def stage(self, name: str) -> StageConfig:
        if name not in STAGES:
            raise ConfigError(f"unknown stage {name!r}", allowed=STAGES)
        return getattr(self, name)

    def stage_section(self, stage: str, section: Literal["detector", "reid", "assoc"]) -> Any:
        """The global ``section`` with ``stage``'s overrides merged in, strictly validated."""
        base = configtypes.to_dict(getattr(self, section))
        overrides = getattr(self.stage(stage), section)
        key = f"{stage}.{section}"
        cls = type(getattr(self, section))
        merged = {**base, **overrides}
        return configtypes.build(cls, merged, key=key, file=self._file, lines=self._lines)

    def stage_lr(self, stage: str) -> float:
        """The seed plan's per-stage LR: top-level ``lr`` times the stage's ``lr_scale``."""
        return self.lr * self.stage(stage).lr_scale

    def resolved_device(self) -> str:
        """``device`` with ``auto`` resolved to cuda when a GPU is visible, else cpu (:mod:`.devices`)."""
        from .devices import resolve_device

        return resolve_device(self.device, field="device")

    def to_dict(self) -> dict[str, Any]:
        d = configtypes.to_dict(self)
        d.pop("_file", None)
        d.pop("_lines", None)
        return d


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Params:
    """Load and validate ``params.yaml``. Errors name the file, line and key."""
    data, lines = configtypes.load_yaml(path)
    if data is None:
        data = {}
    if overrides:
        data = merge(data, overrides)
    params = parse_params(data, file=str(path), lines=lines)
    # resolve every per-stage override now, so a typo fails at load, not mid-pipeline
    with configtypes.untraced():
        for name in STAGES:
            for section in ("detector", "reid", "assoc"):
                params.stage_section(name, section)
    return params


DEFAULT_PARAMS = "params.yaml"


def command_params(path: str | Path | None) -> Params:
    """The params of a command run by hand (``track``, ``viz``, ``dashboard``): ``--params``, else
    ``./params.yaml``. There are no other defaults to fall back to: a missing file is an error
    with the fix, never a run with other values than the repository's."""
    target = Path(path or DEFAULT_PARAMS)
    if not target.is_file():
        raise ConfigError("params file not found", file=target,
                          hint="run from the repository root or pass --params FILE")
    return load_params(target)


def parse_params(data: dict[str, Any], file: str | None = None, lines: dict[str, int] | None = None) -> Params:
    params = configtypes.build(Params, data, file=file, lines=lines)
    object.__setattr__(params, "_file", file)
    object.__setattr__(params, "_lines", dict(lines or {}))
    return params


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``over`` wins); used for smoke/test overlays."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
