"""Evaluate trained stages on the locked videos (the scoring half of the DVC `eval` stage, which
:mod:`stagetrack.evalstage` runs before drawing).

:func:`track_stage` runs one stage's detector and ReID model over each video once and tracks the
shared observations with every variant: classical, the learned scorer blended in (the seed's
evaluation tip: compare with and without the transformer) and no association at all;
:func:`evaluate_stage` scores them per domain and class with TrackEval's metrics. Training stages
call it on the locked **val** videos and keep the result files with their models
(``models/<stage>/val_results``), with the detector's own boxes and the ReID model's rank-1 per
locked val query (:mod:`.parts`).

The `eval` stage reads those files (it does not track val again) for ``metrics/eval.json``: the
final stage's headline with intervals, the variants side by side, and where each stage forgets
(:func:`stage_changes`, the math in :mod:`.changes`): HOTA, DetA, AssA, IDF1 and the parts'
AP50 and rank-1 per domain and class against the best earlier stage, paired by video, with the
rows and parts that lost. It is also the one place that runs the locked **test** videos: the
final stage's models track them once and ``metrics/test.json`` reports them. Parameters are
chosen on val (or the selection split); test is for the final report only, and no code path
that chooses reads it (``tests/test_locked_splits.py``). Where files are: :mod:`stagetrack.artifacts`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..artifacts import VAL_RESULTS, StageModels, load_locked, read_results
from ..config import STAGES, Params
from ..data import mot
from ..data.builder import verify_lock
from ..data.sequence import Sequence
from ..errors import ConfigError
from ..io import atomic_write_json
from .changes import TRACK_FIELDS, change_vs_previous, forgetting, forgot_parts
from .config import EvalConfig
from .intervals import bootstrap, interval_values, paired_values
from .metrics import Raw, combine, sequence_results
from .parts import DETECTIONS, REID_QUERIES, detection_rows, read_part_records

log = logging.getLogger(__name__)

HEADLINE = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
INTERVAL_FIELDS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA")


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


@dataclasses.dataclass
class StageTracks:
    """One stage's models run over a set of videos: what :func:`track_stage` returns."""

    predictions: dict[str, dict[str, np.ndarray]]  # variant -> video -> result rows
    detections: dict[str, np.ndarray]               # video -> the detector's own boxes (one identity each)
    headline: str                                   # the variant `tracker.assoc.enable` makes the headline
    assoc_weight: float
    extractor: object                               # the stage's ReID model (for the query ranking)


def track_stage(params: Params, val: dict[str, list[Sequence]], models: StageModels, *,
                headline_only: bool = False) -> StageTracks:
    """Detect and embed every video once, then track the shared observations with each variant:
    classical, learned (when the stage has an association model) and the yardstick of no
    association at all (every confident detection a new identity). ``headline_only`` tracks just
    the headline variant (``stagetrack viz --stage`` draws one video)."""
    from ..assoc.scorer import resolve_learned_assoc, scorer_from_config
    from ..detect.yolo import Detector
    from ..inference import observe, track
    from ..reid.features import ReidExtractor

    # the seed's TRANSFORMER_ASSOC_* variables override params; weights default to the stage's own
    acfg = resolve_learned_assoc(params.tracker.assoc)
    if not acfg.weights and models.assoc is not None:
        acfg = dataclasses.replace(acfg, weights=str(models.assoc))
    if acfg.enable and not acfg.weights:  # the headline would silently be the classical tracker
        raise ConfigError("the learned association is the headline but this stage has no assoc.pt and "
                          "tracker.assoc.weights is null", field="tracker.assoc.enable",
                          hint="re-run the stage, set tracker.assoc.weights, or set tracker.assoc.enable: false")
    det_cfg, device = params.detector, params.resolved_device()
    # imgsz=None: infer at the size this stage's detector was trained at (aug_max_size may cap it)
    detector = Detector(models.detector, conf=det_cfg.conf, iou=det_cfg.iou, imgsz=None,
                        max_det=det_cfg.max_det, device=device, threads=det_cfg.threads)
    extractor = ReidExtractor(models.reid, device=device, batch_size=params.reid.feature_batch)
    tcfg = dataclasses.replace(params.tracker, assoc=acfg)
    # always built when a checkpoint exists (for the side-by-side); `enable` picks the headline
    scorer = scorer_from_config(dataclasses.replace(acfg, enable=True), extractor.feature_dim, device=device) \
        if acfg.weights else None
    variants = {"classical": None}
    if scorer is not None:
        variants["learned"] = scorer
    headline = headline_variant(params, variants)
    seqs = [s for group in val.values() for s in group]
    observations = [observe(s, detector, extractor.from_frames, tcfg) for s in seqs]
    if headline_only:
        variants = {headline: variants[headline]}
    preds = {variant: {obs.name: track(obs, tcfg, scorer=sc) for obs in observations}
             for variant, sc in variants.items()}
    if not headline_only:
        preds["new_id_per_box"] = {o.name: detection_rows(o.frames, tcfg.track_high_thresh) for o in observations}
    return StageTracks(preds, {o.name: detection_rows(o.frames) for o in observations}, headline,
                       tcfg.assoc.weight, extractor)


