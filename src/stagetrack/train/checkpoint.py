"""Checkpoint files: atomic, rotated, CRC-checked, loadable with ``weights_only=True``.

What is stored, and why loading it is safe
------------------------------------------
A checkpoint is a ``torch.save`` zip archive of one dict made only of plain data: ``dict``,
``list``, ``tuple``, ``str``, ``int``, ``float``, ``bool``, ``None`` and tensors (a model or
optimizer ``state_dict`` is exactly that). :func:`save_checkpoint` refuses anything else, naming
the offending key, so a file written here never needs arbitrary unpickling. :func:`load_checkpoint`
always uses ``torch.load(weights_only=True)``, whose unpickler only rebuilds those types and
refuses to import or call anything else: opening a checkpoint from an untrusted source cannot
run code. (numpy arrays, numpy scalars, Paths and dataclasses are deliberately not allowed;
the engine stores numpy's RNG key as a tensor and configs as plain dicts.)

Integrity: the zip format keeps a CRC-32 of every member. ``torch.load`` does not check it, so a
flipped byte inside tensor data would load silently as wrong weights; :func:`load_checkpoint`
first verifies every CRC with :mod:`zipfile`, which also catches truncation. Any failure is a
:class:`~stagetrack.errors.CheckpointError` naming the file, never a torch traceback.

Writes go to a temporary file that is renamed over the target (``stagetrack.io.atomic_path``),
so a crash mid-write leaves the previous file intact; :func:`save_rotating` additionally keeps
the previous version as ``<name>.prev.pt`` (hard link, else copy), so that a file damaged later
(disk, sync, manual copy) still has an intact predecessor.

The engine's payload (keys and meaning) is documented in :data:`ENGINE_KEYS` and ``engine.py``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import atomic_path, atomic_torch_save

FORMAT = "stagetrack.engine.v1"

# Keys of an engine checkpoint (engine.py builds it; this is the contract for readers):
ENGINE_KEYS: dict[str, str] = {
    "format": f"the string {FORMAT!r}",
    "model": "state_dict to use for inference: the EMA weights when EMA is on, else the trained weights",
    "train_model": "state_dict of the raw trained weights when EMA is on (to resume training), else None",
    "ema": "{'decay': float, 'updates': int} when EMA is on, else None",
    "optimizer": "torch optimizer state_dict (per-parameter moments, param-group hyperparameters)",
    "scheduler": "{'step': schedule step, 'lr_scale': NaN-retry multiplier, 'plateau': Plateau state}",
    "scaler": "GradScaler state_dict for fp16 AMP, else None",
    "rng": "list, one per rank, of {'python', 'numpy', 'torch', 'cuda'} RNG states (seeding.py)",
    "epoch": "last completed epoch (0-based)",
    "step": "optimizer steps completed in this run",
    "best_metric": "best value of the monitored metric so far (float) or None",
    "best_epoch": "epoch of best_metric or None",
    "monitor": "name of the monitored metric",
    "mode": "'min' or 'max'",
    "bad_epochs": "epochs since the last improvement (early stopping counter)",
    "history": "list of per-epoch metric dicts {name: float}",
    "alarms": "alarm monitor state (counters, recent grad norms, low-std streak)",
    "engine": "the EngineConfig as a plain dict",
    "config": "the caller's config dict (e.g. the model's params)",
    "metadata": "the caller's metadata dict (stage, data hashes, ...)",
    "torch_version": "torch.__version__ that wrote the file",
}

_SCALARS = (str, int, float, bool, type(None))


def check_plain(obj: Any, where: str = "payload") -> None:
    """Raise ``TypeError`` naming the key path of the first value weights_only would refuse."""
    # exact types: a subclass (torch.__version__ is a str subclass, enums are ints) is pickled
    # by its class, which weights_only refuses
    if type(obj) in _SCALARS or isinstance(obj, (torch.Tensor, torch.Size, torch.dtype)):
        return
    if isinstance(obj, Mapping):
        if not isinstance(obj, dict):
            raise TypeError(f"{where}: {type(obj).__name__} is not a plain dict")
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not str or int")
            check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__module__}.{type(obj).__name__} cannot be stored "
                    "(checkpoints hold plain data only: dict, list, tuple, str, int, float, bool, None, tensors)")


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file + rename)."""
    check_plain(payload)
    atomic_torch_save(path, payload)


def save_rotating(path: Path, payload: dict) -> None:
    """Like :func:`save_checkpoint`, first keeping the current ``path`` as ``<stem>.prev<suffix>``.

    ``path`` exists at every instant (the old file is linked, not moved, before the new one is
    renamed over it).
    """
    path = Path(path)
    check_plain(payload)
    if path.exists():
        copy_checkpoint(path, previous_path(path))
    save_checkpoint(path, payload)


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` a copy of ``src`` (a hard link where possible: files are never
    modified in place, only replaced, so sharing the data is safe)."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # file systems without hard links
            shutil.copyfile(src, tmp)


def previous_path(path: Path) -> Path:
    """``last.pt`` -> ``last.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) after checking its integrity.

    Raises :class:`CheckpointError` naming ``path`` when it is missing, truncated, corrupt, holds
    objects that weights_only refuses, or is not a dict.
    """
    path = Path(path)
    hint = None
    prev = previous_path(path)
    if prev != path and prev.exists():
        hint = f"the previous version {prev} is kept; use it instead"
    if not path.is_file():
        raise CheckpointError("checkpoint not found", file=path, hint=hint)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"truncated or not a torch checkpoint ({exc})", file=path, hint=hint) from None
    if bad is not None:
        raise CheckpointError(f"corrupt: CRC mismatch in member {bad!r}", file=path, hint=hint)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "WeightsUnpickler error" in ln]
        reason = lines[0].split(". ")[0] if lines else type(exc).__name__
        raise CheckpointError(f"refused by weights_only loading (holds non-plain objects): {reason}",
                              file=path) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})",
                              file=path, hint=hint) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"not a checkpoint dict (got {type(payload).__name__})", file=path)
    return payload


def check_engine_payload(payload: dict, path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``payload`` is an engine checkpoint of this format."""
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"not an engine checkpoint (format {payload.get('format')!r}, "
                              f"expected {FORMAT!r})", file=path)
    missing = sorted(set(ENGINE_KEYS) - set(payload))
    if missing:
        raise CheckpointError(f"engine checkpoint lacks keys {missing}", file=path)
