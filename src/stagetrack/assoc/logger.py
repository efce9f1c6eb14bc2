"""Association sample logger: what the tracker saw, with the ground-truth answer, as shards.

The tracker calls :meth:`AssocLogger.log` once per frame before its first matching round. For
every track whose last matched detection had a ground-truth id (``gt_id >= 0``) one sample is
recorded: the :func:`~stagetrack.assoc.features.build_inputs` arrays of that track and its
candidates, and ``label`` = the candidate position whose ``gt_id`` equals the track's (the
nearest such candidate), or ``max_candidates`` ("no match") when the object is not among them.

On disk (``out_dir``)::

    manifest.jsonl      line 1: header {"type": "header", "format": "stagetrack-assoc-log",
                                "version", "embed_dim", "hsv_bins", "history", "max_candidates",
                                "hist_fields", "track_fields", "pair_fields", "classes", "box"}
                        then one line per shard {"type": "shard", "file", "samples",
                                "no_match", "session", "sha256"}
    shard_00000.npz ... np.savez (uncompressed) of the SHARD_KEYS arrays, first axis = S samples:
        hist (S,H,4) f32, hist_mask (S,H) bool, track (S,11) f32, track_box (S,2,4) f32,
        track_emb (S,D) f32, track_hsv (S,B) f32, cand (S,C,14) f32, cand_mask (S,C) bool,
        cand_box (S,C,4) f32, cand_emb (S,C,D) f32, cand_hsv (S,C,B) f32   (features.py layout)
        label (S,) i8 in [0, C] (C = no match), n_cand (S,) i2, cls (S,) i2, gt_id (S,) i8,
        track_id (S,) i8, frame (S,) i8 (1-based log() call of the session), session (S,) i4

One manifest line per *shard*, not per sample: the dataset needs only each shard's sample count
to index it, a per-sample manifest would grow as large as the data and be rewritten on every
flush, and per-sample metadata (track id, gt id, frame, label) sits in the shard as arrays. A
shard is written atomically before the manifest that lists it is rewritten (also atomically),
so a crash leaves at worst an unlisted shard that readers ignore. Reopening a directory appends
new shards (a new ``session``) after checking the header matches; one writer at a time.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_path, atomic_write_text
from .config import AssocConfig, env_flag, env_int, env_str
from .features import build_inputs, check_appearance, layout

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
FORMAT = "stagetrack-assoc-log"
ENV_ENABLE = "TRANSFORMER_LOG_ENABLE"
ENV_DIR = "TRANSFORMER_LOG_DIR"
ENV_EMBED_DIM = "TRANSFORMER_LOG_EMBED_DIM"

# arrays of one shard (S samples); the feature arrays are build_inputs' minus cand_index
FEATURE_KEYS: tuple[str, ...] = ("hist", "hist_mask", "track", "track_box", "track_emb", "track_hsv",
                                 "cand", "cand_mask", "cand_box", "cand_emb", "cand_hsv")
META_KEYS: tuple[str, ...] = ("label", "n_cand", "cls", "gt_id", "track_id", "frame", "session")
SHARD_KEYS: tuple[str, ...] = FEATURE_KEYS + META_KEYS


_SHARD_RE = re.compile(r"^shard_(\d{5,})\.npz$")


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.npz"


def read_manifest(data_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, shard records) of a log directory; DataError naming the file and line if malformed."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise DataError("no manifest.jsonl: not a directory written by the association logger", file=path)
    header: dict[str, Any] | None = None
    shards: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=path, line=lineno) from None
            kind = rec.get("type") if isinstance(rec, dict) else None
            if kind == "header" and header is None and lineno == 1:
                if rec.get("format") != FORMAT:
                    raise DataError(f"unknown format {rec.get('format')!r}", file=path, line=lineno,
                                    field="format", allowed=[FORMAT])
                header = rec
            elif kind == "shard" and header is not None:
                for key, typ in (("file", str), ("samples", int), ("no_match", int), ("sha256", str)):
                    if not isinstance(rec.get(key), typ):
                        raise DataError(f"missing or non-{typ.__name__} value", file=path, line=lineno, field=key)
                if not _SHARD_RE.match(rec["file"]):
                    raise DataError(f"bad shard name {rec['file']!r}", file=path, line=lineno, field="file")
                shards.append(rec)
            else:
                raise DataError("expected the header on line 1 and shard records after it",
                                file=path, line=lineno, field="type", allowed=["header", "shard"])
    if header is None:
        raise DataError("empty manifest", file=path)
    return header, shards


def _dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True, allow_nan=False)


class AssocLogger:
    """Records association samples into ``out_dir`` (format in the module docstring).

    ``embed_dim`` is the ReID width to log; None takes it from the first detections (or from
    the header of an existing log). Detections of another width are a ConfigError that names
    ``embed_dim_source`` (e.g. the environment variable the value came from).
    """

    def __init__(self, out_dir: str | Path, *, embed_dim: int | None, history: int, max_candidates: int,
                 shard_size: int, embed_dim_source: str = "embed_dim") -> None:
        if shard_size < 1 or history < 1 or max_candidates < 1:
            raise ConfigError(f"shard_size, history and max_candidates must be >= 1, got "
                              f"{shard_size}, {history}, {max_candidates}")
        self.out_dir = Path(out_dir)
        self.embed_dim = embed_dim
        self.embed_dim_source = embed_dim_source
        self.hsv_bins: int | None = None
        self.history = history
        self.max_candidates = max_candidates
        self.shard_size = shard_size
        self._records: list[dict[str, Any]] = []
        self._header: dict[str, Any] | None = None
        self._buffer: list[dict[str, np.ndarray]] = []
        self._pending = 0
        self._frame = 0
        self.samples_written = 0
        self.closed = False
        if (self.out_dir / MANIFEST).exists():
            self._resume()
        self.session = 1 + max((int(r.get("session", 0)) for r in self._records), default=-1)
        atexit.register(self.close)

    def _resume(self) -> None:
        header, records = read_manifest(self.out_dir)
        where = self.out_dir / MANIFEST
        for key in ("history", "max_candidates"):
            if header.get(key) != getattr(self, key):
                raise ConfigError(f"existing log has {key}={header.get(key)}, this logger {getattr(self, key)}",
                                  file=where, field=key, hint="log into a new directory")
        expected = layout(self.history, self.max_candidates, header.get("embed_dim"), header.get("hsv_bins"))
        if {k: header.get(k) for k in expected} != expected:
            raise ConfigError(f"existing log has feature layout version {header.get('version')}, this code "
                              f"writes version {expected['version']}", file=where, field="version",
                              hint="log into a new directory")
        if self.embed_dim is not None and self.embed_dim != header["embed_dim"]:
            raise ConfigError(f"existing log holds embed_dim={header['embed_dim']}, this logger expects "
                              f"{self.embed_dim} ({self.embed_dim_source})", file=where, field="embed_dim")
        self.embed_dim, self.hsv_bins = header["embed_dim"], header["hsv_bins"]
        self._header, self._records = header, records

    def __enter__(self) -> AssocLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self, tracks: Sequence[Any], dets: Any, image_size: tuple[int, int]) -> None:
        """Record one sample per track with a known ground-truth id (``image_size`` = (w, h))."""
        if self.closed:
            raise RuntimeError("AssocLogger.log() after close()")
        self._frame += 1
        tracks = [t for t in tracks if t.gt_id >= 0]
        if not tracks or len(dets.tlwh) == 0:
            return
        if dets.gt_id is None:
            raise DataError("detections carry no gt_id: the association logger needs ground-truth ids",
                            field="Detections.gt_id", hint="log on sequences with ground truth")
        self._lock_widths(dets)
        inputs = build_inputs(tracks, dets, image_size, history=self.history, max_candidates=self.max_candidates,
                              embed_dim=self.embed_dim, hsv_bins=self.hsv_bins)
        c = self.max_candidates
        cand_gt = np.where(inputs.cand_mask, np.asarray(dets.gt_id, np.int64)[np.maximum(inputs.cand_index, 0)], -1)
        track_gt = np.array([t.gt_id for t in tracks], np.int64)
        hit = cand_gt == track_gt[:, None]                                         # (N, C)
        label = np.where(hit.any(1), hit.argmax(1), c).astype(np.int64)
        arrays = inputs.arrays()
        sample = {k: arrays[k] for k in FEATURE_KEYS}
        n = len(tracks)
        sample.update(
            label=label,
            n_cand=inputs.cand_mask.sum(1).astype(np.int16),
            cls=np.array([t.cls for t in tracks], np.int16),
            gt_id=track_gt,
            track_id=np.array([t.track_id for t in tracks], np.int64),
            frame=np.full(n, self._frame, np.int64),
            session=np.full(n, self.session, np.int32),
        )
        self._buffer.append(sample)
        self._pending += n
        if self._pending >= self.shard_size:
            self.flush(partial=False)

    def _lock_widths(self, dets: Any) -> None:
        emb_w = 0 if dets.emb is None else int(np.asarray(dets.emb).shape[1])
        hsv_w = 0 if dets.hsv is None else int(np.asarray(dets.hsv).shape[1])
        if self.embed_dim is None:
            self.embed_dim = emb_w
            self.embed_dim_source = "the first logged detections"
        if self.hsv_bins is None:
            self.hsv_bins = hsv_w
        check_appearance(dets, self.embed_dim, self.hsv_bins,
                         expected_by=f"the association logger ({self.embed_dim_source})")
        if hsv_w != self.hsv_bins:
            raise ConfigError(f"the association logger logs hsv_bins={self.hsv_bins}, the detections carry {hsv_w}",
                              field="hsv_bins")

    def flush(self, *, partial: bool = True) -> None:
        """Write buffered samples as shards of ``shard_size`` and rewrite the manifest.

        With ``partial`` (as :meth:`close` does) the remainder becomes a smaller last shard;
        without, it stays buffered for the next shard.
        """
        if not self._buffer:
            return
        merged = {k: np.concatenate([b[k] for b in self._buffer]) for k in SHARD_KEYS}
        total = len(merged["label"])
        end = total if partial else total - total % self.shard_size
        for start in range(0, end, self.shard_size):
            self._write_shard({k: v[start:min(start + self.shard_size, end)] for k, v in merged.items()})
        rest = {k: v[end:] for k, v in merged.items()}
        self._buffer, self._pending = ([rest], total - end) if total > end else ([], 0)

    def _write_shard(self, arrays: dict[str, np.ndarray]) -> None:
        if self._header is None:
            self._header = {"type": "header", "format": FORMAT,
                            **layout(self.history, self.max_candidates, self.embed_dim, self.hsv_bins)}
        index = 1 + max((int(_SHARD_RE.match(r["file"]).group(1)) for r in self._records), default=-1)
        name = shard_name(index)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        with atomic_path(self.out_dir / name) as tmp:
            tmp.write_bytes(data)
        n = len(arrays["label"])
        self._records.append({"type": "shard", "file": name, "samples": n,
                              "no_match": int((arrays["label"] == self.max_candidates).sum()),
                              "session": self.session, "sha256": hashlib.sha256(data).hexdigest()})
        lines = [_dumps(self._header)] + [_dumps(r) for r in self._records]
        atomic_write_text(self.out_dir / MANIFEST, "\n".join(lines) + "\n")
        self.samples_written += n
        log.debug("wrote %s (%d samples)", self.out_dir / name, n)

    def close(self) -> None:
        """Flush what is buffered; further :meth:`log` calls are an error. Idempotent."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        atexit.unregister(self.close)
        if self.samples_written:
            log.info("association logger: %d samples in %s", self.samples_written, self.out_dir)


