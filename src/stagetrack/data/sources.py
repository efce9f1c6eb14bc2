"""Datasets on disk, by format: list, read and write videos through one interface.

A source is a :class:`~stagetrack.data.config.SourceConfig` (``params.yaml``'s ``sources``):
a format, a root folder and a class map. A video id is a MOT sequence folder name, a BDD100K
label file stem or a VisDrone sequence name. Annotations are read whole into memory; images
stay on disk as paths.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import bdd, mot, visdrone
from .config import SourceConfig
from .sequence import Sequence

FORMATS: tuple[str, ...] = ("mot", "bdd", "visdrone")

DEFAULT_CLASS_MAPS: dict[str, dict[str, str]] = {
    "mot": mot.DEFAULT_CLASS_MAP,
    "bdd": bdd.DEFAULT_CLASS_MAP,
    "visdrone": visdrone.DEFAULT_CLASS_MAP,
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DataError(f"unknown dataset format {fmt!r}", field="format", allowed=FORMATS)


def _root(cfg: SourceConfig) -> Path:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError("dataset root not found", file=root, field="root")
    return root


def list_videos(cfg: SourceConfig) -> list[str]:
    """Sorted video ids of a source (filtered by ``cfg.include`` patterns if any)."""
    _check_format(cfg.format)
    root = _root(cfg)
    if cfg.format == "mot":
        ids = [p.name for p in mot.list_sequences(root)]
    elif cfg.format == "bdd":
        ids = [p.stem for p in bdd.list_sequences(root, cfg.split)]
    else:
        ids = visdrone.list_sequences(root)
    if cfg.include:
        ids = [v for v in ids if any(fnmatch.fnmatchcase(v, pat) for pat in cfg.include)]
    return sorted(ids)


def read_video(cfg: SourceConfig, video_id: str, *, source: str = "") -> Sequence:
    """One video of a source as a :class:`Sequence` (``cfg.class_map`` or the format's map)."""
    _check_format(cfg.format)
    root = _root(cfg)
    class_map = dict(cfg.class_map) or None
    if cfg.format == "mot":
        seq_dir = root / video_id
        if not seq_dir.is_dir():
            raise DataError("video not found", file=seq_dir)
        seq = mot.read_sequence(seq_dir, source=source, class_map=class_map)
    elif cfg.format == "bdd":
        label_json = bdd.label_dir(root, cfg.split) / f"{video_id}.json"
        if not label_json.is_file():
            raise DataError("video not found", file=label_json)
        seq = bdd.read_sequence(label_json, bdd.image_dir(root, cfg.split, video_id), source=source,
                                class_map=class_map)
    else:
        ann_file = root / "annotations" / f"{video_id}.txt"
        if not ann_file.is_file():
            raise DataError("video not found", file=ann_file)
        seq = visdrone.read_sequence(ann_file, root / "sequences" / video_id, source=source,
                                     class_map=class_map)
    if cfg.fps is not None:
        seq.fps = float(cfg.fps)
    return seq


def open_source(name: str, cfg: SourceConfig) -> list[Sequence]:
    """Every video of a source, sorted by name, each tagged with ``source=name``."""
    return [read_video(cfg, v, source=name) for v in list_videos(cfg)]


def write_video(
    fmt: str,
    seq: Sequence,
    root: str | Path,
    frames: Iterable[np.ndarray] | None = None,
    **kw: object,
) -> Sequence:
    """Write ``seq`` under dataset root ``root`` in format ``fmt`` (keywords go to the writer:
    ``jpeg_quality``, ``link``, and ``split`` for bdd). Returns the sequence as written."""
    _check_format(fmt)
    root = Path(root)
    if fmt == "mot":
        return mot.write_sequence(seq, root / seq.name, frames, **kw)
    if fmt == "bdd":
        return bdd.write_sequence(seq, root, frames, **kw)
    return visdrone.write_sequence(seq, root, frames, **kw)


def detect_format(path: str | Path) -> str:
    """'mot', 'bdd' or 'visdrone' from what a dataset folder contains."""
    path = Path(path)
    if not path.is_dir():
        raise DataError("dataset folder not found", file=path)
    if path.joinpath(*bdd.LABELS_DIR).is_dir():
        return "bdd"
    if (path / "annotations").is_dir() and (path / "sequences").is_dir():
        return "visdrone"
    if (path / "seqinfo.ini").is_file() or mot.list_sequences(path):
        return "mot"
    raise DataError(
        "cannot tell the dataset format: looked for MOT sequences (*/seqinfo.ini or */gt/gt.txt, "
        "or seqinfo.ini here), BDD100K labels (labels/box_track_20/) and VisDrone "
        "(annotations/ and sequences/)", file=path, allowed=FORMATS)
