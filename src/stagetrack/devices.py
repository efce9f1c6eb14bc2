"""Device names: one rule for params ``device``, ``train.device`` and every ``--device`` flag.

``auto`` is CUDA when a GPU is visible, else CPU; ``cuda`` without one is an error naming the key
(never a quiet CPU run). The detector's multi-GPU spelling (``detector.train_device: "0,1"``) is
ultralytics' and goes to it as written.
"""

from __future__ import annotations

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, *, field: str = "device") -> str:
    """``cpu`` or ``cuda`` for ``name`` (one of :data:`DEVICES`); errors name ``field``."""
    if name not in DEVICES:
        raise ConfigError(f"invalid device {name!r}", field=field, allowed=DEVICES)
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA device is available", field=field, allowed=DEVICES)
    return name
