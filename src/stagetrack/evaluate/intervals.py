"""Confidence intervals over videos: a seeded bootstrap, paired differences and verdicts.

A tracking metric over a set of videos is TrackEval's combination of the videos (sums of
TP/FN/FP and association scores, then the final fields), not a mean of per-video numbers, so
the bootstrap resamples *videos* and recombines each draw the same way
(:func:`stagetrack.evaluate.metrics.combine`, a video drawn twice counting twice). Draws are
stratified by domain: for the pooled ``all`` every domain keeps its number of videos, so a draw
never turns into a different mix of domains.

A difference between two runs on the same videos (stage 3 against stage 2, one setting against
another) is bootstrapped *paired*: the same drawn videos are recombined for both runs and the
difference taken per draw, which removes the spread that comes from which videos happen to be
hard. The interval is the percentile interval of the draws; the verdict is ``gain`` when the
whole interval lies above 0, ``loss`` when it lies below, ``indistinguishable`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .metrics import Raw, combine

GAIN, LOSS, SAME = "gain", "loss", "indistinguishable"


def percentile_interval(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central ``level`` interval of ``values`` (numpy's linear percentiles)."""
    arr = np.asarray(values, dtype=np.float64)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(arr, [tail, 100.0 - tail])
    return float(lo), float(hi)


def verdict(lo: float, hi: float) -> str:
    """``gain`` if the interval is above 0, ``loss`` if below, else ``indistinguishable``."""
    if lo > 0:
        return GAIN
    if hi < 0:
        return LOSS
    return SAME


def draws(groups: Sequence[Sequence[str]], n: int, seed: int) -> list[list[str]]:
    """``n`` stratified resamples: from each group, as many videos as it has, with replacement."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        drawn: list[str] = []
        for group in groups:
            drawn.extend(group[i] for i in rng.integers(0, len(group), size=len(group)))
        out.append(drawn)
    return out


def _flat(report: dict[str, Any]) -> dict[tuple[str, str], float]:
    """(class or 'combined', field) -> value of a :func:`combine` report."""
    out = {(cls, f): float(v) for cls, fields in report["per_class"].items() for f, v in fields.items()}
    out.update({("combined", f): float(v) for f, v in report["combined"].items()})
    return out


def bootstrap(res: Raw, groups: Sequence[Sequence[str]], fields: Sequence[str], *, n: int, seed: int,
              level: float) -> dict[str, dict[str, dict[str, float]]]:
    """Percentile intervals of every class's and the combined ``fields`` over ``n`` draws.

    Returns ``{cls or 'combined': {field: {"lo": .., "hi": ..}}}``. A class absent from a draw
    (no boxes of it in the drawn videos) is left out of that draw.
    """
    samples: dict[tuple[str, str], list[float]] = {}
    for names in draws(groups, n, seed):
        for key, value in _flat(combine(res, names, fields, quiet=True)).items():
            samples.setdefault(key, []).append(value)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (cls, field), values in sorted(samples.items()):
        lo, hi = percentile_interval(values, level)
        out.setdefault(cls, {})[field] = {"lo": round(lo, 4), "hi": round(hi, 4)}
    return out


def paired(res_a: Raw, res_b: Raw, groups: Sequence[Sequence[str]], keys: Callable[[dict], dict[str, float]], *,
           n: int, seed: int, level: float, fields: Sequence[str] = ("HOTA", "IDF1")) -> dict[str, dict[str, Any]]:
    """``b - a`` for every value ``keys`` picks from the two runs' reports on the same videos.

    ``keys(report) -> {name: value}`` (e.g. ``{"bdd_person_HOTA": ...}``). Returns per name
    ``{"delta", "lo", "hi", "verdict"}``: the difference on all videos, its paired percentile
    interval and the verdict.
    """
    return paired_values(lambda names: keys(combine(res_a, names, fields, quiet=True)),
                         lambda names: keys(combine(res_b, names, fields, quiet=True)),
                         groups, n=n, seed=seed, level=level)


Combiner = Callable[[Sequence[str]], dict[str, float]]  # drawn video names -> {name: value}


def paired_values(value_a: Combiner, value_b: Combiner, groups: Sequence[Sequence[str]], *, n: int, seed: int,
                  level: float) -> dict[str, dict[str, Any]]:
    """:func:`paired` for any metric: ``value_x(names)`` combines run x's records of the drawn
    videos (a video drawn twice counts twice) into ``{name: value}``; a name absent from a draw
    (nothing of it in the drawn videos) is left out of that draw."""
    names = [s for group in groups for s in group]
    base_a, base_b = value_a(names), value_b(names)
    diffs: dict[str, list[float]] = {}
    for drawn in draws(groups, n, seed):
        a, b = value_a(drawn), value_b(drawn)
        for name in set(a) & set(b):
            diffs.setdefault(name, []).append(b[name] - a[name])
    out = {}
    for name in sorted(set(base_a) & set(base_b)):
        lo, hi = percentile_interval(diffs.get(name, [0.0]), level)
        out[name] = {"delta": round(base_b[name] - base_a[name], 4), "lo": round(lo, 4), "hi": round(hi, 4),
                     "verdict": verdict(lo, hi)}
    return out


def interval_values(value: Combiner, groups: Sequence[Sequence[str]], *, n: int, seed: int,
                    level: float) -> dict[str, dict[str, float]]:
    """``{name: {"value", "lo", "hi"}}``: each value on all videos and its percentile interval over
    ``n`` stratified draws (the :func:`bootstrap` of a metric that is not TrackEval's)."""
    base = value([s for group in groups for s in group])
    samples: dict[str, list[float]] = {}
    for drawn in draws(groups, n, seed):
        for name, v in value(drawn).items():
            samples.setdefault(name, []).append(v)
    out = {}
    for name in sorted(base):
        lo, hi = percentile_interval(samples.get(name, [base[name]]), level)
        out[name] = {"value": round(base[name], 4), "lo": round(lo, 4), "hi": round(hi, 4)}
    return out
