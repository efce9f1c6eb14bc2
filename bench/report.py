"""The benchmark's outputs besides results.json: the machine description, RESULTS.md, plots."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from stagetrack.io import atomic_write_text

METRICS = ("HOTA", "AssA", "DetA", "IDF1", "MOTA", "IDSW")
DATASET_TITLES = {
    "detector": "(a) detector outputs",
    "noisy_gt": "(b) noisy ground-truth detections",
    "public_det": "(c) public detections, MOTChallenge layout",
}
PACKAGES = ("stagetrack", "torch", "torchvision", "ultralytics", "torchreid", "trackeval", "numpy", "lap", "dvc")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "platform": platform.platform(), "versions": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def ordered(results: dict[str, Any], order: list[str] | None = None) -> list[str]:
    """Tracker names in table order: ``order`` if given, else stagetrack's (plain first), then peers, by name.

    (results.json stores keys sorted as text, so the order is rebuilt here, not taken from the dict.)
    """
    if order:
        return [n for n in order if n in results]
    ours = sorted((n for n, r in results.items() if r["side"] == "stagetrack"), key=lambda n: (n != "stagetrack", n))
    return ours + sorted(n for n, r in results.items() if r["side"] != "stagetrack")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out + [""]


def _tracking(section: dict[str, Any]) -> list[str]:
    setup = section["setup"]
    lines = ["## Tracking quality on identical detections", ""]
    ours = setup["stagetrack"]
    lines += [
        f"World: **{setup['world']}**; locked val videos per domain: "
        + "; ".join(f"{d}: {', '.join(v)}" for d, v in setup["val_videos"].items()) + ".",
        f"Every tracker gets the same detections, all with score >= {setup['detection_threshold']} "
        "(the detector's threshold); peers run with their own default yaml "
        "(`ultralytics/cfg/trackers/<name>.yaml`), stagetrack with `params.yaml`'s `tracker` section "
        f"(track_high_thresh {ours['tracker']['track_high_thresh']}, new_track_thresh "
        f"{ours['tracker']['new_track_thresh']}"
        + (f", vehicles {ours['tracker']['new_track_thresh_vehicle']}"
           if ours["tracker"].get("new_track_thresh_vehicle") is not None else "") + "). "
        + (f"`+reid` peers set `with_reid: True, model: auto` and receive stagetrack's own L2-normalised OSNet "
           f"embeddings ({ours['embeddings']}-dim) through `update(..., feats=...)`. " if ours["embeddings"] else
           "No ReID model in this world: no embeddings, no `+reid` peers. ")
        + "Peers with GMC get the frames. stagetrack also computes HSV histograms from the frames"
        + (f"; `stagetrack+learned` blends the final stage's association model ({ours['learned_assoc']})"
           if ours["learned_assoc"] else "")
        + f". The pipeline's headline tracker is **{ours['headline']}**.",
        "Metrics: TrackEval's HOTA, AssA, DetA, IDF1, MOTA, IDSW, person and vehicle combined "
        "(detection-averaged), per domain.", ""]
    summary_cols: list[tuple[str, str]] = []
    names: list[str] = []
    for ds_name, ds in section["datasets"].items():
        summary_cols += [(ds_name, d) for d in ds["domains"]]
        names += [n for n in ordered(ds["results"]) if n not in names]
    lines += ["### HOTA summary", ""]
    header = ["tracker"] + [f"{DATASET_TITLES[ds].split(')')[0]}) {d}" for ds, d in summary_cols]
    rows = []
    for name in names:
        row = [name]
        for ds, d in summary_cols:
            res = section["datasets"][ds]["results"].get(name)
            row.append(res["scores"][d]["combined"]["HOTA"] if res else "–")
        rows.append(row)
    lines += _table(header, rows)
    for ds_name, ds in section["datasets"].items():
        lines += [f"### {DATASET_TITLES[ds_name]}", "", f"Detections: {ds['detections']}.", ""]
        for variant, goal in ds["goals"].items():
            verdicts = ", ".join(f"{d} {'met' if g['met'] else 'NOT met'} ({g['ours']:.1f} vs {g['best_peer']} "
                                 f"{g['best_peer_HOTA']:.1f}, {g['rule']})" for d, g in goal.items())
            lines += [f"- goal for `{variant}`: {verdicts}"]
        lines += [""]
        for domain in ds["domains"]:
            rows = [[name, ds["results"][name]["given"],
                     *(ds["results"][name]["scores"][domain]["combined"][m] for m in METRICS)]
                    for name in ordered(ds["results"])]
            lines += [f"**{domain}**", ""] + _table(["tracker", "given", *METRICS], rows)
    return lines


def _experiments(section: dict[str, Any]) -> list[str]:
    lines = ["## Experiments: ablation of the tracker's defaults (in src/ and params.yaml)", "", section["note"], ""]
    for ds_name, ds in section["datasets"].items():
        domains = ds["domains"]
        rows = [[name, r["change"], *(f"{r['scores'][d]['combined']['HOTA']:.1f}"
                                      + ("" if r["goal_met"][d] else " ✗") for d in domains)]
                for name, r in ((n, ds["results"][n]) for n in ordered(ds["results"], section["variants"]))]
        lines += [f"**{DATASET_TITLES[ds_name]}**: HOTA (✗ = below the goal); best peer: "
                  + ", ".join(f"{d} {ds['best_peer'][d]['name']} {ds['best_peer'][d]['HOTA']:.1f}" for d in domains), ""]
        lines += _table(["variant", "tracker fields changed from params.yaml", *domains], rows)
    held = section["held_out_test"]
    lines += ["**Held-out check of the current and previous defaults on the locked test videos** ("
              + "; ".join(f"{d}: {', '.join(v)}" for d, v in held["videos"].items())
              + "), noisy ground-truth detections, HOTA:", ""]
    rows = [[name, held["results"][name]["given"],
             *(held["results"][name]["scores"][d]["combined"]["HOTA"] for d in held["domains"])]
            for name in ordered(held["results"])]
    lines += _table(["tracker", "given", *held["domains"]], rows)
    for variant, goal in ((v, held["goals"][v]) for v in ordered(held["results"]) if v in held["goals"]):
        lines.append(f"- goal for `{variant}` on the test videos: " + ", ".join(
            f"{d} {'met' if g['met'] else 'NOT met'} ({g['margin']:+.1f} vs {g['best_peer']})" for d, g in goal.items()))
    return lines + [""]


def _speed_names(section: dict[str, Any]) -> list[str]:
    """stagetrack's rows first, then the peers by name."""
    first = next(iter(section["sizes"].values()))["ms_per_frame"]
    return sorted(first, key=lambda n: (not n.startswith("stagetrack"), n))