def write_tracks(run: StageTracks, val: dict[str, list[Sequence]], results_dir: Path) -> None:
    """MOTChallenge result files ``<variant>/<source>/<video>.txt`` and the detector's own boxes
    ``detections/<source>/<video>.txt`` under ``results_dir``."""
    for source, group in val.items():
        for s in group:
            mot.write_txt(results_dir / DETECTIONS / source / f"{s.name}.txt", run.detections[s.name], "result")
    for variant, preds in run.predictions.items():
        for source, group in val.items():
            for s in group:
                mot.write_txt(results_dir / variant / source / f"{s.name}.txt", preds[s.name], "result")


def evaluate_stage(params: Params, val: dict[str, list[Sequence]], models: StageModels, *,
                   results_dir: Path | None = None, predictions: dict | None = None,
                   reid_dir: Path | None = None) -> dict:
    """Track the validation videos with one stage's models (:func:`track_stage`) and score each
    variant per domain and class.

    ``results_dir`` receives the result files (:func:`write_tracks`); ``predictions`` (a dict)
    receives ``{variant: {video: rows}}``; with ``reid_dir`` (the locked val crops) the ReID
    model's rank-1 hit of every query goes to ``results_dir/reid_queries.json`` (:mod:`.parts`
    scores both per domain)."""
    run = track_stage(params, val, models)
    if results_dir is not None:
        write_tracks(run, val, results_dir)
        if reid_dir is not None:
            from ..reid.evaluate import evaluate_queries

            atomic_write_json(results_dir / REID_QUERIES, evaluate_queries(run.extractor, reid_dir))
    report: dict = {"assoc_weight": run.assoc_weight}
    for variant, preds in run.predictions.items():
        report[variant] = score(val, preds, params.eval)
    if predictions is not None:
        predictions.update(run.predictions)
    report["headline"] = run.headline
    return report


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


def stage_changes(params: Params, val: dict[str, list[Sequence]], models: Path, variant: str) -> dict:
    """The stage comparisons of eval.json, all from each stage's own validation results, paired
    by video with bootstrap intervals and verdicts:

    ``parts``: per stage, the detector's AP50 and the ReID model's rank-1 per domain and class
    (:mod:`.parts`) with intervals; ``forgetting``: per later stage, HOTA, DetA, AssA, IDF1 per
    domain and class and the parts' scores, each against its best earlier stage
    (:func:`forgetting`); ``forgot``: the rows and parts that lost (:func:`forgot_parts`);
    ``change_vs_previous``: HOTA per domain and class of each stage minus the stage before."""
    cfg = params.eval
    boot = {"n": cfg.bootstrap, "seed": cfg.bootstrap_seed, "level": cfg.ci_level}
    stages = [s for s in STAGES if (models / s / VAL_RESULTS / variant).is_dir()]
    raw = {s: sequence_scores(val, read_results(models / s / VAL_RESULTS / variant, val), cfg) for s in stages}
    records = {s: read_part_records(models / s / VAL_RESULTS, val, cfg.ignore_coverage) for s in stages}

    def values(stage: str, domain: str, parts_only: bool = False) -> Callable[[list[str]], dict[str, float]]:
        def combine_drawn(names: list[str]) -> dict[str, float]:
            out = records[stage].values(names, domain)
            if not parts_only:
                report = combine(raw[stage], names, TRACK_FIELDS, quiet=True)
                out.update({f"{domain}_{cls}_{f}": v[f] for cls, v in report["per_class"].items()
                            for f in TRACK_FIELDS})
            return out
        return combine_drawn

    points: dict[str, dict[str, float]] = {s: {} for s in stages}
    parts: dict[str, dict] = {s: {} for s in stages}
    changes: dict[tuple[str, str], dict[str, dict]] = {}
    for domain, groups in domain_groups(val).items():
        names = [n for group in groups for n in group]
        for i, stage in enumerate(stages):
            points[stage].update(values(stage, domain)(names))
            parts[stage].update(interval_values(values(stage, domain, parts_only=True), groups, **boot))
            for before in stages[:i]:
                changes.setdefault((before, stage), {}).update(
                    paired_values(values(before, domain), values(stage, domain), groups, **boot))
    table = forgetting(points, changes)
    return {"parts": {s: dict(sorted(p.items())) for s, p in parts.items()}, "forgetting": table,
            "forgot": forgot_parts(table), "change_vs_previous": change_vs_previous(changes)}


