"""Global motion compensation: the camera's frame-to-frame motion, applied to the tracks.

A moving camera (a drone drifting, a car driving) shifts every object in the image by the same
amount, and a constant-velocity Kalman filter in image coordinates does not know it: a box a
few pixels wide that the camera moved by two pixels overlaps its prediction much less, and
IoU association fails on exactly the small aerial objects that need it most. BoT-SORT
(Aharon et al., 2022) estimates the camera's motion as a 2-D affine transform between
consecutive frames and moves every track's Kalman state with it before matching. This module
does the same with BoT-SORT's default method, sparse optical flow:

1. the previous and the current frame are converted to grey and downscaled by ``downscale``
   (0 = by the longer side / 960, rounded: 2 for 1080p as BoT-SORT, 1 for small frames);
2. Shi-Tomasi corners of the previous frame are tracked into the current one with pyramidal
   Lucas-Kanade flow;
3. a 4-degree-of-freedom similarity (rotation, uniform scale, translation) is fitted to the
   point pairs with RANSAC, so the moving objects' points count as outliers; its translation
   is scaled back to full resolution.

The RANSAC threshold is given in full-resolution pixels and is tight by default (0.5 px, where
OpenCV's and BoT-SORT's default is 3): objects move a pixel or two per frame, and a loose
threshold takes their points as inliers, biasing the fit towards their motion. On the
synthetic videos (static bdd/dancetrack cameras, a visdrone camera moving in whole pixels) a
3 px threshold estimated a constant 0.2-0.5 px drift for still cameras, 0.5 px recovers 0 and
the 1 px steps to within a few hundredths.

Too few points (a flat or blank frame) or a failed fit give the identity: GMC never makes a
frame worse than no GMC. :func:`warp_states` applies the transform to Kalman states
(``x, y, w, h`` and their velocities, :mod:`.kalman`): positions are rotated, scaled and
shifted, sizes and velocities rotated and scaled, covariances transformed alike.

Functions are pure; :class:`CameraMotion` only remembers the previous frame of one video.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from .config import GmcConfig

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def downscale_of(cfg: GmcConfig, width: int, height: int) -> int:
    """The factor frames are shrunk by: ``cfg.downscale``, or from the frame size when it is 0."""
    return cfg.downscale if cfg.downscale > 0 else max(1, round(max(width, height) / 960))


def _prepare(image: np.ndarray, downscale: int) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if downscale > 1:
        h, w = grey.shape[:2]
        grey = cv2.resize(grey, (max(w // downscale, 1), max(h // downscale, 1)), interpolation=cv2.INTER_AREA)
    return grey


def estimate_affine(prev: np.ndarray, cur: np.ndarray, cfg: GmcConfig, downscale: int = 1) -> np.ndarray:
    """(2, 3) affine mapping pixel coordinates of ``prev`` to ``cur``.

    ``prev`` and ``cur`` are grey frames already shrunk by ``downscale``; the translation is
    returned at full resolution.
    """
    points = cv2.goodFeaturesToTrack(prev, maxCorners=cfg.max_corners, qualityLevel=cfg.quality_level,
                                     minDistance=cfg.min_distance, blockSize=3)
    if points is None or len(points) < cfg.min_points:
        return IDENTITY.copy()
    moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, points, None)
    ok = status.reshape(-1) == 1
    if ok.sum() < cfg.min_points:
        return IDENTITY.copy()
    affine, inliers = cv2.estimateAffinePartial2D(points[ok], moved[ok], method=cv2.RANSAC,
                                                  ransacReprojThreshold=cfg.ransac_thresh / downscale)
    if affine is None or inliers is None or int(inliers.sum()) < cfg.min_points:
        return IDENTITY.copy()
    affine = affine.astype(np.float64)
    affine[:, 2] *= downscale
    return affine


class CameraMotion:
    """Frame-to-frame camera motion of one video: feed frames in order with :meth:`step`."""

    def __init__(self, cfg: GmcConfig) -> None:
        self.cfg = cfg
        self._prev: np.ndarray | None = None

    def step(self, image: np.ndarray | None) -> np.ndarray:
        """Affine from the previous frame to ``image`` (identity for the first, or without images)."""
        if self.cfg.method == "none" or image is None:
            return IDENTITY.copy()
        scale = downscale_of(self.cfg, image.shape[1], image.shape[0])
        cur = _prepare(image, scale)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return IDENTITY.copy()
        return estimate_affine(prev, cur, self.cfg, scale)


def camera_motion(images: Iterable[np.ndarray | None], cfg: GmcConfig) -> Iterator[np.ndarray]:
    """The affine of every frame of a video, from its frames in order."""
    gmc = CameraMotion(cfg)
    for image in images:
        yield gmc.step(image)


def is_identity(affine: np.ndarray | None) -> bool:
    return affine is None or bool(np.array_equal(affine, IDENTITY))


def warp_states(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move ``(N, 8)`` Kalman means and ``(N, 8, 8)`` covariances by a (2, 3) camera affine.

    Every (x, y)-like pair of the state (centre, size, their velocities) is multiplied by the
    affine's linear part; the centre is also translated (as BoT-SORT's ``multi_gmc``).
    """
    linear = affine[:, :2]
    big = np.kron(np.eye(4), linear)                               # (8, 8): the linear part per pair
    mean = mean @ big.T
    mean[:, :2] += affine[:, 2]
    cov = big @ cov @ big.T
    return mean, cov
