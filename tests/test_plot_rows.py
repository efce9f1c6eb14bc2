"""The rows that feed `dvc plots`: detector PR curve, ReID CMC, and per-stage validation tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from stagetrack.detect.metrics import pr_curve
from stagetrack.evaluate.pipeline import stage_plot_rows
from stagetrack.reid.evaluate import cmc_rows


def test_pr_curve_is_wide_and_subsampled_on_the_shared_recall_grid():
    px = np.linspace(0, 1, 1000)
    prec = np.stack([1 - px, np.full_like(px, 0.5)])  # person falls linearly, vehicle flat
    box = SimpleNamespace(px=px, prec_values=prec, ap_class_index=np.array([0, 1]))
    rows = pr_curve(SimpleNamespace(box=box), points=50)
    assert len(rows) == 50  # every 20th of 1000
    assert rows[0] == {"recall": 0.0, "person": 1.0, "vehicle": 0.5}
    assert rows[10]["recall"] == round(px[200], 4) and rows[10]["person"] == round(1 - px[200], 4)


def test_pr_curve_names_only_classes_present():
    box = SimpleNamespace(px=np.linspace(0, 1, 10), prec_values=np.ones((1, 10)), ap_class_index=np.array([1]))
    rows = pr_curve(SimpleNamespace(box=box), points=5)
    assert set(rows[0]) == {"recall", "vehicle"}


def test_pr_curve_of_an_empty_validation_is_empty():
    box = SimpleNamespace(px=np.linspace(0, 1, 10), prec_values=[], ap_class_index=np.array([]))
    assert pr_curve(SimpleNamespace(box=box)) == []


def test_cmc_rows_per_rank_with_class_columns():
    metrics = {"rank1": 50.0, "rank5": 80.0, "mAP": 40.0, "person/rank1": 40.0, "person/rank5": 70.0}
    assert cmc_rows(metrics, [1, 5]) == [
        {"rank": 1, "all": 50.0, "person": 40.0},
        {"rank": 5, "all": 80.0, "person": 70.0},
    ]


def _val(hota: float) -> dict:
    cell = {"HOTA": hota, "IDF1": hota + 1}
    return {"val": {"all": {"combined": cell, "person": cell},
                    "bdd": {"combined": cell, "vehicle": {"HOTA": 1.0, "IDF1": 2.0}}}}


def test_stage_plot_rows_number_stages_and_label_every_class():
    by_stage, per_class = stage_plot_rows({"stage2": _val(20.0), "stage1": _val(10.0)})
    assert [r["stage"] for r in by_stage] == [1, 2]
    assert by_stage[0] == {"stage": 1, "name": "stage1", "HOTA": 10.0, "IDF1": 11.0,
                           "person_HOTA": 10.0, "person_IDF1": 11.0}
    labels = [r["label"] for r in per_class]
    assert labels == ["stage1 all/person", "stage1 bdd/vehicle", "stage2 all/person", "stage2 bdd/vehicle"]
    assert per_class[1]["HOTA"] == 1.0


def test_data_mix_rows_one_per_split_and_source():
    from stagetrack.data.builder import mix_rows

    report = {"val": {"frames": 10, "sha256": "x"},  # no per-source table: not a mix
              "stage1": {"frames": 4, "sources": {"dancetrack": {"frames": 2, "boxes_person": 5},
                                                  "bdd": {"frames": 2, "boxes_person": 1}}}}
    assert mix_rows(report) == [
        {"label": "stage1 bdd", "split": "stage1", "source": "bdd", "frames": 2, "boxes_person": 1},
        {"label": "stage1 dancetrack", "split": "stage1", "source": "dancetrack", "frames": 2, "boxes_person": 5},
    ]


def test_change_vs_previous_keeps_the_hota_per_class_of_consecutive_stages():
    from stagetrack.evaluate.changes import change_vs_previous

    def row(delta: float) -> dict:
        return {"delta": delta, "lo": delta - 1, "hi": delta + 1, "verdict": "indistinguishable"}

    changes = {("stage1", "stage2"): {"bdd_person_HOTA": row(20.0), "bdd_person_DetA": row(3.0),
                                      "bdd_mAP50": row(1.0), "bdd_person_AP50": row(2.0)},
               ("stage1", "stage3"): {"bdd_person_HOTA": row(15.0)},
               ("stage2", "stage3"): {"bdd_person_HOTA": row(-5.0), "bdd_vehicle_HOTA": row(-15.0)}}
    # consecutive pairs only; DetA and the parts' scores are forgetting's, not this table's
    assert change_vs_previous(changes) == {"stage2": {"bdd_person_HOTA": row(20.0)},
                                           "stage3": {"bdd_person_HOTA": row(-5.0), "bdd_vehicle_HOTA": row(-15.0)}}
    assert change_vs_previous({}) == {}
