"""The synthetic set's folder: generated once, marked as the project's, and nobody else's folder is touched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tmt.data.synth
from tmt.data.synth_folder import MARKER, PARTIAL, ensure_synthetic, read_marker
from tmt.errors import DataError


@pytest.fixture
def fake_writer(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """write_synth replaced by one that writes small files fast; returns the folders written."""
    written: list[Path] = []

    def write_synth(root, size, seed, detector_name):
        for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", f"data_2d_h36m_{detector_name}.npz"):
            (Path(root) / name).write_bytes(b"generated")
        (Path(root) / "synth_info.json").write_text("{}")
        written.append(Path(root))

    monkeypatch.setattr(tmt.data.synth, "write_synth", write_synth)
    return written


def test_generated_once_and_marked(tmp_path: Path, fake_writer: list[Path]) -> None:
    root = tmp_path / "new" / "synthetic"
    ensure_synthetic(root, "smoke", 0)
    ensure_synthetic(root, "smoke", 0)
    assert fake_writer == [root]
    assert read_marker(root) == {"size": "smoke", "seed": 0, "detector_name": "synth_cpn"}
    assert not (root / PARTIAL).exists()
    assert not list(tmp_path.glob("new/.*"))  # nothing written beside the folder


def test_a_users_folder_is_refused_and_left_as_it_was(tmp_path: Path, fake_writer: list[Path]) -> None:
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("my own work")
    before = sorted(os.listdir(thesis))
    with pytest.raises(
        DataError, match=r"thesis: data.root is not empty \(chapter1.tex\) and was not created"
    ):
        ensure_synthetic(thesis, "small", 0)
    assert sorted(os.listdir(thesis)) == before and (thesis / "chapter1.tex").read_text() == "my own work"
    assert not fake_writer


def test_a_users_data_file_is_never_overwritten(tmp_path: Path, fake_writer: list[Path]) -> None:
    (tmp_path / "data_3d_h36m.npz").write_bytes(b"the user's real data")
    with pytest.raises(DataError, match="was not created by tmt-bench"):
        ensure_synthetic(tmp_path, "small", 0)
    assert (tmp_path / "data_3d_h36m.npz").read_bytes() == b"the user's real data"


def test_a_set_of_other_settings_is_refused(tmp_path: Path, fake_writer: list[Path]) -> None:
    ensure_synthetic(tmp_path / "s", "smoke", 0)
    with pytest.raises(DataError, match=r"generated with size 'smoke', seed 0.*not size 'small', seed 0"):
        ensure_synthetic(tmp_path / "s", "small", 0)


def test_a_cut_generation_is_redone_removing_only_its_own_files(
    tmp_path: Path, fake_writer: list[Path]
) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / PARTIAL).write_text(json.dumps({"size": "smoke", "seed": 0, "detector_name": "synth_cpn"}))
    (root / "data_3d_h36m.npz").write_bytes(b"half written")
    ensure_synthetic(root, "smoke", 0)
    assert (root / "data_3d_h36m.npz").read_bytes() == b"generated"
    assert (root / MARKER).exists() and not (root / PARTIAL).exists()


def test_a_read_only_parent_is_one_clear_error(tmp_path: Path, fake_writer: list[Path]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(DataError, match="cannot create the synthetic data folder"):
            ensure_synthetic(parent / "s", "smoke", 0)
    finally:
        parent.chmod(0o700)


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path, fake_writer: list[Path]) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        ensure_synthetic(tmp_path / "f", "smoke", 0)
