"""Track MOTChallenge sequences from their public detections.

``stagetrack track --det-dir DIR --out-dir OUT [--params params.yaml] [--reid-weights W]``
reads every sequence folder under ``DIR`` (``SEQ/det/det.txt``, ``SEQ/seqinfo.ini``, optional
``SEQ/img1``) and writes ``OUT/SEQ.txt`` in MOTChallenge result format
(``frame,id,x,y,w,h,score,class,-1,-1``; class 1 person, 3 vehicle).

Appearance follows what is available: without images the tracker uses motion and IoU only;
with images it adds colour histograms (``tracker.costs.hsv`` > 0) and, given
``--reid-weights``, ReID embeddings. The learned association scorer is used when
``tracker.assoc.enable`` (or ``TRANSFORMER_ASSOC_ENABLE``) is set; its checkpoint's ReID width
must match the ReID model's, or the command stops before tracking.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import mot
from ..data.sequence import IGNORE, Sequence, empty_boxes, tlwh
from ..errors import DataError
from .config import TrackerConfig
from .costs import hsv_histogram
from .tracker import Detections, Tracker

log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--det-dir", required=True, type=Path,
                        help="MOTChallenge sequences: DIR/SEQ/det/det.txt, DIR/SEQ/seqinfo.ini, optional DIR/SEQ/img1")
    parser.add_argument("--out-dir", required=True, type=Path, help="result files OUT/SEQ.txt are written here")
    parser.add_argument("--params", type=Path, default=None,
                        help=f"params file whose `tracker:` section is used (default: ./{DEFAULT_PARAMS} if "
                             "present, else built-in defaults)")
    parser.add_argument("--reid-weights", type=Path, default=None,
                        help="ReID weights (stagetrack format) for appearance embeddings; needs SEQ/img1")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                        help="device for ReID and the learned scorer (default: params `device`)")


def load_tracker_params(path: Path | None) -> tuple[TrackerConfig, str]:
    """The ``tracker`` section of ``path`` (or of ./params.yaml, or the defaults) and the device."""
    from ..config import load_params

    if path is None and not Path(DEFAULT_PARAMS).is_file():
        log.info("no %s here: using the built-in tracker defaults", DEFAULT_PARAMS)
        return TrackerConfig(), "auto"
    params = load_params(path or DEFAULT_PARAMS)
    return params.tracker, params.device


def _resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError("unreadable image", file=path)
    return image


def track_sequence(seq: Sequence, cfg: TrackerConfig, *, embedder: Any = None, scorer: Any = None) -> np.ndarray:
    """Track ``seq``'s boxes as detections; returns the ANN_DTYPE result rows of every frame.

    Frames are read only when the sequence has images and an appearance cue needs them: HSV
    (weight > 0) or ``embedder``, an ``(image BGR, tlwh (M, 4)) -> (M, D)`` unit-vector function.
    """
    from tqdm import tqdm

    images = len(seq.image_paths) >= seq.length
    if seq.image_paths and not images:
        log.warning("%s: %d images for %d frames; tracking without appearance", seq.name,
                    len(seq.image_paths), seq.length)
    if embedder is not None and not images:
        raise DataError("ReID weights were given but the sequence has no images for every frame",
                        file=f"{seq.name}/img1", hint="add the images or drop --reid-weights")
    need_hsv = images and cfg.costs.hsv > 0
    bins = (cfg.hsv_h_bins, cfg.hsv_s_bins)
    tracker = Tracker(cfg, scorer=scorer, frame_rate=seq.fps)
    out = []
    for frame, rows in tqdm(seq.iter_frames(), total=seq.length, desc=seq.name, unit="frame",
                            leave=False, disable=None):
        rows = rows[rows["cls"] != IGNORE]
        boxes = tlwh(rows)
        emb = hsv = None
        if len(rows) and (need_hsv or embedder is not None):
            image = _read_image(seq.image(frame))
            if need_hsv:
                hsv = hsv_histogram(image, boxes, bins, cfg.hsv_crop)
            if embedder is not None:
                emb = embedder(image, boxes)
        result = tracker.update(Detections(boxes, rows["conf"], rows["cls"], emb=emb, hsv=hsv),
                                (seq.width, seq.height))
        result["frame"] = frame
        out.append(result)
    return np.concatenate(out) if out else empty_boxes()


def run(args: argparse.Namespace) -> int:
    cfg, device = load_tracker_params(args.params)
    device = _resolve_device(args.device or device)
    seq_dirs = mot.list_sequences(args.det_dir)
    if not seq_dirs:
        raise DataError("no MOTChallenge sequences (folders with seqinfo.ini) found", file=args.det_dir)

    embedder = None
    reid_dim = None
    if args.reid_weights is not None:
        from ..reid.features import ReidExtractor

        extractor = ReidExtractor(args.reid_weights, device=device)
        embedder, reid_dim = extractor.from_boxes, extractor.feature_dim
    from ..assoc.scorer import resolve_learned_assoc, scorer_from_config

    cfg = dataclasses.replace(cfg, assoc=resolve_learned_assoc(cfg.assoc))
    scorer = scorer_from_config(cfg.assoc, reid_dim, device=device)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for seq_dir in seq_dirs:
        seq = mot.read_sequence(seq_dir, ann="det")
        start = time.perf_counter()
        rows = track_sequence(seq, cfg, embedder=embedder, scorer=scorer)
        seconds = time.perf_counter() - start
        out = args.out_dir / f"{seq_dir.name}.txt"
        mot.write_txt(out, rows, kind="result")
        log.info("%s: %d frames, %d tracks, %d boxes in %.1f s (%.0f fps) -> %s", seq_dir.name, seq.length,
                 len(np.unique(rows["id"])), len(rows), seconds, seq.length / max(seconds, 1e-9), out)
    cues = "motion+IoU" + (", HSV" if cfg.costs.hsv > 0 else "") + (", ReID" if embedder else "") + \
        (", learned" if scorer else "")
    print(f"tracked {len(seq_dirs)} sequence(s) ({cues}; HSV only where images exist) -> {args.out_dir}")
    return 0
