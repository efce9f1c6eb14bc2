"""Forgetting ablation (issue 16): where stage 3 forgets, and what weight interpolation does.

Usage: ``python bench/forgetting.py --group d12 [--alphas 0.25 0.5 0.75 1] [--out bench/forgetting.json]``

Reads the models of a seeds group already run (``stagetrack seeds --n N --name GROUP`` leaves
one DVC experiment per training seed, ``GROUP-seed<k>``; their outputs are in the DVC cache),
so it trains nothing: per seed it tracks the locked val videos with stage 1's, stage 2's and,
for every alpha, stage 3's models whose detector is ``alpha * stage3 + (1 - alpha) * stage2``
(:mod:`stagetrack.detect.interpolate`; ReID and association stay stage 3's). It also records the
alpha each seed's **selection split** would choose (what ``stage3.interpolate_alphas`` does in
the pipeline). The table gives, per option, mean over seeds with the 95% t-interval of: HOTA per
domain and class after stage 3, its change against the best earlier stage (paired per seed),
DetA/AssA and the detector's AP50 changes, visdrone's gain over stage 2, and the selection
validations' extra seconds. Nothing here reads the locked test videos.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench.forgetting")
NEEDED = {"stage1": ("detector/best.pt", "reid/model.pt", "assoc.pt"),
          "stage2": ("detector/best.pt", "reid/model.pt", "assoc.pt"),
          "stage3": ("detector/best.pt", "reid/model.pt", "assoc.pt")}
ROWS = ("bdd_person", "bdd_vehicle", "dancetrack_person", "visdrone_person", "visdrone_vehicle",
        "all_person", "all_vehicle")


def experiments(group: str) -> dict[int, str]:
    """seed -> the git ref of ``<group>-seed<k>``."""
    refs = subprocess.check_output(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=ROOT,
                                   text=True).split()
    out = {}
    for ref in refs:
        name = ref.rsplit("/", 1)[-1]
        if name.startswith(f"{group}-seed"):
            out[int(name.rsplit("seed", 1)[1])] = ref
    if not out:
        raise SystemExit(f"no experiment {group}-seed<k> (run `stagetrack seeds --name {group}` first)")
    return dict(sorted(out.items()))


def materialize(ref: str, dest: Path) -> None:
    """Copy the stages' model files of experiment ``ref`` out of the DVC cache into ``dest``."""
    import yaml

    cache = ROOT / ".dvc" / "cache" / "files" / "md5"
    lock = yaml.safe_load(subprocess.check_output(["git", "show", f"{ref}:dvc.lock"], cwd=ROOT))
    for stage, files in NEEDED.items():
        md5 = next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == f"models/{stage}")
        entries = {e["relpath"]: e["md5"] for e in json.loads((cache / md5[:2] / md5[2:]).read_text())}
        for rel in files:
            target = dest / stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_bytes((cache / entries[rel][:2] / entries[rel][2:]).read_bytes())


def values(params, gt, models, work: Path) -> dict[str, float]:
    """HOTA/DetA/AssA per domain and class and the detector's AP50 of one model set on ``gt``
    (the locked val videos, or the locked test videos for the final report)."""
    from stagetrack.evaluate.parts import DETECTIONS, detector_values, match_detections
    from stagetrack.data import mot
    from stagetrack.evaluate.pipeline import domain_groups, score, track_stage, write_tracks

    run = track_stage(params, gt, models)
    write_tracks(run, gt, work)   # the detector's boxes are scored from the files, as eval scores a stage's
    report = score(gt, run.predictions["classical"], params.eval)
    out = {f"{d}_{c}_{m}": v[m] for d, table in report.items() for c, v in table.items() if c != "combined"
           for m in ("HOTA", "DetA", "AssA")}
    records = {s.name: match_detections(s, mot.read_txt(work / DETECTIONS / src / f"{s.name}.txt", "result"),
                                        params.eval.ignore_coverage) for src, group in gt.items() for s in group}
    for domain, groups in domain_groups(gt).items():
        out.update(detector_values(records, [n for g in groups for n in g], domain))
    return out


def run_seed(seed: int, ref: str, alphas: list[float], work: Path, split: str = "val") -> dict:
    import dataclasses

    from stagetrack.config import load_params
    from stagetrack.detect.interpolate import choose_alpha
    from stagetrack.detect.yolo import evaluate_detector
    from stagetrack.artifacts import StageModels, load_locked

    params = load_params(ROOT / "params.yaml")
    val = load_locked(ROOT / "data/built" / split)  # test: the final report only (nothing is chosen on it)
    models = work / f"seed{seed}"
    materialize(ref, models)
    out: dict = {"seed": seed, "stages": {}, "alpha": {}}
    for stage in ("stage1", "stage2"):
        out["stages"][stage] = values(params, val, StageModels.find(models / stage), models / stage / split)
    stage3 = StageModels.find(models / "stage3")
    det_cfg = params.stage_section("stage3", "detector")
    import torch

    imgsz = torch.load(stage3.detector, map_location="cpu", weights_only=False)["train_args"]["imgsz"]
    selection = ROOT / "data/built/stage3/det/data.yaml"
    t0 = time.perf_counter()
    chosen = choose_alpha(stage3.detector, models / "stage2/detector/best.pt", alphas,
                          validate=lambda w: evaluate_detector(w, selection, imgsz=imgsz, iou=det_cfg.iou),
                          work_dir=models / "interp")
    out["selection_s"] = round(time.perf_counter() - t0, 1)
    out["chosen"], out["selection_fitness"] = chosen["alpha"], chosen["fitness"]
    for alpha in sorted(set(alphas), reverse=True):
        det = stage3.detector if alpha == 1.0 else models / "interp" / f"alpha_{alpha:.4f}.pt"
        out["alpha"][f"{alpha:g}"] = values(params, val, dataclasses.replace(stage3, detector=det),
                                            models / "stage3" / f"{split}_{alpha:g}")
    return out


