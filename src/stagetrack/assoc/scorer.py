"""The trained association transformer as the tracker's learned scorer.

:meth:`LearnedScorer.score` builds the same inputs the logger recorded
(:func:`~stagetrack.assoc.features.build_inputs`) for all tracks at once, runs one batched
forward pass under ``torch.inference_mode`` and returns an (N, M) matrix: the softmax
probability (over the track's candidates and "no match") that detection j continues track i;
detections outside a track's ``max_candidates`` nearest get 0.

Settings and their precedence (:func:`resolve_learned_assoc`): a set, non-empty environment
variable of the seed overrides the ``tracker.assoc`` params field —
``TRANSFORMER_ASSOC_ENABLE`` > ``enable``, ``TRANSFORMER_ASSOC_WEIGHTS`` > ``weights``,
``TRANSFORMER_ASSOC_WEIGHT`` > ``weight``, ``TRANSFORMER_ASSOC_EMBED_DIM`` > ``embed_dim``.
The checkpoint stores the ReID width it was trained with; :func:`scorer_from_config` refuses to
start when that width, the configured ``embed_dim`` (if set), ``TRANSFORMER_LOG_EMBED_DIM``
(if set) and the runtime ReID width disagree, so the tracker cannot silently drop appearance.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..train.checkpoint import load_checkpoint
from .config import env_flag, env_float, env_int, env_str
from .features import MODEL_KEYS, build_inputs, check_appearance, layout
from .logger import ENV_EMBED_DIM as ENV_LOG_EMBED_DIM
from .model import MODEL_ARGS, AssocTransformer, model_config

log = logging.getLogger(__name__)

FORMAT = "stagetrack-assoc"
ENV_ENABLE = "TRANSFORMER_ASSOC_ENABLE"
ENV_WEIGHTS = "TRANSFORMER_ASSOC_WEIGHTS"
ENV_WEIGHT = "TRANSFORMER_ASSOC_WEIGHT"
ENV_EMBED_DIM = "TRANSFORMER_ASSOC_EMBED_DIM"

# keys of an exported association checkpoint (train.py writes it)
CHECKPOINT_KEYS: dict[str, str] = {
    "format": f"the string {FORMAT!r}",
    "model": "state_dict of AssocTransformer (the best validation epoch)",
    "embed_dim": "ReID width the samples were logged with (0: no appearance)",
    "hsv_bins": "HSV histogram width logged (0: none)",
    "features": "feature layout (features.layout): version, field names, history, max_candidates",
    "model_args": "the AssocConfig fields that shape the network (model.MODEL_ARGS)",
    "train": "training settings: lr, epochs, batch size, split, the AssocConfig and EngineConfig",
    "metrics": "validation metrics of the kept epoch (val_loss, val_acc, ...)",
}


def checkpoint_payload(model: AssocTransformer, *, train: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    """The exported checkpoint of ``model`` (``CHECKPOINT_KEYS``), plain data for ``weights_only``."""
    cfg = model.cfg
    return {
        "format": FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "embed_dim": model.embed_dim,
        "hsv_bins": model.hsv_bins,
        "features": layout(cfg.history, cfg.max_candidates, model.embed_dim, model.hsv_bins),
        "model_args": {k: getattr(cfg, k) for k in MODEL_ARGS},
        "train": train,
        "metrics": metrics,
    }


def _device(name: str) -> torch.device:
    from ..devices import resolve_device

    return torch.device(resolve_device(name))


class LearnedScorer:
    """Scores (track, detection) pairs with a trained :class:`AssocTransformer`."""

    def __init__(self, model: AssocTransformer, *, source: str, device: str = "cpu", weight: float = 0.5) -> None:
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        self.embed_dim = model.embed_dim
        self.hsv_bins = model.hsv_bins
        self.history = model.cfg.history
        self.max_candidates = model.cfg.max_candidates
        self.source = source
        self.weight = weight

    @classmethod
    def load(cls, path: str | Path, *, expected_embed_dim: int | None = None, device: str = "cpu",
             weight: float = 0.5) -> LearnedScorer:
        """Load an exported checkpoint; ConfigError if ``expected_embed_dim`` differs from its width."""
        path = Path(path)
        payload = load_checkpoint(path)
        check_payload(payload, path)
        if expected_embed_dim is not None and expected_embed_dim != payload["embed_dim"]:
            raise ConfigError(f"checkpoint was trained on embed_dim={payload['embed_dim']}, expected "
                              f"{expected_embed_dim}", file=path, field="embed_dim")
        model = AssocTransformer(model_config(payload["model_args"]), payload["embed_dim"], payload["hsv_bins"])
        try:
            model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not fit the stored model_args: {str(exc)[:300]}", file=path) from None
        return cls(model, source=str(path), device=device, weight=weight)

    def score(self, tracks: Sequence[Any], dets: Any, image_size: tuple[int, int]) -> np.ndarray:
        """(N, M) probability that detection j continues track i (``image_size`` = (w, h))."""
        n, m = len(tracks), len(dets.tlwh)
        out = np.zeros((n, m), np.float64)
        if n == 0 or m == 0:
            return out
        check_appearance(dets, self.embed_dim, self.hsv_bins, expected_by=f"the association checkpoint "
                         f"{self.source}", allow_missing=True)
        inputs = build_inputs(tracks, dets, image_size, history=self.history, max_candidates=self.max_candidates,
                              embed_dim=self.embed_dim, hsv_bins=self.hsv_bins)
        arrays = inputs.arrays()
        batch = {k: torch.from_numpy(arrays[k]).to(self.device) for k in MODEL_KEYS}
        with torch.inference_mode():
            prob = torch.softmax(self.model(batch), dim=-1)[:, :self.max_candidates]   # (N, C)
        prob = prob.cpu().numpy().astype(np.float64)
        rows, slots = np.nonzero(inputs.cand_mask)
        out[rows, inputs.cand_index[rows, slots]] = prob[rows, slots]
        return out


def check_payload(payload: dict, path: Path) -> None:
    """CheckpointError unless ``payload`` is an association checkpoint this code can run."""
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"not an association checkpoint (format {payload.get('format')!r}, "
                              f"expected {FORMAT!r})", file=path)
    missing = sorted(set(CHECKPOINT_KEYS) - set(payload))
    if missing:
        raise CheckpointError(f"association checkpoint lacks keys {missing}", file=path)
    args = payload["model_args"]
    if not isinstance(args, dict) or set(MODEL_ARGS) - set(args):
        raise CheckpointError(f"model_args must hold {list(MODEL_ARGS)}", file=path, field="model_args")
    feats = payload["features"]
    want = layout(args["history"], args["max_candidates"], payload["embed_dim"], payload["hsv_bins"])
    if not isinstance(feats, dict) or {k: feats.get(k) for k in want} != want:
        got = feats.get("version") if isinstance(feats, dict) else None
        raise CheckpointError(f"trained on feature layout version {got} ({feats}); this code builds version "
                              f"{want['version']} ({want})", file=path, field="features",
                              hint="retrain the association model on freshly logged samples")


def resolve_learned_assoc(cfg: Any, environ: Mapping[str, str] | None = None) -> Any:
    """``cfg`` (a LearnedAssocConfig) with the seed's environment variables applied over it."""
    environ = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    for field, value in (("enable", env_flag(environ, ENV_ENABLE)), ("weights", env_str(environ, ENV_WEIGHTS)),
                         ("weight", env_float(environ, ENV_WEIGHT)), ("embed_dim", env_int(environ, ENV_EMBED_DIM))):
        if value is not None:
            changes[field] = value
    resolved = dataclasses.replace(cfg, **changes)
    if not 0.0 <= resolved.weight <= 1.0:
        name = ENV_WEIGHT if "weight" in changes else "tracker.assoc.weight"
        raise ConfigError(f"must be in [0, 1], got {resolved.weight}", field=name)
    return resolved