def _speed(section: dict[str, Any]) -> list[str]:
    sizes = sorted(section["sizes"], key=int)  # results.json sorts keys as text
    names = _speed_names(section)
    lines = ["## Association speed (per-frame tracker update, detector excluded)", "",
             f"Synthetic random-walk scenes at {section['image_size'][0]}x{section['image_size'][1]}, "
             f"{section['sizes'][sizes[0]]['frames']} frames, best of {section['sizes'][sizes[0]]['repeats']} "
             f"interleaved repeats in one process. stagetrack: {section['stagetrack_cues']}; `+reid` trackers get "
             f"the same {section['reid_dim']}-dim embeddings. Ratio = tracker time / stagetrack motion+IoU time "
             "(> 1: stagetrack is faster).", ""]
    header = ["tracker"] + [f"{n} obj ms" for n in sizes] + [f"{n} obj ratio" for n in sizes]
    rows = []
    for name in names:
        row = [name] + [f"{section['sizes'][n]['ms_per_frame'][name]:.2f}" for n in sizes]
        row += [f"{section['sizes'][n]['ratio_vs_stagetrack'].get(name, 1.0 if name == 'stagetrack' else '–')}"
                for n in sizes]
        rows.append(row)
    lines += _table(header, rows)
    goal = {n: section["goal_vs_bytetrack"][n] for n in sorted(section["goal_vs_bytetrack"], key=int)}
    lines += ["Goal (stagetrack motion+IoU at least as fast as ByteTrack at 50 and 200 objects): "
              + ", ".join(f"{n} objects {'met' if g['met'] else 'NOT met'} ({g['stagetrack_ms']:.2f} vs "
                          f"{g['bytetrack_ms']:.2f} ms)" for n, g in goal.items()), "",
              "![association speed](../plots/bench/association_speed.png)", ""]
    return lines


