"""Seeds as an axis: the pipeline over N training seeds, and comparisons that tell better from worse.

``stagetrack seeds --n 5`` queues one DVC experiment per training seed (``dvc exp run --queue -n
NAME-seedS -S seed=S -S train.seed=S [-S KEY=VALUE ...]``: each is a normal experiment that
``dvc exp show`` lists), runs the queue, stops its workers, and writes the aggregate over the
group to ``--out`` (default ``metrics/seeds.json``, a metrics file of dvc.yaml, so ``dvc metrics
show`` and ``dvc exp show`` display it): for every number of the experiments' ``metrics/eval.json``
(and, as ``test.*``, of ``metrics/test.json``: the final report on the locked test videos) its mean, standard deviation, min, max and the 95% t-interval of the mean; the per-seed values go
beside it to ``<out>_per_seed.json`` (kept out of the metrics file so ``dvc exp show`` stays readable).

``stagetrack compare A B`` (:mod:`stagetrack.compare`) prints, per metric, B's mean minus A's, its 95% interval and a verdict
(``gain`` / ``loss`` / ``indistinguishable``). A and B are experiment names, seed groups (``NAME``
for the experiments ``NAME-seed*``) or git revisions (a branch, tag or commit: its committed
``metrics/eval.json``). Two groups that share seeds are compared *paired* (a t-interval of the
per-seed differences); otherwise Welch's interval of the difference of means. One run on either
side has no spread to measure: the interval is then that of the other side alone, or none.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, StagetrackError
from .evaluate.intervals import verdict
from .io import atomic_write_json
from .sweep import dvc, experiments

log = logging.getLogger(__name__)

EVAL_METRICS = "metrics/eval.json"
TEST_METRICS = "metrics/test.json"  # the locked test videos: the final report, never for choosing
SPLIT_FILES = {"val": EVAL_METRICS, "test": TEST_METRICS}
SEED_RE = re.compile(r"^(?P<group>.+)-seed(?P<seed>\d+)$")
# leaves of eval.json that are no per-run score: the bootstrap bounds and the verdict strings
_SKIP_LEAF = re.compile(r"(^|\.)(ci|lo|hi|verdict)(\.|$)")
# what the aggregate keeps: headline metrics per domain and class, forgetting and stage-to-stage deltas
AGGREGATED = re.compile(r"^(test\.)?(all|dancetrack|bdd|visdrone)\.[a-z]+\.(HOTA|IDF1|AssA|DetA|MOTA)$"
                        r"|^(forgetting|change_vs_previous)\.stage\d\.[a-z_A-Z0-9]+\.delta$")
DEFAULT_METRICS = tuple(f"{d}.combined.{m}" for d in ("all", "dancetrack", "bdd", "visdrone")
                        for m in ("HOTA", "IDF1", "AssA", "DetA"))


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a metrics document as ``dotted.key -> float`` (bounds and strings skipped)."""
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, (int, float)) and not isinstance(data, bool) and not _SKIP_LEAF.search(prefix):
        out[prefix] = float(data)
    return out


