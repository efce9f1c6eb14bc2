"""The data builder: frame budgets, clips, replay, the manifest lock, the selection split, the exports.

For every stage the builder fills each source's **frame budget** with clips of consecutive
frames (``build.clip_length`` frames, every ``build.clip_stride``-th frame) drawn from that
source's pool. The pool is every video of the source *minus* the videos that
``data/manifests/manifest.json`` locks for ``val`` and ``test``: they are removed before any
budget is filled, so no budget or seed can leak them into training.

Each source's pool clips are shuffled once (from ``build.seed``). The first
``build.selection_clips`` of them are the **selection split**: held out of every stage's
training, they are what checkpoint selection and early stopping of the detector, the ReID model
and the association model look at (never the locked val or test videos). Stages take the
shortest prefix of the rest that fills their budgets, so selections are nested: stage 2 (3x
budget) trains on stage 1's clips plus more. A source with ``replay_from: stageN`` instead draws
(with its own seeded shuffle) from what stage N selected: the seed plan's replay buffer of
ground data in stage 3.

Outputs under ``data/built``::

    val/<source>/<SEQ>/...     locked validation videos, MOTChallenge layout (TrackEval-ready)
    val/seqmaps/val.txt        seqmap of every locked validation video
    val/reid/{query,bounding_box_test}/   Market-1501 query/gallery crops of the val tracks
    val/LOCK.json              sha256 of every file above; verified by training and eval
    test/...                   the locked test videos, same layout (no crops); only the eval
                               stage reads them, for the final report (metrics/test.json)
    <stage>/det/               YOLO set: images/train (the stage's clips), images/val (its
                               selection clips' frames), data.yaml
    <stage>/reid/              Market-1501 crops: bounding_box_train (training clips),
                               query/bounding_box_test (selection clips), pids.json, val_pids.json
    <stage>/assoc/             training clips in MOT layout + manifest.jsonl (one line per clip)
    <stage>/selection/         the stage's selection clips in MOT layout + manifest.jsonl
    <stage>/selection.json     the clips chosen per source: ``train`` and ``held_out`` (selection)

The locked exports depend only on the manifest and the source data, never on budgets or
seeds; a test builds twice with different budgets and seeds and compares the hashes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..config import STAGES, Params
from ..errors import DataError, LockError
from ..io import atomic_path, atomic_write_json, atomic_write_text, read_image, sha256_file, sha256_tree
from . import mot, sources
from .config import BuildConfig
from .sequence import CLASSES, IGNORE, Sequence, tlwh

log = logging.getLogger(__name__)

LOCK_FILE = "LOCK.json"
SPLITS = ("val", "test")
MOT_CLASS = {0: "1", 1: "3", IGNORE: "8"}  # project class -> MOT class number written in gt.txt


# ----------------------------------------------------------------------------- manifest lock

@dataclass(frozen=True)
class Manifest:
    path: str
    locked: dict[str, dict[str, tuple[str, ...]]]  # source -> split -> video ids
    # source -> regex whose first group names the underlying video of an id (MOT17's
    # "MOT17-02-DPM", "-FRCNN", "-SDP" are one video): copies are locked together
    copies: dict[str, str] = field(default_factory=dict)

    def ids(self, source: str, split: str) -> tuple[str, ...]:
        return self.locked.get(source, {}).get(split, ())

    def all_locked(self, source: str) -> set[str]:
        return {v for split in SPLITS for v in self.ids(source, split)}

    def underlying(self, source: str, video: str) -> str:
        """The video an id is a copy of (the id itself without a ``copies`` rule or match)."""
        pattern = self.copies.get(source)
        match = re.match(pattern, video) if pattern else None
        return match.group(1) if match else video

    def excluded(self, source: str, videos: Iterable[str]) -> set[str]:
        """Every id of ``videos`` that is locked or a copy of a locked video: never trained on."""
        locked = {self.underlying(source, v) for v in self.all_locked(source)}
        return {v for v in videos if self.underlying(source, v) in locked} | self.all_locked(source)


def load_manifest(path: str | Path, params: Params) -> Manifest:
    """Read the lock file; every locked id must exist and belong to one split only."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise LockError(f"cannot read the manifest: {exc.strerror}", file=path) from None
    except json.JSONDecodeError as exc:
        raise LockError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    locked_raw = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(locked_raw, dict):
        raise LockError("expected an object with a 'sources' mapping", file=path, field="sources")
    copies_raw = data.get("copies", {})
    if not isinstance(copies_raw, dict):
        raise LockError("expected a mapping of source -> regex", file=path, field="copies")
    copies: dict[str, str] = {}
    for source, pattern in sorted(copies_raw.items()):
        try:
            compiled = re.compile(pattern) if isinstance(pattern, str) else None
        except re.error as exc:
            raise LockError(f"invalid regex: {exc}", file=path, field=f"copies.{source}") from None
        if compiled is None or compiled.groups < 1:
            raise LockError('expected a regex with one group naming the underlying video, e.g. "^(MOT17-[0-9]+)-"',
                            file=path, field=f"copies.{source}")
        if source not in params.sources:
            raise LockError("source not configured in params.yaml `sources`", file=path,
                            field=f"copies.{source}", allowed=sorted(params.sources))
        copies[source] = pattern
    locked: dict[str, dict[str, tuple[str, ...]]] = {}
    for source, splits in sorted(locked_raw.items()):
        if source not in params.sources:
            raise LockError("source not configured in params.yaml `sources`", file=path,
                            field=f"sources.{source}", allowed=sorted(params.sources))
        if not isinstance(splits, dict) or set(splits) - set(SPLITS):
            raise LockError("expected a mapping of splits", file=path, field=f"sources.{source}", allowed=SPLITS)
        locked[source] = {s: tuple(splits.get(s, [])) for s in SPLITS}
        seen: dict[str, str] = {}
        for split in SPLITS:
            for vid in locked[source][split]:
                if vid in seen:
                    raise LockError(f"video {vid!r} is listed in both '{seen[vid]}' and '{split}'",
                                    file=path, field=f"sources.{source}")
                seen[vid] = split
    return Manifest(str(path), locked, copies)


