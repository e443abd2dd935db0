"""Detector-like 2D keypoints: ground-truth 2D plus errors with the size and structure of a real 2D detector.

Per frame and joint, the error is the published per-joint bias and spread of a CPN-class detector on
Human3.6M (h36m.json ``detector_error_model_crop256_px``, in a 256x256 person crop, rescaled here to the
person's size in the image), plus a constant per-view offset (a detector's bias depends on the viewpoint).
The spread is drawn as temporally correlated jitter: an AR(1) part that drifts smoothly plus a white part that
flickers. On top come the gross errors of a frame-wise detector: in the share ``1 - weight`` of each joint's
frames an outlier of tens of pixels held for a few frames, and now and then a left/right limb swap for a few
frames. Each camera view is an independent detector run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tmt.cameras import h36m_metadata

# Left/right joint groups that get swapped together (17-joint indices): wrists, forearms, feet, shanks.
SWAP_GROUPS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((13,), (16,)),
    ((12, 13), (15, 16)),
    ((6,), (3,)),
    ((5, 6), (2, 3)),
)


@dataclass(frozen=True)
class DetectorModel:
    """Error model parameters; crop pixels are scaled by (crop_margin * person box size) / 256."""

    bias_crop: np.ndarray  # (17, 2) mean error (x, y) in crop px
    std_crop: np.ndarray  # (17, 2) spread (x, y) in crop px
    gross_share: np.ndarray  # (17,) share of frames with an outlier: 1 - weight of the published model
    crop_margin: float = 1.25  # top-down detectors crop the person box enlarged by this factor
    view_bias_crop: float = (
        1.0  # spread of an extra per-view, per-joint constant offset (viewpoint-dependent bias)
    )
    jitter_rho: float = 0.85  # AR(1) coefficient per frame (50 fps) of the correlated part
    jitter_smooth_share: float = 0.6  # variance share of the correlated part; the rest is white
    outlier_crop: tuple[float, float] = (8.0, 30.0)  # outlier size range, crop px
    outlier_frames: tuple[int, int] = (2, 10)
    swap_share: float = 0.006  # share of frames in which a given swap group is swapped
    swap_frames: tuple[int, int] = (3, 12)


def cpn_like_model() -> DetectorModel:
    """The default model: the published per-joint statistics of a CPN-class detector on Human3.6M."""
    table = np.asarray(h36m_metadata()["detector_error_model_crop256_px"]["values"], dtype=np.float64)
    return DetectorModel(bias_crop=table[:, 0:2], std_crop=table[:, 2:4], gross_share=1.0 - table[:, 4])


def person_scale(gt: np.ndarray, margin: float) -> np.ndarray:
    """(..., N) image px per crop px: the enlarged box around the person's joints mapped onto 256 px."""
    extent = gt.max(axis=-2) - gt.min(axis=-2)
    return margin * extent.max(axis=-1) / 256.0


def _jitter(rng: np.random.Generator, shape: tuple[int, ...], model: DetectorModel) -> np.ndarray:
    """Unit-variance noise of ``shape`` (views, N, 17, 2): an AR(1) part over frames plus a white part.

    The AR(1) process is drawn in its stationary state as a moving average of its impulse response
    (truncated where it falls below 1e-3).
    """
    rho = model.jitter_rho
    taps = rho ** np.arange(int(np.ceil(np.log(1e-3) / np.log(rho))))
    taps /= np.sqrt(np.sum(taps**2))
    views, n = shape[0], shape[1]
    shocks = rng.standard_normal((views, n + len(taps) - 1, *shape[2:]))
    windows = np.lib.stride_tricks.sliding_window_view(shocks, len(taps), axis=1)
    smooth = windows @ taps[::-1]
    share = model.jitter_smooth_share
    return np.sqrt(share) * smooth + np.sqrt(1.0 - share) * rng.standard_normal(shape)


def _episodes(
    rng: np.random.Generator, views: int, n: int, share: np.ndarray, frames: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Random episodes covering about ``share`` of the frames of each column, per view.

    Returns the (views, n, M) mask of covered frames and, for every frame, the start frame of the latest
    episode (so that all frames of an episode share one draw).
    """
    m = len(share)
    mean_len = 0.5 * (frames[0] + frames[1])
    starts = rng.random((views, n, m)) < np.asarray(share) / mean_len
    length = rng.integers(frames[0], frames[1] + 1, size=(views, n, m))
    v, t, col = np.nonzero(starts)
    delta = np.zeros((views, n + 1, m), dtype=np.int64)
    np.add.at(delta, (v, t, col), 1)
    np.add.at(delta, (v, np.minimum(t + length[v, t, col], n), col), -1)
    mask = np.cumsum(delta[:, :-1], axis=1) > 0
    latest = np.maximum.accumulate(np.where(starts, np.arange(n)[:, None], 0), axis=1)
    return mask, latest


def detect(gt: np.ndarray, rng: np.random.Generator, model: DetectorModel) -> np.ndarray:
    """Ground-truth 2D (views, N, 17, 2) px -> detector-like 2D of the same shape, float32 px.

    Views are independent detector runs (separate draws).
    """
    gt = np.asarray(gt, dtype=np.float64)
    views, n = gt.shape[:2]
    scale = person_scale(gt, model.crop_margin)[..., None, None]
    view_bias = model.view_bias_crop * rng.standard_normal((views, 1, 17, 2))
    error = model.bias_crop + view_bias + model.std_crop * _jitter(rng, gt.shape, model)

    mask, latest = _episodes(rng, views, n, model.gross_share, model.outlier_frames)
    size = rng.uniform(*model.outlier_crop, size=(views, n, 17))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=(views, n, 17))
    jump = size[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    jump = np.take_along_axis(jump, latest[..., None], axis=1)
    error += np.where(mask[..., None], jump, 0.0)
    out = gt + scale * error

    share = np.full(len(SWAP_GROUPS), model.swap_share)
    swapped, _ = _episodes(rng, views, n, share, model.swap_frames)
    for g, (left, right) in enumerate(SWAP_GROUPS):
        v, t = np.nonzero(swapped[..., g])
        out[v[:, None], t[:, None], list(left + right)] = out[v[:, None], t[:, None], list(right + left)]
    return out.astype(np.float32)


def mean_error_px(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Mean 2D distance (px) over all frames and joints of (ground truth, detected) pairs, and per joint (J,)."""
    total, frames = 0.0, 0
    for gt, detected in pairs:
        total = total + np.linalg.norm(detected.astype(np.float64) - gt, axis=-1).sum(axis=0)
        frames += len(gt)
    per_joint = np.asarray(total) / max(frames, 1)
    return float(per_joint.mean()), per_joint