def t_quantile(df: int, level: float = 0.95) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, df))


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean; None for fewer than two values."""
    if len(values) < 2:
        return None
    m, sd = statistics.fmean(values), statistics.stdev(values)
    half = t_quantile(len(values) - 1, level) * sd / math.sqrt(len(values))
    return m - half, m + half


def aggregate(runs: Mapping[int, Mapping[str, float]], level: float = 0.95) -> dict[str, Any]:
    """Per metric over seeds: mean, std, min, max, the t-interval of the mean, per-seed values."""
    seeds = sorted(runs)
    keys = sorted(k for k in set().union(*(runs[s] for s in seeds)) if AGGREGATED.match(k)) if seeds else []
    out: dict[str, Any] = {"seeds": seeds, "metrics": {}}
    for key in keys:
        values = [runs[s][key] for s in seeds if key in runs[s]]
        ci = mean_interval(values, level)
        out["metrics"][key] = {
            "mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4), "max": round(max(values), 4), "n": len(values),
            **({"lo": round(ci[0], 4), "hi": round(ci[1], 4)} if ci else {}),
            "per_seed": {str(s): round(runs[s][key], 4) for s in seeds if key in runs[s]},
        }
    return out


def difference(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95) -> dict[str, Any]:
    """B's mean minus A's with its interval: paired over shared seeds when both have two or more
    of them, else Welch (or one side's t-interval when the other is a single run)."""
    shared = sorted(set(a) & set(b))
    mean_a, mean_b = statistics.fmean(a.values()), statistics.fmean(b.values())
    row: dict[str, Any] = {"a": round(mean_a, 4), "b": round(mean_b, 4), "delta": round(mean_b - mean_a, 4),
                           "n_a": len(a), "n_b": len(b)}
    if len(shared) >= 2 and len(shared) == len(a) == len(b):
        ci = mean_interval([b[s] - a[s] for s in shared], level)
        row["method"] = "paired"
    elif len(a) >= 2 and len(b) >= 2:
        va, vb = statistics.variance(a.values()) / len(a), statistics.variance(b.values()) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else 1.0
        half = t_quantile(max(1, math.floor(df)), level) * se
        ci = (row["delta"] - half, row["delta"] + half)
        row["method"] = "welch"
    elif len(a) >= 2 or len(b) >= 2:
        many = a if len(a) >= 2 else b
        sd = statistics.stdev(many.values())
        half = t_quantile(len(many) - 1, level) * sd * math.sqrt(1 + 1 / len(many))  # one new run vs a group
        ci = (row["delta"] - half, row["delta"] + half)
        row["method"] = "one run against a group"
    else:
        ci = None
        row["method"] = "single runs (no spread measured)"
    if ci is None:
        row["verdict"] = "unknown"
    else:
        row["lo"], row["hi"] = round(ci[0], 4), round(ci[1], 4)
        row["verdict"] = verdict(*ci)
    return row


# ---------------------------------------------------------------- where the runs come from


def split_metrics(documents: Mapping[str, Any], splits: Sequence[str]) -> dict[str, float] | None:
    """Flat metrics of ``splits`` from ``{metrics file: document}``: val keys as they are in
    eval.json, test keys prefixed ``test.``; None without the val document."""
    if documents.get(EVAL_METRICS) is None:
        return None
    out: dict[str, float] = {}
    for split in splits:
        doc = documents.get(SPLIT_FILES[split])
        if doc is not None:
            out.update(flatten(doc, "" if split == "val" else "test"))
    return out


def group_runs(shown: list[dict[str, Any]], name: str, splits: Sequence[str] = ("val",)) -> dict[int, dict[str, float]]:
    """``{seed: flat metrics}`` of the experiments ``NAME-seed<S>`` (or the one named NAME, seed -1).

    ``splits``: ``("val",)`` (the default: what choosing may look at) or with ``"test"`` for the
    final report."""
    found = experiments(shown)
    runs: dict[int, dict[str, float]] = {}
    for exp_name, data in found.items():
        match = SEED_RE.match(exp_name)
        files = data.get("metrics") or {}
        metrics = split_metrics({f: (files.get(f) or {}).get("data") for f in SPLIT_FILES.values()}, splits)
        if metrics is None:
            continue
        if match and match.group("group") == name:
            runs[int(match.group("seed"))] = metrics
        elif exp_name == name:
            runs[-1] = metrics
    return runs


def show() -> list[dict[str, Any]]:
    """``dvc exp show --json`` over every commit that has experiments: a seed group queued on an
    earlier commit stays reachable after later commits (plain ``exp show`` lists HEAD's only)."""
    proc = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], capture_output=True, text=True)
    # refs/exps/<2 hex>/<38 hex>/<name>: the baseline commit of each experiment
    baselines = sorted({"".join(ref.split("/")[2:4]) for ref in proc.stdout.split() if ref.count("/") >= 4})
    revs = [x for b in baselines for x in ("--rev", b)]
    return json.loads(dvc(["exp", "show", "--json", *revs]) or "[]") if revs else []


def revision_runs(rev: str, splits: Sequence[str] = ("val",)) -> dict[int, dict[str, float]]:
    """The committed metrics (``metrics/eval.json``, with ``test`` also ``metrics/test.json``) of a
    git revision, as one run."""
    documents = {}
    for split in splits:
        path = SPLIT_FILES[split]
        proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
        if proc.returncode != 0:
            continue
        try:
            documents[path] = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise StagetrackError(f"{rev}:{path} is not JSON: {exc.msg}") from None
    metrics = split_metrics(documents, splits)
    return {} if metrics is None else {-1: metrics}


def resolve(name: str, shown: list[dict[str, Any]], splits: Sequence[str] = ("val",)) -> dict[int, dict[str, float]]:
    runs = group_runs(shown, name, splits) or revision_runs(name, splits)
    if not runs:
        raise StagetrackError(f"{name!r} is no experiment, seed group (NAME-seedN) or git revision with "
                              f"{EVAL_METRICS}", hint="`dvc exp show` lists the experiments")
    return runs


