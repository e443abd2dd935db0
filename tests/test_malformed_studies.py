"""Malformed studies are refused up front: one line naming the file and the field, exit status 2, no traceback.

tests/malformed_studies/ holds a small valid study (00_valid.yaml) and one file per realistic mistake, each
that study with a single change; expected.csv names the field (or, for a file that is not YAML at all, the
words) each refusal must contain. Every file goes through ``bench.cli.main`` in-process, which is what
``python -m bench validate`` runs; a few go through a real subprocess as well.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from bench.cli import main
from bench.loader import StudyError
from bench.schema import plain_name
from tmt.strict_yaml import StrictLoader

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "malformed_studies"
VALID = CORPUS / "00_valid.yaml"
with (CORPUS / "expected.csv").open(newline="") as _fh:
    EXPECTED = {row["file"]: row["field"] for row in csv.DictReader(_fh)}
MALFORMED = sorted(name for name, field in EXPECTED.items() if field)
IN_A_SUBPROCESS = (
    "05_duplicate_key.yaml",
    "27_fp16_on_cpu.yaml",
    "31_path_traversal.study",
    "33_binary_garbage.yaml",
)


def assert_refused(stderr: str, path: Path, field: str) -> None:
    """Exactly one line, naming the file and the field, and no traceback."""
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert str(path) in stderr, stderr
    assert field in stderr, f"expected {field!r} in: {stderr}"
    assert "Traceback" not in stderr


def variant(tmp_path: Path, name: str, change: dict[str, Any]) -> Path:
    """00_valid.yaml as ``<name>.yaml`` with ``change`` (profile -> settings merged into its ``set``)."""
    data = yaml.safe_load(VALID.read_text())
    data["study"] = name
    for profile, settings in change.items():
        if profile == "base":
            for section, values in settings.items():
                data["base"].setdefault(section, {}).update(values)
        else:
            data["profiles"][profile].setdefault("set", {}).update(settings)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_corpus_lists_every_file_and_has_at_least_40_mistakes() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "expected.csv"}
    assert files == set(EXPECTED)
    assert len(MALFORMED) >= 40 and EXPECTED["00_valid.yaml"] == ""


def test_the_base_of_the_corpus_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(VALID)]) == 0
    assert capsys.readouterr().out.startswith("ok  ")


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_study_is_refused_in_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no data/ folder: the refusals never depend on the checkout's data
    path = CORPUS / name
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_refused(err, path, EXPECTED[name])
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("name", IN_A_SUBPROCESS)
def test_validate_command_refuses_in_one_line(name: str) -> None:
    path = CORPUS / name
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "validate", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert_refused(proc.stderr, path, EXPECTED[name])


def test_duplicate_keys_name_both_lines_and_merge_keys_still_work() -> None:
    with pytest.raises(yaml.YAMLError, match=r"^a\.b: key 'b' is written twice \(lines 2 and 3\)"):
        yaml.load("a:\n  b: 1\n  b: 2\n", Loader=StrictLoader)
    with pytest.raises(yaml.YAMLError, match=r"lines 1 and 1"):
        yaml.load("{x: 1, x: 2}", Loader=StrictLoader)
    merged = yaml.load("a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n", Loader=StrictLoader)
    assert merged == {"a": {"b": 1, "c": 2}, "d": {"b": 3, "c": 2}}
    with pytest.raises(yaml.constructor.ConstructorError):  # still a safe loader
        yaml.load("!!python/object/apply:os.getcwd []", Loader=StrictLoader)


def test_names_that_become_file_names_are_plain() -> None:
    for name in ("table7", "table7_equal_updates", "fig2", "v1.2-b"):
        assert plain_name(name) == name
    for name in ("../x", "a/b", "a\\b", "a..b", ".hidden", "", "x y"):
        with pytest.raises(ValueError, match="not a plain name"):
            plain_name(name)


def test_set_values_and_seeds_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["run", str(VALID), "--profile", "smoke", "--store", str(tmp_path / "runs")]
    for setting, field in [
        ("optim.lr=.inf", "--set optim.lr"),
        ("optim.lr=nan", "--set optim.lr"),
        ("model.extra={drop: .nan}", "--set model.extra.drop"),
        ("train.precision=fp16", "--set train.precision"),
        ("train.device=cpuu", "--set train.device"),
    ]:
        assert main([*run, "--set", setting]) == 2, setting
        assert_refused(capsys.readouterr().err, VALID, field)
    assert main([*run, "--set", "optim.lr=0.1", "--set", "optim.lr=0.2"]) == 2
    assert "--set optim.lr: given twice" in capsys.readouterr().err
    assert main([*run, "--seeds", "1000000"]) == 2
    assert_refused(capsys.readouterr().err, VALID, "--seeds")
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_device_this_machine_lacks_and_validate_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = variant(tmp_path, "gpu_study", {"paper": {"train.device": "cuda", "train.precision": "fp16"}})
    assert main(["validate", str(path)]) == 0  # a study for another machine
    capsys.readouterr()
    store = tmp_path / "runs"
    assert main(["run", str(path), "--profile", "paper", "--store", str(store)]) == 2
    assert_refused(capsys.readouterr().err, path, "train.device: 'cuda' is not available here")
    assert not store.exists()
    assert main(["run", str(path), "--profile", "paper", "--store", str(store), "--dry-run"]) == 0
    assert "device (the run would stop" in capsys.readouterr().out


def test_real_data_names_are_checked_against_human36m_and_the_data_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "h36m"
    wrong = {"base": {"data": {"keypoints": "cpn_ft_h36m_dbb"}}, "paper": {"data.root": str(root)}}
    path = variant(tmp_path, "real_keypoints", wrong)
    assert main(["validate", str(path)]) == 0  # no data folder yet: run names the missing files
    root.mkdir()
    for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz"):
        (root / name).write_bytes(b"")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert_refused(err, path, "base.data.keypoints: unknown keypoint set 'cpn_ft_h36m_dbb'")
    assert f"sets in Human3.6M ({root}): gt" in err and "[profile paper]" in err
    path = variant(tmp_path, "real_subjects", {"paper": {"data.test_subjects": ["S9", "S12"]}})
    assert main(["validate", str(path)]) == 2
    assert_refused(
        capsys.readouterr().err, path, "profiles.paper.data.test_subjects: unknown subject(s) ['S12']"
    )
    path = variant(tmp_path, "real_takes", {"paper": {"data.actions": ["Walking 1", "TakingPhoto"]}})
    assert main(["validate", str(path)]) == 0  # full names and the other spelling of Photo are Human3.6M's


def test_load_errors_are_study_errors(tmp_path: Path) -> None:
    """The library raises the one-line StudyError too (what bench report and bench search rely on)."""
    from bench.loader import load_study_file

    for name in ("32_non_utf8.yaml", "36_empty_file.yaml", "06_duplicate_profile.yaml"):
        with pytest.raises(StudyError, match=re.escape(EXPECTED[name])):
            load_study_file(CORPUS / name)
    with pytest.raises(StudyError, match="cannot read"):
        load_study_file(tmp_path / "missing.yaml")
