"""The in-memory form every loader produces: per-camera sequences of normalized 2D and root-relative 3D.

Loaders for the real formats (``h36m.py``, ``mpi3dhp.py``) and anything written in those formats end here,
so windowing, training and evaluation never see a file format. ``read_npz`` is the shared reader for the
pickled object arrays those formats store; it turns every way such a file can be broken into one DataError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tmt.data.safe_npz import load_npz
from tmt.errors import ConfigError, DataError
from tmt.skeleton import H36M_ACTIONS, Skeleton


@dataclass(eq=False)
class Sequence:
    """One recording seen by one camera (eq=False: arrays do not compare as a single truth value)."""

    subject: str
    action: str  # canonical full name, e.g. "Walking 1"; 3DHP: "S1 Seq1" (train) or "TS1" (test)
    action_group: str  # what errors are grouped by: name before the first space; 3DHP: the sequence name
    camera: int  # camera index 0..3 (3DHP: the camera id)
    keypoints_2d: np.ndarray  # (N, J, 2) float32, normalized screen coordinates
    pose_3d: np.ndarray  # (N, J, 3) float32, camera space, root-relative, metres (root joint exactly 0)
    root_3d: np.ndarray  # (N, 3) float32, camera-space root trajectory, metres
    resolution: tuple[int, int]  # (w, h) px
    valid: np.ndarray | None = None  # (N,) bool, 3DHP test only: frames that are evaluated

    def __post_init__(self) -> None:
        n, j = self.pose_3d.shape[:2]
        expected = {
            "keypoints_2d": (self.keypoints_2d.shape, (n, j, 2)),
            "pose_3d": (self.pose_3d.shape, (n, j, 3)),
            "root_3d": (self.root_3d.shape, (n, 3)),
        }
        if self.valid is not None:
            expected["valid"] = (self.valid.shape, (n,))
        for name, (got, want) in expected.items():
            if got != want:
                where = f"sequence {self.subject} {self.action} camera {self.camera}"
                raise DataError(f"{where}: {name} has shape {got}, expected {want}")

    @property
    def num_frames(self) -> int:
        return int(self.pose_3d.shape[0])


@dataclass(eq=False)
class PoseDataset:
    """A loaded dataset: training and test sequences plus what they were read from."""

    name: str  # "h36m" / "mpi_inf_3dhp"
    skeleton: Skeleton
    fps: float
    train: list[Sequence]
    test: list[Sequence]
    keypoints: str  # 2D source, e.g. "gt", "cpn_ft_h36m_dbb"
    source: Path  # folder it was read from
    mix_towards_gt: float | None = None  # paper Eq. 2 m, when the 2D was mixed towards GT
    skipped: list[str] = field(default_factory=list)  # "S11 Directions": recordings with no 2D, left out

    def subjects(self, split: str = "train") -> list[str]:
        """Subjects of one split in loading order."""
        return list(dict.fromkeys(s.subject for s in self._split(split)))

    def actions(self, split: str | None = None) -> list[str]:
        """Action groups present (both splits by default), Human3.6M ones in the paper's table order."""
        seqs = self.train + self.test if split is None else self._split(split)
        groups = list(dict.fromkeys(s.action_group for s in seqs))
        order = {a: i for i, a in enumerate(H36M_ACTIONS)}
        return sorted(groups, key=lambda g: (order.get(g, len(order)), groups.index(g)))

    def num_frames(self, split: str = "train") -> int:
        """Total frames over all sequences (every camera counted) of one split."""
        return sum(s.num_frames for s in self._split(split))

    def subset(
        self,
        *,
        subjects: Iterable[str] | None = None,
        actions: Iterable[str] | None = None,
        cameras: Iterable[int] | None = None,
    ) -> PoseDataset:
        """A copy keeping only the given subjects / actions (full names or groups) / cameras, both splits."""
        keep_s = None if subjects is None else set(as_name_list(subjects))
        keep_a = None if actions is None else set(as_name_list(actions))
        keep_c = None if cameras is None else {int(c) for c in cameras}

        def kept(s: Sequence) -> bool:
            return (
                (keep_s is None or s.subject in keep_s)
                and (keep_a is None or s.action in keep_a or s.action_group in keep_a)
                and (keep_c is None or s.camera in keep_c)
            )

        return replace(self, train=[s for s in self.train if kept(s)], test=[s for s in self.test if kept(s)])

    def split_validation(
        self, holdout: str | Iterable[str] | float = 0.1, *, seed: int = 0
    ) -> tuple[list[Sequence], list[Sequence]]:
        """Split the TRAINING sequences into (fit, validation) for model selection; test is never used.

        ``holdout`` is a training subject ("S8"), several of them, or a fraction in (0, 1) of the training
        recordings (subject, action) drawn with ``seed``. All cameras of a recording go to the same side,
        so no motion is seen in both parts.
        """
        recordings = list(dict.fromkeys((s.subject, s.action) for s in self.train))
        if isinstance(holdout, (float, int)) and not isinstance(holdout, bool):
            held = self._held_fraction(recordings, float(holdout), seed)
        else:
            subjects = as_name_list(holdout)
            train_subjects = self.subjects("train")
            for subject in subjects:
                if subject not in train_subjects:
                    where = "a test subject" if subject in self.subjects("test") else "not a training subject"
                    raise ConfigError(
                        f"validation subject {subject!r} is {where} of {self.name}; "
                        f"choose from the training subjects {train_subjects}"
                    )
            if set(subjects) >= set(train_subjects):
                raise ConfigError(f"validation subjects {subjects} would leave no training subject")
            held = {r for r in recordings if r[0] in subjects}
        fit = [s for s in self.train if (s.subject, s.action) not in held]
        validation = [s for s in self.train if (s.subject, s.action) in held]
        return fit, validation

    @staticmethod
    def _held_fraction(recordings: list[tuple[str, str]], fraction: float, seed: int) -> set[tuple[str, str]]:
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
        if len(recordings) < 2:
            raise ConfigError(f"a validation fraction needs 2+ training recordings, found {len(recordings)}")
        k = min(max(round(fraction * len(recordings)), 1), len(recordings) - 1)
        picked = np.random.default_rng(seed).permutation(len(recordings))[:k]
        return {recordings[i] for i in picked}

    def _split(self, split: str) -> list[Sequence]:
        if split not in ("train", "test"):
            raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
        return self.train if split == "train" else self.test


