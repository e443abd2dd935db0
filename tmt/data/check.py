"""``python -m tmt.data check DIR``: whether a data folder will load, and what it holds, before any training.

The checks are the loaders training runs (:func:`load_h36m` once per keypoint set, :func:`load_mpi_inf_3dhp`),
so a folder that passes here loads there, and whatever they refuse (a missing or unreadable file, a wrong
joint count, 2D shorter than its mocap, a recording without its 4 cameras) is refused here with the same
one-line message, in seconds rather than after a training run has set up.
"""

from __future__ import annotations

from pathlib import Path

from tmt.cameras import h36m_cameras
from tmt.data.dataset import PoseDataset
from tmt.data.h36m import FILE_2D_PREFIX, FILE_3D, action_group, keypoint_sets, load_h36m, read_poses_3d
from tmt.data.mpi3dhp import FILE_TEST, FILE_TRAIN, load_mpi_inf_3dhp
from tmt.errors import DataError
from tmt.skeleton import H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS


def check_folder(root: Path) -> list[str]:
    """Summary lines of every dataset layout found in ``root``; a :class:`DataError` on the first problem."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    h36m = (root / FILE_3D).exists() or bool(keypoint_sets(root))
    mpi = (root / FILE_TRAIN).exists() or (root / FILE_TEST).exists()
    if not (h36m or mpi):
        raise DataError(
            f"{root}: no Human3.6M files ({FILE_3D}, {FILE_2D_PREFIX}<keypoints>.npz) and no MPI-INF-3DHP "
            f"files ({FILE_TRAIN}, {FILE_TEST})"
        )
    return (check_h36m(root) if h36m else []) + (check_mpi_inf_3dhp(root) if mpi else [])


def check_h36m(root: Path) -> list[str]:
    """Load every keypoint set with every subject of the 3D file (test subjects as the test split)."""
    poses = read_poses_3d(root)
    sets = keypoint_sets(root)
    if not sets:
        raise DataError(f"{root}: no 2D keypoint file {FILE_2D_PREFIX}<keypoints>.npz beside {FILE_3D}")
    known = list(h36m_cameras())
    unknown = [subject for subject in poses if subject not in known]
    if unknown:
        raise DataError(f"{root / FILE_3D}: subjects {unknown} have no Human3.6M cameras; known: {known}")
    subjects = sorted(poses, key=known.index)
    train = [s for s in subjects if s not in H36M_TEST_SUBJECTS]
    test = [s for s in subjects if s in H36M_TEST_SUBJECTS]
    actions = {action_group(action) for recordings in poses.values() for action in recordings}
    recordings = sum(len(recordings) for recordings in poses.values())
    lines = [
        f"Human3.6M, VideoPose3D layout: {root}",
        f"  3D {FILE_3D}: {len(subjects)} subjects ({' '.join(subjects)}), {len(actions)} actions, "
        f"{recordings} recordings",
    ]
    for name in sets:
        dataset = load_h36m(root, name, train_subjects=train, test_subjects=test, poses=poses)
        if not dataset.train + dataset.test:
            raise DataError(f"{root / (FILE_2D_PREFIX + name)}.npz: no recording in common with {FILE_3D}")
        lines.append(f"  2D {name}: {_h36m_views(dataset)}")
        if dataset.skipped:
            lines.append(f"    left out (not in {FILE_2D_PREFIX}{name}.npz): {', '.join(dataset.skipped)}")
    lines.append(f"  split: train {' '.join(train) or '-'}, test {' '.join(test) or '-'}")
    missing = [s for s in H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS if s not in subjects]
    if missing:
        lines.append(
            f"  note: the standard protocol also needs {' '.join(missing)}; train on what is here with "
            "data.train_subjects / data.test_subjects"
        )
    if "gt" not in sets:
        lines.append(f"  note: no {FILE_2D_PREFIX}gt.npz, which --mix (paper Eq. 2) needs")
    return lines


def _h36m_views(dataset: PoseDataset) -> str:
    sequences = dataset.train + dataset.test
    recordings = len({(s.subject, s.action) for s in sequences})
    frames = sum(s.num_frames for s in sequences)
    return (
        f"{recordings} recordings x {len(sequences) // recordings} cameras, {frames:,} frames, "
        "no view shorter than its mocap"
    )


def check_mpi_inf_3dhp(root: Path) -> list[str]:
    """Load both P-STMO files and summarise the training and test sequences."""
    dataset = load_mpi_inf_3dhp(root)
    train, test = dataset.train, dataset.test
    cameras = sorted({s.camera for s in train})
    valid = sum(int(s.valid.sum()) for s in test if s.valid is not None)
    return [
        f"MPI-INF-3DHP, P-STMO layout: {root}",
        f"  train {FILE_TRAIN}: {len(dataset.subjects('train'))} subjects, "
        f"{len({s.action for s in train})} sequences, cameras {' '.join(map(str, cameras))}, "
        f"{sum(s.num_frames for s in train):,} frames at {dataset.fps:g} fps",
        f"  test {FILE_TEST}: {' '.join(s.action for s in test)}, {sum(s.num_frames for s in test):,} frames "
        f"({valid:,} valid)",
    ]
