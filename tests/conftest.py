"""Shared fixtures: the smoke synthetic Human3.6M-like set, generated once per test session, and a working
directory that sees it where the studies look for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
# The test models are tiny: one thread avoids thread start-up and contention costs that dominate at this size.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """Folder holding the synthetic set (size ``smoke``, seed 0) in the VideoPose3D npz format."""
    from tmt.data.synth_folder import ensure_synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic-smoke"
    ensure_synthetic(root, "smoke", seed=0)
    return root


@pytest.fixture
def workdir(tmp_path: Path, smoke_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose data/synthetic-smoke is the session's set (nothing is regenerated)."""
    (tmp_path / "data").mkdir()
    os.symlink(smoke_data, tmp_path / "data" / "synthetic-smoke")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    return tmp_path
