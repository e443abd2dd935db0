"""Human3.6M from the VideoPose3D npz files, the format every lifting paper (and TMT's backbones) trains on.

``data_3d_h36m.npz`` holds 32-joint world mocap in metres; ``data_2d_h36m_<keypoints>.npz`` holds 17-joint
pixel keypoints for each of the subject's 4 cameras. Each (subject, action, camera) becomes one Sequence in
camera space, root-relative, with normalized 2D. Only recordings present in every input file are used (S11
``Directions`` has no 2D); the others are listed in ``PoseDataset.skipped``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tmt.cameras import Camera, h36m_cameras, h36m_metadata, normalize_screen_coordinates, world_to_camera
from tmt.data import quality
from tmt.data.dataset import PoseDataset, Sequence, as_name_list, expect_dict, numeric_array, read_npz
from tmt.errors import ConfigError, DataError
from tmt.skeleton import (
    H36M,
    H36M_ACTIONS,
    H36M_JOINTS_KEPT_FROM_32,
    H36M_TEST_SUBJECTS,
    H36M_TRAIN_SUBJECTS,
)

FILE_3D = "data_3d_h36m.npz"
FILE_2D_PREFIX = "data_2d_h36m_"
_SPELLINGS = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
_ACTION_ORDER = {a: i for i, a in enumerate(H36M_ACTIONS)}


def file_2d(root: Path, keypoints: str) -> Path:
    return Path(root) / f"{FILE_2D_PREFIX}{keypoints}.npz"


def keypoint_sets(root: Path) -> list[str]:
    """Names of the 2D keypoint files present in ``root`` (``data_2d_h36m_<name>.npz``)."""
    names = (p.name for p in Path(root).glob(f"{FILE_2D_PREFIX}*.npz"))
    return sorted(name[len(FILE_2D_PREFIX) : -len(".npz")] for name in names)


def canonical_action(name: str) -> str:
    """``TakingPhoto 1`` -> ``Photo 1``, ``WalkingDog`` -> ``WalkDog``; other names unchanged."""
    group, sep, rest = name.partition(" ")
    return _SPELLINGS.get(group, group) + sep + rest


def action_group(name: str) -> str:
    """The action an error is reported under: the canonical name before the first space."""
    return canonical_action(name).partition(" ")[0]


def read_poses_3d(root: Path) -> dict[str, dict]:
    """``data_3d_h36m.npz`` of ``root`` as {subject: {canonical action: (N, 32, 3) array as stored}}."""
    path_3d = Path(root) / FILE_3D
    items = read_npz(path_3d, ["positions_3d"], missing_hint=_missing_hint(Path(root)))
    return _canonical_tree(items["positions_3d"], path_3d)


def load_h36m(
    root: Path,
    keypoints: str = "gt",
    *,
    mix_towards_gt: float | None = None,
    train_subjects: Iterable[str] = H36M_TRAIN_SUBJECTS,
    test_subjects: Iterable[str] = H36M_TEST_SUBJECTS,
    actions: Iterable[str] | None = None,
    poses: dict[str, dict] | None = None,
) -> PoseDataset:
    """Load Human3.6M from ``root`` with the 2D of ``data_2d_h36m_<keypoints>.npz``.

    ``mix_towards_gt=m`` moves those keypoints towards ``data_2d_h36m_gt.npz`` in pixel space (paper Eq. 2:
    P2 = K + m (GT - K)); ``actions`` keeps only the given full names or action groups (e.g. "Walking").
    ``poses`` is the 3D file as :func:`read_poses_3d` returned it, so that loading several keypoint sets
    (``python -m tmt.data check``) reads the 3D file once.
    """
    root = Path(root)
    m = _check_mix(mix_towards_gt)
    train_subjects, test_subjects = _check_subjects(train_subjects, test_subjects)
    if not keypoints or Path(keypoints).name != keypoints:
        raise ConfigError(f"keypoints must be a keypoint set name such as 'gt', got {keypoints!r}")
    hint = _missing_hint(root)

    path_3d = root / FILE_3D
    poses = read_poses_3d(root) if poses is None else poses
    sources = {keypoints: _read_2d(file_2d(root, keypoints), hint)}
    if m is not None:
        sources.setdefault("gt", _read_2d(file_2d(root, "gt"), hint))
    subjects = train_subjects + test_subjects
    for subject in subjects:
        if subject not in poses:
            raise DataError(f"{path_3d}: subject {subject!r} not found; subjects: {sorted(poses)}")
        for name, tree in sources.items():
            if subject not in tree:
                path = file_2d(root, name)
                raise DataError(f"{path}: subject {subject!r} not found; subjects: {sorted(tree)}")
    wanted = _action_filter(actions, {a for s in subjects for a in poses[s]})

    cameras = h36m_cameras()
    skipped: list[str] = []
    splits: dict[str, list[Sequence]] = {"train": [], "test": []}
    for split, split_subjects in (("train", train_subjects), ("test", test_subjects)):
        for subject in split_subjects:
            for action in sorted(poses[subject], key=lambda a: (_ACTION_ORDER.get(action_group(a), 99), a)):
                if wanted is not None and action not in wanted and action_group(action) not in wanted:
                    continue
                if any(action not in tree[subject] for tree in sources.values()):
                    skipped.append(f"{subject} {action}")
                    continue
                splits[split] += _camera_sequences(
                    root, subject, action, poses[subject][action], sources, keypoints, m, cameras[subject]
                )
    return PoseDataset(
        name="h36m",
        skeleton=H36M,
        fps=float(h36m_metadata()["fps"]),
        train=splits["train"],
        test=splits["test"],
        keypoints=keypoints,
        source=root,
        mix_towards_gt=m,
        skipped=skipped,
    )


def _camera_sequences(
    root: Path,
    subject: str,
    action: str,
    world_raw: object,
    sources: dict[str, dict],
    keypoints: str,
    m: float | None,
    cameras: tuple[Camera, ...],
) -> list[Sequence]:
    """The 4 camera views of one recording, vectorized over frames."""
    world = numeric_array(world_raw, f"{root / FILE_3D}: {subject} {action!r} positions_3d", (32, 3))
    joints = world[:, H36M_JOINTS_KEPT_FROM_32].astype(np.float64)
    n = len(joints)
    views = {
        name: _views(root, name, subject, action, tree[subject][action], len(cameras))
        for name, tree in sources.items()
    }
    sequences = []
    for c, cam in enumerate(cameras):
        pixels = _view(root, keypoints, subject, action, c, views[keypoints][c], n)
        if m is not None:
            gt = _view(root, "gt", subject, action, c, views["gt"][c], n)
            pixels = quality.mix_towards_gt(pixels, gt, m)
        cam_xyz = world_to_camera(joints, cam)
        root_3d = cam_xyz[:, 0]
        sequences.append(
            Sequence(
                subject=subject,
                action=action,
                action_group=action_group(action),
                camera=c,
                keypoints_2d=normalize_screen_coordinates(pixels, cam.res_w, cam.res_h).astype(np.float32),
                pose_3d=(cam_xyz - cam_xyz[:, :1]).astype(np.float32),
                root_3d=root_3d.astype(np.float32),
                resolution=(cam.res_w, cam.res_h),
            )
        )
    return sequences


def _views(root: Path, keypoints: str, subject: str, action: str, raw: object, count: int) -> list:
    """The per-camera 2D arrays of one recording (a list of 4 in the real files)."""
    if isinstance(raw, dict) or not hasattr(raw, "__len__") or len(raw) != count:
        found = f"{len(raw)} entries" if hasattr(raw, "__len__") else type(raw).__name__
        where = f"{file_2d(root, keypoints)}: {subject} {action!r}"
        raise DataError(f"{where}: positions_2d must list {count} cameras, found {found}")
    return list(raw)


def _view(
    root: Path, keypoints: str, subject: str, action: str, camera: int, raw: object, n: int
) -> np.ndarray:
    """One camera's pixels, truncated to the ``n`` mocap frames (2D may run longer, never shorter)."""
    where = f"{file_2d(root, keypoints)}: {subject} {action!r} camera {camera}"
    pixels = numeric_array(raw, where, (17, 2))
    if len(pixels) < n:
        raise DataError(f"{where}: 2D has {len(pixels)} frames, fewer than the {n} mocap frames in {FILE_3D}")
    return pixels[:n].astype(np.float64)


