"""Camera motion compensation: the estimate on frames whose motion is known by construction, the
warp of Kalman states derived by hand, and the tracker keeping IDs under a moving camera."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stagetrack.data.sequence import PERSON, VEHICLE
from stagetrack.inference import Observations, track
from stagetrack.track.config import GmcConfig, KalmanConfig, TrackerConfig
from stagetrack.track.gmc import IDENTITY, CameraMotion, camera_motion, downscale_of, is_identity, warp_states
from stagetrack.track.kalman import KalmanFilter
from stagetrack.track.tracker import Detections, Tracker

SIZE = (320, 240)


def _world(seed: int = 0, h: int = 400, w: int = 560) -> np.ndarray:
    """A textured BGR canvas (smoothed noise: corners everywhere, like grass or asphalt)."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas = rng.integers(0, 255, (h // 4, w // 4, 3)).astype(np.uint8)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_CUBIC)


def _view(world: np.ndarray, x: int, y: int, size=SIZE) -> np.ndarray:
    return world[y:y + size[1], x:x + size[0]].copy()


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, 0), (-2, 5), (1, -1)])
def test_translation_of_a_panning_camera_is_recovered(dx, dy):
    world = _world()
    prev, cur = _view(world, 100, 80), _view(world, 100 + dx, 80 + dy)
    gmc = CameraMotion(GmcConfig())
    assert is_identity(gmc.step(prev))                    # first frame: nothing to compare with
    affine = gmc.step(cur)
    # the camera moved by (+dx, +dy): the image content moves by (-dx, -dy)
    np.testing.assert_allclose(affine[:, 2], [-dx, -dy], atol=0.05)
    np.testing.assert_allclose(affine[:, :2], np.eye(2), atol=0.005)


def test_large_frames_are_downscaled_and_the_translation_comes_back_full_size():
    world = _world(1, 1300, 2100)
    size = (1920, 1080)
    assert downscale_of(GmcConfig(), *size) == 2 and downscale_of(GmcConfig(), *SIZE) == 1
    assert downscale_of(GmcConfig(downscale=3), *SIZE) == 3
    affines = list(camera_motion([_view(world, 50, 50, size), _view(world, 56, 46, size)], GmcConfig()))
    np.testing.assert_allclose(affines[1][:, 2], [-6, 4], atol=0.2)


def test_moving_objects_do_not_drag_a_still_camera():
    # a still textured background with a bright block moving 2 px per frame covering 10% of it
    world = _world(2)
    frames = []
    for t in range(3):
        frame = _view(world, 0, 0).copy()
        frame[60:140, 40 + 2 * t:140 + 2 * t] = _world(3)[:80, :100]  # textured: its corners track too
        frames.append(frame)
    for affine in camera_motion(frames, GmcConfig()):
        np.testing.assert_allclose(affine[:, 2], [0, 0], atol=0.05)


def test_flat_frames_and_method_none_give_the_identity():
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert all(is_identity(a) for a in camera_motion([flat, flat, flat], GmcConfig()))
    world = _world()
    moving = [_view(world, 0, 0), _view(world, 5, 0)]
    assert all(is_identity(a) for a in camera_motion(moving, GmcConfig(method="none")))
    assert is_identity(CameraMotion(GmcConfig()).step(None))


def test_warp_of_kalman_states_by_hand():
    mean = np.array([[10.0, 20.0, 4.0, 6.0, 1.0, -1.0, 0.5, 0.0]])
    cov = np.diag(np.arange(1.0, 9.0))[None]
    shift = np.array([[1.0, 0.0, -3.0], [0.0, 1.0, 2.0]])
    m, c = warp_states(mean.copy(), cov.copy(), shift)
    np.testing.assert_allclose(m, [[7.0, 22.0, 4.0, 6.0, 1.0, -1.0, 0.5, 0.0]])  # only the centre moves
    np.testing.assert_allclose(c, cov)
    zoom = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 0.0]])                          # the camera zooms in 2x
    m, c = warp_states(mean.copy(), cov.copy(), zoom)
    np.testing.assert_allclose(m, [[21.0, 40.0, 8.0, 12.0, 2.0, -2.0, 1.0, 0.0]])
    np.testing.assert_allclose(c, 4 * cov)
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])                         # 90 degrees
    m, _ = warp_states(mean.copy(), cov.copy(), turn)
    np.testing.assert_allclose(m[0, :2], [-20.0, 10.0])
    np.testing.assert_allclose(m[0, 4:6], [1.0, 1.0])