def check_distinct_sources(params: Params, used: Iterable[str], manifest_path: str) -> None:
    """Two sources reading the same folder would put one video in two pools under two names."""
    roots: dict[Path, str] = {}
    for source in used:
        root = Path(params.sources[source].root).resolve()
        if root in roots:
            raise LockError(f"sources {roots[root]!r} and {source!r} both read {root}", file=manifest_path,
                            field=f"sources.{source}.root", hint="one dataset folder, one source")
        roots[root] = source


def check_manifest_ids(manifest: Manifest, source: str, available: Iterable[str]) -> None:
    available = set(available)
    for split in SPLITS:
        for vid in manifest.ids(source, split):
            if vid not in available:
                raise LockError(f"locked {split} video {vid!r} does not exist in source '{source}'",
                                file=manifest.path, field=f"sources.{source}.{split}",
                                hint=f"{len(available)} videos available")


def verify_lock(locked_dir: str | Path) -> dict:
    """Recompute a locked set's hash (``data/built/val`` or ``/test``) and the manifest's; raise
    :class:`LockError` if either changed since the build (a manifest edited after the build would
    otherwise re-lock silently)."""
    locked_dir = Path(locked_dir)
    lock_path = locked_dir / LOCK_FILE
    split = locked_dir.name
    try:
        lock = json.loads(lock_path.read_text())
    except (OSError, json.JSONDecodeError):
        raise LockError(f"the {split} lock is missing or unreadable; run the build stage",
                        file=lock_path) from None
    manifest = Path(lock.get("manifest") or "")
    if not manifest.is_file():
        raise LockError(f"the manifest this {split} set was locked with, {manifest}, is missing",
                        file=lock_path, field="manifest", hint="rebuild the data (dvc repro build_data)")
    if sha256_file(manifest) != lock.get("manifest_sha256"):
        raise LockError(f"the manifest changed after the {split} set was built", file=manifest,
                        hint="rebuild the data (dvc repro build_data): the locked sets follow the manifest")
    actual = sha256_tree(locked_dir, exclude=(LOCK_FILE,))
    if actual != lock.get("sha256"):
        raise LockError(f"{split} set changed: locked sha256 {lock.get('sha256', '')[:12]}…, "
                        f"found {actual[:12]}…", file=lock_path,
                        hint=f"the locked {split} videos must stay bit-identical across stages and seeds")
    return lock


