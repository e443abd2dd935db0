"""MPI-INF-3DHP from the P-STMO npz files (``data_train_3dhp.npz``, ``data_test_3dhp.npz``).

Both files hold camera-space 17-joint 3D in millimetres and GT 2D in pixels. Training sequences are
``"S<n> Seq<m>"`` with one entry per camera; test sequences are ``"TS1"``..``"TS6"`` with a ``valid`` mask of
the frames that are evaluated. 3D becomes metres, root-relative at the pelvis (joint 14).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tmt.cameras import normalize_screen_coordinates
from tmt.data.dataset import PoseDataset, Sequence, expect_dict, numeric_array, read_npz
from tmt.errors import DataError
from tmt.skeleton import MPI_INF_3DHP

FILE_TRAIN = "data_train_3dhp.npz"
FILE_TEST = "data_test_3dhp.npz"
TRAIN_RESOLUTION = (2048, 2048)
TEST_RESOLUTION = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
                   "TS5": (1920, 1080), "TS6": (1920, 1080)}  # fmt: skip
"""(w, h) used to normalize the 2D: the studio cameras are 2048 x 2048, the outdoor test sequences full HD."""


def load_mpi_inf_3dhp(root: Path) -> PoseDataset:
    """Load the P-STMO MPI-INF-3DHP files from ``root`` (GT 2D; all training and all test sequences)."""
    root = Path(root)
    hint = _missing_hint(root)
    train_path, test_path = root / FILE_TRAIN, root / FILE_TEST
    train_data, test_data = (_read_sequences(path, hint) for path in (train_path, test_path))

    train: list[Sequence] = []
    fps_values: list[float] = []
    for name in sorted(train_data, key=_natural_key):
        where = f"{train_path}: sequence {name!r}"
        subject, sep, _ = str(name).partition(" ")
        if not sep:
            raise DataError(f"{where}: training sequence names must look like 'S1 Seq1'")
        cameras, fps = _train_entry(train_data[name], where)
        fps_values.append(fps)
        for cam in sorted(cameras, key=int):
            cam_where = f"{where} camera {cam}"
            entry = expect_dict(cameras[cam], cam_where)
            train.append(_sequence(entry, cam_where, subject, str(name), int(cam), TRAIN_RESOLUTION))

    test: list[Sequence] = []
    for name in sorted(test_data, key=_natural_key):
        where = f"{test_path}: sequence {name!r}"
        if name not in TEST_RESOLUTION:
            raise DataError(f"{where}: unknown test sequence, expected names {sorted(TEST_RESOLUTION)}")
        entry = expect_dict(test_data[name], where)
        test.append(_sequence(entry, where, name, name, 0, TEST_RESOLUTION[name], with_valid=True))

    return PoseDataset(
        name="mpi_inf_3dhp",
        skeleton=MPI_INF_3DHP,
        fps=_common_fps(fps_values),
        train=train,
        test=test,
        keypoints="gt",
        source=root,
    )


def _sequence(
    entry: dict,
    where: str,
    subject: str,
    name: str,
    camera: int,
    resolution: tuple[int, int],
    *,
    with_valid: bool = False,
) -> Sequence:
    for key in ("data_2d", "data_3d") + (("valid",) if with_valid else ()):
        if key not in entry:
            raise DataError(f"{where}: expected key {key!r}, found keys {sorted(entry)}")
    j = MPI_INF_3DHP.num_joints
    pixels = numeric_array(entry["data_2d"], f"{where} data_2d", (j, 2))
    pose_mm = numeric_array(entry["data_3d"], f"{where} data_3d", (j, 3))
    if len(pixels) != len(pose_mm):
        raise DataError(f"{where}: data_2d has {len(pixels)} frames but data_3d has {len(pose_mm)}")
    pose = pose_mm.astype(np.float64) / 1000.0
    root = pose[:, MPI_INF_3DHP.root]
    valid = None
    if with_valid:
        valid = np.asarray(entry["valid"])
        if valid.size != len(pose) or not (valid.dtype == bool or np.issubdtype(valid.dtype, np.number)):
            found = f"{valid.dtype} {valid.shape}"
            raise DataError(f"{where}: valid must hold one flag per frame ({len(pose)}), found {found}")
        valid = valid.reshape(-1).astype(bool)
    w, h = resolution
    return Sequence(
        subject=subject,
        action=name,
        action_group=name,
        camera=camera,
        keypoints_2d=normalize_screen_coordinates(pixels, w, h).astype(np.float32),
        pose_3d=(pose - root[:, None]).astype(np.float32),
        root_3d=root.astype(np.float32),
        resolution=resolution,
        valid=valid,
    )


def _read_sequences(path: Path, hint: str) -> dict:
    data = expect_dict(read_npz(path, ["data"], missing_hint=hint)["data"], f"{path}: key 'data'")
    if not data:
        raise DataError(f"{path}: key 'data' holds no sequences")
    return data


def _train_entry(value: object, where: str) -> tuple[dict, float]:
    """``[{camera: {...}}, fps]``, stored as a list, a tuple or an object array."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = value.item() if value.shape == () else list(value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise DataError(f"{where}: expected [cameras dict, fps], found {type(value).__name__}")
    cameras = expect_dict(value[0], f"{where} cameras")
    try:
        fps = float(value[1])
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: fps must be a number, found {value[1]!r}") from exc
    for cam in cameras:
        if not str(cam).lstrip("-").isdigit():
            raise DataError(f"{where}: camera keys must be integers, found {cam!r}")
    return cameras, fps


def _common_fps(values: list[float]) -> float:
    """The training frame rate (the most common one if the file mixes rates)."""
    rates, counts = np.unique(np.asarray(values), return_counts=True)
    return float(rates[np.argmax(counts)])


def _natural_key(name: object) -> list:
    """'S2 Seq1' before 'S10 Seq1'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def _missing_hint(root: Path) -> str:
    if not root.is_dir():
        return f" (folder {root} does not exist)"
    present = sorted(p.name for p in root.glob("*.npz"))
    return f"; npz files in {root}: {present}" if present else f"; no npz files in {root}"