def _panning(n: int, step: float) -> tuple[list[Detections], list[np.ndarray]]:
    """Two still 4x4 px objects seen by a camera panning right by ``step`` px per frame."""
    frames, camera = [], []
    for t in range(n):
        x = np.array([100.0, 200.0]) - step * t
        frames.append(Detections(np.stack([x, [50.0, 90.0], [4.0, 4.0], [4.0, 4.0]], axis=1),
                                 [0.9, 0.9], [VEHICLE, PERSON]))
        camera.append(IDENTITY.copy() if t == 0 else np.array([[1.0, 0.0, -step], [0.0, 1.0, 0.0]]))
    return frames, camera


def test_tracker_keeps_ids_under_a_panning_camera_only_with_its_motion():
    frames, camera = _panning(10, step=5.0)   # 5 px shift of a 4 px box: no overlap with the last position
    obs = Observations("pan", SIZE, 30.0, frames, camera)
    exact = TrackerConfig(iou_min_size=0.0)   # IoU of the boxes as they are (small boxes not grown)
    with_gmc = track(obs, exact)
    assert sorted(np.unique(with_gmc["id"]).tolist()) == [1, 2] and len(with_gmc) == 20
    without = track(dataclasses.replace(obs, camera=None), exact)
    # without the camera's motion every frame's boxes overlap nothing: the first frame's tracks are
    # lost at once and no new track is ever confirmed (its box moved again by the next frame)
    assert without["frame"].tolist() == [1, 1]
    # the same observations tracked with gmc.method none ignore the measured motion
    off = track(obs, TrackerConfig(iou_min_size=0.0, gmc=GmcConfig(method="none")))
    np.testing.assert_array_equal(off, without)


def test_class_velocity_priors_reach_the_kalman_state():
    cfg = TrackerConfig(kalman=KalmanConfig(std_weight_position=0.05, std_weight_velocity=0.02,
                                            std_weight_velocity_vehicle=0.005))
    tracker = Tracker(cfg)
    tracker.update(Detections([[0, 0, 10, 10], [50, 0, 10, 10]], [0.9, 0.9], [PERSON, VEHICLE]), SIZE)
    person, vehicle = sorted(tracker.tracks, key=lambda t: t.cls)
    # initiate: velocity std = 10 x weight x side (10 px)
    assert person.covariance[4, 4] == pytest.approx((10 * 0.02 * 10) ** 2)
    assert vehicle.covariance[4, 4] == pytest.approx((10 * 0.005 * 10) ** 2)
    kf = KalmanFilter(0.05, 0.02)
    _, c = kf.multi_predict(np.stack([person.mean, vehicle.mean]), np.stack([person.covariance, vehicle.covariance]),
                            np.array([0.02, 0.005]))
    # predict adds (weight x side)^2 to the velocity variance
    assert c[0, 4, 4] == pytest.approx((10 * 0.02 * 10) ** 2 + (0.02 * 10) ** 2)
    assert c[1, 4, 4] == pytest.approx((10 * 0.005 * 10) ** 2 + (0.005 * 10) ** 2)
    same = TrackerConfig(kalman=KalmanConfig(std_weight_velocity=0.02, std_weight_velocity_vehicle=None))
    assert same.kalman.velocity_by_class() == (0.02, 0.02)
