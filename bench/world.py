"""Where the benchmark's data and models come from: the repository's trained run, or a
synthetic world generated in a temporary folder.

* :func:`repo_world`: the pipeline's own outputs (``data/built/val`` with its lock,
  ``models/stage3/{detector,reid,assoc.pt}``, the raw synthetic sources under
  ``params.yaml``'s ``sources``). Detector outputs, ReID embeddings and the learned
  association are benchmarked.
* :func:`synthetic_world`: ``stagetrack.data.synth`` videos and the builder's locked val export
  in a temporary folder (used by ``--size tiny`` always, and by the default size when the
  repository has no trained run, e.g. a fresh clone). No models: noisy ground-truth detections
  only, appearance from HSV histograms.

Either way the world carries a params file with absolute paths (``sources.*.root``,
``build.manifest``) so that subprocesses (the data-build benchmark) read the same data from any
working directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stagetrack.config import Params, load_params, merge
from stagetrack.configtypes import load_yaml
from stagetrack.data import synth
from stagetrack.data.builder import Builder, verify_lock
from stagetrack.errors import StagetrackError
from stagetrack.artifacts import StageModels

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
FINAL_STAGE = "stage3"
# the tiny world: per domain 5 videos of 20 frames (3 in the training pool, 1 test, 1 val)
TINY_VIDEOS, TINY_FRAMES = 5, 20


@dataclass
class World:
    """The data and models one benchmark run uses."""

    kind: str                      # "repo" or "synthetic"
    params_data: dict[str, Any]    # params.yaml content with absolute data paths
    params: Params
    val_dir: Path                  # locked validation set (MOTChallenge layout + seqmaps/val.txt)
    models: StageModels | None     # final-stage models, None in a synthetic world
    assoc_samples: Path | None     # logged association samples of stage 1 (training benchmark)

    def write_params(self, path: Path, overrides: dict[str, Any] | None = None) -> Path:
        """Write this world's params (with ``overrides`` merged in) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(merge(self.params_data, overrides or {}), sort_keys=False))
        return path


def _absolute(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``sources.*.root`` and ``build.manifest`` resolved against ``base``."""
    over: dict[str, Any] = {"sources": {}, "build": {"manifest": str((base / data["build"]["manifest"]).resolve())}}
    for name, src in data["sources"].items():
        over["sources"][name] = {"root": str((base / src["root"]).resolve())}
    return merge(data, over)


def repo_world(root: Path = ROOT) -> World | None:
    """The repository's trained run, or None (with the reason logged) if a piece is missing."""
    params_path = root / "params.yaml"
    val_dir = root / "data" / "built" / "val"
    try:
        data, _ = load_yaml(params_path)
        data = _absolute(data, root)
        params = load_params(params_path, data)
        verify_lock(val_dir)
        models = StageModels.find(root / "models" / FINAL_STAGE)
        missing = [name for name, src in params.sources.items() if not Path(src.root).is_dir()]
        if missing:
            raise StagetrackError(f"raw sources missing: {', '.join(missing)}")
    except (StagetrackError, OSError) as exc:
        log.info("no trained run in %s (%s): using a synthetic world", root, exc)
        return None
    samples = root / "models" / "stage1" / "assoc_samples"
    return World("repo", data, params, val_dir, models, samples if (samples / "manifest.jsonl").is_file() else None)


def synthetic_world(tmp: Path, *, tiny: bool, root: Path = ROOT) -> World:
    """Generate synthetic sources under ``tmp/raw`` and export their locked val set to ``tmp/built``.

    ``tiny``: 5 short videos per domain and a manifest written here (video 4 test, video 5 val);
    otherwise the ``synth`` section of ``params.yaml`` and the repository's manifest.
    """
    data, _ = load_yaml(root / "params.yaml")
    data = _absolute(data, root)
    tmp.mkdir(parents=True, exist_ok=True)
    raw = tmp / "raw"
    over: dict[str, Any] = {"synth": {"out": str(raw)}, "sources": {}}
    for domain in synth.DOMAINS:
        over["sources"][domain] = {"root": str(raw / domain)}
        if tiny:
            over["synth"][domain] = {"videos": TINY_VIDEOS, "frames": TINY_FRAMES, "locked_videos": 0}
    if tiny:
        manifest = {"sources": {d: {"test": [synth.video_name(d, TINY_VIDEOS - 2)],
                                    "val": [synth.video_name(d, TINY_VIDEOS - 1)]} for d in synth.DOMAINS},
                    "version": 1}
        path = tmp / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2))
        over["build"] = {"manifest": str(path)}
    data = merge(data, over)
    params = load_params(root / "params.yaml", data)
    synth.generate(params.synth, raw, workers=1 if tiny else None)
    out = tmp / "built"
    Builder(params, out, workers=1).export_locked("val")
    return World("synthetic", data, params, out / "val", None, None)