def _e2e(e2e: dict[str, Any] | None, reid: dict[str, Any]) -> list[str]:
    lines = ["## End to end on CPU", ""]
    if e2e is None or "skipped" in (e2e or {}):
        lines += [f"Detector + ReID + tracking: skipped ({(e2e or {}).get('skipped', 'no trained models')}).", ""]
    else:
        ms = e2e["ms_per_frame"]
        lines += [f"Final-stage detector (imgsz {e2e['detector_imgsz']}) + ReID ({e2e['reid_dim']}-dim) + HSV + "
                  f"stagetrack classical tracking over {e2e['frames']} val frames: **{e2e['fps']:.1f} frames/s** "
                  f"(ms per frame: detector {ms['detect']:.1f}, ReID {ms['reid']:.1f}, frame reads + HSV "
                  f"{ms['other']:.1f}, tracking {ms['track']:.1f}).", ""]
        rows = [[name, v["frames"], v["boxes_per_frame"], v["high_boxes_per_frame"], v["fps"]]
                for name, v in e2e["per_video"].items()]
        lines += _table(["video", "frames", "boxes/frame (all embedded)", f"boxes/frame >= track_high_thresh "
                         f"{e2e['track_high_thresh']}", "frames/s"], rows)
    sizes = [k for k in reid if "x" in k and k[0].isdigit()]
    lines += [f"ReID inference alone ({reid['model']}, {reid['threads']} threads, batch {reid['batch']}): "
              + ", ".join(f"{s}: {reid[s]['crops_per_s']:.0f} crops/s" for s in sizes) + ".", ""]
    return lines


def _build(section: dict[str, Any]) -> list[str]:
    rows = [[k, r["frames"], r["build_s"], r["frames_per_s"], r["peak_rss_mb"], r["rss_after_imports_mb"],
             r["output_mb"]] for k, r in section["runs"].items()]
    return ["## Data build", "", f"`stagetrack build` in a child process on the {section['world']} world's raw "
            "sources; every stage's frame budgets scaled by the factor (whole clips).", ""] + _table(
        ["budgets", "frames written", "build s", "frames/s", "peak RSS MB", "RSS after imports MB", "output MB"], rows)


def _training(section: dict[str, Any]) -> list[str]:
    rows = []
    for part, unit, key in (("detector", "images/s", "images_per_s"), ("reid", "images/s", "images_per_s"),
                            ("association", "samples/s", "samples_per_s")):
        cpu = section[part]["cpu"]
        gpu = section[part]["cuda"]
        rows.append([part, unit, cpu[key], cpu.get("images", cpu.get("samples")), cpu["epoch_s"],
                     gpu if isinstance(gpu, str) else gpu[key]])
    return ["## Training throughput (one epoch each)", "",
            f"CPU with {section['threads']} torch threads; data: {section['data']} (detector, ReID) and "
            f"{section['association']['cpu']['samples_dir']} (association, "
            f"{section['association']['cpu']['embed_dim']}-dim embeddings).", ""] + _table(
        ["part", "unit", "CPU", "items per epoch", "epoch s", "GPU"], rows)


def _overhead(section: dict[str, Any]) -> list[str]:
    lines = ["## Pipeline overhead", ""]
    if "dvc_status_s" in section:
        lines += [f"`dvc status`: {section['dvc_status_s']:.1f} s.", ""]
    for key, title in (("repro_nothing_changed", "`dvc repro`, nothing changed"),
                       ("repro_eval_only", "`dvc repro -f -s eval`"),
                       ("eval_command_tmp", "eval stage command, outputs in a temp dir")):
        if key not in section:
            continue
        item = section[key]
        if "skipped" in item:
            lines.append(f"- {title}: skipped ({item['skipped']})")
        else:
            extra = "" if item.get("ok", True) else " (FAILED)"
            checks = ", ".join(f"{k}: {item[k]}" for k in ("status_clean_after", "eval_json_unchanged") if k in item)
            lines.append(f"- {title}: {item['seconds']:.1f} s{extra}" + (f" ({checks})" if checks else ""))
    return lines + [""]