def logger_from_env_or_params(cfg: AssocConfig | None = None, *, reid_dim: int | None = None,
                              environ: Mapping[str, str] | None = None) -> AssocLogger | None:
    """The sample logger the tracker should use, or None when logging is off.

    Precedence: a set (non-empty) environment variable overrides the params field —
    ``TRANSFORMER_LOG_ENABLE`` over ``assoc.log_enable``, ``TRANSFORMER_LOG_DIR`` over
    ``assoc.log_dir``, ``TRANSFORMER_LOG_EMBED_DIM`` over ``assoc.log_embed_dim``. Without an
    explicit width the runtime ReID width ``reid_dim`` is logged (None: the first detections').
    An explicit width that differs from ``reid_dim`` is a ConfigError here, at start-up.
    """
    cfg = cfg or AssocConfig()
    environ = os.environ if environ is None else environ
    enable = env_flag(environ, ENV_ENABLE)
    if not (cfg.log_enable if enable is None else enable):
        return None
    out_dir = env_str(environ, ENV_DIR) or cfg.log_dir
    if not out_dir:
        raise ConfigError("association logging is enabled but no directory is set", field=ENV_DIR,
                          hint="set TRANSFORMER_LOG_DIR or assoc.log_dir")
    env_dim = env_int(environ, ENV_EMBED_DIM)
    embed_dim, source = (env_dim, f"{ENV_EMBED_DIM}={env_dim}") if env_dim is not None else \
        (cfg.log_embed_dim, f"assoc.log_embed_dim={cfg.log_embed_dim}")
    if embed_dim is not None and embed_dim < 0:
        raise ConfigError(f"must be >= 0, got {embed_dim}", field=source.split("=")[0])
    if embed_dim is not None and reid_dim is not None and embed_dim != reid_dim:
        raise ConfigError(f"{source} but the tracker's ReID features have width {reid_dim}",
                          field="embed_dim", hint="the logged width must be the runtime ReID width")
    if embed_dim is None and reid_dim is not None:
        embed_dim, source = reid_dim, f"the runtime ReID width {reid_dim}"
    return AssocLogger(out_dir, embed_dim=embed_dim, history=cfg.history, max_candidates=cfg.max_candidates,
                       shard_size=cfg.shard_size, embed_dim_source=source)