VARIANTS = ("classical", "learned", "new_id_per_box")


def headline_variant(params: Params, available) -> str:
    """``learned`` when ``tracker.assoc.enable`` asks for it (its results must exist), else ``classical``."""
    from ..assoc.scorer import resolve_learned_assoc

    if not resolve_learned_assoc(params.tracker.assoc).enable:
        return "classical"
    if "learned" not in available:
        raise ConfigError("the learned association is the headline but the stage has no learned results",
                          field="tracker.assoc.enable", hint="re-run the final stage (dvc repro)")
    return "learned"


def report_split(params: Params, gt: dict[str, list[Sequence]], preds: dict[str, dict[str, np.ndarray]],
                 stage: str, assoc_weight: float) -> dict:
    """A metrics file's content: the headline variant's metrics per domain and class, the variants
    side by side, and the bootstrap interval of every headline metric."""
    raws = {v: sequence_scores(gt, p, params.eval) for v, p in preds.items()}
    scores = {v: score_raw(raw, gt) for v, raw in raws.items()}
    headline = headline_variant(params, preds)
    return {
        **scores[headline],
        "tracker": {"association": headline, "assoc_weight": assoc_weight, "stage": stage},
        "compare": {v: {d: scores[v][d]["combined"] for d in scores[v]} for v in VARIANTS if v in scores},
        "ci": score_intervals(raws[headline], gt, params.eval),
    }


Render = Callable[[dict[str, list[Sequence]], dict[str, np.ndarray], Path], None]  # (val videos, rows per video, out)


def run_eval(params: Params, data: Path, models: Path, metrics_dir: Path, results: Path,
             render: Render | None = None) -> dict:
    """``metrics/eval.json`` from the stages' own validation results, ``metrics/test.json`` from
    tracking the locked test videos once with the final stage's models. ``render`` (the eval
    stage passes :func:`stagetrack.visual.truth.render_results`) draws the headline's val tracks,
    as read for scoring, into ``results/viz``; evaluation itself imports no drawing code."""
    verify_lock(data / "val")
    verify_lock(data / "test")
    val = load_locked(data / "val")
    final = STAGES[-1]
    models_final = StageModels.find(models / final)
    val_dir = models / final / VAL_RESULTS
    val_preds = {v: read_results(val_dir / v, val) for v in VARIANTS if (val_dir / v).is_dir()}
    from ..assoc.scorer import resolve_learned_assoc

    out = report_split(params, val, val_preds, final, resolve_learned_assoc(params.tracker.assoc).weight)
    headline = out["tracker"]["association"]
    out.update(stage_changes(params, val, models, headline))
    if results.exists():
        shutil.rmtree(results)
    for variant in val_preds:  # the final stage's validation tracks, for review (and the viz)
        shutil.copytree(val_dir / variant, results / variant)
    if render is not None:
        render(val, val_preds[headline], results / "viz")
    atomic_write_json(metrics_dir / "eval.json", out)

    # the final report on the locked test videos: tracked here and nowhere else
    test = load_locked(data / "test")
    test_run = track_stage(params, test, models_final)
    write_tracks(test_run, test, results / "test")
    test_out = report_split(params, test, test_run.predictions, final, test_run.assoc_weight)
    atomic_write_json(metrics_dir / "test.json", test_out)

    stage_metrics = {stage: json.loads((metrics_dir / f"{stage}.json").read_text())
                     for stage in STAGES if (metrics_dir / f"{stage}.json").exists()}
    by_stage, per_class = stage_plot_rows(stage_metrics)
    atomic_write_json(metrics_dir / "plots" / "val_by_stage.json", by_stage)
    atomic_write_json(metrics_dir / "plots" / "class_hota.json", per_class)
    for split, report in (("val", out), ("test", test_out)):
        for domain in val:
            m = report[domain]["combined"]
            ci = report["ci"][domain]["combined"]["HOTA"]
            log.info("%-4s %-10s HOTA %.1f [%.1f, %.1f] IDF1 %.1f", split, domain, m["HOTA"], ci["lo"], ci["hi"],
                     m["IDF1"])
    return out
