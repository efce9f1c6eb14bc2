"""Weight interpolation of a stage's detector with the previous stage's (WiSE-FT, no training).

Fine-tuning stage N from stage N-1 moves the detector towards the new data and away from what
it knew; interpolating the two sets of weights, ``theta = alpha * theta_N + (1 - alpha) *
theta_{N-1}``, often keeps most of the gain and much of the old skill (Wortsman et al., CVPR 2022;
DuET, ICCV 2025, with YOLO11). Every floating-point tensor of the model is interpolated in
float32 (weights and batch-norm statistics alike) and cast back to its own dtype; integer
buffers (batch counters) stay stage N's.

``alpha`` is chosen on the stage's **selection split** (the detector's val images: clips held
out of the stage's training pool, never the locked val or test videos): every candidate of
``stageN.interpolate_alphas`` is validated by ultralytics' validator and the one with the
highest fitness (ultralytics' own, mAP50-95) wins, the larger alpha on a tie. ``alpha = 1`` is
the fine-tuned model itself, whose file is then left byte for byte as training wrote it.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_bytes, torch_bytes

log = logging.getLogger(__name__)


def _load(path: Path) -> dict[str, Any]:
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # this project's own checkpoints
    except Exception as err:  # torch/pickle raise many types for a damaged file
        raise CheckpointError(f"cannot read the detector checkpoint: {err}", file=path) from err
    if not isinstance(ckpt, dict) or ckpt.get("model") is None:
        raise CheckpointError("not an ultralytics detector checkpoint (no 'model')", file=path)
    return ckpt


def interpolated(finetuned: dict[str, Any], previous: dict[str, Any], alpha: float, *,
                 names: tuple[str, str] = ("finetuned", "previous")) -> dict[str, Any]:
    """A copy of the ``finetuned`` checkpoint whose model is ``alpha`` of it plus ``1 - alpha``
    of ``previous``'s (same architecture, or an error naming the first tensor that differs)."""
    import torch

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    out = copy.copy(finetuned)
    model = copy.deepcopy(finetuned["model"])
    mine, theirs = model.state_dict(), previous["model"].state_dict()
    if list(mine) != list(theirs):
        missing = sorted(set(mine) ^ set(theirs))
        raise CheckpointError(f"the two detectors differ in architecture (first tensor: {missing[:1]})",
                              file=names[1])
    mixed = {}
    for key, a in mine.items():
        b = theirs[key]
        if a.shape != b.shape:
            raise CheckpointError(f"tensor {key} has shape {tuple(b.shape)}, the fine-tuned one {tuple(a.shape)}",
                                  file=names[1])
        if a.is_floating_point():
            mixed[key] = (alpha * a.float() + (1.0 - alpha) * b.float()).to(a.dtype)
        else:
            mixed[key] = a
    with torch.no_grad():
        model.load_state_dict(mixed)
    out["model"] = model
    out["ema"] = None
    out["interpolation"] = {"alpha": float(alpha)}
    return out


def choose_alpha(finetuned: Path, previous: Path, alphas: list[float], *, validate, work_dir: Path) -> dict[str, Any]:
    """Validate every candidate and return ``{"alpha", "fitness": {alpha: mAP50-95}, "metrics",
    "path"}`` of the best (see the module docstring). ``validate(weights) -> metrics`` runs
    ultralytics' validator on the selection split; ``path`` is where the winner was written
    (``finetuned`` itself for alpha 1)."""
    if not alphas:
        raise ConfigError("no candidate alpha", field="interpolate_alphas")
    # alpha 1 is the fine-tuned file as it is: the checkpoints are loaded only to mix them
    ft, prev = (_load(finetuned), _load(previous)) if any(float(a) != 1.0 for a in alphas) else (None, None)
    work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[float, tuple[float, dict, Path]] = {}
    for alpha in sorted(set(float(a) for a in alphas), reverse=True):
        if alpha == 1.0:
            path = finetuned
        else:
            path = work_dir / f"alpha_{alpha:.4f}.pt"
            atomic_write_bytes(path, torch_bytes(interpolated(ft, prev, alpha, names=(str(finetuned), str(previous)))))
        metrics = validate(path)
        results[alpha] = (float(metrics["mAP50-95"]), metrics, path)
        log.info("detector interpolation alpha %.2f: selection mAP50-95 %.4f mAP50 %.4f", alpha,
                 metrics["mAP50-95"], metrics["mAP50"])
    best = max(results, key=lambda a: (results[a][0], a))  # ties: the larger alpha
    fitness, metrics, path = results[best]
    log.info("detector interpolation keeps alpha %.2f (selection mAP50-95 %.4f)", best, fitness)
    return {"alpha": best, "fitness": {f"{a:g}": round(results[a][0], 6) for a in sorted(results)},
            "metrics": metrics, "path": path}
