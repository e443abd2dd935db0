"""The environment behind the committed results can be rebuilt: a lock file of every dependency with hashes,
a package that builds without deprecation warnings, and a working tree that runs leave clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel of a copy of the project, built by its own build backend, and what the build printed."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("tmt", "bench"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", build], cwd=source, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return out / done.stdout.split()[-1], done.stdout + done.stderr


def test_the_license_is_an_spdx_expression_and_building_warns_of_nothing(
    built_wheel: tuple[Path, str],
) -> None:
    wheel, printed = built_wheel
    assert "Deprecat" not in printed and "project.license" not in printed, printed
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in archive.read(meta).decode().splitlines()
    (requires,) = _pyproject()["build-system"]["requires"]
    assert Requirement(requires).specifier.contains(metadata.version("setuptools"))
    assert not Requirement(requires).specifier.contains("76.9"), "an SPDX license needs setuptools >= 77"


def test_variant_archives_are_ignored_by_git() -> None:
    """A run with --set / --only writes results/<study>.<profile>+<variant>.jsonl: not part of the repository."""
    from bench.archive import archive_path, variant_suffix

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    variant = variant_suffix({"optim.epochs": 2}, {"train.strategy": ["tmt"]})
    paths = [archive_path("results", "table7", profile + variant) for profile in ("smoke", "cpu")]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *map(str, paths)], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.stdout.split() == [str(p) for p in paths]
    committed = subprocess.run(
        ["git", "check-ignore", "--no-index", "results/table7.cpu.jsonl"], cwd=ROOT, capture_output=True
    )
    assert committed.returncode == 1, "the profiles' own archives stay tracked"
