"""Kalman filter (xywh, constant velocity): hand-computed 1-D cases and batch consistency."""

from __future__ import annotations

import numpy as np
import pytest

from stagetrack.track.kalman import KalmanFilter, tlwh_to_xywh, xywh_to_tlwh

# Noise weights chosen so that, for a 10 x 10 box, every standard deviation is a round number:
# initiate: std_pos = 2 * 0.1 * 10 = 2 (var 4), std_vel = 10 * 0.05 * 10 = 5 (var 25);
# predict noise: q_pos = (0.1 * 10)^2 = 1, q_vel = (0.05 * 10)^2 = 0.25; measurement r = 1.
KF = dict(std_weight_position=0.1, std_weight_velocity=0.05)
BOX = np.array([0.0, 0.0, 10.0, 10.0])  # x, y, w, h (centre)


def test_initiate_zero_velocity_and_scaled_variances():
    mean, cov = KalmanFilter(**KF).initiate(BOX)
    np.testing.assert_allclose(mean, [0, 0, 10, 10, 0, 0, 0, 0])
    np.testing.assert_allclose(np.diag(cov), [4, 4, 4, 4, 25, 25, 25, 25])
    assert np.count_nonzero(cov - np.diag(np.diag(cov))) == 0


def test_predict_update_one_dimension_by_hand():
    kf = KalmanFilter(**KF)
    mean, cov = kf.predict(*kf.initiate(BOX))
    # P' = F P F^T + Q on the (x, vx) block: [[4 + 25 + 1, 25], [25, 25 + 0.25]]
    np.testing.assert_allclose(cov[np.ix_([0, 4], [0, 4])], [[30, 25], [25, 25.25]])
    np.testing.assert_allclose(mean, [0, 0, 10, 10, 0, 0, 0, 0])
    # Measure x = 3: S = 30 + 1 = 31, K = [30, 25] / 31 -> x = 90/31, vx = 75/31,
    # P = P' - K S K^T = [[30 - 900/31, 25 - 750/31], [., 25.25 - 625/31]].
    mean, cov = kf.update(mean, cov, np.array([3.0, 0.0, 10.0, 10.0]))
    np.testing.assert_allclose(mean[[0, 4]], [90 / 31, 75 / 31])
    np.testing.assert_allclose(mean[[1, 2, 3, 5, 6, 7]], [0, 10, 10, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(cov[np.ix_([0, 4], [0, 4])],
                               [[30 / 31, 25 / 31], [25 / 31, 25.25 - 625 / 31]])
    assert cov[0, 1] == 0 and cov[0, 5] == 0  # axes stay independent
    # Next predict moves x by the estimated velocity: 90/31 + 75/31.
    mean, _ = kf.predict(mean, cov)
    assert mean[0] == pytest.approx(165 / 31)


def test_nsa_scales_measurement_noise_by_score():
    kf = KalmanFilter(**KF, nsa=True)
    mean, cov = kf.predict(*kf.initiate(BOX))
    # r = 1 * (1 - 0.5) = 0.5 -> S = 30.5, x = 30 / 30.5 * 3
    mean, _ = kf.update(mean, cov, np.array([3.0, 0.0, 10.0, 10.0]), score=0.5)
    assert mean[0] == pytest.approx(30 / 30.5 * 3)


def test_constant_velocity_is_learned():
    kf = KalmanFilter()
    mean, cov = kf.initiate(np.array([0.0, 0.0, 20.0, 40.0]))
    for t in range(1, 40):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, np.array([2.0 * t, -1.0 * t, 20.0, 40.0]))
    np.testing.assert_allclose(mean[4:6], [2.0, -1.0], atol=0.05)


def test_batched_equals_single():
    kf = KalmanFilter()
    rng = np.random.default_rng(0)
    boxes = np.c_[rng.uniform(0, 100, (3, 2)), rng.uniform(10, 50, (3, 2))]
    mean, cov = kf.initiate(boxes)
    mean[:, 4:] = rng.normal(0, 2, (3, 4))
    bm, bc = kf.multi_predict(mean, cov)
    meas = boxes + rng.normal(0, 1, boxes.shape)
    um, uc = kf.update(bm, bc, meas)
    for i in range(3):
        sm, sc = kf.predict(mean[i], cov[i])
        np.testing.assert_allclose(sm, bm[i])
        np.testing.assert_allclose(sc, bc[i])
        sm, sc = kf.update(sm, sc, meas[i])
        np.testing.assert_allclose(sm, um[i])
        np.testing.assert_allclose(sc, uc[i])


def test_gating_distance_by_hand():
    kf = KalmanFilter(**KF)
    mean = np.array([[0.0, 0.0, 10.0, 10.0, 0, 0, 0, 0]])
    cov = np.zeros((1, 8, 8))  # only the measurement noise remains: R = I (std 0.1 * 10 = 1)
    meas = np.array([[3.0, 4.0, 10.0, 10.0], [0.0, 0.0, 12.0, 10.0]])
    np.testing.assert_allclose(kf.gating_distance(mean, cov, meas), [[25.0, 4.0]])
    np.testing.assert_allclose(kf.gating_distance(mean, cov, meas, only_position=True), [[25.0, 0.0]])
    assert kf.gating_distance(mean, cov, np.zeros((0, 4))).shape == (1, 0)


def test_box_conversions_round_trip():
    tlwh = np.array([[10.0, 20.0, 4.0, 6.0]])
    np.testing.assert_allclose(tlwh_to_xywh(tlwh), [[12.0, 23.0, 4.0, 6.0]])
    np.testing.assert_allclose(xywh_to_tlwh(tlwh_to_xywh(tlwh)), tlwh)