def compare_runs(a: Mapping[int, Mapping[str, float]], b: Mapping[int, Mapping[str, float]],
                 metrics: Sequence[str], level: float = 0.95) -> dict[str, dict[str, Any]]:
    out = {}
    for key in metrics:
        va = {s: r[key] for s, r in a.items() if key in r}
        vb = {s: r[key] for s, r in b.items() if key in r}
        if va and vb:
            out[key] = difference(va, vb, level)
    return out


def format_compare(rows: Mapping[str, Mapping[str, Any]], a: str, b: str) -> str:
    head = f"| metric | {a} | {b} | change | 95% interval | verdict | method |\n|---|---|---|---|---|---|---|"
    lines = [head]
    for key, r in rows.items():
        ci = f"[{r['lo']:+.2f}, {r['hi']:+.2f}]" if "lo" in r else "-"
        lines.append(f"| {key} | {r['a']:.2f} (n={r['n_a']}) | {r['b']:.2f} (n={r['n_b']}) | {r['delta']:+.2f} "
                     f"| {ci} | {r['verdict']} | {r['method']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- commands


def seed_commands(n: int, first: int, name: str, overrides: Sequence[str], jobs: int) -> list[list[str]]:
    queue = [["exp", "run", "--queue", "-n", f"{name}-seed{s}", "-S", f"seed={s}", "-S", f"train.seed={s}",
              *[x for o in overrides for x in ("-S", o)]] for s in range(first, first + n)]
    return [*queue, ["exp", "run", "--run-all", "-j", str(jobs)], ["queue", "stop"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--first", type=int, default=0, help="first seed (default 0): seeds first .. first+n-1")
    parser.add_argument("--name", default="seeds", help="experiment group name: NAME-seedS (default 'seeds')")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="a params.yaml override applied to every seed (as dvc exp run -S)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments at once (dvc exp run --run-all -j)")
    parser.add_argument("--out", type=Path, default=Path("metrics/seeds.json"), help="aggregate file to write")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands and exit")
    parser.add_argument("--no-run", action="store_true", help="aggregate the group's existing experiments only")


def run(args: argparse.Namespace) -> int:
    if args.n < 1 or args.jobs < 1:
        raise ConfigError("must be >= 1", field="--n" if args.n < 1 else "--jobs")
    commands = seed_commands(args.n, args.first, args.name, args.set_param, args.jobs)
    if args.dry_run:
        import shlex

        for cmd in commands:
            print(shlex.join(["dvc", *cmd]))
        return 0
    if not args.no_run:
        existing = set(experiments(show()))
        for cmd in commands[:-2]:
            if cmd[cmd.index("-n") + 1] not in existing:
                dvc(cmd)
        try:
            dvc(commands[-2], capture=False)
        finally:
            dvc(commands[-1])
    # the aggregate is a report: the locked test videos' metrics go in beside val's (test.*)
    runs = {s: r for s, r in group_runs(show(), args.name, ("val", "test")).items()
            if args.first <= s < args.first + args.n}
    missing = sorted(set(range(args.first, args.first + args.n)) - set(runs))
    if not runs:
        raise StagetrackError(f"no finished experiment {args.name}-seedN", hint="see `dvc queue logs NAME`")
    summary = {"group": args.name, "overrides": list(args.set_param), **aggregate(runs)}
    per_seed = {key: m.pop("per_seed") for key, m in summary["metrics"].items()}
    atomic_write_json(args.out, summary)  # a DVC metrics file: the statistics only
    atomic_write_json(args.out.with_name(f"{args.out.stem}_per_seed.json"),
                      {"group": args.name, "seeds": summary["seeds"], "metrics": per_seed})
    for key, values in per_seed.items():
        summary["metrics"][key]["per_seed"] = values
    for key in DEFAULT_METRICS[:4]:
        m = summary["metrics"].get(key)
        if m:
            log.info("%s: mean %.2f, std %.2f, 95%% interval [%s], per seed %s", key, m["mean"], m["std"],
                     f"{m['lo']:.2f}, {m['hi']:.2f}" if "lo" in m else "-", m["per_seed"])
    if missing:
        log.error("seeds without a finished experiment: %s (see `dvc queue logs %s-seedN`)", missing, args.name)
        return 1
    return 0
