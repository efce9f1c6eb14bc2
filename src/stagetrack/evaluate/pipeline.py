"""Evaluate trained stages on the locked validation videos (the DVC `eval` stage).

:func:`evaluate_stage` runs one stage's detector, ReID model and tracker over every locked
validation video, once with classical association and once with the learned scorer blended
in (the seed's evaluation tip: compare with and without the transformer), and scores both
per domain and per class with TrackEval's metrics. Training stages call it for their own
validation numbers; the `eval` stage calls it for the final stage, writes MOTChallenge result
files for review and ``metrics/eval.json`` with the forgetting deltas across stages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import STAGES, Params
from ..data import mot
from ..data.builder import verify_val_lock
from ..data.sequence import Sequence, empty_boxes
from ..errors import CheckpointError
from ..io import atomic_write_json
from .config import EvalConfig
from .intervals import bootstrap, paired
from .metrics import Raw, combine, sequence_results

log = logging.getLogger(__name__)

HEADLINE = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
VAL_RESULTS = "val_results"  # models/<stage>/val_results/<variant>/<source>/<video>.txt: a stage's validation tracks
INTERVAL_FIELDS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA")


def load_val(val_dir: str | Path) -> dict[str, list[Sequence]]:
    """The locked validation videos per source (domain), in seqmap order."""
    val_dir = Path(val_dir)
    seqmap = (val_dir / "seqmaps" / "val.txt").read_text().split()[1:]
    out: dict[str, list[Sequence]] = {}
    for entry in seqmap:
        source, name = entry.split("/", 1)
        out.setdefault(source, []).append(mot.read_sequence(val_dir / source / name, source=source))
    return out


@dataclasses.dataclass
class StageModels:
    detector: Path
    reid: Path
    assoc: Path | None

    @classmethod
    def find(cls, stage_dir: str | Path) -> "StageModels":
        stage_dir = Path(stage_dir)
        det, reid, assoc = stage_dir / "detector" / "best.pt", stage_dir / "reid" / "model.pt", stage_dir / "assoc.pt"
        for path in (det, reid):
            if not path.exists():
                raise CheckpointError("missing model of a trained stage; run its stage first", file=path)
        return cls(det, reid, assoc if assoc.exists() else None)


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE if k in metrics}


def sequence_scores(gt: dict[str, list[Sequence]], preds: dict[str, np.ndarray], cfg: EvalConfig) -> Raw:
    """TrackEval's per-video results of every validation video (what domains and draws combine)."""
    return sequence_results([(s, preds[s.name]) for seqs in gt.values() for s in seqs], classes=cfg.classes,
                            preprocess=cfg.preprocess, ignore_coverage=cfg.ignore_coverage)


def domain_groups(gt: dict[str, list[Sequence]]) -> dict[str, list[list[str]]]:
    """Per domain, and pooled ('all'), the videos to combine, grouped by domain (bootstrap strata)."""
    groups = {domain: [[s.name for s in seqs]] for domain, seqs in gt.items()}
    groups["all"] = [[s.name for s in seqs] for seqs in gt.values()]
    return groups


def score(gt: dict[str, list[Sequence]], preds: dict[str, np.ndarray], cfg: EvalConfig) -> dict:
    """Per domain and pooled ('all'): per-class and combined headline metrics."""
    return score_raw(sequence_scores(gt, preds, cfg), gt)


def score_raw(res: Raw, gt: dict[str, list[Sequence]]) -> dict:
    out = {}
    for domain, groups in domain_groups(gt).items():
        result = combine(res, [s for group in groups for s in group])
        out[domain] = {cls: _headline(m) for cls, m in result["per_class"].items()}
        out[domain]["combined"] = _headline(result["combined"])
    return out