def _read_2d(path: Path, hint: str) -> dict:
    items = read_npz(path, ["positions_2d"], optional=["metadata"], missing_hint=hint)
    if "metadata" in items:
        _check_metadata(expect_dict(items["metadata"], f"{path}: key 'metadata'"), path)
    return _canonical_tree(items["positions_2d"], path)


def _check_metadata(meta: dict, path: Path) -> None:
    """A 17-joint file in another layout (e.g. COCO order) would be silently wrong: reject it."""
    if "num_joints" in meta and int(meta["num_joints"]) != H36M.num_joints:
        raise DataError(f"{path}: metadata num_joints is {meta['num_joints']}, expected {H36M.num_joints}")
    if "keypoints_symmetry" in meta:
        symmetry = [sorted(int(j) for j in side) for side in meta["keypoints_symmetry"]]
        if symmetry != [sorted(H36M.left), sorted(H36M.right)]:
            raise DataError(
                f"{path}: metadata keypoints_symmetry {symmetry} is not the Human3.6M 17-joint layout "
                f"{[list(H36M.left), list(H36M.right)]}"
            )


def _canonical_tree(tree: object, path: Path) -> dict[str, dict]:
    """{subject: {action: value}} with canonical action names (both spellings must not occur together)."""
    out: dict[str, dict] = {}
    for subject, actions in expect_dict(tree, str(path)).items():
        renamed: dict[str, object] = {}
        for name, value in expect_dict(actions, f"{path}: subject {subject!r}").items():
            canonical = canonical_action(str(name))
            if canonical in renamed:
                raise DataError(f"{path}: subject {subject!r} has action {canonical!r} under two spellings")
            renamed[canonical] = value
        out[str(subject)] = renamed
    return out