def mean_ci(xs: list[float]) -> str:
    from stagetrack.seeds import mean_interval

    ci = mean_interval(xs)
    m = statistics.fmean(xs)
    return f"{m:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else f"{m:+.1f}"


def table(runs: list[dict], alphas: list[float]) -> tuple[str, dict]:
    """The markdown ablation table and its numbers (means and t-intervals over seeds)."""
    options = {f"alpha {a:g}" + (" (stage 3 as trained)" if a == 1 else ""): (lambda r, a=a: f"{a:g}")
               for a in sorted(set(alphas), reverse=True)}
    options["alpha chosen on the selection split"] = lambda r: f"{r['chosen']:g}"
    lines = [f"Seeds: {', '.join(str(r['seed']) for r in runs)}; chosen alphas: "
             + ", ".join(f"{r['chosen']:g}" for r in runs), "",
             "| option | " + " | ".join(f"{row} HOTA (change vs best earlier)" for row in ROWS[:5])
             + " | DetA change dancetrack / bdd vehicle | AP50 change dancetrack / bdd vehicle | visdrone vehicle vs stage 2 |",
             "|---" * (len(ROWS[:5]) + 4) + "|"]
    numbers: dict = {}
    for name, pick in options.items():
        cells, nums = [], {}
        for row in ROWS[:5]:
            after = [r["alpha"][pick(r)][f"{row}_HOTA"] for r in runs]
            best = [max(r["stages"][s][f"{row}_HOTA"] for s in ("stage1", "stage2")) for r in runs]
            diff = [a - b for a, b in zip(after, best)]
            cells.append(f"{statistics.fmean(after):.1f} ({mean_ci(diff)})")
            nums[row] = {"hota": after, "forgetting": diff}
        def change(field: str, row: str) -> list[float]:
            out = []
            for r in runs:
                stage = max(("stage1", "stage2"), key=lambda s: r["stages"][s][f"{row}_HOTA"])
                out.append(r["alpha"][pick(r)][f"{row}_{field}"] - r["stages"][stage][f"{row}_{field}"])
            return out
        det = [mean_ci(change("DetA", row)) for row in ("dancetrack_person", "bdd_vehicle")]
        ap = [mean_ci(change("AP50", row)) for row in ("dancetrack_person", "bdd_vehicle")]
        vis = [r["alpha"][pick(r)]["visdrone_vehicle_HOTA"] - r["stages"]["stage2"]["visdrone_vehicle_HOTA"]
               for r in runs]
        cells += [" / ".join(det), " / ".join(ap), mean_ci(vis)]
        nums["visdrone_vehicle_vs_stage2"] = vis
        numbers[name] = nums
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sel = [r["selection_s"] for r in runs]
    lines += ["", f"Choosing alpha on the selection split costs {statistics.fmean(sel):.0f} s per stage "
              f"({len(set(alphas))} validations of the stage's selection images)."]
    return "\n".join(lines), numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", default="d12", help="the seeds group whose experiments to read")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0],
                        help="interpolation weights of stage 3's detector")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="a subset of the group's seeds")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stagetrack-forgetting"), help="scratch folder")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="val: the ablation the default is chosen from; test: the final report of the options "
                             "already chosen (pass only those alphas), on videos nothing was tuned on")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default bench/forgetting.json, bench/forgetting_test.json for --split test)")
    args = parser.parse_args(argv)
    args.out = args.out or ROOT / "bench" / ("forgetting.json" if args.split == "val" else "forgetting_test.json")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("ultralytics", "stagetrack.evaluate.metrics", "stagetrack.assoc.scorer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runs = []
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    done = {r["seed"]: r for r in previous if sorted(r["alpha"]) == sorted(f"{a:g}" for a in set(args.alphas))
            and r.get("split", "val") == args.split}
    for seed, ref in experiments(args.group).items():
        if args.seeds is not None and seed not in args.seeds:
            continue
        run = done.get(seed) or {**run_seed(seed, ref, args.alphas, args.work, args.split), "split": args.split}
        runs.append(run)
        from stagetrack.io import atomic_write_json

        atomic_write_json(args.out, {"group": args.group, "split": args.split, "alphas": sorted(set(args.alphas)),
                                     "runs": runs})
        log.info("seed %d done (chosen alpha %g)", seed, run["chosen"])
    text, numbers = table(runs, args.alphas)
    from stagetrack.io import atomic_write_json, atomic_write_text

    atomic_write_json(args.out, {"group": args.group, "split": args.split, "alphas": sorted(set(args.alphas)),
                                 "runs": runs, "table": numbers})
    atomic_write_text(args.out.with_suffix(".md"), f"# Forgetting ablation on the locked {args.split} videos "
                      f"(`python bench/forgetting.py --group {args.group} --split {args.split} --alphas "
                      f"{' '.join(f'{a:g}' for a in sorted(set(args.alphas)))}`)\n\n" + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
