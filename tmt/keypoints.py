"""2D keypoint layouts a lifter accepts, the COCO -> Human3.6M conversion, and filling of missing joints.

The backbones are trained on the 17 Human3.6M joints (:data:`tmt.skeleton.H36M`). 2D detectors usually write
the 17 COCO keypoints instead, which lack the pelvis, spine, thorax and head. They are derived as MMPose's 2D
-> 3D demo does (``convert_keypoint_definition`` in ``demo/body3d_pose_lifter_demo.py``, the conversion most
lifting users apply to COCO detections):

=============  =========================================
Human3.6M      from COCO
=============  =========================================
Hip (pelvis)   mean of left_hip and right_hip
Spine          mean of the derived Hip and Thorax
Thorax         mean of left_shoulder and right_shoulder
Neck/Nose      nose
Head           mean of left_eye and right_eye
limbs          the same joint (RHip = right_hip, ...)
=============  =========================================

The ears are not used. A derived joint is missing (NaN) when any joint it is made from is missing.
"""

from __future__ import annotations

import numpy as np

from tmt.errors import ConfigError, DataError
from tmt.skeleton import H36M

COCO_JOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
"""The COCO person keypoints in the order every COCO-format file stores them."""

LAYOUTS: dict[str, tuple[str, ...]] = {"h36m": H36M.joint_names, "coco": COCO_JOINTS}
"""Joint names of every accepted input layout, in file order."""

_H36M_FROM_COCO: dict[str, str] = {
    "RHip": "right_hip",
    "RKnee": "right_knee",
    "RFoot": "right_ankle",
    "LHip": "left_hip",
    "LKnee": "left_knee",
    "LFoot": "left_ankle",
    "Neck/Nose": "nose",
    "LShoulder": "left_shoulder",
    "LElbow": "left_elbow",
    "LWrist": "left_wrist",
    "RShoulder": "right_shoulder",
    "RElbow": "right_elbow",
    "RWrist": "right_wrist",
}
"""Human3.6M joints that are COCO joints under another name."""


def check_layout(layout: str) -> tuple[str, ...]:
    """The joint names of ``layout``; an unknown name is a ConfigError listing the known ones."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout: unknown keypoint layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def _h36m(name: str) -> int:
    return H36M.index(name)


def _coco(name: str) -> int:
    return COCO_JOINTS.index(name)


def coco_to_h36m(points: np.ndarray) -> np.ndarray:
    """(..., 17, C) COCO keypoints -> (..., 17, C) Human3.6M joints (the MMPose convention above)."""
    points = np.asarray(points)
    out = np.empty_like(points, dtype=np.result_type(points, np.float32))
    for h36m_name, coco_name in _H36M_FROM_COCO.items():
        out[..., _h36m(h36m_name), :] = points[..., _coco(coco_name), :]
    pelvis = (points[..., _coco("left_hip"), :] + points[..., _coco("right_hip"), :]) / 2
    thorax = (points[..., _coco("left_shoulder"), :] + points[..., _coco("right_shoulder"), :]) / 2
    out[..., _h36m("Hip"), :] = pelvis
    out[..., _h36m("Thorax"), :] = thorax
    out[..., _h36m("Spine"), :] = (pelvis + thorax) / 2
    out[..., _h36m("Head"), :] = (points[..., _coco("left_eye"), :] + points[..., _coco("right_eye"), :]) / 2
    return out


def h36m_to_coco(points: np.ndarray) -> np.ndarray:
    """(..., 17, C) Human3.6M joints -> COCO keypoints, for examples and tests that need COCO input.

    COCO's eyes and ears have no Human3.6M counterpart; all four are placed at Head, so :func:`coco_to_h36m`
    gives Head back exactly (and Hip, Spine, Thorax as the midpoints it derives).
    """
    points = np.asarray(points)
    out = np.empty_like(points)
    for h36m_name, coco_name in _H36M_FROM_COCO.items():
        out[..., _coco(coco_name), :] = points[..., _h36m(h36m_name), :]
    for coco_name in ("left_eye", "right_eye", "left_ear", "right_ear"):
        out[..., _coco(coco_name), :] = points[..., _h36m("Head"), :]
    return out


def to_h36m(points: np.ndarray, layout: str) -> np.ndarray:
    """(N, 17, C) keypoints in ``layout`` -> Human3.6M joint order."""
    check_layout(layout)
    return coco_to_h36m(points) if layout == "coco" else np.asarray(points)


def fill_missing(points: np.ndarray, joint_names: tuple[str, ...], source: str) -> tuple[np.ndarray, dict]:
    """Fill NaN joints by linear interpolation over time (held at the first / last observed value).

    Returns the filled (N, J, C) array and the number of filled frames per joint name (joints with none are
    left out). A joint observed in no frame cannot be filled: DataError naming ``source`` and the joint.
    """
    out = np.array(points, dtype=np.float64)
    missing = ~np.isfinite(out).all(axis=-1)
    frames = np.arange(len(out))
    filled: dict[str, int] = {}
    for j, name in enumerate(joint_names):
        gap = missing[:, j]
        if not gap.any():
            continue
        if gap.all():
            raise DataError(
                f"{source}: joint {name} is missing or below the score threshold in all {len(out)} frames; "
                "interpolation cannot fill it"
            )
        for c in range(out.shape[-1]):
            out[gap, j, c] = np.interp(frames[gap], frames[~gap], out[~gap, j, c])
        filled[name] = int(gap.sum())
    return out, filled