def scorer_from_config(cfg: Any, reid_dim: int | None, *, environ: Mapping[str, str] | None = None,
                       device: str = "cpu") -> LearnedScorer | None:
    """The learned scorer the tracker should use, or None when it is disabled.

    ``cfg`` is a LearnedAssocConfig (``enable``, ``weights``, ``weight``, ``embed_dim``), resolved
    against the environment by :func:`resolve_learned_assoc` (the tracker must blend with the
    returned scorer's ``weight``). ``reid_dim`` is the width of the ReID features the tracker
    will receive (None or 0: no ReID).
    """
    environ = os.environ if environ is None else environ
    res = resolve_learned_assoc(cfg, environ)
    if not res.enable:
        return None
    if not res.weights:
        raise ConfigError("learned association is enabled but no checkpoint is set", field=ENV_WEIGHTS,
                          hint="set TRANSFORMER_ASSOC_WEIGHTS or tracker.assoc.weights")
    path = Path(res.weights)
    scorer = LearnedScorer.load(path, device=device, weight=res.weight)
    check_embed_dims(scorer.embed_dim, path, configured=res.embed_dim,
                     configured_name=ENV_EMBED_DIM if env_int(environ, ENV_EMBED_DIM) is not None
                     else "tracker.assoc.embed_dim",
                     log_dim=env_int(environ, ENV_LOG_EMBED_DIM), runtime=reid_dim or 0)
    log.info("learned association: %s (embed_dim=%d, weight %.2f)", path, scorer.embed_dim, scorer.weight)
    return scorer


def check_embed_dims(ckpt_dim: int, path: Path, *, configured: int | None, configured_name: str,
                     log_dim: int | None, runtime: int) -> None:
    """ConfigError naming every value when the checkpoint, settings and runtime ReID widths differ."""
    values = [f"checkpoint {path} embed_dim={ckpt_dim}",
              f"{configured_name}={'unset' if configured is None else configured}",
              f"{ENV_LOG_EMBED_DIM}={'unset' if log_dim is None else log_dim}",
              f"runtime ReID width={runtime}"]
    clash = (configured is not None and configured != ckpt_dim) or (log_dim is not None and log_dim != ckpt_dim) \
        or runtime != ckpt_dim
    if clash:
        raise ConfigError("embed_dim mismatch: " + ", ".join(values), field="embed_dim",
                          hint="the tracker cannot accidentally drop appearance information: use the ReID model "
                               "the association checkpoint was trained with, and leave the *_EMBED_DIM variables "
                               "unset or equal to it")