def _check_mix(m: float | None) -> float | None:
    if m is None:
        return None
    if isinstance(m, bool) or not isinstance(m, (int, float, np.integer, np.floating)) or not 0.0 <= m <= 1.0:
        raise ConfigError(f"mix_towards_gt must be a number in [0, 1], got {m!r}")
    return float(m)


def _check_subjects(train: Iterable[str], test: Iterable[str]) -> tuple[list[str], list[str]]:
    train_list = list(dict.fromkeys(as_name_list(train)))
    test_list = list(dict.fromkeys(as_name_list(test)))
    known = h36m_cameras()
    for subject in train_list + test_list:
        if subject not in known:
            raise ConfigError(f"unknown Human3.6M subject {subject!r}; subjects with cameras: {list(known)}")
    overlap = sorted(set(train_list) & set(test_list))
    if overlap:
        raise ConfigError(f"subjects {overlap} are in both train_subjects and test_subjects")
    return train_list, test_list


def _action_filter(actions: Iterable[str] | None, available: set[str]) -> set[str] | None:
    if actions is None:
        return None
    wanted = {canonical_action(a) for a in as_name_list(actions)}
    groups = {action_group(a) for a in available}
    unknown = sorted(w for w in wanted if w not in available and w not in groups)
    if unknown or not wanted:
        what = unknown or "(empty list)"
        raise ConfigError(f"unknown Human3.6M actions {what}; actions in the data: {sorted(groups)}")
    return wanted


def _missing_hint(root: Path) -> str:
    if not root.is_dir():
        return f" (folder {root} does not exist)"
    sets = keypoint_sets(root)
    return f"; 2D keypoint sets in {root}: {sets}" if sets else f"; no {FILE_2D_PREFIX}*.npz files in {root}"
