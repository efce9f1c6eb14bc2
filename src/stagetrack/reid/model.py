"""OSNet models and their weight files.

Weights are saved as a plain dict ``{"state_dict": ..., "meta": ...}`` of tensors and plain
Python values, so they load with ``torch.load(weights_only=True)`` (torch >= 2.6's default;
torchreid's own ``save_checkpoint`` files may hold numpy scalars that this refuses). ``meta``
holds what is needed to rebuild and feed the model: architecture, feature size, number of
training identities and input size. Transfer between stages keeps every backbone tensor and
always starts a fresh identity classifier, since each stage has its own identities.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..io import atomic_torch_save
from . import backend

log = logging.getLogger(__name__)

FORMAT = "stagetrack-reid/1"
CLASSIFIER = "classifier"  # OSNet's identity classifier (the only layer not transferred)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_model(name: str, num_classes: int) -> nn.Module:
    """An OSNet with randomly initialised weights; never downloads (``pretrained=False``)."""
    with backend.quiet():
        return backend.models.build_model(name, num_classes=num_classes, loss="triplet", pretrained=False)


def save_weights(path: Path, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """Write ``{"state_dict", "meta"}`` atomically (``meta`` must hold plain Python values)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"state_dict": state, "meta": {"format": FORMAT, **meta}})


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, meta) of a weights file; ``meta`` is empty for a foreign file.

    Accepts this module's files, torchreid-style ``{"state_dict": ...}`` dicts and bare state
    dicts; ``module.`` prefixes (DataParallel) are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("ReID weights file not found", file=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"cannot load ReID weights ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            file=path, hint="save a plain state_dict (torchreid checkpoints with numpy values do not load safely)",
        ) from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("no state_dict of tensors in the file", file=path)
    meta = obj.get("meta", {}) if isinstance(obj, dict) else {}
    clean = {k.removeprefix("module."): v for k, v in state.items()}
    return clean, dict(meta) if isinstance(meta, Mapping) else {}


def load_model(path: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_weights`, in eval mode on ``device``."""
    state, meta = read_weights(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a stagetrack ReID weights file (format {meta.get('format')!r})",
                              file=path, allowed=[FORMAT])
    model = build_model(meta["model"], int(meta["num_classes"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit {meta['model']}: {str(exc).splitlines()[0]}", file=path) from None
    return model.to(device).eval(), meta


def load_backbone(model: nn.Module, path: Path, *, model_name: str, require_all: bool) -> int:
    """Copy every matching non-classifier tensor of ``path`` into ``model``; returns the count.

    ``require_all`` (stage-to-stage transfer) makes any missing or mis-shaped backbone tensor an
    error; otherwise (external pretrained weights) unmatched tensors keep their random init.
    """
    state, meta = read_weights(path)
    if meta.get("model", model_name) != model_name:
        raise CheckpointError(f"weights are for {meta['model']}, the config asks for {model_name}",
                              file=path, field="reid.model")
    own = model.state_dict()
    backbone = [k for k in own if not k.startswith(CLASSIFIER + ".")]
    matched = {k: state[k] for k in backbone if k in state and state[k].shape == own[k].shape}
    missing = [k for k in backbone if k not in matched]
    if not matched or (require_all and missing):
        raise CheckpointError(
            f"{len(missing)} of {len(backbone)} backbone tensors missing or mis-shaped (first: {missing[0]})",
            file=path, field="reid.model")
    model.load_state_dict(matched, strict=False)
    if missing:
        log.warning("%s: %d backbone tensors not in the file keep their random init (first: %s)",
                    path, len(missing), missing[0])
    log.info("loaded %d backbone tensors from %s; classifier re-initialised", len(matched), path)
    return len(matched)
