"""Joint layouts of Human3.6M and MPI-INF-3DHP as the lifting literature uses them.

Every array here is the project's own copy of the standard definitions (VideoPose3D 17-joint Human3.6M
layout, P-STMO 17-joint MPI-INF-3DHP layout), so nothing is read from outside the package at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A joint layout: names, kinematic parents, left/right symmetry and the root joint."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    root: int = 0

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n:
            raise ValueError(f"skeleton {self.name}: {len(self.parents)} parents for {n} joints")
        if len(self.left) != len(self.right):
            raise ValueError(f"skeleton {self.name}: left and right joint lists differ in length")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left joint with its right counterpart."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    @cached_property
    def bones(self) -> np.ndarray:
        """(num_joints - 1, 2) array of (parent, child) pairs."""
        return np.array([(p, c) for c, p in enumerate(self.parents) if p >= 0], dtype=np.int64)

    def index(self, joint_name: str) -> int:
        return self.joint_names.index(joint_name)


H36M_JOINTS_KEPT_FROM_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
"""Indices of the 17 evaluated joints inside the 32-joint Human3.6M mocap skeleton."""

H36M = Skeleton(
    name="h36m",
    joint_names=(
        "Hip",
        "RHip",
        "RKnee",
        "RFoot",
        "LHip",
        "LKnee",
        "LFoot",
        "Spine",
        "Thorax",
        "Neck/Nose",
        "Head",
        "LShoulder",
        "LElbow",
        "LWrist",
        "RShoulder",
        "RElbow",
        "RWrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    root=0,
)

MPI_INF_3DHP = Skeleton(
    name="mpi_inf_3dhp",
    joint_names=(
        "HeadTop",
        "Neck",
        "RShoulder",
        "RElbow",
        "RWrist",
        "LShoulder",
        "LElbow",
        "LWrist",
        "RHip",
        "RKnee",
        "RAnkle",
        "LHip",
        "LKnee",
        "LAnkle",
        "Pelvis",
        "Spine",
        "Head",
    ),
    parents=(16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    left=(5, 6, 7, 11, 12, 13),
    right=(2, 3, 4, 8, 9, 10),
    root=14,
)

MPI_INF_3DHP_PCK_JOINTS: tuple[int, ...] = tuple(range(14))
"""The 14 joints the official MPI-INF-3DHP PCK/AUC scripts count (pelvis, spine and head excluded)."""

H36M_JOINT_WEIGHTS: tuple[float, ...] = (1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4)
"""Per-joint weights of MixSTE's weighted MPJPE loss, in Human3.6M 17-joint order."""

AS_H36M_JOINT: dict[str, dict[str, str]] = {
    "mpi_inf_3dhp": {
        "Pelvis": "Hip",
        "RAnkle": "RFoot",
        "LAnkle": "LFoot",
        "Neck": "Thorax",  # where the shoulders attach: Human3.6M's thorax
        "Head": "Neck/Nose",  # the head centre, between the neck and the head top
        "HeadTop": "Head",  # Human3.6M's "Head" is the top of the head
    },
}
"""Per skeleton, the Human3.6M joint each differently named joint stands for (the same place on the body)."""


def joint_weights(skeleton: Skeleton) -> tuple[float, ...]:
    """MixSTE's per-joint loss weights in ``skeleton``'s joint order, matched by joint name (a knee gets the
    knee's weight whatever its index), so the weighted losses mean the same on every data set."""
    by_name = dict(zip(H36M.joint_names, H36M_JOINT_WEIGHTS, strict=True))
    aliases = AS_H36M_JOINT.get(skeleton.name, {})
    try:
        return tuple(float(by_name[aliases.get(name, name)]) for name in skeleton.joint_names)
    except KeyError as err:
        raise ValueError(f"skeleton {skeleton.name}: no loss weight for joint {err.args[0]!r}") from None


H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip
"""The 15 Human3.6M actions in the order of the paper's tables."""

H36M_TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
H36M_TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (H36M, MPI_INF_3DHP)}


def joint_names(dataset: str, count: int) -> tuple[str, ...]:
    """The names of a per-joint array's ``count`` entries, in the order of ``dataset``'s skeleton (Human3.6M's
    for a data set without one); the entries' numbers when the array is not of that skeleton."""
    skeleton = SKELETONS.get(dataset, H36M)
    return skeleton.joint_names if count == skeleton.num_joints else tuple(map(str, range(count)))
