"""Train the association transformer from logged samples (seed 000).

    python -m stagetrack.assoc.train --data DIR --output FILE.pt --epochs 12 --batch-size 64 --lr 1e-4
        [--val-split 0.1 | --val-data DIR] [--device cuda|cpu|auto] [--inspect] [--params params.yaml]

(also ``stagetrack train-assoc``). ``--data`` is a directory written by the sample logger
(``manifest.jsonl`` + shards); ``--output`` receives the ``.pt`` checkpoint the tracker loads
(weights + metadata, see ``scorer.CHECKPOINT_KEYS``). Hyper-parameters come from the ``assoc:``
and ``train:`` sections of ``--params`` (default ``./params.yaml``; none is an error); the flags
above override them.
``--inspect`` prints the dataset statistics as JSON and exits without training. Every epoch the
engine logs train loss/accuracy and validation loss/accuracy; the epoch with the lowest
validation loss is kept and exported. The engine's own checkpoints (resume) go to
``<output stem>.work/`` next to the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # `python -m stagetrack.assoc.train`: pin the numerics before torch loads
    from ..numerics import pin_for_argv_or_exit

    pin_for_argv_or_exit(sys.argv[1:])

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from .. import configtypes
from ..errors import CheckpointError, ConfigError
from ..io import dumps_json
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.config import EngineConfig
from ..train.distributed import dist_info
from ..train.engine import Engine, move_to
from ..train.loader import make_loader
from ..train.seeding import seed_everything
from .config import AssocConfig
from .dataset import AssocDataset, ShardGroupSampler, inspect, read_log, split_indices
from .model import MASKED_LOGIT, MODEL_ARGS, AssocTransformer, assoc_loss
from .scorer import FORMAT, check_payload, checkpoint_payload

log = logging.getLogger(__name__)


class AssocTask:
    """Engine task: softmax cross-entropy over candidates + "no match"."""

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch)                                                  # (B, C+1)
        loss = assoc_loss(logits, batch["label"])
        with torch.no_grad():
            acc = (logits.argmax(-1) == batch["label"]).float().mean()
            valid = logits[logits > MASKED_LOGIT / 2]                               # real candidates + none
            std = valid.std() if valid.numel() > 1 else torch.zeros(())
        return loss, {"acc": float(acc), "pred_std": float(std)}

    def evaluate(self, model: nn.Module, loader: Any) -> dict[str, float]:
        """Sample means: ``val_loss``, ``val_acc``; ``val_match_acc`` over samples whose object is
        among the candidates and ``val_nomatch_acc`` over the others (0 when there are none);
        ``val_nearest_acc`` is the accuracy of always picking the nearest candidate (baseline)."""
        device = next(model.parameters()).device
        n = matched = loss_sum = correct = correct_matched = correct_none = nearest = 0.0
        for batch in loader:
            batch = move_to(batch, device)
            logits = model(batch)
            label = batch["label"]
            none = label == logits.shape[1] - 1
            hit = logits.argmax(-1) == label
            loss_sum += float(torch.nn.functional.cross_entropy(logits.float(), label, reduction="sum"))
            n += len(label)
            matched += float((~none).sum())
            correct += float(hit.sum())
            correct_matched += float((hit & ~none).sum())
            correct_none += float((hit & none).sum())
            nearest += float((label == 0).sum())
        unmatched = n - matched
        return {
            "val_loss": loss_sum / max(n, 1),
            "val_acc": correct / max(n, 1),
            "val_match_acc": correct_matched / max(matched, 1),
            "val_nomatch_acc": correct_none / max(unmatched, 1),
            "val_nearest_acc": nearest / max(n, 1),
        }


def _initial_weights(model: AssocTransformer, init_from: Path | None) -> Path | None:
    """Load an exported association checkpoint into ``model``; return other files for the engine."""
    if init_from is None:
        return None
    payload = load_checkpoint(init_from)
    if payload.get("format") != FORMAT:
        return init_from  # an engine checkpoint or a plain state_dict: the engine loads it
    check_payload(payload, init_from)
    mine = {"embed_dim": model.embed_dim, "hsv_bins": model.hsv_bins,
            **{k: getattr(model.cfg, k) for k in MODEL_ARGS if k != "dropout"}}
    theirs = {"embed_dim": payload["embed_dim"], "hsv_bins": payload["hsv_bins"],
              **{k: payload["model_args"][k] for k in MODEL_ARGS if k != "dropout"}}
    if mine != theirs:
        diff = ", ".join(f"{k} {theirs[k]} vs {mine[k]}" for k in mine if mine[k] != theirs[k])
        raise ConfigError(f"cannot initialise from a model of another shape: {diff}", file=init_from)
    model.load_state_dict(payload["model"])
    log.info("initialised from %s", init_from)
    return None


def _check_resumable(last: Path, config: dict, training: dict) -> None:
    """Resuming continues a run of the same params and data only (``epochs`` may grow)."""
    if not last.is_file():
        log.warning("--resume: nothing to resume in %s: training from the start", last.parent)
        return
    ckpt = load_checkpoint(last)
    saved = {**{f"assoc.{k}": v for k, v in ckpt.get("config", {}).items()},
             **{k: v for k, v in ckpt.get("metadata", {}).items() if k != "epochs"}}
    now = {**{f"assoc.{k}": v for k, v in config.items()}, **{k: v for k, v in training.items() if k != "epochs"}}
    changed = sorted(k for k in set(saved) | set(now) if dumps_json(saved.get(k)) != dumps_json(now.get(k)))
    if changed:
        raise CheckpointError(f"cannot resume: the run there was trained with other {', '.join(changed[:6])}",
                              file=last, hint="drop --resume (or delete the folder) to train from the start")


def train_assoc(data_dir: str | Path, output: str | Path, *, cfg: AssocConfig, engine_cfg: EngineConfig,
                lr: float, epochs: int, batch_size: int, val_split: float, device: str, live: Any = None,
                init_from: str | Path | None = None, resume: bool = False,
                work_dir: str | Path | None = None, val_data: str | Path | None = None) -> dict[str, Any]:
    """Train on the log in ``data_dir``, export the best-validation-loss model to ``output``.

    ``val_data``: a second log (the pipeline's: samples of the stage's held-out selection clips)
    that validates while all of ``data_dir`` trains; without it ``val_split`` of ``data_dir``'s
    shards (or samples) are held out.

    ``init_from`` may be an exported association checkpoint (same shape), an engine checkpoint
    or a plain state_dict; ``resume`` continues the engine run in ``work_dir`` (default
    ``<output stem>.work`` beside ``output``) from its last finished epoch, bitwise, if that run
    had the same params and data (else an error); the finished epochs' rows are replayed into a
    fresh ``live``. Returns a summary: best epoch, its validation
    metrics, sample counts and the split mode.
    """
    data_dir, output = Path(data_dir), Path(output)
    if epochs < 1:
        raise ConfigError(f"must be >= 1, got {epochs}", field="epochs")
    alog = read_log(data_dir)
    for key in ("history", "max_candidates"):
        if alog.header[key] != getattr(cfg, key):
            raise ConfigError(f"the samples in {data_dir} were logged with {key}={alog.header[key]}, "
                              f"params say {getattr(cfg, key)}", field=f"assoc.{key}",
                              hint="log again with these params or set them to the logged values")
    if val_data is None:
        train_idx, val_idx, split = split_indices(alog, val_split, engine_cfg.seed)
        vlog = alog
    else:
        vlog = read_log(val_data)
        for key in ("history", "max_candidates", "embed_dim", "hsv_bins"):
            if vlog.header[key] != alog.header[key]:
                raise ConfigError(f"the validation samples were logged with {key}={vlog.header[key]}, the training "
                                  f"samples with {alog.header[key]}", file=Path(val_data) / "manifest.jsonl",
                                  hint="log both with the same params and ReID model")
        train_idx, val_idx, split = np.arange(alog.samples), np.arange(vlog.samples), "selection"
    train_ds = AssocDataset(alog, train_idx, jitter=cfg.aug_jitter, drop=cfg.aug_drop,
                            cache_shards=cfg.shards_in_memory)
    val_ds = AssocDataset(vlog, val_idx, cache_shards=cfg.shards_in_memory)
    log.info("%d samples (%d shards): %d train, %d val, split by %s; embed_dim %d, hsv_bins %d",
             alog.samples, len(alog.shards), len(train_ds), len(val_ds), split, alog.embed_dim, alog.hsv_bins)

    engine_cfg = dataclasses.replace(engine_cfg, device=device)
    sampler = ShardGroupSampler(train_ds, cfg.shards_in_memory, engine_cfg.seed)
    train_loader = make_loader(train_ds, batch_size, True, engine_cfg, sampler=sampler)
    val_loader = make_loader(val_ds, batch_size, False, engine_cfg)

    # the initial weights come from train.seed, not from whatever torch drew before (torch seeds
    # its default generator randomly per process: that made two identical runs differ)
    seed_everything(engine_cfg.seed + dist_info().rank, engine_cfg.deterministic)
    model = AssocTransformer(cfg, alog.embed_dim, alog.hsv_bins)
    engine_init = _initial_weights(model, Path(init_from) if init_from else None)
    training = {"data_dir": data_dir.as_posix(), "val_data": Path(val_data).as_posix() if val_data else None,
                "samples": alog.samples, "train_samples": len(train_ds),
                "val_samples": len(val_ds), "split": split, "lr": lr, "epochs": epochs, "batch_size": batch_size,
                "val_split": val_split, "assoc": configtypes.to_dict(cfg), "engine": configtypes.to_dict(engine_cfg)}
    work = Path(work_dir) if work_dir else output.parent / f"{output.stem}.work"
    config = configtypes.to_dict(cfg)
    if resume:
        _check_resumable(work / "last.pt", config, training)
    engine = Engine(engine_cfg, model, AssocTask(), lr=lr, epochs=epochs, out_dir=work,
                    weight_decay=cfg.weight_decay, monitor="val_loss", mode="min", live=live,
                    config=config, metadata=training, resume=resume, init_from=engine_init,
                    resume_optimizer=engine_cfg.resume_optimizer, resume_scheduler=engine_cfg.resume_scheduler,
                    name="assoc")
    if resume and engine.history and live is not None and getattr(live, "step", 0) == 0:
        for record in engine.history:  # a fresh Live gets the finished epochs' rows first
            for name, metric in record.items():
                if name != "epoch":
                    live.log_metric(name, metric)
            live.next_step()
    result = engine.fit(train_loader, val_loader)
    best = next(h for h in result.history if h["epoch"] == engine.best_epoch)
    metrics = {k: float(v) for k, v in best.items()}
    summary = {"output": output.as_posix(), "best_epoch": int(engine.best_epoch), "epochs_run": result.epochs_run,
               **{k: v for k, v in metrics.items() if k.startswith("val_") or k in ("train_loss", "train_acc")},
               "train_samples": len(train_ds), "val_samples": len(val_ds), "split": split}
    if dist_info().is_main:
        payload = checkpoint_payload(engine.model, train=training, metrics=metrics)
        save_checkpoint(output, payload)
        log.info("wrote %s (epoch %d: val_loss %.4f, val_acc %.3f)", output, engine.best_epoch,
                 metrics["val_loss"], metrics["val_acc"])
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True,
                        help="directory written by the association logger (must contain manifest.jsonl)")
    parser.add_argument("--output", type=Path, help=".pt checkpoint to write (required unless --inspect)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: params assoc.epochs)")
    parser.add_argument("--batch-size", type=int, help="samples per batch (default: params assoc.batch_size)")
    parser.add_argument("--lr", type=float, help="learning rate (default: params top-level lr)")
    parser.add_argument("--val-split", type=float,
                        help="fraction of samples reserved for validation (default: params assoc.val_split, 0.1); "
                             "ignored with --val-data")
    parser.add_argument("--val-data", type=Path,
                        help="a second logger directory to validate on (the pipeline logs the stage's held-out "
                             "selection clips there); all of --data then trains")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: params train.device (auto)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in <output stem>.work/ from its last finished epoch "
                             "(same params and data, or an error; nothing there: a WARNING and a fresh start)")
    parser.add_argument("--inspect", action="store_true", help="print dataset statistics and exit (no training)")
    parser.add_argument("--params", type=Path,
                        help="params file whose assoc: and train: sections are used (default: ./params.yaml; "
                             "an error if there is none)")


def run(args: argparse.Namespace) -> int:
    if args.inspect:
        print(dumps_json(inspect(args.data)), end="")
        return 0
    if args.output is None:
        raise ConfigError("is required unless --inspect is given", field="--output")
    from ..config import DEFAULT_PARAMS, command_params

    params = command_params(args.params)
    cfg, engine_cfg, source, lr = params.assoc, params.train, str(args.params or DEFAULT_PARAMS), params.lr
    if args.lr is not None:
        if not args.lr > 0:
            raise ConfigError(f"must be > 0, got {args.lr}", field="--lr")
        lr = args.lr
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "val_split": args.val_split}
    overrides = {k: v for k, v in flags.items() if v is not None}
    if overrides:  # validated like params, so --val-split 1.5 names the field and the rule
        cfg = configtypes.build(AssocConfig, {**configtypes.to_dict(cfg), **overrides}, key="assoc",
                                file=f"{source} + command line")
    summary = train_assoc(args.data, args.output, cfg=cfg, engine_cfg=engine_cfg, lr=lr, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, val_split=cfg.val_split, device=args.device or engine_cfg.device,
                          val_data=args.val_data, resume=args.resume)
    print(dumps_json(summary), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m stagetrack.assoc.train``: the same command as ``stagetrack train-assoc``."""
    from .. import numerics, offline
    from ..cli import run_guarded, setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    code = run_guarded(numerics.pin_for_argv, argv)
    if code:
        return code
    offline.configure()
    parser = argparse.ArgumentParser(prog="python -m stagetrack.assoc.train",
                                     description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    return run_guarded(run, args)


if __name__ == "__main__":
    sys.exit(main())