def as_name_list(names: str | Iterable[str]) -> list[str]:
    """A single name is one name, not an iterable of characters."""
    return [names] if isinstance(names, str) else list(names)


def read_npz(
    path: Path, keys: Iterable[str], *, optional: Iterable[str] = (), missing_hint: str = ""
) -> dict[str, object]:
    """The values under ``keys`` (required) and ``optional`` (when present) of an npz file.

    0-d object arrays (how ``np.savez`` stores a dict) are unwrapped. Object arrays go through
    :func:`tmt.data.safe_npz.load_npz`, which rebuilds only plain containers and arrays: no code runs from the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found{missing_hint}")
    keys, optional = list(keys), list(optional)
    everything = load_npz(path)
    present = list(everything)
    raw = {k: everything[k] for k in keys + optional if k in everything}
    for key in keys:
        if key not in raw:
            raise DataError(f"{path}: expected key {key!r}, found keys {present}")
    return {k: v.item() if v.dtype == object and v.shape == () else v for k, v in raw.items()}


def expect_dict(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        shape = getattr(value, "shape", "")
        raise DataError(f"{where}: expected a dict, found {type(value).__name__} {shape}".rstrip())
    return value


def check_finite(array: np.ndarray, where: str) -> None:
    """NaN or inf in input data would silently poison every loss and metric downstream."""
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{where}: {bad} NaN/inf values")


def numeric_array(value: object, where: str, shape_tail: tuple[int, ...]) -> np.ndarray:
    """``value`` as a finite float array of shape (N, *shape_tail), or a DataError naming ``where``."""
    array = np.asarray(value)
    ok = array.ndim == 1 + len(shape_tail) and array.shape[1:] == shape_tail and len(array) > 0
    if not ok or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            f"{where}: expected a numeric array of shape (N>0, {', '.join(map(str, shape_tail))}), "
            f"found {array.dtype} {array.shape}"
        )
    check_finite(array, where)
    return array
