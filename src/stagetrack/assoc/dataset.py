"""Reading logged association samples: index, train/val split, torch dataset, statistics.

Shards are loaded whole on first use and kept in a small LRU cache (``cache_shards``), so memory
stays at a few shards however large the log is; :class:`ShardGroupSampler` shuffles in a way
that suits that cache (shuffled groups of shards, samples shuffled within a group).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.sequence import CLASSES
from ..errors import DataError
from ..train.distributed import dist_info
from .features import GEOM_FIELDS, HIST_FIELDS, MODEL_KEYS, PAIR_FIELDS, TRACK_FIELDS, pair_geometry
from .logger import SHARD_KEYS, read_manifest

_LOAD_KEYS = (*MODEL_KEYS, "track_box", "cand_box", "label")


@dataclasses.dataclass(frozen=True)
class AssocLog:
    """The manifest of a log directory: header, shard records and cumulative sample offsets."""

    root: Path
    header: dict[str, Any]
    shards: list[dict[str, Any]]
    offsets: np.ndarray  # (S + 1,) start of each shard in the global sample index

    @property
    def samples(self) -> int:
        return int(self.offsets[-1])

    @property
    def embed_dim(self) -> int:
        return int(self.header["embed_dim"])

    @property
    def hsv_bins(self) -> int:
        return int(self.header["hsv_bins"])

    def shape_of(self, key: str) -> tuple[int, ...]:
        """Per-sample shape of a shard array, from the header."""
        h, c = self.header["history"], self.header["max_candidates"]
        d, b = self.embed_dim, self.hsv_bins
        return {
            "hist": (h, len(HIST_FIELDS)), "hist_mask": (h,), "track": (len(TRACK_FIELDS),),
            "track_box": (2, 4), "track_emb": (d,), "track_hsv": (b,), "cand": (c, len(PAIR_FIELDS)),
            "cand_mask": (c,), "cand_box": (c, 4), "cand_emb": (c, d), "cand_hsv": (c, b),
        }.get(key, ())


def read_log(data_dir: str | Path) -> AssocLog:
    header, shards = read_manifest(data_dir)
    missing = [k for k in ("embed_dim", "hsv_bins", "history", "max_candidates", "version") if k not in header]
    if missing:
        raise DataError(f"header lacks {', '.join(missing)}", file=Path(data_dir) / "manifest.jsonl", line=1)
    offsets = np.concatenate([[0], np.cumsum([s["samples"] for s in shards])]).astype(np.int64)
    return AssocLog(Path(data_dir), header, shards, offsets)


def load_shard(alog: AssocLog, index: int, keys: tuple[str, ...] = SHARD_KEYS, *,
               verify: bool = True) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of shard ``index``, checked against the manifest (hash, count, shapes)."""
    rec = alog.shards[index]
    path = alog.root / rec["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read shard: {exc.strerror or exc}", file=path) from None
    if verify and hashlib.sha256(data).hexdigest() != rec["sha256"]:
        raise DataError("shard content does not match the sha256 in manifest.jsonl (changed or truncated)",
                        file=path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            out = {k: npz[k] for k in keys}
    except KeyError as exc:
        raise DataError(f"shard lacks array {exc.args[0]!r}", file=path, allowed=keys) from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"unreadable shard: {exc}", file=path) from None
    for key, arr in out.items():
        want = (rec["samples"], *alog.shape_of(key))
        if arr.shape != want:
            raise DataError(f"array {key!r} has shape {arr.shape}, expected {want}", file=path, field=key)
    return out