def score_intervals(res: Raw, gt: dict[str, list[Sequence]], cfg: EvalConfig) -> dict:
    """Per domain and class, the bootstrap interval of each headline metric (``eval.bootstrap`` draws)."""
    return {domain: bootstrap(res, groups, INTERVAL_FIELDS, n=cfg.bootstrap, seed=cfg.bootstrap_seed,
                              level=cfg.ci_level)
            for domain, groups in domain_groups(gt).items()}


def _class_keys(metric: str, classes: tuple[str, ...] | None = None) -> Callable[[dict], dict[str, float]]:
    def keys(report: dict) -> dict[str, float]:
        return {f"{cls}_{metric}": v[metric] for cls, v in report["per_class"].items()
                if classes is None or cls in classes}
    return keys


def paired_changes(before: Raw, after: Raw, gt: dict[str, list[Sequence]], cfg: EvalConfig, *,
                   metrics: tuple[str, ...], classes: tuple[str, ...] | None = None) -> dict:
    """``after - before`` per domain, class and metric on the same videos, with paired intervals and
    verdicts: ``{"<domain>_<class>_<metric>": {delta, lo, hi, verdict}}``."""
    out = {}
    for domain, groups in domain_groups(gt).items():
        for metric in metrics:
            rows = paired(before, after, groups, _class_keys(metric, classes), n=cfg.bootstrap,
                          seed=cfg.bootstrap_seed, level=cfg.ci_level, fields=metrics)
            out.update({f"{domain}_{name}": row for name, row in rows.items()})
    return dict(sorted(out.items()))


def evaluate_stage(params: Params, val: dict[str, list[Sequence]], models: StageModels, *,
                   results_dir: Path | None = None, predictions: dict | None = None) -> dict:
    """Track the validation videos with one stage's models; classical and learned side by side.

    ``results_dir`` receives MOTChallenge result files ``<variant>/<source>/<video>.txt``;
    ``predictions`` (a dict) receives ``{variant: {video: rows}}``."""
    from ..assoc.scorer import resolve_learned_assoc, scorer_from_config
    from ..detect.yolo import Detector
    from ..inference import observe, track
    from ..reid.features import ReidExtractor

    det_cfg, device = params.detector, params.resolved_device()
    # imgsz=None: infer at the size this stage's detector was trained at (aug_max_size may cap it)
    detector = Detector(models.detector, conf=det_cfg.conf, iou=det_cfg.iou, imgsz=None,
                        max_det=det_cfg.max_det, device=device)
    extractor = ReidExtractor(models.reid, device=device)
    # the seed's TRANSFORMER_ASSOC_* variables override params; weights default to the stage's own
    acfg = resolve_learned_assoc(params.tracker.assoc)
    if not acfg.weights and models.assoc is not None:
        acfg = dataclasses.replace(acfg, weights=str(models.assoc))
    tcfg = dataclasses.replace(params.tracker, assoc=acfg)
    # always built when a checkpoint exists (for the side-by-side); `enable` picks the headline
    scorer = scorer_from_config(dataclasses.replace(acfg, enable=True), extractor.feature_dim, device=device) \
        if acfg.weights else None
    seqs = [s for group in val.values() for s in group]
    observations = [observe(s, detector, extractor.from_boxes, tcfg) for s in seqs]
    variants = {"classical": None}
    if scorer is not None:
        variants["learned"] = scorer
    report: dict = {"assoc_weight": tcfg.assoc.weight}
    # the yardstick of no association at all: every confident detection is a new identity
    report["new_id_per_box"] = score(val, {o.name: new_id_per_box(o, tcfg.track_high_thresh) for o in observations},
                                     params.eval)
    for variant, sc in variants.items():
        preds = {obs.name: track(obs, tcfg, scorer=sc) for obs in observations}
        report[variant] = score(val, preds, params.eval)
        if predictions is not None:
            predictions[variant] = preds
        if results_dir is not None:
            for source, group in val.items():
                for s in group:
                    mot.write_txt(results_dir / variant / source / f"{s.name}.txt", preds[s.name], "result")
    report["headline"] = "learned" if (acfg.enable and scorer is not None) else "classical"
    return report



