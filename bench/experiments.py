"""Ablation of the tracker's defaults: stagetrack's tracker with one of them reverted at a time.

Eight defaults of ``tracker`` were chosen with this benchmark (they are in ``src/`` and
``params.yaml``); each variant below is ``params.yaml``'s ``tracker`` with plain config fields
changed, nothing else:

* ``track_buffer_fps: 0``: a lost track is kept ``track_buffer`` *frames* at any frame rate (as
  ultralytics does); ``fps_scaled_buffer`` sets it to 30, ByteTrack's ``fps / 30`` scaling
  (5 frames at BDD's 5 fps).
* ``costs.fusion: min``: appearance enters BoT-SORT's way, ``cost = min(motion, appearance)``
  only for pairs with IoU >= ``costs.proximity`` and appearance distance <=
  ``costs.appearance_thresh``; ``mean_fusion`` averages it with the motion cost for every pair.
* ``kalman.std_weight_velocity: 1/80`` for people; ``kalman_velocity_1/160`` restores ByteTrack's
  value for every class.
* ``kalman.std_weight_velocity_vehicle: 1/160``: vehicles keep ByteTrack's smoother motion prior;
  ``vehicle_velocity_as_people`` gives them the people's 1/80.
* ``gmc.method: sparse_flow``: camera motion compensation; ``no_gmc`` switches it off.
* ``reid_gate: 2`` (off): ``reid_gate_0.5`` forbids pairs whose ReID distance exceeds 0.5.
* ``iou_min_size: 20``: boxes smaller than 20 px on a side are measured as 20 px for IoU;
  ``no_iou_min_size`` measures them as they are.
* ``new_track_thresh_vehicle: 0.45``: a vehicle starts a track from a detection scoring 0.45
  (people still need 0.5); ``vehicle_birth_as_people`` gives vehicles the people's threshold.

``previous_defaults`` reverts all of them: the tracker as it was before. Every variant runs on the
very observations of the tracking benchmark (``detector`` and ``noisy_gt``) and is compared with
the best peer of that benchmark per domain. The defaults were chosen on these same locked val
videos, so they are re-checked on videos nothing was tuned on: the manifest's locked **test**
videos (noisy ground-truth detections, the same noise model), against every peer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stagetrack.data import sources
from stagetrack.data.builder import load_manifest, to_project_gt
from stagetrack.inference import observations_from_boxes, track
from stagetrack.track.config import TrackerConfig

from .peers import available_peers
from .tracking import OURS, OURS_LEARNED, Contender, Inputs, Noise, _run_all, contenders, goals, noisy_detections
from .world import World

PREVIOUS = "previous_defaults"

# each default chosen with this benchmark, and the value it replaced (dotted TrackerConfig fields)
FPS_SCALED_BUFFER = {"track_buffer_fps": 30.0}
MEAN_FUSION = {"costs.fusion": "mean"}
KALMAN_VELOCITY_160 = {"kalman.std_weight_velocity": 1.0 / 160, "kalman.std_weight_velocity_vehicle": None}
VEHICLE_AS_PEOPLE = {"kalman.std_weight_velocity_vehicle": None}
NO_GMC = {"gmc.method": "none"}
REID_GATE = {"reid_gate": 0.5}
NO_IOU_MIN_SIZE = {"iou_min_size": 0.0}
VEHICLE_BIRTH_AS_PEOPLE = {"new_track_thresh_vehicle": None}


@dataclass(frozen=True)
class Variant:
    """``params.yaml``'s ``tracker`` with ``overrides`` (dotted field -> value); learned blend or not."""

    name: str
    why: str
    overrides: dict[str, Any] = field(default_factory=dict)
    learned: bool = False

    def config(self, tcfg: TrackerConfig) -> TrackerConfig:
        return with_fields(tcfg, self.overrides)

    @property
    def change(self) -> str:
        """What differs from params.yaml, for the tables."""
        fields = ", ".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.overrides.items())
        return f"{fields} ({self.why})" if fields else self.why


