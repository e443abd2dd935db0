"""``python -m tmt.data check DIR``: a good folder is described, a broken one is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from h36m_fixtures import write_h36m_fixture, write_mpi_inf_3dhp_fixture

from tmt.data.__main__ import main
from tmt.data.h36m import read_poses_3d
from tmt.data.safe_npz import load_npz


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["check", str(root)])
    out, err = capsys.readouterr()
    return status, out, err


def refused(root: Path, capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    status, out, err = check(root, capsys)
    assert status == 2 and "ok:" not in out
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for text in expected:
        assert text in err


def test_the_synthetic_set_passes(smoke_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = check(smoke_data, capsys)
    assert status == 0 and err == ""
    assert "Human3.6M, VideoPose3D layout" in out
    assert "7 subjects (S1 S5 S6 S7 S8 S9 S11), 15 actions" in out
    assert "2D gt: " in out and "2D synth_cpn: " in out and "x 4 cameras" in out
    assert "split: train S1 S5 S6 S7 S8, test S9 S11" in out
    assert "note:" not in out
    assert out.splitlines()[-1].startswith(f"ok: {smoke_data} loads (")


def test_a_fixture_with_the_real_quirks_passes_and_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_h36m_fixture(tmp_path / "h36m")
    status, out, _ = check(root, capsys)
    assert status == 0
    assert "4 subjects (S1 S5 S9 S11), 4 actions, 16 recordings" in out
    assert "2D cpn_ft_h36m_dbb: 15 recordings x 4 cameras" in out
    assert "left out (not in data_2d_h36m_gt.npz): S11 Directions" in out
    assert "the standard protocol also needs S6 S7 S8" in out


def test_mpi_inf_3dhp_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_mpi_inf_3dhp_fixture(tmp_path / "3dhp")
    status, out, _ = check(root, capsys)
    assert status == 0
    assert "MPI-INF-3DHP, P-STMO layout" in out
    assert "2 subjects, 2 sequences, cameras 0 2 8" in out and "at 25 fps" in out
    assert "test data_test_3dhp.npz: TS1 TS5" in out
    assert "Human3.6M" not in out


def test_missing_folder_and_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(tmp_path / "nowhere", capsys, "nowhere: no such folder")
    refused(tmp_path, capsys, "no Human3.6M files", "no MPI-INF-3DHP files")


def test_missing_3d_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))
    (root / "data_3d_h36m.npz").unlink()
    refused(root, capsys, "data_3d_h36m.npz: file not found", "['gt']")


def test_missing_2d_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))
    (root / "data_2d_h36m_gt.npz").unlink()
    refused(root, capsys, "no 2D keypoint file data_2d_h36m_<keypoints>.npz")


def test_unreadable_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt", "cpn_ft_h36m_dbb"))
    (root / "data_2d_h36m_cpn_ft_h36m_dbb.npz").write_bytes(b"not a zip archive")
    refused(root, capsys, "data_2d_h36m_cpn_ft_h36m_dbb.npz: not a readable npz file")


def _rewrite_3d(root: Path, change) -> None:
    poses = read_poses_3d(root)
    change(poses)
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=poses)


def test_2d_shorter_than_the_mocap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))

    def lengthen(poses: dict) -> None:
        walk = poses["S5"]["Walking 1"]
        poses["S5"]["Walking 1"] = np.concatenate([walk, walk[-10:]])

    _rewrite_3d(root, lengthen)
    refused(root, capsys, "data_2d_h36m_gt.npz: S5 'Walking 1' camera 0", "fewer than the")


def test_wrong_joint_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))
    _rewrite_3d(root, lambda poses: poses["S9"].update({"Photo": poses["S9"]["Photo"][:, :17]}))
    refused(root, capsys, "data_3d_h36m.npz: S9 'Photo' positions_3d", "(N>0, 32, 3)")


def test_a_recording_without_its_four_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))
    path = root / "data_2d_h36m_gt.npz"
    items = load_npz(path)
    positions = items["positions_2d"].item()
    positions["S1"]["Directions"] = positions["S1"]["Directions"][:3]
    np.savez_compressed(path, positions_2d=positions, metadata=items["metadata"].item())
    refused(root, capsys, "data_2d_h36m_gt.npz: S1 'Directions'", "4 cameras, found 3 entries")


def test_a_3d_subject_without_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_h36m_fixture(tmp_path, keypoints=("gt",))
    _rewrite_3d(root, lambda poses: poses.update({"S2": poses["S1"]}))
    refused(root, capsys, "data_3d_h36m.npz: subjects ['S2'] have no Human3.6M cameras")


def test_mpi_inf_3dhp_frame_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_mpi_inf_3dhp_fixture(tmp_path)
    test = load_npz(root / "data_test_3dhp.npz")["data"].item()
    test["TS1"]["data_2d"] = test["TS1"]["data_2d"][:-1]
    np.savez_compressed(root / "data_test_3dhp.npz", data=test)
    refused(root, capsys, "data_test_3dhp.npz: sequence 'TS1'", "data_2d has")