def new_id_per_box(obs, min_score: float) -> np.ndarray:
    """Result rows in which every detection scoring >= ``min_score`` gets an identity of its own."""
    from ..track.tracker import MOT_CATEGORY

    rows = []
    for frame, dets in enumerate(obs.frames, start=1):
        keep = dets.score >= min_score
        part = empty_boxes(int(keep.sum()))
        part["frame"] = frame
        part["x"], part["y"], part["w"], part["h"] = dets.tlwh[keep].T
        part["conf"], part["cls"] = dets.score[keep], dets.cls[keep]
        part["category"] = [MOT_CATEGORY[int(c)] for c in dets.cls[keep]]
        rows.append(part)
    out = np.concatenate(rows) if rows else empty_boxes()
    out["id"] = np.arange(1, len(out) + 1)
    return out


def forgetting(stage_metrics: dict[str, dict]) -> dict:
    """Person HOTA/IDF1 after each later stage minus after the first (negative = forgot)."""
    first = STAGES[0]
    if first not in stage_metrics:
        return {}
    out = {}
    base = stage_metrics[first]["val"]
    for stage in STAGES[1:]:
        if stage not in stage_metrics:
            continue
        cur = stage_metrics[stage]["val"]
        deltas = {}
        for domain in sorted(set(base) & set(cur)):
            if "person" in base[domain] and "person" in cur[domain]:
                for m in ("HOTA", "IDF1"):
                    deltas[f"{domain}_person_{m}"] = round(cur[domain]["person"][m] - base[domain]["person"][m], 4)
        out[stage] = deltas
    return out


def change_vs_previous(stage_metrics: dict[str, dict]) -> dict:
    """Per class and domain, HOTA after each stage minus after the stage before (negative = lost)."""
    out = {}
    for before, stage in zip(STAGES, STAGES[1:]):
        if before not in stage_metrics or stage not in stage_metrics:
            continue
        prev, cur = stage_metrics[before]["val"], stage_metrics[stage]["val"]
        out[stage] = {f"{domain}_{cls}_HOTA": round(cur[domain][cls]["HOTA"] - prev[domain][cls]["HOTA"], 4)
                      for domain in sorted(set(prev) & set(cur))
                      for cls in sorted(set(prev[domain]) & set(cur[domain])) if cls != "combined"}
    return out


