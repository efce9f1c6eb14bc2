"""Hyperparameter search through DVC's experiment queue.

A small YAML spec names params.yaml keys and the values to try; every combination (``grid``) or
``trials`` distinct combinations drawn from it (``random``) is queued as a named DVC experiment
(``dvc exp run --queue -S key=value -n sweep-<hash>``), the queue is run (``dvc exp run
--run-all -j JOBS``) and its idle workers are stopped (``dvc queue stop``). The experiments are
then read back from ``dvc exp show --json`` and ranked by one metric.

Names hash the overrides, so the same combination on the same commit is the same experiment:
a sweep run again skips the experiments it already has (``--force`` re-runs them). Queued runs
happen in copies of the last commit plus the workspace's tracked changes, without untracked
files: commit (or ``git add``) every input first.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import itertools
import json
import logging
import math
import random
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from . import configtypes
from .config import load_params
from .errors import ConfigError, StagetrackError

log = logging.getLogger(__name__)

EXAMPLE_SPEC = """\
example spec (e.g. sweeps/example.yaml):
  method: grid        # grid: every combination | random: `trials` distinct draws from the grid
  trials: 4           # random only: how many combinations to draw
  seed: 0             # random only: seed of the draw
  metric: metrics/eval.json:all.combined.HOTA  # FILE:dotted.key, or a dotted key unique among metrics files
  mode: max           # max | min: which end of the metric is best
  jobs: 1             # experiments run at once (dvc exp run --run-all -j)
  params:             # params.yaml keys (dotted, must exist) -> values to try
    lr: [1.0e-4, 1.0e-3]
    tracker.match_thresh: [0.7, 0.8]
