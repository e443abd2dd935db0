"""Real-format loaders (Human3.6M VideoPose3D npz, MPI-INF-3DHP P-STMO npz) and the PoseDataset helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from h36m_fixtures import (
    H36M_FIXTURE_ACTIONS,
    MPI_FIXTURE_CAMERAS,
    mocap_frames,
    other_spelling,
    write_h36m_fixture,
    write_mpi_inf_3dhp_fixture,
)
from payloads import RunsCode

from tmt.cameras import h36m_cameras, normalize_screen_coordinates, project_to_pixels, world_to_camera
from tmt.data import PoseDataset, load_h36m, load_mpi_inf_3dhp
from tmt.data.safe_npz import load_npz
from tmt.errors import ConfigError, DataError
from tmt.skeleton import H36M_JOINTS_KEPT_FROM_32, MPI_INF_3DHP

TRAIN, TEST = ("S1", "S5"), ("S9", "S11")
CPN = "cpn_ft_h36m_dbb"


@pytest.fixture(scope="module")
def h36m_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h36m_fixture(tmp_path_factory.mktemp("h36m"))


@pytest.fixture(scope="module")
def gt_dataset(h36m_root: Path) -> PoseDataset:
    return load_h36m(h36m_root, "gt", train_subjects=TRAIN, test_subjects=TEST)


def _read(path: Path, key: str) -> dict:
    return load_npz(path)[key].item()


def _rewrite(path: Path, key: str, mutate: Callable[[dict], object]) -> None:
    """Rewrite one key of a fixture file after ``mutate`` changed (or replaced) its dict."""
    items = {k: v.item() if v.dtype == object and v.shape == () else v for k, v in load_npz(path).items()}
    result = mutate(items[key])
    items[key] = items[key] if result is None else result
    np.savez(path, **items)


def _by_key(sequences: list) -> dict:
    return {(s.subject, s.action, s.camera): s for s in sequences}


# ---------------------------------------------------------------- Human3.6M


def test_h36m_shapes_dtypes_and_root(gt_dataset: PoseDataset) -> None:
    assert gt_dataset.name == "h36m" and gt_dataset.fps == 50.0 and gt_dataset.keypoints == "gt"
    assert len(gt_dataset.train) == 2 * 4 * 4  # subjects x actions x cameras
    assert len(gt_dataset.test) == (4 + 3) * 4  # S11 Directions has no 2D
    assert gt_dataset.skipped == ["S11 Directions"]
    cameras = h36m_cameras()
    for s in gt_dataset.train + gt_dataset.test:
        n = mocap_frames(12, H36M_FIXTURE_ACTIONS.index(s.action))
        assert s.keypoints_2d.shape == (n, 17, 2) and s.keypoints_2d.dtype == np.float32
        assert s.pose_3d.shape == (n, 17, 3) and s.pose_3d.dtype == np.float32
        assert s.root_3d.shape == (n, 3) and s.root_3d.dtype == np.float32
        assert np.all(s.pose_3d[:, 0] == 0.0)
        assert np.all(s.root_3d[:, 2] > 1.0)  # in front of the camera, metres
        cam = cameras[s.subject][s.camera]
        assert s.resolution == (cam.res_w, cam.res_h) and s.valid is None


def test_h36m_canonical_names_and_groups(gt_dataset: PoseDataset) -> None:
    for split in (gt_dataset.train, gt_dataset.test):
        assert {s.action for s in split} == set(
            H36M_FIXTURE_ACTIONS
        )  # S1 3D and S5/S9/S11 2D use old spellings
    groups = {s.action: s.action_group for s in gt_dataset.train}
    assert groups == {
        "Directions": "Directions",
        "Photo": "Photo",
        "WalkDog 1": "WalkDog",
        "Walking 1": "Walking",
    }
    assert gt_dataset.actions() == ["Directions", "Photo", "WalkDog", "Walking"]  # paper table order
    assert gt_dataset.subjects("test") == ["S9", "S11"]


def test_h36m_camera_transform_matches_projection(gt_dataset: PoseDataset, h36m_root: Path) -> None:
    world = _read(h36m_root / "data_3d_h36m.npz", "positions_3d")
    cameras = h36m_cameras()
    for s in gt_dataset.train + gt_dataset.test:
        cam = cameras[s.subject][s.camera]
        absolute = s.pose_3d.astype(np.float64) + s.root_3d[:, None]
        expected_2d = normalize_screen_coordinates(project_to_pixels(absolute, cam), cam.res_w, cam.res_h)
        np.testing.assert_allclose(s.keypoints_2d, expected_2d, atol=2e-5)
        name = s.action if s.action in world[s.subject] else other_spelling(s.action)
        raw = world[s.subject][name]
        expected_3d = world_to_camera(raw[:, list(H36M_JOINTS_KEPT_FROM_32)].astype(np.float64), cam)
        np.testing.assert_allclose(absolute, expected_3d, atol=1e-5)


def test_h36m_truncates_longer_2d_to_mocap(h36m_root: Path) -> None:
    raw = _read(h36m_root / f"data_2d_h36m_{CPN}.npz", "positions_2d")["S5"]["TakingPhoto"]
    n = mocap_frames(12, H36M_FIXTURE_ACTIONS.index("Photo"))
    assert [len(v) for v in raw] == [n, n + 1, n + 2, n + 3]
    data = load_h36m(h36m_root, CPN, train_subjects=["S5"], test_subjects=[])
    cameras = h36m_cameras()["S5"]
    for c in range(4):
        s = _by_key(data.train)[("S5", "Photo", c)]
        expected = normalize_screen_coordinates(
            raw[c][:n].astype(np.float64), cameras[c].res_w, cameras[c].res_h
        )
        np.testing.assert_allclose(s.keypoints_2d, expected, atol=1e-6)


def test_h36m_mix_towards_gt_is_eq2(h36m_root: Path, gt_dataset: PoseDataset) -> None:
    def load(**kw: object) -> dict:
        return _by_key(load_h36m(h36m_root, CPN, train_subjects=TRAIN, test_subjects=TEST, **kw).test)

    detector, gt = load(), _by_key(gt_dataset.test)
    m0, m1, half = load(mix_towards_gt=0.0), load(mix_towards_gt=1.0), load(mix_towards_gt=0.5)
    assert set(detector) == set(gt) == set(half)
    gap = np.mean([np.abs(detector[k].keypoints_2d - gt[k].keypoints_2d).mean() for k in gt])
    assert gap > 1e-3  # the detector really differs from GT
    for k in gt:
        np.testing.assert_allclose(m0[k].keypoints_2d, detector[k].keypoints_2d, atol=1e-6)
        np.testing.assert_allclose(m1[k].keypoints_2d, gt[k].keypoints_2d, atol=1e-6)
        midpoint = (detector[k].keypoints_2d.astype(np.float64) + gt[k].keypoints_2d) / 2
        np.testing.assert_allclose(half[k].keypoints_2d, midpoint, atol=1e-6)
        np.testing.assert_array_equal(half[k].pose_3d, gt[k].pose_3d)


def test_h36m_action_filter(h36m_root: Path) -> None:
    data = load_h36m(h36m_root, train_subjects=TRAIN, test_subjects=TEST, actions=["Walking", "TakingPhoto"])
    assert {s.action for s in data.train + data.test} == {"Walking 1", "Photo"}
    with pytest.raises(ConfigError, match="Jumping"):
        load_h36m(h36m_root, train_subjects=TRAIN, test_subjects=TEST, actions=["Jumping"])


def test_split_validation_holds_out_training_subjects_only(gt_dataset: PoseDataset) -> None:
    fit, val = gt_dataset.split_validation("S5")
    assert {s.subject for s in val} == {"S5"} and {s.subject for s in fit} == {"S1"}
    assert len(fit) + len(val) == len(gt_dataset.train)
    for bad in ("S9", "S7", ["S1", "S5"]):
        with pytest.raises(ConfigError, match=r"S9|S7|no training subject"):
            gt_dataset.split_validation(bad)

    fit, val = gt_dataset.split_validation(0.25, seed=3)
    recordings = {(s.subject, s.action) for s in val}
    assert len(recordings) == 2  # a quarter of the 8 training recordings
    assert {(s.subject, s.action) for s in fit}.isdisjoint(recordings)
    assert len(val) == 4 * len(recordings)  # all cameras of a recording on one side
    assert {s.subject for s in val} <= set(TRAIN)
    again = gt_dataset.split_validation(0.25, seed=3)[1]
    assert [(s.subject, s.action, s.camera) for s in again] == [(s.subject, s.action, s.camera) for s in val]
    with pytest.raises(ConfigError, match="fraction"):
        gt_dataset.split_validation(1.0)


def test_subset_filters_both_splits(gt_dataset: PoseDataset) -> None:
    small = gt_dataset.subset(actions=["Walking"], cameras=[0])
    assert {(s.action, s.camera) for s in small.train + small.test} == {("Walking 1", 0)}
    assert small.num_frames("test") == 2 * mocap_frames(12, H36M_FIXTURE_ACTIONS.index("Walking 1"))
    assert len(gt_dataset.train) == 32  # the original is untouched


@pytest.fixture()
def small_root(tmp_path: Path) -> Path:
    return write_h36m_fixture(tmp_path, subjects=("S1", "S9"), actions=("Walking", "Photo 1"), frames=6)


def _nan_in_3d(tree: dict) -> None:
    tree["S9"]["Walking"][2, 5, 1] = np.nan


def _nan_in_2d(tree: dict) -> None:
    tree["S9"]["Walking"][1][3, 0, 0] = np.inf


def _short_2d(tree: dict) -> None:
    tree["S9"]["Walking"][2] = tree["S9"]["Walking"][2][:4]


def _seventeen_joints(tree: dict) -> None:
    tree["S9"]["Walking"] = tree["S9"]["Walking"][:, :17]


def _three_cameras(tree: dict) -> None:
    tree["S9"]["Walking"] = tree["S9"]["Walking"][:3]


@pytest.mark.parametrize(
    ("file", "key", "mutate", "patterns"),
    [
        ("data_3d_h36m.npz", "positions_3d", _nan_in_3d, ["data_3d_h36m.npz", "S9", "Walking", "NaN"]),
        (f"data_2d_h36m_{CPN}.npz", "positions_2d", _nan_in_2d, [CPN, "S9", "Walking", "camera 1", "NaN"]),
        (
            f"data_2d_h36m_{CPN}.npz",
            "positions_2d",
            _short_2d,
            [CPN, "S9", "Walking", "camera 2", "4 frames"],
        ),
        (
            "data_3d_h36m.npz",
            "positions_3d",
            _seventeen_joints,
            ["data_3d_h36m.npz", "S9", "Walking", r"17, 3"],
        ),
        (f"data_2d_h36m_{CPN}.npz", "positions_2d", _three_cameras, [CPN, "S9", "Walking", "4 cameras"]),
        (f"data_2d_h36m_{CPN}.npz", "metadata", lambda meta: {**meta, "num_joints": 16}, [CPN, "num_joints"]),
    ],
)
def test_h36m_bad_values(
    small_root: Path, file: str, key: str, mutate: Callable, patterns: list[str]
) -> None:
    _rewrite(small_root / file, key, mutate)
    with pytest.raises(DataError) as err:
        load_h36m(small_root, CPN, train_subjects=["S1"], test_subjects=["S9"])
    for pattern in patterns:
        assert pattern in str(err.value), (pattern, str(err.value))


def test_h36m_missing_files_name_path_and_available_sets(small_root: Path) -> None:
    with pytest.raises(DataError) as err:
        load_h36m(small_root, "detectron_pt_coco", train_subjects=["S1"], test_subjects=["S9"])
    assert "data_2d_h36m_detectron_pt_coco.npz" in str(err.value) and f"['{CPN}', 'gt']" in str(err.value)
    (small_root / "data_3d_h36m.npz").unlink()
    with pytest.raises(DataError, match=r"data_3d_h36m\.npz: file not found"):
        load_h36m(small_root, train_subjects=["S1"], test_subjects=["S9"])
    with pytest.raises(DataError, match="does not exist"):
        load_h36m(small_root / "nowhere")


def test_h36m_wrong_key_and_corrupt_file(small_root: Path) -> None:
    path = small_root / "data_3d_h36m.npz"
    poses = _read(path, "positions_3d")
    np.savez(path, positions=poses)
    with pytest.raises(
        DataError, match=r"data_3d_h36m.npz: expected key 'positions_3d', found keys \['positions'\]"
    ):
        load_h36m(small_root, train_subjects=["S1"], test_subjects=["S9"])
    np.savez(path, positions_3d=poses)
    gt_path = small_root / "data_2d_h36m_gt.npz"
    gt_path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(DataError, match=r"data_2d_h36m_gt\.npz: not a readable npz file"):
        load_h36m(small_root, CPN, mix_towards_gt=0.5, train_subjects=["S1"], test_subjects=["S9"])


@pytest.mark.parametrize("m", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_h36m_mix_out_of_range(small_root: Path, m: object) -> None:
    with pytest.raises(ConfigError, match="mix_towards_gt"):
        load_h36m(small_root, CPN, mix_towards_gt=m, train_subjects=["S1"], test_subjects=["S9"])


def test_h36m_unknown_or_missing_subject(small_root: Path) -> None:
    with pytest.raises(ConfigError, match="'S3'"):
        load_h36m(small_root, train_subjects=["S1", "S3"], test_subjects=["S9"])
    with pytest.raises(DataError, match=r"data_3d_h36m.npz: subject 'S7' not found"):
        load_h36m(small_root, train_subjects=["S1", "S7"], test_subjects=["S9"])
    with pytest.raises(ConfigError, match="both"):
        load_h36m(small_root, train_subjects=["S1", "S9"], test_subjects=["S9"])


# ---------------------------------------------------------------- MPI-INF-3DHP


@pytest.mark.parametrize("object_arrays", [False, True])
def test_mpi_inf_3dhp_load(tmp_path: Path, object_arrays: bool) -> None:
    root = write_mpi_inf_3dhp_fixture(tmp_path, object_arrays=object_arrays)
    data = load_mpi_inf_3dhp(root)
    assert data.name == "mpi_inf_3dhp" and data.skeleton is MPI_INF_3DHP and data.fps == 25.0
    assert [(s.subject, s.action, s.action_group, s.camera) for s in data.train] == [
        (subject, name, name, cam)
        for subject, name in (("S1", "S1 Seq1"), ("S2", "S2 Seq2"))
        for cam in MPI_FIXTURE_CAMERAS
    ]
    assert [(s.subject, s.action_group, s.resolution) for s in data.test] == [
        ("TS1", "TS1", (2048, 2048)),
        ("TS5", "TS5", (1920, 1080)),
    ]
    train_raw = _read(root / "data_train_3dhp.npz", "data")
    test_raw = _read(root / "data_test_3dhp.npz", "data")
    for s in data.train + data.test:
        raw = test_raw[s.action] if s.valid is not None else train_raw[s.action][0][s.camera]
        n = len(raw["data_3d"])
        assert s.pose_3d.shape == (n, 17, 3) and s.pose_3d.dtype == np.float32
        assert np.all(s.pose_3d[:, MPI_INF_3DHP.root] == 0.0)
        np.testing.assert_allclose(s.root_3d, raw["data_3d"][:, 14] / 1000.0, rtol=1e-6)
        np.testing.assert_allclose(s.pose_3d + s.root_3d[:, None], raw["data_3d"] / 1000.0, atol=1e-6)
        w, h = s.resolution
        np.testing.assert_allclose(
            s.keypoints_2d, normalize_screen_coordinates(raw["data_2d"], w, h), atol=1e-6
        )
    for s in data.test:
        assert s.valid.dtype == bool and s.valid.shape == (s.num_frames,)
        np.testing.assert_array_equal(s.valid, test_raw[s.action]["valid"])
    assert data.split_validation("S2")[1] == [s for s in data.train if s.subject == "S2"]


def _bad_3d(data: dict) -> None:
    data["TS5"]["data_3d"] = data["TS5"]["data_3d"][:, :16]


def _bad_valid(data: dict) -> None:
    data["TS1"]["valid"] = data["TS1"]["valid"][:-2]


def _unknown_sequence(data: dict) -> None:
    data["TS9"] = data.pop("TS1")


@pytest.mark.parametrize(
    ("mutate", "patterns"),
    [
        (_bad_3d, ["data_test_3dhp.npz", "TS5", "data_3d", "(11, 16, 3)"]),
        (_bad_valid, ["data_test_3dhp.npz", "TS1", "valid"]),
        (_unknown_sequence, ["data_test_3dhp.npz", "TS9"]),
        (lambda data: np.zeros(3), ["data_test_3dhp.npz", "'data'", "dict"]),
    ],
)
def test_mpi_inf_3dhp_bad_inputs(tmp_path: Path, mutate: Callable, patterns: list[str]) -> None:
    root = write_mpi_inf_3dhp_fixture(tmp_path)
    _rewrite(root / "data_test_3dhp.npz", "data", mutate)
    with pytest.raises(DataError) as err:
        load_mpi_inf_3dhp(root)
    for pattern in patterns:
        assert pattern in str(err.value), (pattern, str(err.value))


def test_mpi_inf_3dhp_missing_file(tmp_path: Path) -> None:
    root = write_mpi_inf_3dhp_fixture(tmp_path)
    (root / "data_train_3dhp.npz").unlink()
    with pytest.raises(
        DataError, match=r"data_train_3dhp.npz: file not found; npz files in .*data_test_3dhp.npz"
    ):
        load_mpi_inf_3dhp(root)


def test_npz_with_a_code_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    np.savez(
        tmp_path / "data_3d_h36m.npz", positions_3d=np.array([{"S1": RunsCode(str(marker))}], dtype=object)
    )
    with pytest.raises(
        DataError, match=r"data_3d_h36m\.npz: holds a pickled object .*refused to load io\.open"
    ):
        load_h36m(tmp_path, "gt")
    assert not marker.exists()


def test_a_pickle_saved_under_an_npz_name_is_refused_without_running_it(tmp_path):
    import pickle

    marker = tmp_path / "ran"
    (tmp_path / "data_3d_h36m.npz").write_bytes(pickle.dumps(RunsCode(str(marker))))
    with pytest.raises(DataError, match=r"data_3d_h36m\.npz: not a readable npz file"):
        load_h36m(tmp_path, "gt")
    assert not marker.exists()


def test_restricted_reader_keeps_the_nested_dicts_of_the_standard_formats(tmp_path):
    nested = {"S1": {"Walking": np.arange(6, dtype=np.float32).reshape(2, 3)}, "meta": [("a", 1), 2.5]}
    np.savez(tmp_path / "f.npz", positions=nested, plain=np.ones(3))
    out = load_npz(tmp_path / "f.npz")
    assert out["positions"].item()["S1"]["Walking"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out["positions"].item()["meta"] == [("a", 1), 2.5]
    assert out["plain"].tolist() == [1.0, 1.0, 1.0]
