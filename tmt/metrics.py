"""Evaluation metrics for 3D poses (N, J, 3), computed in float64.

Errors come back in the unit of the input (metres in the project; multiply by 1000 for the mm of the tables).
Per-frame variants return one value per frame so that errors can be pooled over sequences with the right frame
weighting (see ``action_average``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from tmt.errors import DataError
from tmt.skeleton import MPI_INF_3DHP_PCK_JOINTS

AUC_THRESHOLDS: tuple[float, ...] = tuple(round(0.005 * i, 3) for i in range(31))
"""MPI-INF-3DHP AUC thresholds 0, 5, ..., 150 mm, in metres."""

_EPS = 1e-12


def _pair(pred: np.ndarray, gt: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise DataError(f"{name}: prediction {pred.shape} and ground truth {gt.shape} must both be (N, J, C)")
    return pred, gt


def per_frame_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) mean joint distance of every frame (Protocol 1)."""
    pred, gt = _pair(pred, gt, "per_frame_mpjpe")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error over all frames and joints."""
    return float(per_frame_mpjpe(pred, gt).mean())


def per_joint_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(J,) position error of every joint, averaged over frames."""
    pred, gt = _pair(pred, gt, "per_joint_mpjpe")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=0)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``pred`` moved onto ``gt`` frame by frame by the best similarity (scale, rotation, translation).

    The rotation is proper (det R = +1): a mirrored prediction is not reflected back, so it keeps its error.
    """
    pred, gt = _pair(pred, gt, "procrustes_align")
    mu_pred = pred.mean(axis=1, keepdims=True)
    mu_gt = gt.mean(axis=1, keepdims=True)
    p0 = pred - mu_pred
    g0 = gt - mu_gt
    # Maximise trace(R^T H) with H = p0^T g0 over rotations R (Kabsch), applied as p0 @ R.
    h = np.einsum("nji,njk->nik", p0, g0)
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    flip = np.ones_like(s)
    flip[:, -1] = d
    r = u @ (flip[:, :, None] * vt)
    scale = (s * flip).sum(axis=1) / np.maximum((p0**2).sum(axis=(1, 2)), _EPS)
    return scale[:, None, None] * (p0 @ r) + mu_gt


def per_frame_p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) MPJPE after per-frame Procrustes alignment (Protocol 2)."""
    return per_frame_mpjpe(procrustes_align(pred, gt), gt)


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(per_frame_p_mpjpe(pred, gt).mean())


def per_frame_n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) MPJPE after the per-frame least-squares scale ``s = sum <P_hat, P> / sum ||P_hat||^2``."""
    pred, gt = _pair(pred, gt, "per_frame_n_mpjpe")
    scale = (pred * gt).sum(axis=(1, 2)) / np.maximum((pred**2).sum(axis=(1, 2)), _EPS)
    return per_frame_mpjpe(scale[:, None, None] * pred, gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(per_frame_n_mpjpe(pred, gt).mean())


def per_frame_mpjve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N - 1,) mean joint error of frame-to-frame velocities (inputs: consecutive frames of a sequence)."""
    pred, gt = _pair(pred, gt, "per_frame_mpjve")
    return np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1).mean(axis=-1)


def mpjve(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint velocity error of one sequence (needs at least two frames)."""
    errors = per_frame_mpjve(pred, gt)
    if errors.size == 0:
        raise DataError(f"mpjve: needs at least 2 consecutive frames, got {len(pred)}")
    return float(errors.mean())


def action_average(errors: Mapping[str, Sequence[np.ndarray]]) -> tuple[dict[str, float], float]:
    """Human3.6M aggregation: per action, then the unweighted mean over actions.

    ``errors`` maps an action name to per-frame error arrays (one per subject / camera / sub-sequence). Names
    are grouped by the part before the first space (``"Walking 1"`` and ``"Walking"`` are both ``Walking``);
    within a group every frame counts once (the arrays are concatenated), and the average weighs every group
    equally.
    """
    groups: dict[str, list[np.ndarray]] = {}
    for action, arrays in errors.items():
        groups.setdefault(action.split(" ")[0], []).extend(
            np.asarray(a, dtype=np.float64).ravel() for a in arrays
        )
    if not groups:
        raise DataError("action_average: no actions given")
    per_group: dict[str, float] = {}
    for group, arrays in groups.items():
        frames = np.concatenate(arrays) if arrays else np.empty(0)
        if frames.size == 0:
            raise DataError(f"action_average: action {group!r} has no frames")
        per_group[group] = float(frames.mean())
    return per_group, float(np.mean(list(per_group.values())))


def _joint_distances(pred: np.ndarray, gt: np.ndarray, joints: Iterable[int] | None, name: str) -> np.ndarray:
    pred, gt = _pair(pred, gt, name)
    if joints is not None:
        joints = list(joints)
        pred, gt = pred[:, joints], gt[:, joints]
    return np.linalg.norm(pred - gt, axis=-1)


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    threshold: float = 0.150,
    joints: Iterable[int] | None = MPI_INF_3DHP_PCK_JOINTS,
) -> float:
    """Fraction of joints within ``threshold`` (input units; 150 mm by default) of the ground truth.

    ``joints`` defaults to the 14 joints the official MPI-INF-3DHP scripts count; None uses all joints.
    """
    return float((_joint_distances(pred, gt, joints, "pck") <= threshold).mean())


def auc(
    pred: np.ndarray,
    gt: np.ndarray,
    thresholds: Sequence[float] | np.ndarray = AUC_THRESHOLDS,
    joints: Iterable[int] | None = MPI_INF_3DHP_PCK_JOINTS,
) -> float:
    """Area under the PCK curve: the mean PCK over ``thresholds`` (0, 5, ..., 150 mm by default)."""
    dist = _joint_distances(pred, gt, joints, "auc")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return float((dist[..., None] <= thresholds).mean())
