"""The detector: ultralytics YOLO trained per stage, evaluated and run, fully offline.

* :func:`resolve_train_args` turns :class:`DetectorConfig` plus a stage's knobs into the exact
  keyword arguments of ultralytics' trainer (pure mapping; see ``detect/config.py`` for where
  each seed-plan key goes).
* :func:`train_detector` trains stage 1 from ``model`` (a yaml, from scratch) or ``weights``,
  stage N from ``init`` (stage N-1's best.pt), resumes an interrupted run, logs every epoch to
  the stage's dvclive ``Live`` and leaves ``out_dir/best.pt`` and ``out_dir/last.pt``.
* :func:`evaluate_detector` and :class:`Detector` validate and run trained weights.

ultralytics' run folder is ``out_dir/train`` (``weights/``, ``args.yaml``, ``results.csv``);
nothing goes to ``runs/``. Data sets are read through a mirror (``detect/dataset.py``), so the
builder's DVC-tracked set is never written to.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import numerics, offline
from ..data.sequence import CLASSES, empty_boxes
from ..errors import CheckpointError, ConfigError
from ..io import atomic_path
from .checkpoint import canonicalize_run
from .config import DetectorConfig
from .dataset import mirror_dataset
from .metrics import pr_curve, summarize
from .trainer import StageOptions, StageTrainer, live_callback, thread_callback

offline.configure_ultralytics()  # trainer.py did this already; explicit for readers of this module

from ultralytics.models.yolo.detect import DetectionPredictor, DetectionValidator  # noqa: E402
from ultralytics.nn.tasks import load_checkpoint, yaml_model_load  # noqa: E402
from ultralytics.utils import WEIGHTS_DIR  # noqa: E402

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).parent / "models"
RUN_NAME = "train"
STRIDE = 32  # largest stride of every YOLO detection model here; imgsz is a multiple of it
AMP_CHECK_FILE = "yolo26n.pt"  # what ultralytics' CUDA AMP check loads (downloads if missing)

# DetectorConfig fields passed to ultralytics under their own name
TRAIN_KEYS: tuple[str, ...] = (
    "epochs", "batch", "patience", "save_period", "cache", "workers", "optimizer", "lrf",
    "momentum", "weight_decay", "warmup_epochs", "warmup_momentum", "warmup_bias_lr", "box",
    "cls", "dfl", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear",
    "perspective", "flipud", "fliplr", "mosaic", "mixup", "copy_paste", "close_mosaic",
    "deterministic",
)


@dataclass
class DetectorResult:
    best: Path
    last: Path
    metrics: dict[str, float]  # keys: stagetrack.detect.metrics.metric_keys()
    pr_curve: list[dict] = field(default_factory=list)  # rows {class, recall, precision} of best.pt


@dataclass(frozen=True)
class ModelSource:
    """What training starts from: a yaml (from scratch) or a local .pt, and its backbone depth."""

    path: str
    backbone_layers: int
    nc: int | None = None            # classes of a .pt
    names: tuple[str, ...] = ()


def resolve_model(cfg: DetectorConfig, init: Path | None) -> ModelSource:
    """``init`` if given, else ``cfg.weights``, else ``cfg.model``; checked to exist locally.

    A bare yaml name is looked up in ``stagetrack/detect/models/`` and then among ultralytics'
    packaged model yamls. A missing .pt is an error, never a download.
    """
    if init is not None or cfg.weights:
        path = Path(init if init is not None else cfg.weights)
        if not path.is_file():
            if init is not None:
                raise CheckpointError("init weights not found", file=path)
            raise ConfigError(f"weights file {path} not found (nothing is downloaded)",
                              field="detector.weights")
        try:
            model, _ = load_checkpoint(path)
        except Exception as err:  # torch/pickle raise many types for a corrupt file
            raise CheckpointError(f"not a YOLO checkpoint: {err}", file=path) from err
        names = tuple(str(v) for _, v in sorted(dict(model.names).items()))
        return ModelSource(str(path.resolve()), len(model.yaml["backbone"]), len(names), names)
    name = Path(cfg.model)
    if name.suffix not in {".yaml", ".yml"}:
        raise ConfigError(f"must be a model yaml, got {cfg.model!r} (a .pt goes in detector.weights)",
                          field="detector.model")
    for candidate in (name, MODELS_DIR / name.name):
        if candidate.is_file():
            path = str(candidate.resolve())
            break
    else:
        path = cfg.model  # ultralytics' own (yolo11n.yaml -> cfg/models/11/yolo11.yaml, scale n)
    try:
        backbone = len(yaml_model_load(path)["backbone"])
    except FileNotFoundError as err:
        local = sorted(p.name for p in MODELS_DIR.glob("*.yaml"))
        raise ConfigError(f"model yaml {cfg.model!r} not found", field="detector.model",
                          hint=f"use a path, one of {local} or an ultralytics yaml like yolo11n.yaml") from err
    return ModelSource(path, backbone)


def _round_to_stride(size: int) -> int:
    return max(STRIDE, size // STRIDE * STRIDE)


def _resolve(cfg: DetectorConfig, *, data_yaml: Path, out_dir: Path, init: Path | None,
             lr_scale: float, lr_backbone_scale: float | None, lr_drop: int | None,
             accumulate_steps: int, aug_max_size: int | None, aug_resize_scales: list[int] | None,
             seed: int, device: str) -> tuple[dict[str, Any], StageOptions, ModelSource]:
    if accumulate_steps < 1:
        raise ConfigError(f"must be >= 1, got {accumulate_steps}", field="accumulate_steps")
    if lr_scale <= 0:
        raise ConfigError(f"must be > 0, got {lr_scale}", field="lr_scale")
    backbone_scale = 1.0 if lr_backbone_scale is None else float(lr_backbone_scale)
    if backbone_scale < 0:
        raise ConfigError(f"must be >= 0, got {backbone_scale}", field="lr_backbone_scale")
    if lr_drop is not None and not 0 < lr_drop:
        raise ConfigError(f"must be a positive epoch, got {lr_drop}", field="lr_drop")
    if lr_drop is not None and lr_drop >= cfg.epochs:
        log.warning("lr_drop=%d >= epochs=%d: the learning rate never drops", lr_drop, cfg.epochs)
    source = resolve_model(cfg, init)
    device = cfg.train_device or device
    if source.nc is not None and source.nc != len(CLASSES):
        log.warning("init weights %s have %d classes %s, the data %d %s: the classification head is "
                    "re-initialised, every layer whose shape matches is transferred",
                    source.path, source.nc, list(source.names), len(CLASSES), list(CLASSES))
    elif source.nc is not None and source.names != CLASSES:
        log.warning("init weights %s name their classes %s, the data %s: head rows are remapped by "
                    "name where names match", source.path, list(source.names), list(CLASSES))
    cap = _round_to_stride(aug_max_size) if aug_max_size else None
    imgsz = _round_to_stride(min(cfg.imgsz, cap) if cap else cfg.imgsz)
    scales = sorted({_round_to_stride(min(s, cap) if cap else s) for s in aug_resize_scales or ()})
    amp = cfg.amp and device != "cpu"
    if amp and not (WEIGHTS_DIR / AMP_CHECK_FILE).is_file():
        log.warning("amp needs %s for ultralytics' AMP check (it would download it): training in fp32",
                    WEIGHTS_DIR / AMP_CHECK_FILE)
        amp = False
    args: dict[str, Any] = {k: getattr(cfg, k) for k in TRAIN_KEYS}
    args.update(
        model=source.path,
        data=str(data_yaml),
        imgsz=imgsz,
        lr0=cfg.lr0 * lr_scale,
        nbs=cfg.batch * accumulate_steps,  # ultralytics steps every round(nbs / batch) batches
        freeze=source.backbone_layers if backbone_scale == 0 else None,
        multi_scale=0.0,  # explicit sizes are drawn by StageTrainer instead
        amp=amp,
        seed=seed,
        device=device,
        project=str(Path(out_dir).resolve()),
        name=RUN_NAME,
        exist_ok=True,
        plots=False,
        verbose=False,
        val=True,
    )
    options = StageOptions(
        backbone_layers=source.backbone_layers,
        lr_backbone_scale=backbone_scale,
        auto_lr_scale=lr_scale if cfg.optimizer == "auto" else 1.0,
        lr_drop=lr_drop,
        lr_drop_gamma=cfg.lr_drop_gamma,
        resize_scales=tuple(scales),
        threads=cfg.threads or numerics.thread_count(),
    )
    return args, options, source


def resolve_train_args(cfg: DetectorConfig, *, data_yaml: Path, out_dir: Path, init: Path | None,
                       lr_scale: float = 1.0, lr_backbone_scale: float | None = None,
                       lr_drop: int | None = None, accumulate_steps: int = 1,
                       aug_max_size: int | None = None, aug_resize_scales: list[int] | None = None,
                       seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """The exact keyword arguments given to ultralytics' ``DetectionTrainer(overrides=...)``.

    (The same as ``YOLO(model).train(**args)`` would take.) The knobs ultralytics has no
    argument for (backbone lr, step schedule, resize list) are :class:`StageOptions` of the
    trainer instead.
    """
    return _resolve(cfg, data_yaml=data_yaml, out_dir=out_dir, init=init, lr_scale=lr_scale,
                    lr_backbone_scale=lr_backbone_scale, lr_drop=lr_drop,
                    accumulate_steps=accumulate_steps, aug_max_size=aug_max_size,
                    aug_resize_scales=aug_resize_scales, seed=seed, device=device)[0]


def _resume_state(last: Path, epochs: int) -> str:
    """``missing``, ``resumable`` (saved mid-run with optimizer state) or ``finished``."""
    if not last.is_file():
        return "missing"
    try:
        _, ckpt = load_checkpoint(last)
    except Exception as err:  # a truncated file fails inside torch/pickle with many types
        raise CheckpointError(f"cannot resume from it: {err}", file=last) from err
    done = ckpt.get("optimizer") is None or ckpt.get("epoch", -1) + 1 >= epochs
    return "finished" if done else "resumable"


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def train_detector(cfg: DetectorConfig, *, data_yaml: Path, out_dir: Path, init: Path | None,
                   lr_scale: float = 1.0, lr_backbone_scale: float | None = None,
                   lr_drop: int | None = None, accumulate_steps: int = 1,
                   aug_max_size: int | None = None, aug_resize_scales: list[int] | None = None,
                   live: Any = None, resume: bool = False, state_file: Path | None = None, seed: int = 0,
                   device: str = "cpu") -> DetectorResult:
    """Train (or resume) one stage's detector; see the module docstring.

    ``live`` (a ``dvclive.Live`` or None) receives per epoch ``detector/train/{box,cls,dfl}_loss``,
    ``detector/val/*_loss``, ``detector/lr/pg<i>`` and ``detector/val/{mAP50,mAP50-95,precision,
    recall}``, then ``next_step()``. The returned metrics come from validating best.pt at the end.

    Two ways to continue an interrupted run: ``resume`` is ultralytics' own (from
    ``train/weights/last.pt``: the epoch count continues, the weights do not equal an uninterrupted
    run's); ``state_file`` (the pipeline's) is written after every epoch and, when it exists,
    continues bitwise (:mod:`.resume`, which also replays the dvclive rows into ``live``).
    """
    from ..resume import RecordingLive
    from . import resume as exact

    out_dir = Path(out_dir).resolve()
    run_dir = out_dir / RUN_NAME
    last_ckpt = run_dir / "weights" / "last.pt"
    saved = None
    if state_file is not None:
        state_file = Path(state_file)
        saved = exact.load(state_file) if state_file.is_file() else None
        if run_dir.exists():
            shutil.rmtree(run_dir)
        if saved is not None:
            exact.restore_run_dir(saved, run_dir)
            state = "finished" if exact.finished(saved) else "resumable"
        else:
            state = "missing"
        live = RecordingLive(live, saved["live_steps"] if saved else None)
    else:
        state = _resume_state(last_ckpt, cfg.epochs) if resume else "missing"
        if resume and state == "missing":
            log.warning("nothing to resume in %s: training from the start", run_dir)
        if state == "missing" and run_dir.exists():
            shutil.rmtree(run_dir)  # a stale run would leave old epoch checkpoints behind
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stagetrack-yolo-") as tmp:
        data = mirror_dataset(Path(data_yaml), Path(tmp))
        args, options, _ = _resolve(
            cfg, data_yaml=data, out_dir=out_dir, init=init, lr_scale=lr_scale,
            lr_backbone_scale=lr_backbone_scale, lr_drop=lr_drop, accumulate_steps=accumulate_steps,
            aug_max_size=aug_max_size, aug_resize_scales=aug_resize_scales, seed=seed, device=device)
        override = {"model": args["model"], "resume": False} if state != "missing" else None
        if state == "finished":
            best = run_dir / "weights" / "best.pt"
            if saved is not None:
                log.warning("%s: the interrupted run had trained every epoch; its final validation is "
                            "run again here (metrics as ultralytics' standalone validator computes them)", run_dir)
                _strip_optimizers(run_dir)
            else:
                log.info("%s already finished training: collecting its results", run_dir)
            final = _validate(best if best.is_file() else last_ckpt, data, imgsz=args["imgsz"],
                              conf=0.001, iou=cfg.iou, device=device, threads=options.threads)
        else:
            if state == "resumable":
                log.info("resuming %s from epoch %d", last_ckpt, (saved["epoch"] + 2) if saved else 0)
                args["resume"] = str(last_ckpt)
            trainer = StageTrainer.bind(options)(overrides=args)
            set_threads = thread_callback(options.threads)
            for event in ("on_pretrain_routine_start", "on_train_start", "on_val_start"):
                trainer.add_callback(event, set_threads)
            if live is not None:
                trainer.add_callback("on_fit_epoch_end", live_callback(live))
            if state_file is not None:
                trainer.add_callback("on_train_start", exact.check_exact)
                trainer.add_callback("on_fit_epoch_end", _state_saver(state_file, run_dir, live))
                if saved is not None:
                    trainer.add_callback("on_train_epoch_start", _state_restorer(saved))
                trainer.add_callback("on_train_batch_end", _kill_point)
            trainer.train()
            final = trainer.validator.metrics
        canonicalize_run(run_dir, replace={str(data): str(data_yaml)}, args_override=override)
    weights = run_dir / "weights"
    best = weights / "best.pt" if (weights / "best.pt").is_file() else weights / "last.pt"
    _copy_atomic(best, out_dir / "best.pt")
    _copy_atomic(weights / "last.pt", out_dir / "last.pt")
    return DetectorResult(best=out_dir / "best.pt", last=out_dir / "last.pt", metrics=summarize(final),
                          pr_curve=pr_curve(final))


def _strip_optimizers(run_dir: Path) -> None:
    """What ultralytics' final_eval does to a finished run's checkpoints."""
    from ultralytics.utils.torch_utils import strip_optimizer

    weights = run_dir / "weights"
    ckpt = strip_optimizer(weights / "last.pt") if (weights / "last.pt").is_file() else {}
    if (weights / "best.pt").is_file():
        strip_optimizer(weights / "best.pt", updates={"train_results": ckpt.get("train_results")})


def _state_saver(path: Path, run_dir: Path, recorder: Any):
    """``on_fit_epoch_end`` (after the dvclive row): write the exact state (:mod:`.resume`)."""
    from ..resume import timed
    from . import resume as exact

    def save_state(trainer: Any) -> None:
        if trainer.in_final_eval:
            return
        with timed("detector"):
            exact.save(path, exact.capture(trainer, run_dir, recorder.steps))

    return save_state


def _state_restorer(saved: dict):
    """``on_train_epoch_start``: apply the exact state once, at the first resumed epoch."""
    from . import resume as exact

    pending = [saved]

    def restore(trainer: Any) -> None:
        if pending:
            exact.apply(trainer, pending.pop())

    return restore


def _kill_point(trainer: Any) -> None:
    from ..resume import kill_point

    batches = len(trainer.train_loader)
    batch = getattr(trainer, "_batches_done", 0) % batches + 1
    trainer._batches_done = getattr(trainer, "_batches_done", 0) + 1
    kill_point("detector", trainer.epoch + 1, batch)


def _validate(weights: Path, data_yaml: Path, *, imgsz: int, conf: float, iou: float,
              device: str, threads: int) -> Any:
    """ultralytics' ``DetMetrics`` of ``weights`` on the val split."""
    with tempfile.TemporaryDirectory(prefix="stagetrack-yoloval-") as tmp:
        validator = DetectionValidator(
            save_dir=Path(tmp),
            args=dict(model=str(weights), data=str(data_yaml), imgsz=imgsz, conf=conf, iou=iou,
                      device=device, rect=True, plots=False, verbose=False, save_json=False,
                      mode="val", task="detect", batch=16),
        )
        validator.add_callback("on_val_start", thread_callback(threads))
        validator(model=str(weights))
        return validator.metrics


def evaluate_detector(weights: Path, data_yaml: Path, *, imgsz: int | None = None, conf: float = 0.001,
                      iou: float = 0.7, device: str = "cpu", threads: int = 0,
                      curve: bool = False) -> dict[str, float] | tuple[dict[str, float], list[dict]]:
    """Validate ``weights`` on the ``val`` split of a YOLO set; same keys as training's metrics
    (with ``curve``, also the precision-recall rows training writes). ``imgsz`` None: the size the
    weights were trained at."""
    weights = Path(weights)
    if not weights.is_file():
        raise CheckpointError("weights not found", file=weights)
    if imgsz is None:
        imgsz = trained_imgsz(weights)
    with tempfile.TemporaryDirectory(prefix="stagetrack-yolo-") as tmp:
        data = mirror_dataset(Path(data_yaml), Path(tmp))
        final = _validate(weights, data, imgsz=_round_to_stride(imgsz), conf=conf, iou=iou, device=device,
                          threads=threads or numerics.thread_count())
        return (summarize(final), pr_curve(final)) if curve else summarize(final)


def trained_imgsz(weights: Path) -> int:
    """The image size a detector checkpoint was trained at (its train args)."""
    import torch

    try:
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)  # this project's own checkpoints
        return int(ckpt["train_args"]["imgsz"])
    except Exception as err:  # torch/pickle raise many types; a missing key is the same problem
        raise CheckpointError(f"cannot read the trained image size: {err}", file=weights) from err


class Detector:
    """Batched inference: images (BGR uint8, as cv2 reads them) -> per image an ANN_DTYPE array.

    Rows are boxes in the original image's pixels (tlwh), ``conf`` the score, ``cls`` 0 person /
    1 vehicle, ``id`` -1, ``frame`` 0 (the caller sets it). ``imgsz`` None uses the size the
    weights were trained at (a stage may cap it with ``aug_max_size``). Uses ``threads`` CPU
    threads (0 = every core; ultralytics alone would use cores - 1).
    """

    def __init__(self, weights: Path, *, conf: float, iou: float, imgsz: int | None, max_det: int,
                 device: str = "cpu", threads: int) -> None:
        weights = Path(weights)
        if not weights.is_file():
            raise CheckpointError("detector weights not found", file=weights)
        self._predictor = DetectionPredictor(overrides=dict(
            conf=conf, iou=iou, imgsz=_round_to_stride(imgsz or STRIDE), max_det=max_det, device=device,
            save=False, verbose=False, mode="predict", rect=True, batch=1))
        self._predictor.add_callback("on_predict_start", thread_callback(threads or numerics.thread_count()))
        self._predictor.setup_model(str(weights), verbose=False)
        model = self._predictor.model.model  # the checkpoint's DetectionModel (args = its train args)
        if imgsz is None:
            self._predictor.args.imgsz = int(model.args["imgsz"])
        names = tuple(str(v) for _, v in sorted(dict(model.names).items()))
        if names != CLASSES:
            raise CheckpointError(f"model classes {list(names)} are not {list(CLASSES)}", file=weights)

    @property
    def imgsz(self) -> int:
        return int(self._predictor.args.imgsz)

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        if not images:
            return []
        results = self._predictor(source=list(images), stream=False)
        out = []
        for result in results:
            xyxy = result.boxes.xyxy.cpu().numpy().astype(np.float64)  # (N, 4) x1 y1 x2 y2
            boxes = empty_boxes(len(xyxy))
            boxes["frame"] = 0
            boxes["x"], boxes["y"] = xyxy[:, 0], xyxy[:, 1]
            boxes["w"], boxes["h"] = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
            boxes["conf"] = result.boxes.conf.cpu().numpy()
            cls = result.boxes.cls.cpu().numpy().astype(np.int16)
            boxes["cls"] = cls
            boxes["category"] = [CLASSES[c] for c in cls]
            out.append(boxes)
        return out
