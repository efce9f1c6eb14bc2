"""Thresholded linear assignment (``lap.lapjv``; SciPy only when the caller asks for it).

lap and SciPy break ties differently, so the tracker never swaps one for the other quietly:
without ``lap`` installed the default path is an error naming the fix.
"""

from __future__ import annotations

import numpy as np

from ..errors import StagetrackError

try:
    import lap
except ImportError:  # pragma: no cover - lap is a declared dependency (requirements.lock)
    lap = None


def linear_assignment(cost: np.ndarray, thresh: float, *, use_lap: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching of rows to columns where no matched pair costs more than ``thresh``.

    Returns ``matches`` (K, 2) of (row, col), and the unmatched rows and columns (sorted).
    Leaving a row and a column unmatched costs ``thresh`` in total, so the solver prefers more
    matches only while they are cheap (lapjv's ``cost_limit`` extension; the SciPy path builds
    the same extended matrix, so both give the same assignment up to ties). Entries above
    ``thresh``, ``inf`` and NaN are never matched. A pair costing exactly ``thresh`` is a tie.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    # Anything above thresh is never worth matching; a finite stand-in keeps the solvers exact.
    cost = np.where(cost <= thresh, cost, thresh + 1.0)
    if use_lap and lap is None:
        raise StagetrackError("the tracker's assignment solver `lap` is not installed (SciPy breaks ties "
                              "differently, so it is no silent substitute)", hint="make install (requirements.lock)")
    if use_lap:
        _, x, _ = lap.lapjv(np.ascontiguousarray(cost), extend_cost=True, cost_limit=thresh)
        x = np.asarray(x, dtype=np.int64)
    else:
        from scipy.optimize import linear_sum_assignment

        ext = np.full((n + m, m + n), thresh / 2.0)
        ext[:n, :m] = cost
        ext[n:, m:] = 0.0
        rows, cols = linear_sum_assignment(ext)
        x = np.full(n, -1, dtype=np.int64)
        real = (rows < n) & (cols < m)
        x[rows[real]] = cols[real]
    matched_rows = np.flatnonzero(x >= 0)
    matches = np.stack([matched_rows, x[matched_rows]], axis=1)
    # Guard the tie at the limit and the thresh+1 stand-ins (never chosen, but cheap to be sure).
    matches = matches[cost[matches[:, 0], matches[:, 1]] <= thresh]
    free_rows = np.ones(n, dtype=bool)
    free_rows[matches[:, 0]] = False
    free_cols = np.ones(m, dtype=bool)
    free_cols[matches[:, 1]] = False
    return matches, np.flatnonzero(free_rows), np.flatnonzero(free_cols)
