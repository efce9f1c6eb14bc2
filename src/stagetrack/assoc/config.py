"""Typed params of the learned association transformer (seed 000).

One section, ``assoc:``, covers the sample logger (``log_*``, ``shard_size``), the feature layout
(``history``, ``max_candidates``), the model (``d_model`` ... ``dropout``) and its
training (``lr`` ... ``aug_drop``). Environment variables of the seed override the ``log_*``
fields at run time (see :func:`stagetrack.assoc.logger.logger_from_env_or_params`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class AssocConfig:
    # feature layout (fixed by the logger; a trained model is tied to it)
    history: int = 8
    max_candidates: int = 8
    # model
    d_model: int = 32
    heads: int = 2
    layers: int = 1
    track_layers: int = 1
    dropout: float = 0.1
    # training (the learning rate is the top-level `lr` times the stage's lr_scale)
    epochs: int = 4
    batch_size: int = 64
    val_split: float = 0.1
    weight_decay: float = 0.01
    aug_jitter: float = 0.02
    aug_drop: float = 0.05
    shards_in_memory: int = 4
    # detection noise when the pipeline simulates detections from ground truth for logging
    det_jitter: float = 0.05
    det_drop: float = 0.1
    # sample logger
    log_enable: bool = False
    log_dir: str | None = None
    log_embed_dim: int | None = None
    shard_size: int = 1024

    def validate(self) -> tuple[str, str] | None:
        positive = ("history", "max_candidates", "d_model", "heads", "layers", "epochs", "batch_size",
                    "shard_size", "shards_in_memory")
        for name in positive:
            if getattr(self, name) < 1:
                return name, f"must be >= 1, got {getattr(self, name)}"
        if self.track_layers < 0:
            return "track_layers", f"must be >= 0, got {self.track_layers}"
        if self.d_model % self.heads:
            return "heads", f"must divide d_model={self.d_model}, got {self.heads}"
        if not 0.0 < self.val_split < 1.0:
            return "val_split", f"must be in (0, 1), got {self.val_split}"
        for name in ("dropout", "aug_drop", "det_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                return name, f"must be in [0, 1], got {getattr(self, name)}"
        for name in ("aug_jitter", "det_jitter", "weight_decay"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        if self.log_embed_dim is not None and self.log_embed_dim < 0:
            return "log_embed_dim", f"must be >= 0 or null, got {self.log_embed_dim}"
        return None


# --- the seed's environment variables ------------------------------------------------------
# Each reader returns None when the variable is unset or empty, so the params value applies.

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return None if value is None or not value.strip() else value.strip()


def env_flag(environ: Mapping[str, str], name: str) -> bool | None:
    raw = _raw(environ, name)
    if raw is None:
        return None
    if raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    raise ConfigError(f"invalid value {raw!r}", file="environment", field=name, allowed=_TRUE + _FALSE)


def env_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = _raw(environ, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"expected an integer, got {raw!r}", file="environment", field=name) from None


def env_float(environ: Mapping[str, str], name: str) -> float | None:
    raw = _raw(environ, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"expected a number, got {raw!r}", file="environment", field=name) from None


def env_str(environ: Mapping[str, str], name: str) -> str | None:
    return _raw(environ, name)


# every seed variable -> the params key it overrides (a DVC stage refuses them: stagetrack.cli)
ENV_PARAMS: dict[str, str] = {
    "TRANSFORMER_ASSOC_ENABLE": "tracker.assoc.enable",
    "TRANSFORMER_ASSOC_WEIGHTS": "tracker.assoc.weights",
    "TRANSFORMER_ASSOC_WEIGHT": "tracker.assoc.weight",
    "TRANSFORMER_ASSOC_EMBED_DIM": "tracker.assoc.embed_dim",
    "TRANSFORMER_LOG_ENABLE": "assoc.log_enable",
    "TRANSFORMER_LOG_DIR": "assoc.log_dir",
    "TRANSFORMER_LOG_EMBED_DIM": "assoc.log_embed_dim",
}
