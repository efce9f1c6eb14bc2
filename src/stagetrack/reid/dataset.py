"""A stage's ReID crops as a torchreid image dataset (Market-1501 layout).

The builder writes ``DIR/bounding_box_train``, ``DIR/query`` and ``DIR/bounding_box_test`` with
files named ``{pid:04d}_c{cam}s{seq}_{frame:06d}_{n:02d}.jpg``, and ``DIR/pids.json`` mapping
each training pid to its class. In a stage folder ``DIR/val_pids.json`` does the same for the
query/gallery pids: they come from the locked validation set and are numbered on their own, so
one number may name a training identity too (in ``val/reid`` that table is ``pids.json``).

As in torchreid's Market1501: camids become 0-based (``c1`` -> 0), pid -1 marks junk crops that
are skipped, and training pids are relabelled 0..N-1 in sorted order while query/gallery keep
their own pids. Listings are sorted so the order never depends on the file system.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..data.sequence import CLASSES
from ..errors import DataError
from . import backend

DATASET_NAME = "stagetrack_reid"
SPLITS: tuple[str, ...] = ("bounding_box_train", "query", "bounding_box_test")
PIDS_FILE = "pids.json"
VAL_PIDS_FILE = "val_pids.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JUNK_PID = -1

_NAME = re.compile(r"^(-1|\d+)_c([1-9])s\d+_\d+_\d+$")


@dataclass(frozen=True)
class Crop:
    path: Path
    pid: int
    camid: int  # 0-based, as torchreid


def parse_name(path: Path) -> tuple[int, int]:
    """``0007_c2s1_000151_01.jpg`` -> (7, 1): pid and 0-based camid."""
    match = _NAME.match(path.stem)
    if match is None:
        raise DataError("not a Market-1501 crop name (expected {pid:04d}_c{cam}s{seq}_{frame:06d}_{n:02d}.jpg)",
                        file=path)
    return int(match.group(1)), int(match.group(2)) - 1


def list_split(data_dir: Path, split: str) -> list[Crop]:
    """Every crop of one split folder, sorted by file name, junk (pid -1) left out."""
    folder = Path(data_dir) / split
    if not folder.is_dir():
        raise DataError("missing ReID split folder", file=folder, allowed=SPLITS)
    crops = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        pid, camid = parse_name(path)
        if pid != JUNK_PID:
            crops.append(Crop(path, pid, camid))
    return crops


def eval_pids_file(data_dir: Path) -> Path:
    """The pid table of the query/gallery split: ``val_pids.json`` if present, else ``pids.json``."""
    val = Path(data_dir) / VAL_PIDS_FILE
    return val if val.is_file() else Path(data_dir) / PIDS_FILE


def read_pid_classes(path: Path) -> dict[int, str]:
    """A pid table (``pids.json``) -> {pid: class name}."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("missing pid table written by the builder", file=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(raw, dict):
        raise DataError("expected a mapping of pid -> {class, ...}", file=path)
    out: dict[int, str] = {}
    for key, entry in raw.items():
        cls = entry.get("class") if isinstance(entry, dict) else None
        if cls not in CLASSES:
            raise DataError(f"invalid class {cls!r}", file=path, field=f"{key}.class", allowed=CLASSES)
        try:
            out[int(key)] = cls
        except ValueError:
            raise DataError("pid keys must be integers", file=path, field=key) from None
    return out


class StageReidDataset(backend.data.ImageDataset):
    """torchreid ``ImageDataset`` over one stage's built crops; ``root`` is the stage's ReID dir."""

    def __init__(self, root: str = "", **kwargs) -> None:
        root_dir = Path(root)
        train, query, gallery = (list_split(root_dir, split) for split in SPLITS)
        if not train:
            raise DataError("no training crops", file=root_dir / SPLITS[0])
        for split, crops in zip(SPLITS[1:], (query, gallery)):
            if not crops:
                raise DataError("no crops: the ReID split needs the locked validation identities",
                                file=root_dir / split)
        label = {pid: i for i, pid in enumerate(sorted({c.pid for c in train}))}
        # torchreid's 4-tuples: (path, pid, camid, dataset id)
        super().__init__(
            [(str(c.path), label[c.pid], c.camid, 0) for c in train],
            [(str(c.path), c.pid, c.camid, 0) for c in query],
            [(str(c.path), c.pid, c.camid, 0) for c in gallery],
            **kwargs,
        )


def register() -> str:
    """Register :class:`StageReidDataset` with torchreid (idempotent); returns its name."""
    try:
        backend.data.register_image_dataset(DATASET_NAME, StageReidDataset)
    except ValueError:  # already registered in this process
        pass
    return DATASET_NAME


def build_datamanager(data_dir: Path, *, height: int, width: int, batch_size: int, num_instances: int,
                      transforms: list[str], workers: int, test_batch: int, use_gpu: bool):
    """torchreid's ``ImageDataManager`` with identity-balanced batches over ``data_dir``."""
    with backend.quiet():
        return backend.data.ImageDataManager(
            root=str(data_dir),
            sources=register(),
            height=height,
            width=width,
            transforms=list(transforms),
            use_gpu=use_gpu,
            batch_size_train=batch_size,
            batch_size_test=test_batch,
            workers=workers,
            num_instances=num_instances,
            train_sampler="RandomIdentitySampler",
        )