def _pinning(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    lines = ["## What the pinned numerics cost", "",
             f"Each part trained tiny in a fresh process, pinned and unpinned in turn, {section['rounds']} round(s) "
             f"on {section['cpu_count']} cores (`bench/pinning.py`); ratio = median of pinned / unpinned per round.", "",
             "| part | pinned (s) | unpinned (s) | ratio |", "|---|---|---|---|"]
    for part, row in section.items():
        if isinstance(row, dict):
            lines.append(f"| {part} | {row['pinned_s']:.2f} | {row['unpinned_s']:.2f} | {row['ratio']:.3f} |")
    return lines + [""]


def results_md(results: dict[str, Any]) -> str:
    """RESULTS.md: command, machine, wall time, then one section per benchmark."""
    m = results["machine"]
    lines = ["# stagetrack benchmarks", "",
             f"Produced by `{results['command']}` on {results['date']} in {results['wall_s']:.0f} s "
             f"(size `{results['size']}`). Every number below comes from that run.", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
             f"GPU: {m['gpu'] or 'none'}; load average at start {m['load_average_at_start']} (the machine is "
             f"shared: compare ratios measured in the same run, not absolute times across runs); Python "
             f"{m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".", ""]
    lines += _goals(results)
    lines += _tracking(results["tracking"])
    if "experiments" in results:
        lines += _experiments(results["experiments"])
    lines += _speed(results["speed"]["association"])
    lines += _e2e(results["speed"].get("end_to_end"), results["speed"]["reid_inference"])
    lines += _build(results["build"])
    lines += _training(results["training"])
    lines += _overhead(results["overhead"])
    lines += _pinning(results.get("pinning"))
    return "\n".join(lines)


def _goals(results: dict[str, Any]) -> list[str]:
    lines = ["## Goals", ""]
    tracking = results["tracking"]
    headline = tracking["setup"]["stagetrack"]["headline"]
    for ds_name, ds in tracking["datasets"].items():
        for variant, goal in ds["goals"].items():
            met = all(g["met"] for g in goal.values())
            mark = " (pipeline headline)" if variant == headline else ""
            lines.append(f"- HOTA goal, {DATASET_TITLES[ds_name]}, `{variant}`{mark}: **{'met' if met else 'NOT met'}**"
                         " (margin to the best peer: " + ", ".join(
                             f"{d} {g['margin']:+.1f} {'✓' if g['met'] else '✗'}" for d, g in goal.items()) + ")")
    if "experiments" in results:
        held = results["experiments"]["held_out_test"]
        for variant in (v for v in ordered(held["results"]) if v in held["goals"]):
            goal = held["goals"][variant]
            met = all(g["met"] for g in goal.values())
            lines.append(f"- HOTA goal, held-out test videos (noisy ground truth), `{variant}`: **{'met' if met else 'NOT met'}**"
                         " (" + ", ".join(f"{d} {g['margin']:+.1f} {'✓' if g['met'] else '✗'}" for d, g in goal.items())
                         + ")")
    speed = results["speed"]["association"]["goal_vs_bytetrack"]
    speed = {n: speed[n] for n in sorted(speed, key=int)}
    lines.append("- speed goal (motion+IoU at least as fast as ByteTrack at 50 and 200 objects): **"
                 + ("met" if all(g["met"] for g in speed.values()) else "NOT met") + "** ("
                 + ", ".join(f"{n} objects {g['bytetrack_ms'] / g['stagetrack_ms']:.1f}x faster" for n, g in speed.items())
                 + ")")
    lines.append("- ✓ = at or above the best peer (strictly above on dancetrack); the experiments section ablates "
                 "the tracker's defaults and re-checks them on the held-out test videos.")
    return lines + [""]


def write(results: dict[str, Any], path: Path) -> None:
    atomic_write_text(path, results_md(results))


def plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Speed-scaling curves and per-domain HOTA bars as PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    assoc = results["speed"]["association"]["sizes"]
    sizes = sorted(int(n) for n in assoc)
    names = _speed_names(results["speed"]["association"])
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2))
    palette = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        style = dict(lw=2.5, color="black") if name == "stagetrack" else dict(lw=1.2, color=palette(i % 10))
        ax_t.plot(sizes, [assoc[str(n)]["ms_per_frame"][name] for n in sizes], marker="o", label=name, **style)
        if name not in ("stagetrack", "stagetrack+reid"):
            ax_r.plot(sizes, [assoc[str(n)]["ratio_vs_stagetrack"][name] for n in sizes], marker="o", label=name,
                      **style)
    ax_t.set(xscale="log", yscale="log", xlabel="objects per frame", ylabel="ms per frame (best of repeats)",
             title="tracker update time")
    ax_r.axhline(1.0, color="black", lw=1)
    ax_r.set(xscale="log", xlabel="objects per frame", ylabel="peer time / stagetrack time",
             title="ratio to stagetrack (motion+IoU)")
    ax_t.legend(fontsize=7)
    ax_r.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "association_speed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    for ds_name, ds in results["tracking"]["datasets"].items():
        names = ordered(ds["results"])
        domains = ds["domains"]
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
        width = 0.8 / len(domains)
        for k, domain in enumerate(domains):
            ax.bar([i + k * width for i in range(len(names))],
                   [ds["results"][n]["scores"][domain]["combined"]["HOTA"] for n in names], width, label=domain)
        ax.set_xticks([i + width * (len(domains) - 1) / 2 for i in range(len(names))], names, rotation=35,
                      ha="right", fontsize=8)
        top = max(ds["results"][n]["scores"][d]["combined"]["HOTA"] for n in names for d in domains)
        ax.set(ylabel="HOTA", title=f"HOTA, {DATASET_TITLES[ds_name]}", ylim=(0, max(1.0, top) * 1.2))
        ax.legend(fontsize=8, ncol=len(domains), loc="upper right")
        fig.tight_layout()
        path = out_dir / f"hota_{ds_name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