def stage_plot_rows(stage_metrics: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """Rows for ``dvc plots``: pooled validation HOTA/IDF1 by stage, and HOTA per stage/domain/class."""
    by_stage, per_class = [], []
    for i, (stage, m) in enumerate(sorted(stage_metrics.items()), start=1):
        pooled = m["val"]["all"]
        row = {"stage": i, "name": stage, "HOTA": pooled["combined"]["HOTA"], "IDF1": pooled["combined"]["IDF1"]}
        for cls, vals in pooled.items():
            if cls != "combined":
                row.update({f"{cls}_HOTA": vals["HOTA"], f"{cls}_IDF1": vals["IDF1"]})
        by_stage.append(row)
        for domain, table in m["val"].items():
            per_class += [{"label": f"{stage} {domain}/{cls}", "stage": stage, "domain": domain, "class": cls,
                           "HOTA": vals["HOTA"]} for cls, vals in table.items() if cls != "combined"]
    return by_stage, per_class


def read_results(folder: Path, val: dict[str, list[Sequence]]) -> dict[str, np.ndarray]:
    """Result rows of every validation video from ``folder/<source>/<video>.txt``."""
    out = {}
    for source, group in val.items():
        for seq in group:
            path = folder / source / f"{seq.name}.txt"
            if not path.is_file():
                raise CheckpointError("validation results of a trained stage are missing; re-run the stage",
                                      file=path)
            out[seq.name] = mot.read_txt(path, "result")
    return out


def stage_changes(params: Params, val: dict[str, list[Sequence]], models: Path, variant: str) -> tuple[dict, dict]:
    """``forgetting`` (person HOTA/IDF1 of each later stage minus stage 1) and
    ``change_vs_previous`` (HOTA per class of each stage minus the one before), both per domain
    with paired bootstrap intervals and verdicts, from each stage's own validation results."""
    res = {stage: sequence_scores(val, read_results(models / stage / VAL_RESULTS / variant, val), params.eval)
           for stage in STAGES if (models / stage / VAL_RESULTS / variant).is_dir()}
    first = STAGES[0]
    forgot = {stage: paired_changes(res[first], res[stage], val, params.eval, metrics=("HOTA", "IDF1"),
                                    classes=("person",))
              for stage in STAGES[1:] if first in res and stage in res}
    change = {stage: paired_changes(res[before], res[stage], val, params.eval, metrics=("HOTA",))
              for before, stage in zip(STAGES, STAGES[1:]) if before in res and stage in res}
    return forgot, change


def render_val_videos(params: Params, val: dict[str, list[Sequence]], results: Path, variant: str) -> None:
    """GT-vs-prediction MP4s and contact sheets of the first ``viz.seqs_per_domain`` videos per domain."""
    from ..visual.truth import render_domains

    rows = {s.name: mot.read_txt(results / variant / src / f"{s.name}.txt", "result")
            for src, group in val.items() for s in group[: params.viz.seqs_per_domain]}
    render_domains(val, rows, results / "viz", params.viz)


def run_eval(params: Params, data: Path, models: Path, metrics_dir: Path, results: Path) -> dict:
    verify_val_lock(data / "val")
    val = load_val(data / "val")
    final = STAGES[-1]
    predictions: dict = {}
    report = evaluate_stage(params, val, StageModels.find(models / final), results_dir=results,
                            predictions=predictions)
    render_val_videos(params, val, results, report["headline"])
    headline = report[report["headline"]]
    intervals = score_intervals(sequence_scores(val, predictions[report["headline"]], params.eval), val, params.eval)
    forgot, change = stage_changes(params, val, models, report["headline"])
    stage_metrics = {}
    for stage in STAGES:
        path = metrics_dir / f"{stage}.json"
        if path.exists():
            stage_metrics[stage] = json.loads(path.read_text())
    out = {
        **headline,
        "tracker": {"association": report["headline"], "assoc_weight": report["assoc_weight"], "stage": final},
        "compare": {v: {d: report[v][d]["combined"] for d in report[v]}
                    for v in ("classical", "learned", "new_id_per_box") if v in report},
        "ci": intervals,
        "forgetting": forgot,
        "change_vs_previous": change,
    }
    atomic_write_json(metrics_dir / "eval.json", out)
    by_stage, per_class = stage_plot_rows(stage_metrics)
    atomic_write_json(metrics_dir / "plots" / "val_by_stage.json", by_stage)
    atomic_write_json(metrics_dir / "plots" / "class_hota.json", per_class)
    atomic_write_json(results / "eval_full.json", report)
    for domain, table in headline.items():
        log.info("%-10s %s", domain, "  ".join(f"{c}: HOTA {m['HOTA']:.1f} IDF1 {m['IDF1']:.1f}" for c, m in table.items()))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--data", default="data/built", type=Path, help="built data root (with val/)")
    parser.add_argument("--models", default="models", type=Path, help="trained models root (models/<stage>/)")
    parser.add_argument("--metrics-dir", default="metrics", type=Path, help="where eval.json goes (and stage metrics are read)")
    parser.add_argument("--results", default="results", type=Path, help="MOTChallenge result files of the final stage")


def run(args: argparse.Namespace) -> int:
    from ..config import load_params

    run_eval(load_params(args.params), args.data, args.models, args.metrics_dir, args.results)
    return 0
