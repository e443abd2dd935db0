"""The training protocols of the paper profiles: reference settings by default, the honest control on demand,
a bad protocol refused before any work, and the protocol stated in the report header."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.report.cli import _protocol_context
from bench.report.markdown import ReportContext, render_header
from bench.study import expand_file

STUDIES = Path(__file__).resolve().parents[1] / "studies"
TABLE1 = STUDIES / "table1.yaml"  # MixSTE and MHFormer rows: the gradient quirk is MixSTE's only


def test_paper_profile_cells_carry_the_reference_protocol() -> None:
    expansion = expand_file(TABLE1, "paper")
    assert expansion.protocol == "reference" and expansion.variant == ""
    backbones = set()
    for cell in expansion.cells:
        config = cell.config
        backbones.add(config.model.backbone)
        assert config.data.validation_fraction == 0.0
        assert config.eval.selection == "best_test"
        assert config.optim.scale_grad_by_loss is (config.model.backbone == "mixste")
    assert backbones == {"mixste", "mhformer"}


def test_honest_protocol_holds_out_validation_and_is_reported_apart() -> None:
    reference = expand_file(TABLE1, "paper")
    honest = expand_file(TABLE1, "paper", protocol="honest")
    assert honest.variant == "+protocol=honest" and honest.protocol == "honest"
    for cell in honest.cells:
        assert cell.config.data.validation_fraction == 0.1
        assert cell.config.eval.selection == "best_val"
        assert cell.config.optim.scale_grad_by_loss is False
    assert not {c.id for c in honest.cells} & {c.id for c in reference.cells}
    # naming the profile's own protocol is the profile's own run: same cells, same report
    same = expand_file(TABLE1, "paper", protocol="reference")
    assert same.variant == "" and [c.id for c in same.cells] == [c.id for c in reference.cells]


def test_cpu_and_smoke_profiles_name_no_protocol() -> None:
    """Their cells keep their own settings (and ids): the committed results stay valid."""
    for profile in ("cpu", "smoke"):
        expansion = expand_file(TABLE1, profile)
        assert expansion.protocol is None
        assert _protocol_context(expansion) == {}


def test_report_header_states_the_protocol_and_each_backbones_recipe() -> None:
    expansion = expand_file(TABLE1, "paper")
    ctx = ReportContext(study="table1", title="Table 1", profile="paper", **_protocol_context(expansion))
    header = render_header(ctx, pd.DataFrame({"cell_id": ["a"], "status": ["missing"]}))
    lines = header.splitlines()
    protocol = [line for line in lines if line.startswith("- **Protocol:** reference")]
    assert len(protocol) == 1 and "best test MPJPE" in protocol[0]
    mixste = next(line for line in lines if line.startswith("- **Recipe (mixste):**"))
    assert "adamw" in mixste and "lr 4e-05 x 0.99 per epoch" in mixste and "batch 1024 frames" in mixste
    assert "120 epochs" in mixste and "gradients x loss" in mixste and "selection best_test" in mixste
    mhformer = next(line for line in lines if line.startswith("- **Recipe (mhformer):**"))
    assert "adam (amsgrad)" in mhformer and "19 epochs" in mhformer and "plain gradients" in mhformer
    cpu = ReportContext(study="table1", title="Table 1", profile="cpu")
    assert "Protocol" not in render_header(cpu, pd.DataFrame({"cell_id": ["a"], "status": ["missing"]}))


def _study_with(tmp_path: Path, profile_change: dict) -> Path:
    data = yaml.safe_load(TABLE1.read_text())
    data["profiles"]["paper"].update(profile_change)
    path = tmp_path / "table1.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _refused(capsys: pytest.CaptureFixture[str], path: Path, field: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err and field in err, err


def test_a_bad_protocol_value_is_refused_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study_with(tmp_path, {"protocol": "reference-ish"})
    assert main(["validate", str(path)]) == 2
    _refused(capsys, path, "profiles.paper.protocol")
    store = tmp_path / "runs"
    assert main(["run", str(path), "--profile", "paper", "--store", str(store), "--dry-run"]) == 2
    _refused(capsys, path, "profiles.paper.protocol")
    assert not store.exists()


def test_a_profile_may_not_set_what_its_protocol_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _study_with(tmp_path, {"set": {"optim.epochs": 120, "eval.selection": "last"}})
    assert main(["validate", str(path)]) == 2
    _refused(capsys, path, "eval.selection")


def test_a_bad_protocol_option_is_refused_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(TABLE1), "--profile", "paper", "--protocol", "fair", "--dry-run"])
    assert info.value.code == 2 and "--protocol" in capsys.readouterr().err
