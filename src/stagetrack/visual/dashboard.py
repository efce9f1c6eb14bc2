"""The run's dashboard: validation metrics, losses, gradient norms and forgetting in one PNG.

``stagetrack dashboard [--metrics-dir metrics] [--out plots/dashboard.png]`` reads what the
pipeline logged and draws the seed's quantitative heartbeat:

* validation HOTA and IDF1 after each stage (``metrics/<stage>.json``, key ``val``: they should
  rise), with the success line (the seed's 54);
* HOTA per domain and class after each stage (the same files);
* each trained part's loss curves (``metrics/live/<stage>/<part>/plots/metrics/**.tsv``, files
  whose name ends in ``loss``), concatenated across stages: they should fall;
* gradient norms (files named ``grad_norm*``): they should stay stable, not spike;
* the final evaluation's association variants side by side (``metrics/eval.json``, ``compare``).

* forgetting (``metrics/eval.json``'s ``forgetting`` and ``forgot``, as the eval stage judged
  them): the final stage against its best earlier stage per domain and class, HOTA split into
  DetA and AssA beside the detector's AP50 and the ReID rank-1, with paired intervals.

Every domain and class whose HOTA the eval stage judged a ``loss`` (the forgetting the staged plan
guards against) is logged as a warning naming the parts that lost, and written on the figure. Missing inputs (a stage not run yet) leave their panels partial; no input
at all is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np

from ..config import DEFAULT_PARAMS, STAGES
from ..errors import DataError, StagetrackError
from ..io import atomic_path
from .config import DashboardConfig

log = logging.getLogger(__name__)

CLASSES_SHOWN = ("person", "vehicle")
FIGURE_HEIGHT = 18  # inches: four rows of panels
_LOSS = re.compile(r"(^|_)loss$")
_GRAD = re.compile(r"^grad_norm")

Curve = tuple[np.ndarray, np.ndarray]  # (steps, values)


@dataclasses.dataclass
class RunLogs:
    """What the pipeline logged: per-stage metrics, the final evaluation, per-part curves."""

    stages: dict[str, dict]                             # stage -> metrics/<stage>.json
    eval: dict | None                                   # metrics/eval.json
    curves: dict[str, dict[str, dict[str, Curve]]]      # part -> curve name -> stage -> curve

    @property
    def empty(self) -> bool:
        return not self.stages and self.eval is None and not self.curves


# ----------------------------------------------------------------------------- reading

def _stage_order(name: str) -> tuple[int, str]:
    return (STAGES.index(name) if name in STAGES else len(STAGES), name)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", file=path)
    return data


def read_tsv(path: Path) -> Curve:
    """A dvclive history ``step<TAB>name``: (steps, values), sorted by step."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=path) from None
    header = lines[0].split("\t") if lines else []
    if "step" not in header or len(header) < 2:
        raise DataError(f"expected a header 'step<TAB>{path.stem}', got {lines[0] if lines else ''!r}",
                        file=path, line=1)
    s, v = header.index("step"), header.index(path.stem) if path.stem in header else len(header) - 1
    steps, values = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            steps.append(float(cells[s]))
            values.append(float(cells[v]))
        except (IndexError, ValueError):
            raise DataError(f"expected numbers in columns {header[s]!r} and {header[v]!r}, got {line!r}",
                            file=path, line=i) from None
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(values)[order]


def read_logs(metrics_dir: str | Path) -> RunLogs:
    """Every log of ``metrics_dir`` the dashboard draws (absent files are simply absent)."""
    root = Path(metrics_dir)
    stages = {}
    for stage in STAGES:
        path = root / f"{stage}.json"
        if path.is_file():
            data = _read_json(path)
            if not isinstance(data.get("val"), dict):
                raise DataError("missing the 'val' metrics of the stage", file=path, field="val")
            stages[stage] = data
    eval_path = root / "eval.json"
    curves: dict[str, dict[str, dict[str, Curve]]] = {}
    live = root / "live"
    stage_dirs = sorted((p for p in live.iterdir() if p.is_dir()), key=lambda p: _stage_order(p.name)) \
        if live.is_dir() else []
    for stage_dir in stage_dirs:
        for part_dir in sorted(p for p in stage_dir.iterdir() if p.is_dir()):
            plots = part_dir / "plots" / "metrics"
            for tsv in sorted(plots.rglob("*.tsv")) if plots.is_dir() else []:
                name = tsv.relative_to(plots).with_suffix("").as_posix()
                if name.startswith(part_dir.name + "/"):  # dvclive prefixes some parts' names with the part
                    name = name[len(part_dir.name) + 1:]
                curves.setdefault(part_dir.name, {}).setdefault(name, {})[stage_dir.name] = read_tsv(tsv)
    return RunLogs(stages, _read_json(eval_path) if eval_path.is_file() else None, curves)