def with_fields(cfg: Any, overrides: dict[str, Any]) -> Any:
    """``cfg`` (a nested frozen dataclass) with the dotted fields of ``overrides`` replaced."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in {f.name for f in dataclasses.fields(cfg)}:
            raise KeyError(f"{type(cfg).__name__} has no field {head!r}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[head] = value
    flat.update({head: with_fields(getattr(cfg, head), sub) for head, sub in nested.items()})
    return dataclasses.replace(cfg, **flat)


VARIANTS: tuple[Variant, ...] = (
    Variant(OURS, "params.yaml `tracker` as is, classical costs"),
    Variant("fps_scaled_buffer", "track_buffer given at 30 fps, scaled by the video's fps", FPS_SCALED_BUFFER),
    Variant("mean_fusion", "appearance averaged with motion for every pair", MEAN_FUSION),
    Variant("kalman_velocity_1/160", "ByteTrack's velocity noise for every class", KALMAN_VELOCITY_160),
    Variant("vehicle_velocity_as_people", "vehicles get the people's velocity noise", VEHICLE_AS_PEOPLE),
    Variant("no_gmc", "no camera motion compensation", NO_GMC),
    Variant("reid_gate_0.5", "pairs with ReID distance > 0.5 never match", REID_GATE),
    Variant("no_iou_min_size", "small boxes' IoU measured as they are", NO_IOU_MIN_SIZE),
    Variant("vehicle_birth_as_people", "vehicles need the people's new_track_thresh", VEHICLE_BIRTH_AS_PEOPLE),
    Variant(PREVIOUS, "all reverted: the tracker before these defaults",
            {**FPS_SCALED_BUFFER, **MEAN_FUSION, **KALMAN_VELOCITY_160, **NO_GMC, **REID_GATE, **NO_IOU_MIN_SIZE,
             **VEHICLE_BIRTH_AS_PEOPLE}),
    Variant(OURS_LEARNED, "params.yaml `tracker` as is, learned blend", learned=True),
)


def _classical(cfg: TrackerConfig) -> TrackerConfig:
    return dataclasses.replace(cfg, assoc=dataclasses.replace(cfg.assoc, enable=False))


def _contender(variant: Variant, tcfg: TrackerConfig, scorer: Any) -> Contender:
    """The variant as a contender; the learned blend comes from passing ``scorer``."""
    cfg = variant.config(_classical(tcfg))
    chosen = scorer if variant.learned else None
    change = f"{variant.change} (w={scorer.weight})" if chosen is not None else variant.change

    def run(obs: Any, seq: Any) -> np.ndarray:
        return track(obs, cfg, scorer=chosen)

    return Contender(variant.name, "stagetrack", change, run)


def _test_videos(world: World) -> dict[str, list[Any]]:
    manifest = load_manifest(world.params.build.manifest, world.params)
    out: dict[str, list[Any]] = {}
    for source in sorted(manifest.locked):
        ids = manifest.ids(source, "test")
        if ids:
            cfg = world.params.sources[source]
            out[source] = [to_project_gt(sources.read_video(cfg, v, source=source)) for v in ids]
    return out


def run(world: World, tracking: dict[str, Any], inputs: Inputs, noise: Noise = Noise()) -> dict[str, Any]:
    """The variants on the benchmark's inputs; current and previous defaults against every peer on the test videos."""
    params = world.params
    tcfg = params.tracker
    variants = [v for v in VARIANTS if not v.learned or inputs.scorer is not None]
    tried = [_contender(v, tcfg, inputs.scorer) for v in variants]
    datasets: dict[str, Any] = {}
    for ds_name, observations in inputs.observations.items():
        ds = tracking["datasets"][ds_name]
        domains = ds["domains"]
        results = _run_all(inputs.val, observations, tried, params.eval)
        best = {}
        for d in domains:
            peers = {n: r["scores"][d]["combined"]["HOTA"] for n, r in ds["results"].items() if r["side"] == "ultralytics"}
            name = max(peers, key=peers.get)
            best[d] = {"name": name, "HOTA": peers[name]}
        for variant, contender in zip(variants, tried):
            r = results[contender.name]
            r["change"] = contender.given
            r["overrides"] = dict(variant.overrides)
            r["goal_met"] = {d: bool(r["scores"][d]["combined"]["HOTA"] > best[d]["HOTA"] if d == "dancetrack"
                                     else r["scores"][d]["combined"]["HOTA"] >= best[d]["HOTA"]) for d in domains}
        datasets[ds_name] = {"domains": domains, "best_peer": best, "results": results}
    test = _test_videos(world)
    det_conf = params.detector.conf
    observations = {s.name: observations_from_boxes(s, noisy_detections(s, noise, det_conf), inputs.embed, tcfg,
                                                    images=True, embed_all=True)
                    for seqs in test.values() for s in seqs}
    ours = [c for v, c in zip(variants, tried) if v.name in (OURS, PREVIOUS, OURS_LEARNED)]
    people = ours + [c for c in contenders(tcfg, None, available_peers(inputs.embed is not None), inputs.frames,
                                           inputs.embed is not None, True) if c.side == "ultralytics"]
    results = _run_all(test, observations, people, params.eval)
    domains = sorted(test)
    held_out = {"videos": {d: [s.name for s in seqs] for d, seqs in test.items()},
                "detections": f"ground truth with noise {dataclasses.asdict(noise)}, score >= {det_conf}",
                "domains": domains, "results": results,
                "goals": {c.name: goals(results, domains, c.name) for c in ours}}
    note = ("Each variant is `params.yaml`'s `tracker` with the listed fields changed (classical costs unless "
            "learned) and runs on the inputs of the tracking benchmark above. The current defaults `track_buffer_fps: "
            "0`, `costs.fusion: min`, `kalman.std_weight_velocity: 1/80` (people), "
            "`kalman.std_weight_velocity_vehicle: 1/160`, `gmc.method: sparse_flow`, `reid_gate: 2` (off), "
            f"`iou_min_size: 20` and `new_track_thresh_vehicle: 0.45` are in src; each ablation reverts one, "
            f"`{PREVIOUS}` all of them. They were chosen "
            "with this benchmark on the trained run's locked val videos (about 100 variants tried; on so few videos "
            "single knobs move HOTA by 1-3 points), so the current and previous defaults are re-checked below on "
            "the locked test videos. The first six were chosen before the test videos were scored; `iou_min_size` "
            "was chosen on the val videos (detector outputs, visdrone) in a session that also saw the test scores "
            "of its candidates (12, 16, 20, 24 px), and so was `new_track_thresh_vehicle` (0.40, 0.42, 0.45, "
            "0.48; one threshold for both classes at 0.40-0.48 as well), so for those two the test videos are a "
            "weaker check.")
    return {"note": note, "variants": [c.name for c in tried], "datasets": datasets,
            "held_out_test": held_out}
