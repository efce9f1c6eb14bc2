"""Track MOTChallenge sequences from their public detections.

``stagetrack track --det-dir DIR --out-dir OUT [--params params.yaml] [--reid-weights W]``
reads every sequence folder under ``DIR`` (``SEQ/det/det.txt``, ``SEQ/seqinfo.ini``, optional
``SEQ/img1``) and writes ``OUT/SEQ.txt`` in MOTChallenge result format
(``frame,id,x,y,w,h,score,class,-1,-1``; class 1 person, 3 vehicle).

Appearance follows what is available: without images the tracker uses motion and IoU only;
with images it adds colour histograms (``tracker.costs.hsv`` > 0), camera motion compensation
(``tracker.gmc.method``) and, given ``--reid-weights``, ReID embeddings. The learned association scorer is used when
``tracker.assoc.enable`` (or ``TRANSFORMER_ASSOC_ENABLE``) is set; its checkpoint's ReID width
must match the ReID model's, or the command stops before tracking.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_PARAMS
from ..data import mot
from ..data.sequence import IGNORE, Sequence
from ..devices import resolve_device
from ..errors import DataError
from ..assoc.config import AssocConfig
from .config import TrackerConfig

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--det-dir", required=True, type=Path,
                        help="MOTChallenge sequences: DIR/SEQ/det/det.txt, DIR/SEQ/seqinfo.ini, optional DIR/SEQ/img1")
    parser.add_argument("--out-dir", required=True, type=Path, help="result files OUT/SEQ.txt are written here")
    parser.add_argument("--params", type=Path, default=None,
                        help=f"params file whose `tracker:` section is used (default: ./{DEFAULT_PARAMS}; "
                             "an error if there is none)")
    parser.add_argument("--reid-weights", type=Path, default=None,
                        help="ReID weights (stagetrack format) for appearance embeddings; needs SEQ/img1")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                        help="device for ReID and the learned scorer (default: params `device`)")


def load_tracker_params(path: Path | None) -> tuple[TrackerConfig, AssocConfig, str, int]:
    """The ``tracker`` and ``assoc`` sections of ``path`` (else ./params.yaml: an error without
    it), the device and the ReID feature batch."""
    from ..config import command_params

    params = command_params(path)
    return params.tracker, params.assoc, params.device, params.reid.feature_batch


def track_sequence(seq: Sequence, cfg: TrackerConfig, *, embedder: Any = None, scorer: Any = None,
                   logger: Any = None, gt: Sequence | None = None) -> np.ndarray:
    """Track ``seq``'s boxes as detections; returns the ANN_DTYPE result rows of every frame.

    Frames are read only when the sequence has an image for every frame (HSV histograms, and
    ReID features given ``embedder``, an ``(images BGR, tlwh (M_i, 4) per image) -> (M_i, D) per
    image`` unit-vector function: ``ReidExtractor.from_frames``). With a sample ``logger``, ``gt`` labels each detection with the identity of the
    ground-truth box it overlaps (IoU >= 0.5, same class).
    """
    from ..inference import match_gt_ids, observations_from_boxes, track

    images = len(seq.image_paths) >= seq.length
    if seq.image_paths and not images:
        log.warning("%s: %d images for %d frames; tracking without appearance", seq.name,
                    len(seq.image_paths), seq.length)
    if embedder is not None and not images:
        raise DataError("ReID weights were given but the sequence has no images for every frame",
                        file=f"{seq.name}/img1", hint="add the images or drop --reid-weights")
    frames = [rows[rows["cls"] != IGNORE] for _, rows in seq.iter_frames()]
    gt_ids = [match_gt_ids(rows, gt.frame_boxes(f)) for f, rows in enumerate(frames, 1)] if gt else None
    # read frames only when a cue needs them: HSV (weight > 0), ReID, the learned scorer, or GMC
    needed = images and (cfg.costs.hsv > 0 or embedder is not None or scorer is not None
                         or cfg.gmc.method != "none")
    obs = observations_from_boxes(seq, frames, embedder, cfg, images=needed, gt_ids=gt_ids)
    return track(obs, cfg, scorer=scorer, logger=logger)


def run(args: argparse.Namespace) -> int:
    cfg, assoc_cfg, device, feature_batch = load_tracker_params(args.params)
    device = resolve_device(args.device or device, field="--device" if args.device else "device")
    seq_dirs = mot.list_sequences(args.det_dir)
    if not seq_dirs:
        raise DataError("no MOTChallenge sequences (folders with seqinfo.ini) found", file=args.det_dir)

    embedder = None
    reid_dim = None
    if args.reid_weights is not None:
        from ..reid.features import ReidExtractor

        extractor = ReidExtractor(args.reid_weights, device=device, batch_size=feature_batch)
        embedder, reid_dim = extractor.from_frames, extractor.feature_dim
    from ..assoc.scorer import resolve_learned_assoc, scorer_from_config

    cfg = dataclasses.replace(cfg, assoc=resolve_learned_assoc(cfg.assoc))
    if cfg.assoc.enable and not cfg.assoc.weights and "TRANSFORMER_ASSOC_ENABLE" not in os.environ:
        # in params, `weights: null` means "each pipeline stage's own model": nothing to load here
        log.warning("tracker.assoc.enable is set but tracker.assoc.weights is null (a pipeline stage's own "
                    "model); tracking with classical costs. Set TRANSFORMER_ASSOC_WEIGHTS to blend one in.")
        cfg = dataclasses.replace(cfg, assoc=dataclasses.replace(cfg.assoc, enable=False))
    scorer = scorer_from_config(cfg.assoc, reid_dim, device=device)

    # seed 000: log association samples while tracking (TRANSFORMER_LOG_* or assoc.log_*)
    from ..assoc.logger import logger_from_env_or_params

    logger = logger_from_env_or_params(assoc_cfg, reid_dim=reid_dim)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for seq_dir in seq_dirs:
        seq = mot.read_sequence(seq_dir, ann="det")
        gt = None
        if logger is not None:
            if not (seq_dir / "gt" / "gt.txt").is_file():
                raise DataError("sample logging needs ground truth to label detections", file=seq_dir / "gt" / "gt.txt")
            gt = mot.read_sequence(seq_dir, ann="gt")
        start = time.perf_counter()
        rows = track_sequence(seq, cfg, embedder=embedder, scorer=scorer, logger=logger, gt=gt)
        seconds = time.perf_counter() - start
        out = args.out_dir / f"{seq_dir.name}.txt"
        mot.write_txt(out, rows, kind="result")
        log.info("%s: %d frames, %d tracks, %d boxes in %.1f s (%.0f fps) -> %s", seq_dir.name, seq.length,
                 len(np.unique(rows["id"])), len(rows), seconds, seq.length / max(seconds, 1e-9), out)
    if logger is not None:
        logger.close()
    cues = "motion+IoU" + (", HSV" if cfg.costs.hsv > 0 else "") + (", ReID" if embedder else "") + \
        (", learned" if scorer else "")
    print(f"tracked {len(seq_dirs)} sequence(s) ({cues}; HSV only where images exist) -> {args.out_dir}")
    return 0