# ----------------------------------------------------------------------------- analysis

def forgetting_warnings(evaluation: dict | None) -> list[str]:
    """One message per (stage, domain, class) whose HOTA the eval stage judged a ``loss`` against
    its best earlier stage, with the parts that lost (``metrics/eval.json``'s ``forgetting`` and
    ``forgot``: nothing is recomputed here; no eval yet, no warning)."""
    out = []
    for stage, rows in (evaluation or {}).get("forgetting", {}).items():
        forgot = evaluation.get("forgot", {}).get(stage, {})
        for key, row in rows.items():
            name, field = key.rsplit("_", 1)
            if field != "HOTA" or row["verdict"] != "loss":
                continue
            domain, cls = name.rsplit("_", 1)
            parts = ", ".join(forgot.get(name, {}).get("parts", [])) or "no single part"
            out.append(f"{cls} HOTA on {domain} after {stage}: {row['delta']:+.1f} [{row['lo']:+.1f}, "
                       f"{row['hi']:+.1f}] against {row['vs']} (loss; parts that lost: {parts})")
    return out


def concatenate(per_stage: dict[str, Curve], offsets: dict[str, float]) -> Curve:
    """One curve across stages: each stage's steps shifted by its offset, in stage order."""
    parts = [(steps + offsets[stage], values) for stage, (steps, values) in
             sorted(per_stage.items(), key=lambda kv: _stage_order(kv[0]))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def stage_offsets(curves: dict[str, dict[str, Curve]]) -> dict[str, float]:
    """Where each stage starts on a part's concatenated step axis (its longest curve sets its span)."""
    span: dict[str, float] = {}
    for per_stage in curves.values():
        for stage, (steps, _) in per_stage.items():
            span[stage] = max(span.get(stage, 0.0), float(steps.max()) + 1 if len(steps) else 0.0)
    out, at = {}, 0.0
    for stage in sorted(span, key=_stage_order):
        out[stage] = at
        at += span[stage]
    return out


# ----------------------------------------------------------------------------- drawing

STAGE_COLOURS = {"stage1": "tab:blue", "stage2": "tab:orange", "stage3": "tab:green"}


def _colour(stage: str, k: int) -> str:
    return STAGE_COLOURS.get(stage, f"C{(k + 3) % 10}")


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _val_panel(ax, logs: RunLogs, cfg: DashboardConfig) -> None:
    x = np.arange(len(STAGES))
    for key, cls, style in (("HOTA", "combined", "-o"), ("IDF1", "combined", "-s"),
                            ("HOTA", "person", "--^"), ("HOTA", "vehicle", "--v")):
        ys = [logs.stages[s]["val"].get("all", {}).get(cls, {}).get(key, np.nan) if s in logs.stages else np.nan
              for s in STAGES]
        label = key if cls == "combined" else f"{cls} {key}"
        ax.plot(x, ys, style, label=label, lw=2 if cls == "combined" else 1)
    ax.axhline(cfg.success_line, color="red", ls=":", lw=1.5, label=f"success {cfg.success_line:g}")
    ax.set_xticks(x, [s if s in logs.stages else f"{s}\n(not run)" for s in STAGES])
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (all domains)")
    ax.set_title("validation after each stage (should rise)")
    ax.legend(fontsize=8, loc="upper left")


def _domain_panel(ax, logs: RunLogs, cfg: DashboardConfig) -> None:
    if not logs.stages:
        _note(ax, "no stage metrics yet")
        ax.set_title("HOTA per domain and class")
        return
    groups: list[tuple[str, str]] = []
    for data in logs.stages.values():
        for domain in sorted(data["val"], key=lambda d: (d == "all", d)):
            for cls in CLASSES_SHOWN:
                if cls in data["val"][domain] and (domain, cls) not in groups:
                    groups.append((domain, cls))
    stages = sorted(logs.stages, key=_stage_order)
    width = 0.8 / len(stages)
    x = np.arange(len(groups))
    for k, stage in enumerate(stages):
        val = logs.stages[stage]["val"]
        ys = [val.get(d, {}).get(c, {}).get("HOTA", np.nan) for d, c in groups]
        ax.bar(x + (k - (len(stages) - 1) / 2) * width, ys, width, label=stage, color=_colour(stage, k))
    ax.axhline(cfg.success_line, color="red", ls=":", lw=1.5)
    ax.set_xticks(x, [f"{d}\n{c}" for d, c in groups], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("HOTA")
    ax.set_title("HOTA per domain and class after each stage")
    ax.legend(fontsize=8)


def _curve_panel(ax, curves: dict[str, dict[str, Curve]], title: str, empty: str) -> None:
    ax.set_title(title)
    if not curves:
        _note(ax, empty)
        return
    offsets = stage_offsets(curves)
    for name in sorted(curves):
        steps, values = concatenate(curves[name], offsets)
        ax.plot(steps, values, "--" if "val" in name.split("/")[0] else "-", marker=".", label=name)
    for k, (stage, at) in enumerate(offsets.items()):
        if k:
            ax.axvline(at - 0.5, color="0.6", ls=":", lw=1)
        ax.text(at, 1.0, f" {stage}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="0.35")
    values = np.concatenate([v for per in curves.values() for _, v in per.values()])
    finite = values[np.isfinite(values) & (values > 0)]
    if len(finite) and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step (stages concatenated)")
    ax.legend(fontsize=7)


def _eval_panel(ax, logs: RunLogs, cfg: DashboardConfig) -> None:
    ax.set_title("final evaluation: association variants")
    compare = (logs.eval or {}).get("compare") or {}
    if not compare:
        _note(ax, "eval not run yet" if logs.eval is None else "eval.json has no 'compare'")
        return
    variants = list(compare)
    domains = sorted({d for v in compare.values() for d in v}, key=lambda d: (d == "all", d))
    width = 0.8 / len(variants)
    x = np.arange(len(domains))
    for k, variant in enumerate(variants):
        ys = [compare[variant].get(d, {}).get("HOTA", np.nan) for d in domains]
        ax.bar(x + (k - (len(variants) - 1) / 2) * width, ys, width, label=variant)
    ax.axhline(cfg.success_line, color="red", ls=":", lw=1.5)
    ax.set_xticks(x, domains, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("HOTA (combined classes)")
    stage = (logs.eval or {}).get("tracker", {}).get("stage")
    if stage:
        ax.set_title(f"final evaluation ({stage}): association variants")
    ax.legend(fontsize=8)


FORGET_FIELDS = ("HOTA", "DetA", "AssA", "AP50", "rank1")  # tracker, its two halves, detector, ReID
VERDICT_COLOURS = {"loss": "tab:red", "gain": "tab:green", "indistinguishable": "0.6"}


def _forgetting_panel(ax, logs: RunLogs) -> None:
    """The final stage against its best earlier stage, per domain and class: the change of HOTA,
    DetA, AssA, the detector's AP50 and the ReID rank-1 with their paired intervals (eval.json)."""
    table = (logs.eval or {}).get("forgetting") or {}
    ax.set_title("forgetting: which part lost")
    if not table:
        _note(ax, "eval not run yet" if logs.eval is None else "eval.json has no 'forgetting'")
        return
    stage = max(table, key=_stage_order)
    rows = table[stage]
    names = sorted({k.rsplit("_", 1)[0] for k in rows if k.endswith("_HOTA")}, key=lambda n: (n.startswith("all_"), n))
    width = 0.8 / len(FORGET_FIELDS)
    x = np.arange(len(names))
    for k, field in enumerate(FORGET_FIELDS):
        for i, name in enumerate(names):
            row = rows.get(f"{name}_{field}")
            if row is None:
                continue
            at = x[i] + (k - (len(FORGET_FIELDS) - 1) / 2) * width
            ax.bar(at, row["delta"], width, color=VERDICT_COLOURS[row["verdict"]], edgecolor="k", lw=0.3)
            ax.errorbar(at, row["delta"], yerr=[[row["delta"] - row["lo"]], [row["hi"] - row["delta"]]],
                        color="k", lw=0.8, capsize=2)
            ax.text(at, 0, field, rotation=90, fontsize=6, ha="center", va="bottom" if row["delta"] < 0 else "top")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylabel("change (points)")
    vs = sorted({r["vs"] for r in rows.values()}, key=_stage_order)
    ax.set_title(f"forgetting: {stage} against its best earlier stage ({', '.join(vs)}) per domain and class: "
                 "HOTA, DetA, AssA, detector AP50, ReID rank-1 (red = loss, green = gain, 95% paired interval)")


def plot_dashboard(logs: RunLogs, cfg: DashboardConfig, warnings: list[str]):
    """The dashboard as a matplotlib Figure (Agg, no pyplot state)."""
    from matplotlib.figure import Figure

    parts = sorted(logs.curves)
    cols = max(3, len(parts))
    fig = Figure(figsize=(5.5 * cols, FIGURE_HEIGHT), dpi=cfg.dpi)
    bottom = 0.06 + 0.013 * max(1, len(warnings))  # room for the warnings under the panels
    grid = fig.add_gridspec(4, cols, left=0.05, right=0.98, top=0.94, bottom=bottom, hspace=0.45, wspace=0.25)
    _val_panel(fig.add_subplot(grid[0, 0]), logs, cfg)
    _domain_panel(fig.add_subplot(grid[0, 1:]), logs, cfg)
    for k in range(cols):
        ax = fig.add_subplot(grid[1, k])
        if k < len(parts):
            losses = {n: c for n, c in logs.curves[parts[k]].items() if _LOSS.search(n.rsplit("/", 1)[-1])}
            _curve_panel(ax, losses, f"{parts[k]} losses (should fall)", "no loss logged")
        else:
            _curve_panel(ax, {}, "losses", "no training logs yet" if not parts else "")
            ax.set_axis_off()
    grads = {f"{part}: {n}": c for part in parts for n, c in logs.curves[part].items()
             if _GRAD.search(n.rsplit("/", 1)[-1])}
    _curve_panel(fig.add_subplot(grid[2, : cols - 1]), grads, "gradient norm (should stay stable)",
                 "no gradient norms logged")
    _eval_panel(fig.add_subplot(grid[2, cols - 1]), logs, cfg)
    _forgetting_panel(fig.add_subplot(grid[3, :]), logs)
    ran = [s for s in STAGES if s in logs.stages]
    missing = [s for s in STAGES if s not in logs.stages]
    fig.suptitle("stagetrack dashboard: " + (", ".join(ran) or "no stage metrics")
                 + (f" (not run: {', '.join(missing)})" if missing else ""), fontsize=15)
    if warnings:
        fig.text(0.01, 0.01, "\n".join(f"WARNING: {w}" for w in warnings), color="red", fontsize=11,
                 va="bottom", weight="bold")
    elif logs.eval and logs.eval.get("forgetting"):
        fig.text(0.01, 0.01, "no domain and class whose HOTA is a loss against its best earlier stage "
                 "(paired 95% interval below 0)", color="green", fontsize=11, va="bottom")
    return fig


def write_dashboard(metrics_dir: str | Path, out: str | Path, cfg: DashboardConfig) -> list[str]:
    """Read ``metrics_dir``, write the dashboard PNG to ``out``; returns the forgetting warnings."""
    logs = read_logs(metrics_dir)
    if logs.empty:
        raise StagetrackError("no run logs to draw", file=metrics_dir,
                              hint="expected stageN.json, eval.json or live/<stage>/<part>/plots/metrics/*.tsv; "
                                   "run the pipeline (`dvc repro`) first")
    warnings = forgetting_warnings(logs.eval)
    for message in warnings:
        log.warning("%s", message)
    fig = plot_dashboard(logs, cfg, warnings)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=cfg.dpi)
    log.info("dashboard -> %s", out)
    return warnings


# ----------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None,
                        help=f"params file (`dashboard:` section); default ./{DEFAULT_PARAMS}, or built-in "
                             "defaults when there is none")
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics"),
                        help="the run's metrics (stageN.json, eval.json, live/)")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: params dashboard.out)")


def run(args: argparse.Namespace) -> int:
    from ..config import command_params

    cfg = command_params(args.params).dashboard
    out = args.out or Path(cfg.out)
    write_dashboard(args.metrics_dir, out, cfg)
    print(out)
    return 0
