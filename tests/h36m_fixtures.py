"""Tiny data files in the exact real formats (VideoPose3D Human3.6M, P-STMO MPI-INF-3DHP), for tests.

The Human3.6M writer reproduces the real files' quirks: ``TakingPhoto`` / ``WalkingDog`` spellings (in the 3D
file for the first subject, in the 2D files for every other subject), 2D sequences that run longer than the
mocap (camera ``c`` has ``c`` extra frames), S11 ``Directions`` absent from the 2D files, and the ``metadata``
dict. The GT 2D is the projection of the 3D with the project's cameras, so loaders can be checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tmt.cameras import h36m_cameras, project_to_pixels, world_to_camera
from tmt.skeleton import H36M_JOINTS_KEPT_FROM_32

H36M_FIXTURE_SUBJECTS = ("S1", "S5", "S9", "S11")
H36M_FIXTURE_ACTIONS = ("Directions", "Photo", "WalkDog 1", "Walking 1")
H36M_METADATA = {
    "num_joints": 17,
    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
    "layout_name": "h36m",
}
DETECTOR_NOISE_PX = 4.0
_OTHER_SPELLING = {"Photo": "TakingPhoto", "WalkDog": "WalkingDog"}


def other_spelling(action: str) -> str:
    """``Photo 1`` -> ``TakingPhoto 1``: the spelling some of the real files use."""
    group, sep, rest = action.partition(" ")
    return _OTHER_SPELLING.get(group, group) + sep + rest


def mocap_frames(frames: int, action_index: int) -> int:
    """Mocap length of the fixture's ``action_index``-th action (lengths differ so mix-ups show)."""
    return frames + action_index


def write_h36m_fixture(
    root: Path,
    subjects: Iterable[str] = H36M_FIXTURE_SUBJECTS,
    actions: Iterable[str] = H36M_FIXTURE_ACTIONS,
    frames: int = 12,
    keypoints: Iterable[str] = ("gt", "cpn_ft_h36m_dbb"),
    seed: int = 0,
) -> Path:
    """Write ``data_3d_h36m.npz`` and ``data_2d_h36m_<k>.npz`` for each ``k`` in ``keypoints`` into ``root``.

    ``actions`` are canonical names; action ``i`` has ``mocap_frames(frames, i)`` mocap frames. ``"gt"`` is
    the exact projection of the 3D; any other keypoint set is that plus Gaussian pixel noise.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subjects, actions, keypoints = list(subjects), list(actions), list(keypoints)
    rng = np.random.default_rng(seed)
    cameras = h36m_cameras()
    positions_3d: dict[str, dict] = {}
    positions_2d: dict[str, dict[str, dict]] = {k: {} for k in keypoints}
    for si, subject in enumerate(subjects):
        positions_3d[subject] = {}
        for k in keypoints:
            positions_2d[k][subject] = {}
        for ai, action in enumerate(actions):
            n = mocap_frames(frames, ai)
            cams = cameras[subject]
            world = _motion(rng, n + len(cams))
            positions_3d[subject][other_spelling(action) if si == 0 else action] = world[:n].astype(
                np.float32
            )
            if subject == "S11" and action == "Directions":
                continue
            joints = world[:, H36M_JOINTS_KEPT_FROM_32].astype(np.float64)
            gt = [project_to_pixels(world_to_camera(joints[: n + c], cam), cam) for c, cam in enumerate(cams)]
            for k in keypoints:
                views = gt if k == "gt" else [v + rng.normal(0.0, DETECTOR_NOISE_PX, v.shape) for v in gt]
                name_2d = action if si == 0 else other_spelling(action)
                positions_2d[k][subject][name_2d] = [v.astype(np.float32) for v in views]
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=positions_3d)
    for k in keypoints:
        np.savez_compressed(
            root / f"data_2d_h36m_{k}.npz", positions_2d=positions_2d[k], metadata=H36M_METADATA
        )
    return root


def _motion(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32, 3) smooth world-space motion in metres around the capture-area centre (z up)."""
    template = rng.normal(0.0, 0.2, (32, 3)) * np.array([1.0, 1.0, 2.0])
    template[0] = 0.0
    start = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.9])
    hip = start + np.cumsum(rng.normal(0.0, 0.01, (n, 3)), axis=0)
    t = np.arange(n)[:, None, None]
    wobble = 0.03 * np.sin(0.3 * t + rng.uniform(0, 2 * np.pi, (1, 32, 3)))
    return hip[:, None, :] + template + wobble


MPI_FIXTURE_TRAIN = ("S1 Seq1", "S2 Seq2")
MPI_FIXTURE_CAMERAS = (0, 2, 8)
MPI_FIXTURE_TEST = ("TS1", "TS5")


def write_mpi_inf_3dhp_fixture(
    root: Path,
    train_sequences: Iterable[str] = MPI_FIXTURE_TRAIN,
    cameras: Iterable[int] = MPI_FIXTURE_CAMERAS,
    test_sequences: Iterable[str] = MPI_FIXTURE_TEST,
    frames: int = 10,
    fps: float = 25.0,
    object_arrays: bool = False,
    seed: int = 0,
) -> Path:
    """Write ``data_train_3dhp.npz`` and ``data_test_3dhp.npz`` (P-STMO layout: camera-space mm, pixel 2D).

    Training entries are ``[{camera: {...}}, fps]`` lists, or 1-d object arrays with ``object_arrays=True``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train: dict[str, object] = {}
    for i, name in enumerate(train_sequences):
        views = {cam: _mpi_view(rng, frames + i, (2048, 2048)) for cam in cameras}
        entry: object = [views, fps]
        if object_arrays:
            entry = np.empty(2, dtype=object)
            entry[0], entry[1] = views, fps
        train[name] = entry
    test: dict[str, dict] = {}
    for i, name in enumerate(test_sequences):
        resolution = (1920, 1080) if name in ("TS5", "TS6") else (2048, 2048)
        view = _mpi_view(rng, frames + i, resolution)
        valid = rng.random(frames + i) < 0.7
        valid[0] = True
        test[name] = {**view, "valid": valid}
    np.savez_compressed(root / "data_train_3dhp.npz", data=train)
    np.savez_compressed(root / "data_test_3dhp.npz", data=test)
    return root


def _mpi_view(rng: np.random.Generator, n: int, resolution: tuple[int, int]) -> dict[str, np.ndarray]:
    """Camera-space 17-joint motion (mm, about 4 m away) and its pinhole projection (px)."""
    pose = _motion(rng, n)[:, :17] * 1000.0 + np.array([0.0, 0.0, 4000.0])
    w, h = resolution
    pixels = 1500.0 * pose[..., :2] / pose[..., 2:] + np.array([w / 2, h / 2])
    return {"data_2d": pixels.astype(np.float32), "data_3d": pose.astype(np.float32)}
