"""How each stage changed: pure functions of per-stage values and their paired changes.

``points`` maps a stage to its values on all locked val videos (``<domain>_<class>_<field>``, or
``<domain>_<field>`` for a part's pooled score); ``changes[(earlier, later)]`` holds the paired
differences with intervals and verdicts (:func:`stagetrack.evaluate.intervals.paired_values`).
:func:`stagetrack.evaluate.pipeline.stage_changes` computes both from the stages' files and
writes what these functions return into ``metrics/eval.json``; the dashboard and the review
report read it from there.
"""

from __future__ import annotations

from ..config import STAGES
from .intervals import LOSS

TRACK_FIELDS = ("HOTA", "DetA", "AssA", "IDF1")  # the tracking rows of the stage comparisons
# which part a loss in a field points at (HOTA and IDF1 are the whole tracker)
PART_OF_FIELD = {"DetA": "detection", "AssA": "association", "AP50": "detector", "mAP50": "detector",
                 "rank1": "reid"}


def _split_key(key: str) -> tuple[str, str]:
    """``"bdd_vehicle_DetA"`` -> ``("bdd_vehicle", "DetA")``; ``"bdd_mAP50"`` -> ``("bdd", "mAP50")``."""
    row, field = key.rsplit("_", 1)
    return row, field


def best_earlier(points: dict[str, dict[str, float]], stage: str, key: str) -> str | None:
    """The stage before ``stage`` with the highest value on all val videos of what ``key`` is
    judged by: the row's HOTA for a tracking field, the key itself for a part's (the first such
    stage on a tie); None when no earlier stage has it."""
    row, field = _split_key(key)
    judge = f"{row}_HOTA" if field in TRACK_FIELDS else key
    earlier = [s for s in STAGES[: STAGES.index(stage)] if judge in points.get(s, {}) and key in points[s]]
    return max(earlier, key=lambda s: points[s][judge]) if earlier else None


def forgetting(points: dict[str, dict[str, float]], changes: dict[tuple[str, str], dict[str, dict]]) -> dict:
    """Per later stage, every key against its :func:`best_earlier` stage: the paired change of
    ``changes[(earlier, stage)]`` with ``vs`` naming the earlier stage (negative = forgot)."""
    out = {}
    for stage in STAGES[1:]:
        rows = {}
        for key in sorted(points.get(stage, {})):
            before = best_earlier(points, stage, key)
            if before is not None and key in changes.get((before, stage), {}):
                rows[key] = {**changes[(before, stage)][key], "vs": before}
        if rows:
            out[stage] = rows
    return out


def change_vs_previous(changes: dict[tuple[str, str], dict[str, dict]]) -> dict:
    """Per stage, the paired change of HOTA per domain and class (``<domain>_<class>_HOTA``)
    against the stage just before it."""
    return {stage: {k: row for k, row in sorted(changes[(before, stage)].items())
                    if _split_key(k)[1] == "HOTA" and k.count("_") == 2}
            for before, stage in zip(STAGES, STAGES[1:]) if (before, stage) in changes}


def forgot_parts(table: dict[str, dict[str, dict]]) -> dict:
    """Which part forgot: per stage, every row (``<domain>_<class>``, or ``<domain>`` for a part's
    pooled score) with a ``loss`` verdict, as ``{"HOTA": "loss"?, "parts": [detection, association,
    detector, reid]}`` (DetA, AssA, the detector's AP50 and the ReID rank-1 that lost)."""
    out: dict[str, dict] = {}
    for stage, rows in table.items():
        found: dict[str, dict] = {}
        for key, row in rows.items():
            if row["verdict"] != LOSS:
                continue
            name, field = _split_key(key)
            if field == "HOTA":
                found.setdefault(name, {"parts": []})["HOTA"] = LOSS
            elif field in PART_OF_FIELD:
                parts = found.setdefault(name, {"parts": []})["parts"]
                if PART_OF_FIELD[field] not in parts:
                    parts.append(PART_OF_FIELD[field])
        for entry in found.values():
            entry["parts"] = sorted(entry["parts"], key=list(dict.fromkeys(PART_OF_FIELD.values())).index)
        if found:
            out[stage] = dict(sorted(found.items()))
    return out
