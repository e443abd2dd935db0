"""User backbones from the command line: ``--import MODULE`` on every tmt and bench command, and the modules
re-imported in worker processes (examples/extending/my_backbone.py registers ``mlp_lifter``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from bench.cli import main as bench_main
from tmt.cli import main as tmt_main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "extending" / "my_backbone.py"
TRAIN = [
    "--data",
    "data/synthetic-smoke",
    "--strategy",
    "tmt",
    "--frames",
    "9",
    "--dim",
    "32",
    "--depth",
    "2",
]
TRAIN += ["--epochs", "1", "--max-train-windows", "200", "--threads", "1", "--quiet"]


@pytest.fixture
def plugin_dir(workdir: Path) -> Path:
    shutil.copy(EXAMPLE, workdir / "my_backbone.py")
    return workdir


def _study(path: Path) -> Path:
    study = {
        "study": "plugin",
        "title": "a user's backbone",
        "kind": "train",
        "requires": "h36m",
        "base": {"model": {"backbone": "mlp_lifter", "dim": 32, "depth": 2}},
        "grid": [{"axes": {"model.frames": [9], "train.strategy": ["tmt"]}}],
        "layout": {"rows": ["model.frames"], "columns": "train.strategy", "metric": "mpjpe"},
        "profiles": {
            name: {
                "seeds": 1,
                "synthetic": "smoke",
                "set": {"optim.epochs": 1, "data.max_train_windows": 200},
            }
            for name in ("smoke", "cpu", "paper")
        },
    }
    out = path / "plugin.yaml"
    out.write_text(yaml.safe_dump(study, sort_keys=False))
    return out


def test_tmt_train_and_evaluate_a_backbone_named_with_import(plugin_dir: Path) -> None:
    out = plugin_dir / "runs" / "mlp"
    args = ["train", "--import", "my_backbone", "--backbone", "mlp_lifter", *TRAIN, "--out", str(out)]
    assert tmt_main(args) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["model"]["backbone"] == "mlp_lifter"
    assert result["metrics"]["mpjpe"] > 0
    assert tmt_main(["evaluate", "--import", "my_backbone", "--checkpoint", str(out / "model.pt")]) == 0


def test_a_missing_module_is_one_line_and_exit_2(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert tmt_main(["train", "--import", "no_such_module_here", *TRAIN]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --import: no module named 'no_such_module_here' (looked in {workdir} and the installed packages)"
    )
    assert not (workdir / "runs").exists()


def test_a_module_that_fails_to_import_is_named(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "broken_backbone.py").write_text("raise RuntimeError('half-written')\n")
    assert bench_main(["validate", "--import", "broken_backbone", str(_study(workdir))]) == 2
    assert (
        "--import broken_backbone: importing it failed: RuntimeError: half-written" in capsys.readouterr().err
    )


def test_a_study_names_a_user_backbone_only_with_its_module(
    plugin_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    study = _study(plugin_dir)
    if "my_backbone" not in __import__("sys").modules:  # registered by an earlier test of this process
        assert bench_main(["validate", str(study)]) == 2
        assert "unknown backbone 'mlp_lifter'" in capsys.readouterr().err
    assert bench_main(["validate", "--import", "my_backbone", str(study)]) == 0


@pytest.mark.child_process
def test_pool_workers_import_the_modules_of_the_command_line(plugin_dir: Path) -> None:
    """A spawned worker starts without the user's module; it must import it again to build the backbone."""
    study = _study(plugin_dir)
    args = ["run", "--import", "my_backbone", str(study), "--profile", "smoke", "--executor", "pool"]
    assert bench_main([*args, "--jobs", "1", "--no-report", "--store", "runs"]) == 0
    (result,) = [json.loads(p.read_text()) for p in (plugin_dir / "runs").glob("*/result.json")]
    assert result["config"]["model"]["backbone"] == "mlp_lifter"


def test_an_installed_packages_entry_point_registers_its_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution on sys.path declaring ``[tmt.backbones] ep_lifter = ep_module:EPLifter`` (not imported
    by anyone) is found the first time the name is asked for."""
    from tmt.models import available_models, build_model
    from tmt.models.registry import load_entry_points

    (tmp_path / "ep_module.py").write_text(
        EXAMPLE.read_text().replace('@register_model("mlp_lifter")\n', "").replace("MLPLifter", "EPLifter")
    )
    info = tmp_path / "ep_package-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-package\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tmt.backbones]\nep_lifter = ep_module:EPLifter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_entry_points.cache_clear()
    try:
        model = build_model("ep_lifter", in_chans=5, frames=9)
        assert type(model).__name__ == "EPLifter" and model.in_chans == 5
        assert "ep_lifter" in available_models()
    finally:
        load_entry_points.cache_clear()
