"""The YOLO data set a stage trains on: checked, then mirrored so ultralytics cannot write into it.

ultralytics writes a label cache (``labels/train.cache``) next to the label files of every set it
reads. The builder's set is a DVC output: a file appearing in it would mark the build stage as
changed. :func:`mirror_dataset` therefore builds a private copy made of per-file symbolic links
(the ``images/`` and ``labels/`` folders are real, so the cache lands in the mirror) and a
``data.yaml`` that points at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..data.sequence import CLASSES
from ..errors import DataError
from ..io import atomic_write_text

SPLITS: tuple[str, ...] = ("train", "val")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def read_data_yaml(data_yaml: Path) -> dict[str, Path]:
    """Check a YOLO ``data.yaml`` (``path``, ``train``, ``val``, ``names`` = CLASSES).

    Returns the absolute image folder of each split.
    """
    data_yaml = Path(data_yaml).resolve()
    if not data_yaml.is_file():
        raise DataError("data yaml not found", file=data_yaml)
    try:
        doc = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"not valid YAML: {err}", file=data_yaml) from err
    if not isinstance(doc, dict):
        raise DataError("expected a mapping", file=data_yaml)
    names = doc.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    expected = dict(enumerate(CLASSES))
    if not isinstance(names, dict) or {int(k): str(v) for k, v in names.items()} != expected:
        raise DataError(f"names must be {expected}, got {names!r}", file=data_yaml, field="names")
    root = Path(doc.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = data_yaml.parent / root
    out = {}
    for split in SPLITS:
        if not isinstance(doc.get(split), str):
            raise DataError("missing or not a folder name", file=data_yaml, field=split)
        folder = (root / doc[split]).resolve()
        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist", file=data_yaml, field=split)
        out[split] = folder
    return out


def _label_dir(image_dir: Path) -> Path:
    """ultralytics' rule: the last ``images`` path component becomes ``labels``."""
    parts = list(image_dir.parts)
    if "images" not in parts:
        raise DataError("image folder path has no 'images' component", file=image_dir)
    i = len(parts) - 1 - parts[::-1].index("images")
    parts[i] = "labels"
    return Path(*parts)


def mirror_dataset(data_yaml: Path, dst: Path) -> Path:
    """Mirror the set of ``data_yaml`` under ``dst`` with per-file links; return the new yaml.

    Images without a label file are background images (as in ultralytics).
    """
    splits = read_data_yaml(data_yaml)
    dst = Path(dst).resolve()
    for split, image_dir in splits.items():
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"no images in {image_dir}", file=data_yaml, field=split)
        label_dir = _label_dir(image_dir)
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
        for image in images:
            _link(image, dst / "images" / split / image.name)
            label = label_dir / f"{image.stem}.txt"
            if label.is_file():
                _link(label, dst / "labels" / split / label.name)
    text = yaml.safe_dump(
        {"path": str(dst), **{s: f"images/{s}" for s in SPLITS}, "names": dict(enumerate(CLASSES))},
        sort_keys=False,
    )
    out = dst / "data.yaml"
    atomic_write_text(out, text)
    return out


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)
