"""A stateless constant-velocity Kalman filter over boxes in ``xywh`` (centre x, y, width, height).

The state is ``(x, y, w, h, vx, vy, vw, vh)``; the measurement is the box ``(x, y, w, h)``.
Process and measurement noise are proportional to the box's own width (for x and w) and
height (for y and h), so the filter behaves the same at every scale and on either axis.

Why ``xywh`` rather than ByteTrack's ``xyah`` (aspect ratio + height): the aspect ratio gets a
fixed, tiny noise (1e-2) in ``xyah``, so a box whose shape changes (a car turning in an aerial
view, a dancer stretching an arm) lags behind its detections, and width errors scale with the
height. BoT-SORT measured tighter boxes and higher MOTA/IDF1 with the ``xywh`` state; this
project tracks vehicles from above, where widths and heights swap as cars turn.

The filter holds no track state: every method maps ``(mean, cov)`` to a new ``(mean, cov)``.
All methods work on a single track (``(8,)``, ``(8, 8)``) or a batch (``(N, 8)``,
``(N, 8, 8)``) alike, through leading-dimension broadcasting.
"""

from __future__ import annotations

import numpy as np

NDIM = 4  # measured components: x, y, w, h


def tlwh_to_xywh(tlwh: np.ndarray) -> np.ndarray:
    """(..., 4) top-left-width-height -> (..., 4) centre-width-height."""
    out = np.array(tlwh, dtype=np.float64, copy=True)
    out[..., :2] += out[..., 2:] / 2
    return out


def xywh_to_tlwh(xywh: np.ndarray) -> np.ndarray:
    """(..., 4) centre-width-height -> (..., 4) top-left-width-height."""
    out = np.array(xywh, dtype=np.float64, copy=True)
    out[..., :2] -= out[..., 2:] / 2
    return out


class KalmanFilter:
    """Constant-velocity Kalman filter in ``xywh``; see the module docstring.

    ``std_weight_position`` and ``std_weight_velocity`` are the standard deviations of position
    and velocity noise as fractions of the box side (ByteTrack: 1/20 and 1/160). With ``nsa``
    the measurement noise is scaled by ``1 - score`` (NSA Kalman, GIAOTracker/StrongSORT), so
    confident detections pull the state harder.

    :meth:`initiate` and :meth:`multi_predict` take an optional per-box ``velocity_weight``
    (leading shape of the boxes) that replaces ``std_weight_velocity``: the tracker gives people
    and vehicles different motion priors this way.
    """

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160,
                 nsa: bool = False) -> None:
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.nsa = bool(nsa)
        self._motion_mat = np.eye(2 * NDIM)
        self._motion_mat[:NDIM, NDIM:] = np.eye(NDIM)  # position += velocity (dt = 1 frame)

    def _side(self, mean: np.ndarray) -> np.ndarray:
        """(..., 4) scale of each measured component: (w, h, w, h) of the box."""
        w, h = mean[..., 2], mean[..., 3]
        return np.stack([w, h, w, h], axis=-1)

    def _velocity(self, velocity_weight: np.ndarray | None) -> np.ndarray | float:
        if velocity_weight is None:
            return self.std_weight_velocity
        return np.asarray(velocity_weight, dtype=np.float64)[..., None]

    def initiate(self, measurement: np.ndarray,
                 velocity_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """New track(s) from ``(..., 4)`` xywh boxes: zero velocity, wide uncertainty."""
        measurement = np.asarray(measurement, dtype=np.float64)
        mean = np.concatenate([measurement, np.zeros_like(measurement)], axis=-1)  # (..., 8)
        side = self._side(measurement)
        std = np.concatenate([2 * self.std_weight_position * side,
                              10 * self._velocity(velocity_weight) * side], axis=-1)
        return mean, _diag(np.square(std))

    def multi_predict(self, mean: np.ndarray, covariance: np.ndarray,
                      velocity_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead for ``(N, 8)`` means and ``(N, 8, 8)`` covariances (any leading dims)."""
        side = self._side(mean)
        std = np.concatenate([self.std_weight_position * side, self._velocity(velocity_weight) * side], axis=-1)
        mean = mean @ self._motion_mat.T
        covariance = self._motion_mat @ covariance @ self._motion_mat.T + _diag(np.square(std))
        return mean, covariance

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead for one track (``(8,)``, ``(8, 8)``); same maths as :meth:`multi_predict`."""
        return self.multi_predict(np.asarray(mean, dtype=np.float64), np.asarray(covariance, dtype=np.float64))

    def project(self, mean: np.ndarray, covariance: np.ndarray,
                score: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """State -> measurement space: ``(..., 4)`` mean and ``(..., 4, 4)`` innovation covariance."""
        var = np.square(self.std_weight_position * self._side(mean))
        if self.nsa and score is not None:
            var = var * np.maximum(1.0 - np.asarray(score, dtype=np.float64), 0.05)[..., None]
        return mean[..., :NDIM], covariance[..., :NDIM, :NDIM] + _diag(var)

    def update(self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray,
               score: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Correct predicted state(s) with ``(..., 4)`` xywh measurement(s).

        ``score`` (detection confidence, same leading shape) is used only when ``nsa`` is on.
        """
        proj_mean, proj_cov = self.project(mean, covariance, score)       # (..., 4), (..., 4, 4)
        hp = covariance[..., :NDIM, :]                                      # (..., 4, 8) = H P
        gain_t = np.linalg.solve(proj_cov, hp)                              # (..., 4, 8) = K^T
        innovation = np.asarray(measurement, dtype=np.float64) - proj_mean  # (..., 4)
        new_mean = mean + (innovation[..., None, :] @ gain_t)[..., 0, :]
        new_cov = covariance - np.swapaxes(gain_t, -1, -2) @ hp             # P - K H P
        return new_mean, new_cov

    def gating_distance(self, mean: np.ndarray, covariance: np.ndarray, measurements: np.ndarray,
                        only_position: bool = False) -> np.ndarray:
        """Squared Mahalanobis distance of ``(M, 4)`` xywh measurements to ``(N, 8)`` states.

        Returns ``(N, M)``. Compare with the chi-square 95% quantile: 9.4877 for 4 degrees of
        freedom, 5.9915 for 2 (``only_position``).
        """
        mean = np.atleast_2d(mean)
        covariance = covariance.reshape(-1, 2 * NDIM, 2 * NDIM)
        measurements = np.asarray(measurements, dtype=np.float64).reshape(-1, NDIM)
        if len(mean) == 0 or len(measurements) == 0:
            return np.zeros((len(mean), len(measurements)))
        proj_mean, proj_cov = self.project(mean, covariance)
        k = 2 if only_position else NDIM
        inv = np.linalg.inv(proj_cov[:, :k, :k])                             # (N, k, k)
        d = measurements[None, :, :k] - proj_mean[:, None, :k]              # (N, M, k)
        return np.einsum("nmi,nij,nmj->nm", d, inv, d)


def _diag(values: np.ndarray) -> np.ndarray:
    """(..., K) -> (..., K, K) diagonal matrices."""
    k = values.shape[-1]
    out = np.zeros(values.shape + (k,))
    idx = np.arange(k)
    out[..., idx, idx] = values
    return out