# ----------------------------------------------------------------------------- clip selection

@dataclass(frozen=True)
class Clip:
    source: str
    video: str
    start: int   # 1-based first frame
    length: int  # frames taken
    stride: int

    @property
    def name(self) -> str:
        return f"{self.source}-{self.video}-{self.start:06d}"

    def frames(self) -> list[int]:
        return list(range(self.start, self.start + self.length * self.stride, self.stride))


def candidate_clips(source: str, lengths: dict[str, int], clip_length: int, stride: int) -> list[Clip]:
    """Non-overlapping clips covering each pool video (a shorter tail clip included)."""
    clips = []
    span = clip_length * stride
    for video in sorted(lengths):
        n = lengths[video]
        for start in range(1, n + 1, span):
            length = min(clip_length, (n - start) // stride + 1)
            if length >= 2:
                clips.append(Clip(source, video, start, length, stride))
    return clips


def _fill(clips: list[Clip], budget: int) -> list[Clip]:
    """The shortest prefix of ``clips`` holding ``budget`` frames (the last one trimmed)."""
    out, total = [], 0
    for clip in clips:
        if total >= budget:
            break
        take = min(clip.length, budget - total)
        out.append(Clip(clip.source, clip.video, clip.start, take, clip.stride))
        total += take
    return out


@dataclass(frozen=True)
class ClipPlan:
    """Every stage's training clips per source, and each source's held-out selection clips."""

    stages: dict[str, dict[str, list[Clip]]]
    held_out: dict[str, list[Clip]]

    def selection_of(self, stage_clips: dict[str, list[Clip]]) -> dict[str, list[Clip]]:
        """The selection clips of the sources a stage trains on (its checkpoint-selection set)."""
        return {source: self.held_out[source] for source in sorted(stage_clips) if self.held_out.get(source)}


def select_clips(params: Params, pools: dict[str, list[Clip]]) -> ClipPlan:
    """Per stage and source, the clips that fill the frame budgets, after holding out each
    source's selection clips (see module docstring)."""
    shuffled, held_out = {}, {}
    k_sel = params.build.selection_clips
    trained = {source for stage in STAGES for source, mix in params.stage(stage).data.items()
               if mix.enabled and mix.frame_budget > 0}
    for k, (source, clips) in enumerate(sorted(pools.items())):
        rng = np.random.default_rng([params.build.seed, k, 0x5EED])
        order = [clips[i] for i in rng.permutation(len(clips))]
        if source not in trained:  # only locked here (e.g. a val-only dataset): nothing to select for
            shuffled[source] = order
            continue
        if len(order) <= k_sel:
            raise DataError(f"source '{source}' has {len(order)} pool clips: none would be left for training "
                            f"after holding out {k_sel} for selection", field="build.selection_clips",
                            hint="lower build.selection_clips or add unlocked videos")
        held_out[source] = sorted(order[:k_sel], key=lambda c: (c.video, c.start))
        shuffled[source] = order[k_sel:]
    selection: dict[str, dict[str, list[Clip]]] = {}
    for si, stage in enumerate(STAGES):
        cfg = params.stage(stage)
        selection[stage] = {}
        for k, (source, mix) in enumerate(sorted(cfg.data.items())):
            if not mix.enabled or mix.frame_budget <= 0:
                continue
            if mix.replay_from:
                if mix.replay_from not in selection or STAGES.index(mix.replay_from) >= si:
                    raise DataError("replay must come from an earlier stage", field=f"{stage}.data.{source}.replay_from",
                                    allowed=STAGES[:si])
                base = selection[mix.replay_from].get(source, [])
                rng = np.random.default_rng([params.build.seed, si, k, 0xBEEF])
                candidates = [base[i] for i in rng.permutation(len(base))]
                where = f"{mix.replay_from}'s selection"
            else:
                candidates = shuffled.get(source, [])
                where = "the unlocked pool after the selection clips"
            available = sum(c.length for c in candidates)
            if mix.frame_budget > available:
                message = (f"frame budget {mix.frame_budget} of source '{source}' exceeds the "
                           f"{available} frames available in {where}")
                if not params.build.allow_partial:
                    raise DataError(message, field=f"{stage}.data.{source}.frame_budget",
                                    hint="lower the budget or set build.allow_partial: true")
                log.warning("%s; taking all of it (build.allow_partial)", message)
            selection[stage][source] = _fill(candidates, mix.frame_budget)
    return ClipPlan(selection, held_out)


# ----------------------------------------------------------------------------- exports

def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def _imwrite(path: Path, image: np.ndarray, quality: int = 95) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise DataError("could not write image", file=path)


def to_project_gt(seq: Sequence) -> Sequence:
    """The sequence with MOT class numbers (1 person, 3 vehicle, 8 ignore) as categories."""
    boxes = seq.boxes.copy()
    boxes["category"] = [MOT_CLASS[int(c)] for c in boxes["cls"]]
    return Sequence(seq.name, seq.width, seq.height, seq.length, seq.fps, boxes,
                    list(seq.image_paths), seq.source, dict(seq.meta))


def yolo_labels(rows: np.ndarray, width: int, height: int, min_vis: float) -> str:
    """YOLO label text (``cls cx cy w h``, normalised) for the trainable boxes of a frame."""
    keep = (rows["cls"] != IGNORE) & (rows["vis"] >= min_vis) & (rows["w"] > 1) & (rows["h"] > 1)
    rows = rows[keep]
    b = tlwh(rows)
    x1 = np.clip(b[:, 0], 0, width)
    y1 = np.clip(b[:, 1], 0, height)
    x2 = np.clip(b[:, 0] + b[:, 2], 0, width)
    y2 = np.clip(b[:, 1] + b[:, 3], 0, height)
    lines = []
    for c, a, bb, cc, d in zip(rows["cls"], x1, y1, x2, y2):
        if cc - a < 1 or d - bb < 1:
            continue
        lines.append(f"{int(c)} {(a + cc) / 2 / width:.6f} {(bb + d) / 2 / height:.6f} "
                     f"{(cc - a) / width:.6f} {(d - bb) / height:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def _masked_frame(path: Path, rows: np.ndarray) -> np.ndarray | None:
    """The frame with ignored regions filled with its mean colour, or None if it has none."""
    ign = rows[rows["cls"] == IGNORE]
    if not len(ign):
        return None
    image = read_image(path)
    fill = image.reshape(-1, 3).mean(0)
    for x, y, w, h in tlwh(ign).round().astype(int):
        image[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = fill
    return image


def _crop(image: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x, y, w, h = box
    H, W = image.shape[:2]
    x1, y1 = int(max(0, np.floor(x))), int(max(0, np.floor(y)))
    x2, y2 = int(min(W, np.ceil(x + w))), int(min(H, np.ceil(y + h)))
    return cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_AREA)


class _Pids:
    """Market-1501 pids: persons and vehicles get disjoint ranges, fixed once all are known."""

    def __init__(self) -> None:
        self.keys: dict[int, list[tuple[str, str, int]]] = {0: [], 1: []}

    def add(self, cls: int, source: str, video: str, track: int) -> None:
        key = (source, video, int(track))
        if key not in self.keys[cls]:
            self.keys[cls].append(key)

    def table(self) -> dict[tuple[int, str, str, int], int]:
        out = {}
        n_person = len(self.keys[0])
        for cls in (0, 1):
            for i, (source, video, track) in enumerate(sorted(self.keys[cls])):
                out[(cls, source, video, track)] = 1 + i + (n_person if cls == 1 else 0)
        return out


def _pid_table(plans: list[tuple[str, Sequence, dict[tuple[int, int], list[int]]]]
               ) -> tuple[dict[tuple[int, str, str, int], int], dict[str, dict]]:
    """Market-1501 person ids of every (source, video, class, track) in ``plans`` (:class:`_Pids`)
    and the ``pids.json`` content naming what each id is."""
    pids = _Pids()
    for source, seq, plan in plans:
        for cls, tid in plan:
            pids.add(cls, source, seq.name, tid)
    table = pids.table()
    info = {str(table[(cls, source, seq.name, tid)]): {"class": CLASSES[cls], "source": source, "video": seq.name,
                                                       "track": tid}
            for source, seq, plan in plans for cls, tid in plan}
    return table, info


def _reid_plan(seq: Sequence, frames: list[int], cfg: BuildConfig) -> dict[tuple[int, int], list[int]]:
    """(cls, track) -> frames to crop: visible, tall enough, spread evenly, capped per track."""
    rows = seq.boxes[np.isin(seq.boxes["frame"], frames)]
    ok = (rows["cls"] != IGNORE) & (rows["vis"] >= 0.5) & (rows["h"] >= cfg.reid_min_height) & (rows["w"] >= 4)
    plan: dict[tuple[int, int], list[int]] = {}
    for cls, tid in sorted({(int(c), int(t)) for c, t in zip(rows["cls"][ok], rows["id"][ok])}):
        fs = rows["frame"][ok & (rows["id"] == tid) & (rows["cls"] == cls)]
        if len(fs) > cfg.reid_max_per_track:
            fs = fs[np.linspace(0, len(fs) - 1, cfg.reid_max_per_track).round().astype(int)]
        plan[(cls, tid)] = [int(f) for f in fs]
    return plan


def _write_crops(seq: Sequence, jobs: list[tuple[int, int, int, Path]], size: tuple[int, int]) -> None:
    """jobs: (frame, cls, track, out_path); each frame is decoded once."""
    by_frame: dict[int, list] = defaultdict(list)
    for frame, cls, tid, out in jobs:
        by_frame[frame].append((cls, tid, out))
    for frame in sorted(by_frame):
        image = read_image(seq.image(frame))
        rows = seq.frame_boxes(frame)
        for cls, tid, out in by_frame[frame]:
            row = rows[(rows["id"] == tid) & (rows["cls"] == cls)][0]
            _imwrite(out, _crop(image, tlwh(row[None])[0], size))


@dataclass
class SourceStats:
    frames: int = 0
    clips: int = 0
    boxes_person: int = 0
    boxes_vehicle: int = 0
    identities: int = 0

    def add(self, seq: Sequence, clips: list[Clip]) -> None:
        """Count one video's selected clips."""
        frames = [f for c in clips for f in c.frames()]
        rows = seq.boxes[np.isin(seq.boxes["frame"], frames)]
        self.frames += len(frames)
        self.clips += len(clips)
        self.boxes_person += int((rows["cls"] == 0).sum())
        self.boxes_vehicle += int((rows["cls"] == 1).sum())
        self.identities += len(np.unique(rows["id"][rows["cls"] != IGNORE]))


def summarize_stats(stats: dict[str, SourceStats]) -> dict:
    """Per-source counts plus the totals and the person/vehicle box balance."""
    total_p = sum(v.boxes_person for v in stats.values())
    total_v = sum(v.boxes_vehicle for v in stats.values())
    return {
        "frames": sum(v.frames for v in stats.values()),
        "sources": {s: asdict(v) for s, v in sorted(stats.items())},
        "class_balance": {"person": round(total_p / max(1, total_p + total_v), 4),
                          "vehicle": round(total_v / max(1, total_p + total_v), 4)},
    }


class Builder:
    """Builds every stage's data and the locked validation set from ``params``."""

    def __init__(self, params: Params, out: str | Path, workers: int | None = None) -> None:
        self.params = params
        self.cfg = params.build
        self.out = Path(out)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.manifest = load_manifest(self.cfg.manifest, params)
        self.size = (params.reid.width, params.reid.height)   # crops at the ReID model's input size
        self._sequences: dict[tuple[str, str], Sequence] = {}   # each video read once per build

    def _used_sources(self) -> list[str]:
        used = {s for st in STAGES for s, m in self.params.stage(st).data.items() if m.enabled and m.frame_budget > 0}
        return sorted(used | set(self.manifest.locked))

    def _read(self, source: str, video: str) -> Sequence:
        """The video as its reader gives it, read on first use and kept for the rest of the build
        (planning needs every pool video's length, the exports their boxes: one read serves both)."""
        key = (source, video)
        if key not in self._sequences:
            self._sequences[key] = sources.read_video(self.params.sources[source], video, source=source)
        return self._sequences[key]

    def _forget_unused(self, plan: ClipPlan) -> None:
        """Drop the pool videos no stage took (read for their length only) before the exports."""
        used = {(source, clip.video) for clips_by_source in [*plan.stages.values(), plan.held_out]
                for source, clips in clips_by_source.items() for clip in clips}
        for key in [k for k in self._sequences if k not in used]:
            del self._sequences[key]

    def _map(self, fn, items: list) -> list:
        from tqdm import tqdm

        if self.workers <= 1 or len(items) <= 1:
            return [fn(i) for i in tqdm(items, leave=False, disable=None)]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(tqdm(pool.map(fn, items), total=len(items), leave=False, disable=None))

    def plan(self) -> ClipPlan:
        """Check the manifest against the sources and choose every stage's clips (no writes)."""
        pools: dict[str, list[Clip]] = {}
        used = self._used_sources()
        check_distinct_sources(self.params, used, self.manifest.path)
        listed = {source: sources.list_videos(self.params.sources[source]) for source in used}
        seen_ids: dict[str, str] = {}
        for source, videos in listed.items():
            for video in videos:
                if video in seen_ids:
                    raise LockError(f"video id {video!r} is in sources {seen_ids[video]!r} and {source!r}: the lock "
                                    "could not tell them apart", file=self.manifest.path,
                                    field=f"sources.{source}", hint="give one source an `include` pattern")
                seen_ids[video] = source
        for source, videos in listed.items():
            check_manifest_ids(self.manifest, source, videos)
            locked = self.manifest.excluded(source, videos)
            lengths = {v: self._read(source, v).length for v in videos if v not in locked}
            pools[source] = candidate_clips(source, lengths, self.cfg.clip_length, self.cfg.clip_stride)
            log.info("%s: %d videos, %d locked, %d pool clips", source, len(videos), len(locked), len(pools[source]))
        return select_clips(self.params, pools)

    def stats(self, clips_by_source: dict[str, list[Clip]]) -> dict:
        """Per-source frames, clips, boxes per class and identities of a stage's selection."""
        stats = {s: SourceStats() for s in clips_by_source}
        for source, clips in clips_by_source.items():
            for video in sorted({c.video for c in clips}):
                seq = self._read(source, video)
                mine = [c for c in clips if c.video == video]
                stats[source].add(seq, mine)
        return summarize_stats(stats)

    def run(self) -> dict:
        plan = self.plan()
        self._forget_unused(plan)
        if self.out.exists():
            shutil.rmtree(self.out)
        report = {split: self.export_locked(split) for split in SPLITS}
        for stage in STAGES:
            report[stage] = self.export_stage(stage, plan.stages[stage], plan.selection_of(plan.stages[stage]))
        return report

    # -- locked validation and test sets
    def export_locked(self, split: str) -> dict:
        """``<out>/<split>``: the manifest's locked videos of ``split`` in MOTChallenge layout, a
        seqmap, (val only) Market-1501 query/gallery crops of their tracks, and the LOCK file."""
        root = self.out / split

        def one(item: tuple[str, str]) -> tuple[str, Sequence]:
            source, video = item
            seq = to_project_gt(self._read(source, video))
            return source, mot.write_sequence(seq, root / source / video, link=True)

        items = [(s, v) for s in sorted(self.manifest.locked) for v in self.manifest.ids(s, split)]
        seqs = self._map(one, items)
        names = [f"{source}/{seq.name}" for source, seq in seqs]
        mot.write_seqmap(root / "seqmaps" / f"{split}.txt", names)
        if split == "val":
            # whole videos: query from the first half, gallery from the second
            self._query_gallery([(source, seq, list(range(1, seq.length + 1))) for source, seq in seqs], root / "reid")
        digest = sha256_tree(root)
        lock = {
            "sha256": digest,
            "split": split,
            "manifest": self.manifest.path,
            "manifest_sha256": sha256_file(self.manifest.path),
            "sequences": {n: sha256_tree(root / n) for n in names},
        }
        atomic_write_json(root / LOCK_FILE, lock)
        log.info("locked %s set: %d videos, sha256 %s", split, len(names), digest[:16])
        return {"videos": len(names), "sha256": digest,
                "frames": sum(s.length for _, s in seqs),
                "boxes": int(sum((s.boxes["cls"] != IGNORE).sum() for _, s in seqs))}

    def _query_gallery(self, parts: list[tuple[str, Sequence, list[int]]], reid: Path,
                       pid_file: str = "pids.json") -> None:
        """Market-1501 ``query``/``bounding_box_test`` crops and ``pid_file`` from (source, sequence,
        frames) parts: each track's crops in the first half of its part's frames give one query (a
        query needs a gallery match under another camera), those in the second half the gallery."""
        plans = [(source, seq, frames, _reid_plan(seq, frames, self.cfg)) for source, seq, frames in parts]
        table, pid_info = _pid_table([(source, seq, plan) for source, seq, _, plan in plans])
        crop_jobs = []
        for source, seq, frames, plan in plans:
            half = frames[(len(frames) - 1) // 2]
            jobs = []
            for (cls, tid), fs in plan.items():
                pid = table[(cls, source, seq.name, tid)]
                q = [f for f in fs if f <= half]
                g = [f for f in fs if f > half]
                if q and g:
                    f = q[len(q) // 2]
                    jobs.append((f, cls, tid, reid / "query" / f"{pid:04d}_c1s1_{f:06d}_00.jpg"))
                for n, f in enumerate(g):
                    jobs.append((f, cls, tid, reid / "bounding_box_test" / f"{pid:04d}_c2s1_{f:06d}_{n:02d}.jpg"))
            crop_jobs.append((seq, jobs))
        self._map(lambda item: _write_crops(item[0], item[1], self.size), crop_jobs)
        atomic_write_json(reid / pid_file, pid_info)

    # -- one stage
    def export_stage(self, stage: str, clips_by_source: dict[str, list[Clip]],
                     held_out: dict[str, list[Clip]]) -> dict:
        """The stage's training exports from ``clips_by_source`` and its selection exports (detector
        val images, ReID query/gallery, association selection clips) from ``held_out``."""
        root = self.out / stage
        det, reid, assoc = root / "det", root / "reid", root / "assoc"
        by_video: dict[tuple[str, str], list[Clip]] = defaultdict(list)
        for source, clips in clips_by_source.items():
            for clip in clips:
                by_video[(source, clip.video)].append(clip)
        stats: dict[str, SourceStats] = {s: SourceStats() for s in clips_by_source}
        manifest_lines = []

        def export_video(key: tuple[str, str]) -> tuple[str, Sequence, list[Clip], dict, list[dict]]:
            source, video = key
            seq = self._read(source, video)
            clips = sorted(by_video[key], key=lambda c: c.start)
            lines = [self._write_clip(seq, clip, assoc) for clip in clips]
            frames = [f for clip in clips for f in clip.frames()]
            self._write_det_frames(seq, source, frames, det, "train")
            return source, seq, clips, _reid_plan(seq, frames, self.cfg), lines

        results = self._map(export_video, sorted(by_video))
        table, pid_info = _pid_table([(source, seq, plan) for source, seq, _, plan, _ in results])
        crop_jobs = []
        for source, seq, clips, plan, lines in results:
            manifest_lines.extend(lines)
            stats[source].add(seq, clips)
            jobs = []
            for (cls, tid), fs in plan.items():
                pid = table[(cls, source, seq.name, tid)]
                for n, f in enumerate(fs):
                    jobs.append((f, cls, tid, reid / "bounding_box_train" / f"{pid:04d}_c1s1_{f:06d}_{n:02d}.jpg"))
            crop_jobs.append((seq, jobs))
        self._map(lambda item: _write_crops(item[0], item[1], self.size), crop_jobs)
        atomic_write_json(reid / "pids.json", pid_info)
        atomic_write_text(assoc / "manifest.jsonl", "".join(json.dumps(x, sort_keys=True) + "\n" for x in manifest_lines))
        self._export_selection(root, held_out)
        atomic_write_text(det / "data.yaml", "# YOLO dataset written by stagetrack build (path = this folder; "
                          "val = the stage's selection clips)\n"
                          "train: images/train\nval: images/val\nnames:\n  0: person\n  1: vehicle\n")
        atomic_write_json(root / "selection.json", {
            "train": {s: [asdict(c) for c in cl] for s, cl in sorted(clips_by_source.items())},
            "held_out": {s: [asdict(c) for c in cl] for s, cl in sorted(held_out.items())}})
        summary = {**summarize_stats(stats), "reid_identities": len(pid_info),
                   "selection_frames": sum(c.length for cl in held_out.values() for c in cl)}
        log.info("%s: %d frames from %s (+%d selection frames); balance person %.2f / vehicle %.2f", stage,
                 summary["frames"], ", ".join(f"{s} {v['frames']}" for s, v in summary["sources"].items()),
                 summary["selection_frames"], summary["class_balance"]["person"], summary["class_balance"]["vehicle"])
        return summary

    def _write_clip(self, seq: Sequence, clip: Clip, folder: Path) -> dict:
        """One clip in MOT layout under ``folder/clips/<name>``; its manifest line."""
        sub = to_project_gt(seq.clip(clip.start, clip.length, clip.stride, name=clip.name))
        mot.write_sequence(sub, folder / "clips" / clip.name, link=True)
        return {**asdict(clip), "name": clip.name, "path": f"clips/{clip.name}"}

    def _write_det_frames(self, seq: Sequence, source: str, frames: list[int], det: Path, split: str) -> None:
        """YOLO images (ignored regions filled) and labels of ``frames`` under ``det/{images,labels}/split``."""
        for f in frames:
            rows = seq.frame_boxes(f)
            stem = f"{source}__{seq.name}__{f:06d}"
            masked = _masked_frame(seq.image(f), rows)
            if masked is None:
                _link_or_copy(seq.image(f), det / "images" / split / f"{stem}.jpg")
            else:
                _imwrite(det / "images" / split / f"{stem}.jpg", masked)
            atomic_write_text(det / "labels" / split / f"{stem}.txt",
                              yolo_labels(rows, seq.width, seq.height, self.cfg.min_visibility))

    def _export_selection(self, root: Path, held_out: dict[str, list[Clip]]) -> None:
        """The stage's selection split: detector val images (``build.selection_det_frames`` evenly
        spaced frames per clip), ReID query/gallery (each clip's first half / second half) and the
        clips for the association model's validation samples."""
        lines, parts = [], []
        for source, clips in sorted(held_out.items()):
            for video in sorted({c.video for c in clips}):
                seq = self._read(source, video)
                for clip in (c for c in clips if c.video == video):
                    frames = clip.frames()
                    lines.append(self._write_clip(seq, clip, root / "selection"))
                    picks = np.linspace(0, len(frames) - 1, min(self.cfg.selection_det_frames, len(frames)))
                    self._write_det_frames(seq, source, sorted({frames[i] for i in picks.round().astype(int)}),
                                           root / "det", "val")
                    parts.append((source, seq, frames))
        if not lines:
            raise DataError("the stage has no selection clips to choose its checkpoints on",
                            field="build.selection_clips", hint="hold out at least 1 clip per source")
        self._query_gallery(parts, root / "reid", pid_file="val_pids.json")
        atomic_write_text(root / "selection" / "manifest.jsonl",
                          "".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))


def build(params: Params, out: str | Path = "data/built", metrics_dir: str | Path | None = "metrics",
          workers: int | None = None) -> dict:
    """Build everything; write ``metrics/data_<stage>.json`` and ``metrics/data_val.json``."""
    report = Builder(params, out, workers).run()
    if metrics_dir is not None:
        for key, value in report.items():
            atomic_write_json(Path(metrics_dir) / f"data_{key}.json", value)
        atomic_write_json(Path(metrics_dir) / "data_mix.json", mix_rows(report))
    return report


def mix_rows(report: dict) -> list[dict]:
    """One row per (split, source) with frames, clips, identities and boxes per class, for ``dvc plots``."""
    return [{"label": f"{split} {source}", "split": split, "source": source, **counts}
            for split, stats in report.items() for source, counts in sorted(stats.get("sources", {}).items())]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--out", default="data/built", help="output root (default: data/built)")
    parser.add_argument("--metrics-dir", default="metrics", help="where data_<stage>.json go")
    parser.add_argument("--workers", type=int, default=None, help="I/O threads (default: min(4, cores))")


def run(args: argparse.Namespace) -> int:
    from ..config import load_params

    build(load_params(args.params), args.out, args.metrics_dir, args.workers)
    return 0
