"""The pull-request review report: metrics, params, forgetting verdicts and plots, as markdown.

    python ci/review_report.py [--base main] [--out review] [--publish]

Writes ``OUT/report.md`` with ``dvc metrics diff BASE --md``, ``dvc params diff BASE --md``, the
forgetting and stage-to-stage rows of ``metrics/eval.json`` with their intervals and verdicts
(this run beside BASE's), ``plots/dashboard.png`` and every plot of ``dvc plots diff BASE
workspace`` rendered to PNG offline (matplotlib from the plots' own data: no browser, no CDN).
With ``--publish`` and CML on the PATH, ``cml comment create --publish OUT/report.md`` posts it
on the pull request; otherwise the path is printed. The GitHub workflow
(.github/workflows/review.yml) calls exactly this; so can a laptop.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("review")

EVAL = "metrics/eval.json"
DASHBOARD = "plots/dashboard.png"


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc.stdout


def dvc(*args: str) -> str:
    return sh(sys.executable, "-m", "dvc", *args)


def committed_json(rev: str, path: str) -> dict[str, Any] | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None


def verdict_rows(current: dict[str, Any], base: dict[str, Any] | None, section: str) -> list[str]:
    """Markdown rows of ``section`` (forgetting / change_vs_previous): this run's paired change
    with its interval and verdict, and BASE's change beside it."""
    rows = []
    for stage, table in sorted((current.get(section) or {}).items()):
        for key, row in sorted(table.items()):
            if not isinstance(row, dict) or "delta" not in row:
                continue
            old = ((base or {}).get(section) or {}).get(stage, {}).get(key)
            old_delta = old.get("delta") if isinstance(old, dict) else old
            mark = {"loss": "**loss**", "gain": "gain"}.get(row.get("verdict"), row.get("verdict", "-"))
            vs = f" (vs {row['vs']})" if row.get("vs") else ""
            rows.append(f"| {stage} | {key}{vs} | {row['delta']:+.2f} | [{row['lo']:+.2f}, {row['hi']:+.2f}] | {mark} "
                        f"| {'-' if old_delta is None else f'{old_delta:+.2f}'} |")
    return rows


def _label(point: dict[str, Any]) -> str:
    parts = [str(point.get("rev", ""))]
    for key in ("filename", "field"):
        if key in point and point[key]:
            parts.append(str(point[key]))
    return " ".join(p for p in parts if p)


def render_plot(plot_id: str, spec: dict[str, Any], out: Path) -> Path | None:
    """One vega-lite spec of ``dvc plots diff --json`` as a PNG, from its inline data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = (spec.get("data") or {}).get("values") or []
    enc = spec.get("encoding") or {}
    layer_enc = next((l.get("encoding") for l in spec.get("layer", []) if l.get("encoding")), {})
    enc = {**layer_enc, **enc}
    x, y = (enc.get("x") or {}).get("field"), (enc.get("y") or {}).get("field")
    if not values or not x or not y:
        return None
    series: dict[str, list[tuple[Any, Any]]] = {}
    for point in values:
        if x in point and y in point:
            series.setdefault(_label(point), []).append((point[x], point[y]))
    if not series:
        return None

    def num(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    x_numeric = all(num(a) is not None for pts in series.values() for a, _ in pts)
    y_numeric = all(num(b) is not None for pts in series.values() for _, b in pts)
    if x_numeric and y_numeric:
        for label, pts in sorted(series.items()):
            pts = sorted((num(a), num(b)) for a, b in pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=label)
    elif x_numeric:  # horizontal bars: numeric x per categorical y, one bar group per revision
        labels = sorted({b for pts in series.values() for _, b in pts})
        height = 0.8 / len(series)
        for i, (label, pts) in enumerate(sorted(series.items())):
            by = {b: num(a) for a, b in pts}
            ax.barh([labels.index(b) + i * height for b in by], list(by.values()), height=height, label=label)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    else:
        plt.close(fig)
        return None
    ax.set_title(spec.get("title", {}).get("text") if isinstance(spec.get("title"), dict) else
                 spec.get("title") or plot_id, fontsize=9)
    ax.set_xlabel((enc.get("x") or {}).get("title") or x, fontsize=8)
    ax.set_ylabel((enc.get("y") or {}).get("title") or y, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path = out / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', plot_id)}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def build(base: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Review: workspace against `{base}`", ""]
    lines += ["## Metrics", "", dvc("metrics", "diff", base, "--md").strip() or "No metric changed.", ""]
    lines += ["## Params", "", dvc("params", "diff", base, "--md").strip() or "No param changed.", ""]
    current = json.loads(Path(EVAL).read_text()) if Path(EVAL).is_file() else {}
    base_eval = committed_json(base, EVAL)
    for section, title in (("forgetting", "Forgetting (each stage against its best earlier stage: HOTA, DetA, AssA, IDF1, "
                                           "detector AP50, ReID rank-1 per domain and class)"),
                           ("change_vs_previous", "Change against the previous stage (HOTA per domain and class)")):
        rows = verdict_rows(current, base_eval, section)
        if rows:
            lines += [f"## {title}", "", "Paired bootstrap over the validation videos; `loss` = the whole 95% "
                      "interval is below 0.", "", f"| stage | metric | change | 95% interval | verdict | {base} |",
                      "|---|---|---|---|---|---|", *rows, ""]
    if Path(DASHBOARD).is_file():
        shutil.copyfile(DASHBOARD, out / "dashboard.png")
        lines += ["## Dashboard", "", "![dashboard](dashboard.png)", ""]
    plots = json.loads(dvc("plots", "diff", base, "workspace", "--json") or "{}")
    rendered = []
    for plot_id, entries in sorted((plots.get("data") or {}).items()):
        for entry in entries:
            if entry.get("type") == "vega":
                path = render_plot(plot_id, entry.get("content") or {}, out)
                if path is not None:
                    rendered.append(path)
    if rendered:
        lines += ["## Plots", "", *[f"![{p.stem}]({p.name})" for p in rendered], ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="revision to compare with (default main)")
    parser.add_argument("--out", type=Path, default=Path("review"), help="folder of report.md and its images")
    parser.add_argument("--publish", action="store_true", help="post with `cml comment create` when CML is installed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s review: %(message)s")
    report = build(args.base, args.out)
    if args.publish and shutil.which("cml"):
        sh("cml", "comment", "create", "--publish", str(report))
        log.info("posted %s", report)
    else:
        if args.publish:
            log.info("CML is not installed: not posted")
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