"""

_MISSING = object()
PARAMS_FILE = "params.yaml"  # what `dvc exp run -S key=value` edits


# metrics files a choosing command never reads: the locked test videos' (the eval stage's final report)
CHOOSING_FORBIDDEN = ("metrics/test.json",)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    method: Literal["grid", "random"] = "grid"
    trials: int = 0
    seed: int = 0
    metric: str = ""
    mode: Literal["max", "min"] = "max"
    jobs: int = 1
    params: dict[str, list[Any]] = dataclasses.field(default_factory=dict)

    def validate(self) -> tuple[str, str] | None:
        if not self.metric:
            return "metric", "required: FILE:dotted.key or a dotted metric key"
        if parse_metric(self.metric)[0] in CHOOSING_FORBIDDEN:
            return "metric", (f"{self.metric!r} is on the locked test videos, which are for the final report only: "
                              "choose on metrics/eval.json (val) instead")
        if not self.params:
            return "params", "required: a mapping of params.yaml keys to lists of values"
        for key, values in self.params.items():
            if not values:
                return f"params.{key}", "needs at least one value"
        if self.jobs < 1:
            return "jobs", f"must be >= 1, got {self.jobs}"
        if self.method == "random":
            size = grid_size(self.params)
            if not 1 <= self.trials <= size:
                return "trials", f"random search needs 1 <= trials <= {size} (the grid's size), got {self.trials}"
        return None


@dataclasses.dataclass(frozen=True)
class Trial:
    """One combination: its experiment name and the ``-S`` overrides that make it."""

    name: str
    values: dict[str, Any]

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={format_value(value)}" for key, value in self.values.items()]


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    params: dict[str, Any]
    metric: float | None


# ---------------------------------------------------------------- spec and combinations


def load_spec(path: str | Path, params_path: str | Path = PARAMS_FILE) -> SweepSpec:
    """Read and validate a sweep spec: every key must exist in ``params_path`` and every value
    must make valid params there. Errors name the spec file, line and key."""
    data, lines = configtypes.load_yaml(path)
    spec = configtypes.build(SweepSpec, data if data is not None else {}, file=path, lines=lines)
    raw, _ = configtypes.load_yaml(params_path)
    values: dict[str, list[Any]] = {}
    for key, candidates in spec.params.items():
        base = lookup(raw, key)
        if base is _MISSING:
            close = difflib.get_close_matches(key, leaf_keys(raw), n=1)
            raise ConfigError(f"not a key of {params_path}", file=path, line=lines.get(f"params.{key}"),
                              field=f"params.{key}", hint=f"did you mean '{close[0]}'?" if close else None)
        values[key] = [coerce(v, base) for v in candidates]
        for j, value in enumerate(values[key]):
            try:
                format_value(value)
            except TypeError:
                raise ConfigError(f"value {value!r} cannot be passed to `dvc exp run -S` (a mapping)", file=path,
                                  line=lines.get(f"params.{key}[{j}]") or lines.get(f"params.{key}"),
                                  field=f"params.{key}", hint=f"sweep its leaves instead, e.g. {key}.<name>: [...]")
    spec = dataclasses.replace(spec, params=values)
    for key in spec.params:
        for j, value in enumerate(spec.params[key]):
            try:
                load_params(params_path, overrides=nest({key: value}))
            except ConfigError as exc:
                raise ConfigError(f"value {value!r} is not valid params: {exc}", file=path,
                                  line=lines.get(f"params.{key}[{j}]"), field=f"params.{key}") from None
    return spec


def lookup(data: Any, key: str, default: Any = _MISSING) -> Any:
    """``data['a']['b']`` for ``key='a.b'``; ``default`` when a level is missing."""
    node = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def leaf_keys(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key path of a nested mapping that does not lead to another mapping."""
    if not isinstance(data, Mapping) or not data:
        return [prefix] if prefix else []
    return [k for name, value in data.items() for k in leaf_keys(value, f"{prefix}.{name}" if prefix else str(name))]


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{'a.b': 1}`` -> ``{'a': {'b': 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


_FLOAT_STRING = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def coerce(value: Any, base: Any) -> Any:
    """A spec value as the params.yaml key's type would read it: YAML 1.1 reads ``1e-4`` (no dot)
    as a string, which for a numeric key is meant as a float."""
    numeric_base = isinstance(base, (int, float)) and not isinstance(base, bool) or (
        isinstance(base, str) and _FLOAT_STRING.match(base))
    if numeric_base and isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
        return float(value)
    return value


def grid_size(params: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(v) for v in params.values())


def combination(params: Mapping[str, Sequence[Any]], index: int) -> dict[str, Any]:
    """The ``index``-th combination of :func:`itertools.product` order (last key fastest)."""
    out: dict[str, Any] = {}
    for key, values in reversed(list(params.items())):
        index, i = divmod(index, len(values))
        out[key] = values[i]
    return dict(reversed(list(out.items())))


def expand(spec: SweepSpec) -> list[Trial]:
    """The spec's trials: the full grid in product order, or ``trials`` distinct combinations
    drawn with ``seed`` (indices sampled without replacement, so huge grids cost nothing)."""
    if spec.method == "grid":
        combos = [dict(zip(spec.params, c)) for c in itertools.product(*spec.params.values())]
    else:
        picks = random.Random(spec.seed).sample(range(grid_size(spec.params)), spec.trials)
        combos = [combination(spec.params, i) for i in picks]
    return [Trial(trial_name(c), c) for c in combos]


def format_value(value: Any) -> str:
    """A value in the override syntax of ``dvc exp run -S`` (Hydra's grammar)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if ("." in text or "e" not in text) else text.replace("e", ".0e", 1)  # 1e-05 -> 1.0e-05
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    raise TypeError(f"cannot pass {value!r} to dvc exp run -S")


def trial_name(values: Mapping[str, Any]) -> str:
    """``sweep-`` + 8 hex digits of the sorted overrides: same combination, same name."""
    text = "\n".join(sorted(f"{k}={format_value(v)}" for k, v in values.items()))
    return "sweep-" + hashlib.sha1(text.encode()).hexdigest()[:8]


# ---------------------------------------------------------------- reading results


def parse_metric(metric: str) -> tuple[str | None, str]:
    """``'metrics/eval.json:all.HOTA'`` -> ``('metrics/eval.json', 'all.HOTA')``; no file -> None."""
    file, sep, key = metric.rpartition(":")
    return (file, key) if sep else (None, metric)


def metric_value(metrics: Mapping[str, Any], metric: str) -> float | None:
    """The metric from one experiment's ``metrics`` of ``dvc exp show --json`` (file -> {data}).

    Without a file, the dotted key must occur in exactly one metrics file."""
    file, key = parse_metric(metric)
    if file in CHOOSING_FORBIDDEN:
        raise StagetrackError(f"{file} holds the locked test videos' metrics: never chosen on",
                              hint="rank on metrics/eval.json (the locked val videos)")
    # a bare key is looked up everywhere but in the test metrics (a sweep chooses)
    files = [file] if file is not None else sorted(set(metrics) - set(CHOOSING_FORBIDDEN))
    found = []
    for name in files:
        value = lookup((metrics.get(name) or {}).get("data") or {}, key)
        if value is not _MISSING:
            found.append((name, value))
    if file is None and len(found) > 1:
        raise StagetrackError(f"metric {key!r} is in several files ({', '.join(n for n, _ in found)})",
                              hint=f"name one: FILE:{key}")
    if not found:
        return None
    value = found[0][1]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def experiments(shown: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Experiment name -> its ``data`` (params, metrics) from ``dvc exp show --json``."""
    out = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("name") and rev.get("data") and not rev.get("error"):
                    out[rev["name"]] = rev["data"]
    return out


def collect(trials: Sequence[Trial], shown: list[dict[str, Any]], spec: SweepSpec) -> list[Result]:
    """One result per trial (metric None where the experiment is missing or failed), best first."""
    found = experiments(shown)
    results = []
    for trial in trials:
        data = found.get(trial.name)
        if data is None:
            results.append(Result(trial.name, dict(trial.values), None))
            continue
        applied = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
        params = {k: lookup(applied, k, trial.values[k]) for k in trial.values}
        results.append(Result(trial.name, params, metric_value(data.get("metrics") or {}, spec.metric)))
    return rank(results, spec.mode)


def rank(results: Sequence[Result], mode: Literal["max", "min"]) -> list[Result]:
    """Best first by the metric; missing metrics last; ties keep trial order."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(results, key=lambda r: (r.metric is None, sign * r.metric if r.metric is not None else 0.0))


def format_table(results: Sequence[Result], metric: str) -> str:
    keys = list(results[0].params) if results else []
    header = ["rank", "experiment", *keys, parse_metric(metric)[1]]
    rows = [[str(i + 1), r.name, *(str(r.params[k]) for k in keys),
             "failed" if r.metric is None else f"{r.metric:.6g}"] for i, r in enumerate(results)]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


# ---------------------------------------------------------------- running DVC


def dvc_commands(trials: Sequence[Trial], jobs: int, force: bool = False) -> list[list[str]]:
    """The ``dvc`` argv lists of a sweep: queue each trial, run the queue, stop its workers."""
    queue = [["exp", "run", "--queue", *(["-f"] if force else []), "-n", t.name,
              *itertools.chain.from_iterable(("-S", o) for o in t.overrides)] for t in trials]
    return [*queue, ["exp", "run", "--run-all", "-j", str(jobs)], ["queue", "stop"]]


def dvc(args: Sequence[str], capture: bool = True) -> str:
    """Run ``dvc ARGS`` with this interpreter's DVC; a failure is a StagetrackError."""
    cmd = [sys.executable, "-m", "dvc", *args]
    log.debug("running %s", shlex.join(["dvc", *args]))
    proc = subprocess.run(cmd, text=True, capture_output=capture)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines() if capture else []
        raise StagetrackError(f"`{shlex.join(['dvc', *args])}` failed (exit {proc.returncode})"
                              + (f": {detail[0]}" if detail else ""))
    return proc.stdout or ""


def show() -> list[dict[str, Any]]:
    return json.loads(dvc(["exp", "show", "--json"]) or "[]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLE_SPEC
    parser.add_argument("spec", type=Path, help="sweep spec (YAML, see below); run from the repository root")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands and exit")
    parser.add_argument("--no-run", action="store_true", help="only queue the experiments")
    parser.add_argument("--force", action="store_true", help="queue experiments that exist already again")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, PARAMS_FILE)
    trials = expand(spec)
    if args.dry_run:
        commands = dvc_commands(trials, spec.jobs, args.force)
        for cmd in commands[: len(trials)] if args.no_run else commands:
            print(shlex.join(["dvc", *cmd]))
        return 0
    # finished or still queued experiments of this commit are not queued twice; failed ones are
    existing = set() if args.force else set(experiments(show()))
    todo = [t for t in trials if t.name not in existing]
    if len(todo) < len(trials):
        log.info("%d of %d experiments exist already (--force queues them again)", len(trials) - len(todo), len(trials))
    commands = dvc_commands(todo, spec.jobs, args.force)
    for cmd in commands[: len(todo)]:
        dvc(cmd)
    log.info("queued %d experiments: %s", len(todo), ", ".join(t.name for t in todo) or "-")
    if args.no_run:
        return 0
    try:
        dvc(commands[-2], capture=False)  # runs the whole queue, following the logs on this terminal
    finally:
        dvc(commands[-1])  # the workers would otherwise stay, idle, and run whatever is queued next
    results = collect(trials, show(), spec)
    print(format_table(results, spec.metric))
    best = results[0]
    if best.metric is not None:
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        print(f"best: {best.name}  {params}  {parse_metric(spec.metric)[1]}={best.metric:.6g}")
    failed = [r.name for r in results if r.metric is None]
    if failed:
        log.error("%d of %d experiments have no %s: %s (see `dvc queue logs NAME`)",
                  len(failed), len(results), spec.metric, ", ".join(failed))
        return 1
    return 0
