"""The environment behind the committed results can be rebuilt: a lock file of every dependency with hashes,
a package that builds without deprecation warnings, and a working tree that runs leave clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
TORCH = "torch"
"""Left out of the lock: installed first, as the CPU build (README, .ci/run)."""


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _locked() -> dict[str, tuple[str, list[str]]]:
    """Package name -> (pinned version, its sha256 hashes), as the lock lists them."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"))
    found = {}
    for entry in entries:
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
        if match:
            found[canonicalize_name(match[1])] = (
                match[2],
                re.findall(r"--hash=sha256:([0-9a-f]{64})", entry),
            )
    return found


def _requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def _recorded(library: str) -> set[str]:
    """The versions of ``library`` that the committed results' cells recorded."""
    versions = set()
    for archive in (ROOT / "results").glob("*.jsonl"):
        for line in archive.read_text(encoding="utf-8").splitlines():
            versions.add(json.loads(line)["result"]["environment"][library])
    return versions


def test_the_lock_pins_every_dependency_but_torch_with_hashes() -> None:
    locked = _locked()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        if name == TORCH:
            assert name not in locked
            continue
        assert name in locked, f"{name} is a dependency of pyproject.toml but not in {LOCK.name}"
        assert requirement.specifier.contains(locked[name][0]), (requirement, locked[name][0])
    assert all(hashes for _, hashes in locked.values()), "every pin carries its hashes"


def test_the_lock_holds_the_versions_the_committed_results_ran_with() -> None:
    """numpy as the cells recorded it, and torch (outside the lock) at the version the set-up installs."""
    assert _recorded("numpy") == {_locked()["numpy"][0]}
    torch_versions = {v.split("+")[0] for v in _recorded("torch")}
    assert len(torch_versions) == 1
    (torch,) = torch_versions
    for path in (ROOT / "README.md", ROOT / ".ci" / "run"):
        text = path.read_text(encoding="utf-8")
        assert f"torch=={torch}" in text and "-r requirements.lock" in text, path.name


def test_the_lock_is_closed_under_the_dependencies_of_its_packages() -> None:
    """Each locked package that is installed here needs only locked packages (or torch): installing the lock
    with hashes, which refuses anything unpinned, cannot fail for a missing pin."""
    locked = _locked()
    checked = 0
    for name in locked:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        checked += 1
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            needed = canonicalize_name(requirement.name)
            assert needed in locked or needed == TORCH, f"{name} needs {needed}, which the lock lacks"
    assert checked > len(locked) / 2, "too few locked packages installed here to check the lock"


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


def test_the_wheel_ships_the_lift_model(built_wheel: tuple[Path, str]) -> None:
    """``tmt lift`` without --checkpoint works from an installed package, not only from a checkout."""
    wheel, _ = built_wheel
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.getinfo("tmt/resources/lift_model.pt")
    assert shipped.file_size == (ROOT / "tmt" / "resources" / "lift_model.pt").stat().st_size < 2 * 2**20
