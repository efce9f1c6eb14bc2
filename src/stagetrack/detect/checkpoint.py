"""Detector run folders with bytes that depend on the training alone.

ultralytics writes into every checkpoint, besides the weights, what differs between two
identical runs: the wall-clock date, the git commit, each epoch's elapsed time, and absolute
paths (the run folder, the model yaml, the initial weights, the temporary mirror of the data set); ``args.yaml``
and ``results.csv`` carry the same. :func:`canonicalize_run` rewrites them once training has
finished: no date or git entry, no time column, paths relative to the working directory (the
repository root under DVC) and the data set named by the builder's ``data.yaml`` rather than
its mirror. The weights are untouched, so two runs with equal weights leave equal files and
DVC hashes them equal on every machine and in every checkout.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from ..errors import CheckpointError
from ..io import atomic_write_bytes, atomic_write_text, torch_bytes

TIME_COLUMN = "time"
_DROPPED_KEYS = ("git",)


def portable_path(value: Any, *, root: Path, replace: dict[str, str]) -> Any:
    """``value`` if it is no absolute path; else its replacement, or its path relative to ``root``."""
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    if value in replace:
        return replace[value]
    path = Path(value)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name if path.suffix in {".yaml", ".yml"} else value


def portable_args(args: dict[str, Any], *, root: Path, replace: dict[str, str]) -> dict[str, Any]:
    return {k: portable_path(v, root=root, replace=replace) for k, v in args.items()}


def canonicalize_checkpoint(path: Path, *, root: Path, replace: dict[str, str],
                            args_override: dict[str, Any] | None = None) -> None:
    """Rewrite one ultralytics ``.pt`` as described in the module docstring (idempotent)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # our own run's file
    except Exception as err:  # torch/pickle raise many types for a damaged file
        raise CheckpointError(f"cannot read the detector checkpoint: {err}", file=path) from err
    for key in _DROPPED_KEYS:
        ckpt.pop(key, None)
    ckpt["date"] = None
    if isinstance(ckpt.get("train_results"), dict):
        ckpt["train_results"] = {k: v for k, v in ckpt["train_results"].items() if k != TIME_COLUMN}
    if isinstance(ckpt.get("train_args"), dict):
        ckpt["train_args"] = portable_args({**ckpt["train_args"], **(args_override or {})}, root=root, replace=replace)
    for key in ("model", "ema"):
        model = ckpt.get(key)
        if model is None:
            continue
        for attr, value in list(vars(model).items()):  # e.g. pt_path: the init weights it was loaded from
            if args_override and attr == "pt_path":
                delattr(model, attr)  # a resumed model records the last.pt it was rebuilt from
            elif isinstance(value, str):
                setattr(model, attr, portable_path(value, root=root, replace=replace))
        if isinstance(getattr(model, "args", None), dict):
            extra = {k: v for k, v in (args_override or {}).items() if k in model.args}
            model.args = portable_args({**model.args, **extra}, root=root, replace=replace)
        if isinstance(getattr(model, "yaml", None), dict) and "yaml_file" in model.yaml:
            model.yaml["yaml_file"] = portable_path(model.yaml["yaml_file"], root=root, replace=replace)
    atomic_write_bytes(path, torch_bytes(ckpt))


def canonicalize_run(run_dir: Path, *, replace: dict[str, str], root: Path | None = None,
                     args_override: dict[str, Any] | None = None) -> None:
    """Every checkpoint under ``run_dir/weights``, ``args.yaml`` and ``results.csv``.

    ``args_override``: train args to set in each (a resumed run records ``resume`` and ``model``
    as the ``last.pt`` it resumed from; the caller puts back the values of the original run).
    """
    root = (root or Path.cwd()).resolve()
    replace = {str(k): portable_path(str(v), root=root, replace={}) for k, v in replace.items()}
    for pt in sorted((run_dir / "weights").glob("*.pt")):
        canonicalize_checkpoint(pt, root=root, replace=replace, args_override=args_override)
    args_file = run_dir / "args.yaml"
    if args_file.is_file():
        args = {**(yaml.safe_load(args_file.read_text()) or {}), **(args_override or {})}
        atomic_write_text(args_file, yaml.safe_dump(portable_args(args, root=root, replace=replace), sort_keys=False))
    results = run_dir / "results.csv"
    if results.is_file():
        rows = list(csv.reader(io.StringIO(results.read_text())))
        if rows and TIME_COLUMN in rows[0]:
            col = rows[0].index(TIME_COLUMN)
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows([r[:col] + r[col + 1:] for r in rows])
            atomic_write_text(results, buf.getvalue())
