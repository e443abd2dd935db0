"""2D keypoints of controlled quality (paper Sec. 3.2, Eq. 2), for the m-sweep of Table 8."""

from __future__ import annotations

import math

import numpy as np

from tmt.errors import ConfigError, DataError


def mix_towards_gt(detected: np.ndarray, gt: np.ndarray, m: float) -> np.ndarray:
    """Move detected keypoints a fraction ``m`` of the way to the ground truth: ``K + m (GT - K)`` (Eq. 2).

    Evaluated as ``(1 - m) K + m GT`` in float64: the same line, but exactly ``K`` at m = 0 and exactly ``GT``
    at m = 1. The result has the inputs' common floating dtype.
    """
    if isinstance(m, bool) or not isinstance(m, (int, float, np.floating, np.integer)):
        raise ConfigError(f"mix_towards_gt: m must be a number in [0, 1], got {m!r}")
    if not math.isfinite(float(m)) or not 0.0 <= float(m) <= 1.0:
        raise ConfigError(f"mix_towards_gt: m must be in [0, 1] (paper Eq. 2), got {m}")
    detected = np.asarray(detected)
    gt = np.asarray(gt)
    if detected.shape != gt.shape:
        raise DataError(
            f"mix_towards_gt: detected keypoints {detected.shape} and ground-truth keypoints {gt.shape} "
            "must have the same shape (truncate the 2D sequence to the mocap length first)"
        )
    dtype = np.result_type(detected.dtype, gt.dtype, np.float32)
    m = float(m)
    mixed = (1.0 - m) * detected.astype(np.float64) + m * gt.astype(np.float64)
    return mixed.astype(dtype, copy=False)
