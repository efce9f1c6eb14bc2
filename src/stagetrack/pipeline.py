"""Train one stage: detector, ReID model and association transformer, then validate.

Stage N starts every part from stage N-1's weights (``stageN.init``), at the stage's learning
rates (``lr_scale`` and the other per-stage keys of the seed plan), on the data mix the builder
wrote for it:

1. detector (ultralytics YOLO) on ``data/built/<stage>/det``;
2. ReID (torchreid OSNet) on ``data/built/<stage>/reid``;
3. association: the tracker runs over the stage's training clips (ground-truth boxes with
   detector-like noise, embeddings from the ReID model just trained) with the sample logger
   attached, then the transformer trains on those samples (seed 000's workflow);
4. validation: the new models track every locked validation video; HOTA/IDF1/... per domain
   and class, classical and learned association side by side.

Every part chooses its checkpoint (best epoch, early stopping) on the stage's **selection
split**, clips held out of every stage's training pool (``data/built/<stage>/selection``): the
detector's val images, the ReID query/gallery and the association model's validation samples
all come from them. The locked validation videos of step 4 report; nothing here chooses on them,
and nothing here reads the locked test videos.

A killed run continues where it stopped (:mod:`.resume`): each part checkpoints every epoch in
``models/<stage>.resume/`` (a persistent DVC output), finished parts are restored rather than
trained again, and the stage ends with the bytes of an uninterrupted run.

Outputs: ``models/<stage>/{detector,reid}/…``, ``models/<stage>/assoc.pt``, the logged
samples, ``metrics/<stage>.json``, dvclive curves under ``metrics/live/<stage>/<part>`` and the
parts' wall-clock seconds in ``timings/<stage>.json`` (outside the DVC graph: they vary run to run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from . import configtypes
from .config import STAGES, Params
from .data import mot
from .data.builder import verify_lock
from .errors import CheckpointError, ConfigError
from .io import atomic_write_bytes, atomic_write_json
from .resume import CHECKPOINT_SECONDS, StageResume, resume_dir, stage_key

log = logging.getLogger(__name__)


def _live(root: Path, part: str):
    from dvclive import Live

    return Live(dir=str(root / part), dvcyaml=None, save_dvc_exp=False, report=None, monitor_system=False)


def previous_stage_dir(params: Params, stage: str, models: Path) -> Path | None:
    """Where the stage's initial weights come from (``init``: an earlier stage or null)."""
    init = params.stage(stage).init
    if init is None:
        return None
    if init in STAGES:
        path = models / init
        if not path.is_dir():
            raise ConfigError(f"initial weights of {init} not found at {path}; train {init} first",
                              field=f"{stage}.init")
        return path
    raise ConfigError("must name an earlier stage (local weight files go in detector.weights / reid.weights)",
                      field=f"{stage}.init", allowed=STAGES[: STAGES.index(stage)])


def interpolate_detector(params: Params, stage: str, prev: Path, det_dir: Path, stage_data: Path, det: dict,
                         device: str) -> dict:
    """``stageN.interpolate_alphas``: keep the detector interpolated with the previous stage's at
    the alpha the selection split chooses (:mod:`.detect.interpolate`); the fine-tuned weights
    stay beside it as ``finetuned.pt`` when alpha < 1. Returns the part's result with the kept
    model's selection metrics and curve, and ``interpolation`` (alpha, fitness per alpha)."""
    import tempfile

    from .detect.interpolate import choose_alpha
    from .detect.yolo import evaluate_detector

    iou = params.stage_section(stage, "detector").iou
    selection = stage_data / "det" / "data.yaml"
    curves: dict[Path, list] = {}

    def validate(weights: Path) -> dict:
        metrics, curves[weights] = evaluate_detector(weights, selection, iou=iou, device=device, curve=True)
        return metrics

    best = det_dir / "best.pt"
    with tempfile.TemporaryDirectory(prefix="stagetrack-interp-", dir=det_dir) as tmp:
        chosen = choose_alpha(best, prev / "detector" / "best.pt", list(params.stage(stage).interpolate_alphas),
                              validate=validate, work_dir=Path(tmp))
        if chosen["alpha"] != 1.0:
            atomic_write_bytes(det_dir / "finetuned.pt", best.read_bytes())
            atomic_write_bytes(best, Path(chosen["path"]).read_bytes())
    return {"metrics": chosen["metrics"], "pr_curve": curves[chosen["path"]],
            "interpolation": {"alpha": chosen["alpha"], "fitness": chosen["fitness"]}}