def split_indices(alog: AssocLog, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Deterministic (train, val, mode) global indices.

    By shard (``mode='shard'``) when ``val_split`` of the shards is at least one shard, since
    samples of one shard come from consecutive frames and would leak into validation; otherwise
    by sample. Both choose with ``numpy.random.default_rng(seed)``.
    """
    n, n_shards = alog.samples, len(alog.shards)
    if n < 2:
        raise DataError(f"{n} samples: need at least 2 to split train/val", file=alog.root / "manifest.jsonl")
    rng = np.random.default_rng(seed)
    if val_split * n_shards >= 1 and n_shards >= 2:
        n_val = min(n_shards - 1, round(val_split * n_shards))
        val_shards = np.sort(rng.permutation(n_shards)[:n_val])
        is_val = np.zeros(n, bool)
        for s in val_shards:
            is_val[alog.offsets[s]:alog.offsets[s + 1]] = True
        mode = "shard"
    else:
        n_val = min(n - 1, max(1, round(val_split * n)))
        is_val = np.zeros(n, bool)
        is_val[rng.permutation(n)[:n_val]] = True
        mode = "sample"
    return np.flatnonzero(~is_val), np.flatnonzero(is_val), mode


class AssocDataset(torch.utils.data.Dataset):
    """Samples ``indices`` (global; default all) of a log as dicts of tensors.

    Items hold ``MODEL_KEYS`` and ``label``. With ``jitter`` > 0 the candidate boxes get
    Gaussian noise (``jitter`` x box size on centre, ``exp(N(0, jitter))`` on size) and their
    geometry is recomputed with the logger's own :func:`pair_geometry`; with ``drop`` > 0 the
    true candidate is removed with that probability and the label becomes "no match". Noise is
    drawn from torch's global RNG (seeded by the engine, per worker by the DataLoader).
    """

    def __init__(self, alog: AssocLog, indices: np.ndarray | None = None, *, jitter: float = 0.0,
                 drop: float = 0.0, cache_shards: int = 4) -> None:
        self.alog = alog
        self.indices = np.arange(alog.samples) if indices is None else np.asarray(indices, np.int64)
        self.shard_of = np.searchsorted(alog.offsets, self.indices, side="right") - 1
        self.jitter, self.drop = jitter, drop
        self.cache_shards = cache_shards
        self._cache: collections.OrderedDict[int, dict[str, np.ndarray]] = collections.OrderedDict()
        self._verified: set[int] = set()
        self.max_candidates = int(alog.header["max_candidates"])

    def __len__(self) -> int:
        return len(self.indices)

    def _shard(self, k: int) -> dict[str, np.ndarray]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        arrays = load_shard(self.alog, k, _LOAD_KEYS, verify=k not in self._verified)
        self._verified.add(k)
        self._cache[k] = arrays
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return arrays

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Raw arrays of item ``i`` (no augmentation), as stored."""
        k = int(self.shard_of[i])
        local = int(self.indices[i] - self.alog.offsets[k])
        return {key: arr[local] for key, arr in self._shard(k).items()}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.arrays(i)
        cand, mask, label = item["cand"], item["cand_mask"], int(item["label"])
        if self.jitter > 0 or self.drop > 0:
            cand, mask = cand.copy(), mask.copy()
        if self.jitter > 0 and mask.any():
            box = item["cand_box"].astype(np.float64)                                  # (C, 4)
            noise = torch.randn(box.shape, dtype=torch.float64).numpy() * self.jitter
            box[:, :2] += noise[:, :2] * box[:, 2:]
            box[:, 2:] *= np.exp(noise[:, 2:])
            geom = pair_geometry(item["track_box"][0].astype(np.float64), item["track_box"][1].astype(np.float64), box)
            cand[mask, :len(GEOM_FIELDS)] = geom[mask]
        if self.drop > 0 and label < self.max_candidates and float(torch.rand(())) < self.drop:
            mask[label] = False
            cand[label] = 0
            label = self.max_candidates
        out = {k: torch.from_numpy(np.ascontiguousarray(item[k])) for k in MODEL_KEYS}
        out["cand"], out["cand_mask"] = torch.from_numpy(cand), torch.from_numpy(mask)
        out["label"] = torch.tensor(label, dtype=torch.int64)
        return out


class ShardGroupSampler(torch.utils.data.Sampler[int]):
    """Each epoch: shuffle the shards, take them ``group`` at a time, shuffle samples within a group.

    With ``group`` <= the dataset's shard cache every shard is read once per epoch. The order
    depends only on ``(seed, epoch)``: the engine calls :meth:`set_epoch`; without it the epoch
    advances on every iteration. Under DDP each rank takes every ``world_size``-th index of
    that order (padded by wrapping so ranks get equal counts).
    """

    def __init__(self, dataset: AssocDataset, group: int, seed: int) -> None:
        self.by_shard = [np.flatnonzero(dataset.shard_of == k) for k in np.unique(dataset.shard_of)]
        self.group, self.seed, self.epoch = max(1, group), seed, 0
        info = dist_info()
        self.rank, self.world = info.rank, info.world_size
        self.total = sum(len(v) for v in self.by_shard)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.total // self.world)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.by_shard))
        groups = [rng.permutation(np.concatenate([self.by_shard[k] for k in order[s:s + self.group]]))
                  for s in range(0, len(order), self.group)]
        flat = np.concatenate(groups) if groups else np.zeros(0, np.int64)
        if self.world > 1:
            flat = np.resize(flat, len(self) * self.world)[self.rank::self.world]
        return iter(flat.tolist())


def inspect(data_dir: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Statistics of a log: samples, candidates per sample, no-match ratio, classes, widths.

    ``true_rank`` counts where the true detection sits among the candidates (0 = nearest to the
    predicted box); ``verify`` checks every shard's sha256.
    """
    alog = read_log(data_dir)
    c = int(alog.header["max_candidates"])
    n_cand_hist = np.zeros(c + 1, np.int64)
    rank_hist = np.zeros(c + 1, np.int64)
    per_class: dict[str, dict[str, int]] = {}
    sessions: set[int] = set()
    for k in range(len(alog.shards)):
        meta = load_shard(alog, k, ("label", "n_cand", "cls", "session"), verify=verify)
        n_cand_hist += np.bincount(meta["n_cand"].astype(np.int64), minlength=c + 1)[:c + 1]
        rank_hist += np.bincount(meta["label"], minlength=c + 1)[:c + 1]
        sessions.update(int(s) for s in np.unique(meta["session"]))
        for cls in np.unique(meta["cls"]):
            name = CLASSES[cls] if 0 <= cls < len(CLASSES) else str(int(cls))
            sel = meta["cls"] == cls
            entry = per_class.setdefault(name, {"samples": 0, "no_match": 0})
            entry["samples"] += int(sel.sum())
            entry["no_match"] += int((meta["label"][sel] == c).sum())
    n = alog.samples
    no_match = int(rank_hist[c])
    return {
        "data_dir": str(data_dir),
        "version": alog.header["version"],
        "embed_dim": alog.embed_dim,
        "hsv_bins": alog.hsv_bins,
        "history": alog.header["history"],
        "max_candidates": c,
        "shards": len(alog.shards),
        "sessions": len(sessions),
        "samples": n,
        "positives": n - no_match,
        "no_match": no_match,
        "no_match_ratio": no_match / n if n else 0.0,
        "candidates_hist": {str(i): int(v) for i, v in enumerate(n_cand_hist) if v},
        "true_rank_hist": {str(i): int(v) for i, v in enumerate(rank_hist[:c]) if v},
        "mean_candidates": float((n_cand_hist * np.arange(c + 1)).sum() / n) if n else 0.0,
        "per_class": dict(sorted(per_class.items())),
    }
