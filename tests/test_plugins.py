"""User backbones from the command line: ``--import MODULE`` on every tmt and bench command, and the modules
re-imported in worker processes (examples/extending/my_backbone.py registers ``mlp_lifter``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.cli import main as bench_main
from tmt.cli import main as tmt_main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "extending" / "my_backbone.py"
STUDY = ROOT / "examples" / "extending" / "mlp_study.yaml"
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
    """The worked example study (a user's backbone and strategy), copied beside the module."""
    shutil.copy(STUDY, path / "mlp_study.yaml")
    return path / "mlp_study.yaml"


def test_tmt_train_and_evaluate_a_backbone_named_with_import(plugin_dir: Path) -> None:
    out = plugin_dir / "runs" / "mlp"
    args = ["train", "--import", "my_backbone", "--backbone", "mlp_lifter", *TRAIN, "--out", str(out)]
    assert tmt_main([*args, "--strategy", "tmt_gt_first"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["model"]["backbone"] == "mlp_lifter"
    assert result["config"]["train"]["strategy"] == "tmt_gt_first"
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
    results = [json.loads(p.read_text()) for p in (plugin_dir / "runs").glob("*/result.json")]
    assert sorted(r["config"]["train"]["strategy"] for r in results) == ["baseline", "tmt", "tmt_gt_first"]
    assert {r["config"]["model"]["backbone"] for r in results} == {"mlp_lifter"}


def test_an_installed_packages_entry_point_registers_its_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution on sys.path declaring ``[tmt.backbones] ep_lifter = ep_module:EPLifter`` (not imported
    by anyone) is found the first time the name is asked for."""
    from tmt.models import available_models, build_model
    from tmt.models.registry import load_entry_points

    (tmp_path / "ep_module.py").write_text(
        "from torch import nn\n\n"
        "class EPLifter(nn.Module):\n"
        "    eval_protocol = 'seq2seq'\n\n"
        "    def __init__(self, in_chans=2, num_joints=17, frames=27):\n"
        "        super().__init__()\n"
        "        self.in_chans, self.num_joints, self.frames = in_chans, num_joints, frames\n"
        "        self.fc = nn.Linear(in_chans, 3)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
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


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (("x_bad_extra", "v4", ("zeros",)), "extra 'v4'"),
        (("x_no_steps", "v3", ()), "steps ()"),
        (("x_bad_step", "v3", ("zeros", "gt")), "each is 'zeros' or 'features'"),
        (("x_plain_features", "none", ("features",)), "needs extra channels"),
        (("tmt", "v3", ("zeros",)), "'tmt' is already registered"),
    ],
)
def test_a_bad_strategy_is_refused_when_registered(strategy: tuple, message: str) -> None:
    from tmt.errors import ConfigError
    from tmt.training import STRATEGIES, Strategy, register_strategy

    with pytest.raises(ConfigError, match=re.escape(message)):
        register_strategy(Strategy(*strategy))
    assert STRATEGIES["tmt"].steps == ("zeros", "features")