def log_assoc_samples(params: Params, stage: str, clips_dir: Path, embed, out_dir: Path, stream: int = 0) -> dict:
    """Track the clips of ``clips_dir/manifest.jsonl`` (the stage's training or selection clips)
    with the sample logger attached (seed 000); ``stream`` separates their noise draws."""
    from .assoc.logger import AssocLogger
    from .inference import gt_observations, track

    acfg = params.stage_section(stage, "assoc")
    tcfg = params.tracker
    lines = [json.loads(x) for x in (clips_dir / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rng = np.random.default_rng([params.seed, STAGES.index(stage), 0xA55C, stream])
    if out_dir.exists():
        shutil.rmtree(out_dir)
    embed_dim = None
    logger = None
    for line in lines:
        seq = mot.read_sequence(clips_dir / line["path"], source=line["source"])
        obs = gt_observations(seq, embed, tcfg, rng, jitter=acfg.det_jitter, drop=acfg.det_drop)
        if logger is None:
            dims = [d.emb.shape[1] for d in obs.frames if d.emb is not None]
            embed_dim = dims[0] if dims else 0
            logger = AssocLogger(out_dir, embed_dim=embed_dim, history=acfg.history,
                                 max_candidates=acfg.max_candidates, shard_size=acfg.shard_size)
        track(obs, tcfg, logger=logger)
    if logger is None:
        raise ConfigError(f"stage {stage} has no association training clips", field=f"{stage}.data")
    logger.close()
    return {"clips": len(lines), "embed_dim": embed_dim}


def assoc_init(prev: Path | None, engine_cfg) -> Path | None:
    """The previous stage's association weights; its engine checkpoint (optimizer and schedule
    state) when ``train.resume_optimizer`` or ``train.resume_scheduler`` asks to carry them over.
    Either missing is an error: a stage that starts from the previous one never trains from
    scratch quietly."""
    if prev is None:
        return None
    if engine_cfg.resume_optimizer or engine_cfg.resume_scheduler:
        last = prev / "assoc.work" / "last.pt"
        if not last.is_file():
            key = "train.resume_optimizer" if engine_cfg.resume_optimizer else "train.resume_scheduler"
            raise CheckpointError(f"{key} asks for the previous stage's optimizer/schedule state, which is missing",
                                  file=last, hint=f"re-run {prev.name}, or set {key}: false")
        return last
    exported = prev / "assoc.pt"
    if not exported.is_file():
        raise CheckpointError("the previous stage's association model is missing", file=exported,
                              hint=f"re-run {prev.name} (this stage starts every part from its weights)")
    return exported


def train_stage(params: Params, stage: str, *, data: Path, models: Path, metrics_dir: Path,
                timings_dir: Path = Path("timings")) -> dict:
    from .assoc.train import train_assoc
    from .detect.yolo import train_detector
    from .artifacts import VAL_RESULTS, StageModels, load_locked
    from .evaluate.pipeline import evaluate_stage
    from .reid.features import ReidExtractor
    from .reid.train import train_reid
    from .reid.evaluate import cmc_rows

    cfg = params.stage(stage)
    verify_lock(data / "val")
    stage_data, out = data / stage, models / stage
    prev = previous_stage_dir(params, stage, models)
    live_root = metrics_dir / "live" / stage
    if live_root.exists():
        shutil.rmtree(live_root)
    out.mkdir(parents=True, exist_ok=True)
    device = params.resolved_device()
    log.info("%s: %s", stage, cfg.description or "training")
    with configtypes.untraced():  # the key hashes every param; the stage reads only its own
        everything = params.to_dict()
    key = stage_key(everything, stage, {"data": stage_data, "val": data / "val", "init": prev})
    resume = StageResume.open(resume_dir(models, stage), stage, key)
    resumed = set(resume.done)  # parts restored, not trained (an interrupted run finished them)

    timing: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timing[f"{part}_s"] = round(now - clock, 2)
        clock = now

    # 1. detector
    det_outputs = {"detector": out / "detector", "live": live_root / "detector"}
    det = resume.restore("detector", det_outputs)
    if det is None:
        live = _live(live_root, "detector")
        result = train_detector(
            params.stage_section(stage, "detector"), data_yaml=stage_data / "det" / "data.yaml",
            out_dir=out / "detector", init=(prev / "detector" / "best.pt") if prev else None,
            lr_scale=cfg.lr_scale, lr_backbone_scale=cfg.lr_backbone_scale, lr_drop=cfg.lr_drop,
            accumulate_steps=cfg.accumulate_steps, aug_max_size=cfg.aug_max_size,
            aug_resize_scales=list(cfg.aug_resize_scales) or None, live=live, seed=params.seed, device=device,
            state_file=resume.part_dir("detector") / "state.pt",
        )
        live.end()
        det = {"metrics": result.metrics, "pr_curve": result.pr_curve}
        if cfg.interpolate_alphas:
            det = interpolate_detector(params, stage, prev, out / "detector", stage_data, det, device)
        resume.finish("detector", det_outputs, det)
    lap("detector")

    # 2. ReID
    reid_outputs = {"reid": out / "reid", "live": live_root / "reid"}
    reid = resume.restore("reid", reid_outputs)
    if reid is None:
        live = _live(live_root, "reid")
        result = train_reid(
            params.stage_section(stage, "reid"), data_dir=stage_data / "reid", out_dir=out / "reid",
            init=StageModels.find(prev).reid if prev else None, lr_scale=cfg.lr_scale, live=live,
            seed=params.seed, device=device, state_file=resume.part_dir("reid") / "state.pt",
        )
        live.end()
        reid = {"metrics": result.metrics, "kept_epoch": result.kept_epoch}
        resume.finish("reid", reid_outputs, reid)
    lap("reid")

    # 3. association: log samples while tracking the training clips, then train
    assoc_outputs = {name: out / name for name in ("assoc.pt", "assoc.work", "assoc_samples", "assoc_selection")}
    assoc_outputs["live"] = live_root / "assoc"
    assoc = resume.restore("assoc", assoc_outputs)
    if assoc is None:
        extractor = ReidExtractor(StageModels.find(out).reid, device=device, batch_size=params.reid.feature_batch)
        samples = log_assoc_samples(params, stage, stage_data / "assoc", extractor.from_frames, out / "assoc_samples")
        log_assoc_samples(params, stage, stage_data / "selection", extractor.from_frames, out / "assoc_selection",
                          stream=1)
        acfg = params.stage_section(stage, "assoc")
        live = _live(live_root, "assoc")
        # the stage's ACCUMULATE_STEPS and LR_DROP (a step schedule) apply to this part too
        engine_cfg = dataclasses.replace(params.train, accumulate_steps=cfg.accumulate_steps)
        if cfg.lr_drop is not None:
            engine_cfg = dataclasses.replace(engine_cfg, scheduler="step", lr_drop=cfg.lr_drop)
        work = resume.part_dir("assoc") / "work"
        summary = train_assoc(
            out / "assoc_samples", out / "assoc.pt", cfg=acfg, engine_cfg=engine_cfg,
            lr=params.stage_lr(stage), epochs=acfg.epochs, batch_size=acfg.batch_size, val_split=acfg.val_split,
            device=device, live=live, init_from=assoc_init(prev, engine_cfg), val_data=out / "assoc_selection",
            resume=True, work_dir=work,
        )
        live.end()
        shutil.copytree(work, out / "assoc.work", dirs_exist_ok=True)
        assoc = {**summary, **{f"samples_{k}": v for k, v in samples.items()}}
        resume.finish("assoc", assoc_outputs, assoc)
    lap("assoc")

    # 4. validation on the locked videos
    # the result files stay with the models: eval compares stages on them, paired by video
    # (tracks, the detector's own boxes and the ReID model's rank-1 per locked val query)
    val = evaluate_stage(params, load_locked(data / "val"), StageModels.find(out), results_dir=out / VAL_RESULTS,
                         reid_dir=data / "val" / "reid")
    lap("val")
    selection = json.loads((stage_data / "selection.json").read_text())
    frames = sum(c["length"] for clips in selection["train"].values() for c in clips)
    metrics = {
        "detector": {**det["metrics"], **({"interpolation": det["interpolation"]} if "interpolation" in det else {})},
        "reid": {**reid["metrics"], "kept_epoch": reid["kept_epoch"]},
        "assoc": assoc,
        "val": val[val["headline"]],
        "val_classical": {d: m["combined"] for d, m in val["classical"].items()},
        "train_frames": frames,
    }
    if "learned" in val:
        metrics["val_learned"] = {d: m["combined"] for d, m in val["learned"].items()}
    atomic_write_json(metrics_dir / f"{stage}.json", metrics)
    # wall-clock seconds vary run to run: outside every DVC dependency and git (see plan.py);
    # checkpoint_s: writing the resume state (per-epoch checkpoints, finished parts' copies, the key)
    checkpoint = {f"checkpoint_{part}_s": round(sec, 2) for part, sec in sorted(CHECKPOINT_SECONDS.items())}
    checkpoint["checkpoint_s"] = round(sum(CHECKPOINT_SECONDS.values()), 2)
    atomic_write_json(timings_dir / f"{stage}.json", {**timing, **checkpoint, "resumed": sorted(resumed),
                                                       "train_frames": frames, "device": device})
    atomic_write_json(live_root / "curves" / "detector_pr.json", det["pr_curve"])
    atomic_write_json(live_root / "curves" / "reid_cmc.json",
                      cmc_rows(reid["metrics"], params.stage_section(stage, "reid").ranks))
    resume.complete()
    allv = metrics["val"]["all"]["combined"]
    log.info("%s done: val HOTA %.1f IDF1 %.1f (%s association)", stage, allv["HOTA"], allv["IDF1"], val["headline"])
    return metrics



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="which stage to train")
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--data", default="data/built", type=Path, help="built data root")
    parser.add_argument("--models", default="models", type=Path, help="models root (models/<stage>/ is written)")
    parser.add_argument("--metrics-dir", default="metrics", type=Path, help="where <stage>.json and live/<stage>/ go")
    parser.add_argument("--timings-dir", default="timings", type=Path,
                        help="where <stage>.json with the parts' wall-clock seconds goes (read by `stagetrack plan`; "
                             "no stage depends on it, git ignores it)")


def run(args: argparse.Namespace) -> int:
    from .config import load_params

    train_stage(load_params(args.params), args.stage, data=args.data, models=args.models, metrics_dir=args.metrics_dir,
                timings_dir=args.timings_dir)
    return 0
