"""Study files: the shipped ones validate; malformed ones fail with one message naming file, field and choices."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.loader import StudyError, load_study_file, parse_study
from bench.study import expand

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
TABLE7 = ROOT / "studies" / "table7.yaml"


def table7() -> dict:
    return yaml.safe_load(TABLE7.read_text())


def write(tmp_path: Path, data: dict, name: str = "table7") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(tmp_path: Path, data: dict, profile: str | None = "paper") -> str:
    """The StudyError message for ``data``, whether the schema or the cell expansion rejects it."""
    path = write(tmp_path, data)
    with pytest.raises(StudyError) as info:
        study = load_study_file(path)
        if profile:
            expand(study, str(path), profile)
    return str(info.value)


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_studies_validate_with_every_profile(path: Path) -> None:
    study = load_study_file(path)
    assert study.study == path.stem
    for name in ("paper", "cpu", "smoke"):
        cells = expand(study, str(path), name).cells
        assert cells, f"{path.name} [{name}] has no cells"
        assert len({c.id for c in cells}) == len(cells)
    if study.kind == "train":  # complexity counts are deterministic: one cell per grid point
        cpu = expand(study, str(path), "cpu").cells
        assert len(cpu) >= 3 * len(expand(study, str(path), "cpu", seeds=1).cells)
        assert {c.config_dict["data"]["synthetic"] for c in cpu} == {"small"}


def test_every_paper_table_has_a_study() -> None:
    covered = {name for p in STUDIES for name in load_study_file(p).paper_tables()}
    from bench.paper import paper_tables

    assert set(paper_tables()) <= covered
    assert {p.stem for p in STUDIES} >= {f"table{i}" for i in range(1, 11)} | {"fig2"}


def test_unknown_top_level_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    data = table7()
    data["colour"] = "red"
    message = error_of(tmp_path, data, profile=None)
    assert "table7.yaml" in message and "colour: unknown key" in message
    assert "allowed: study, title, paper" in message


def test_unknown_nested_key_lists_the_keys_of_that_section(tmp_path: Path) -> None:
    data = table7()
    data["profiles"]["cpu"]["seed"] = 3
    message = error_of(tmp_path, data, profile=None)
    assert "profiles.cpu.seed: unknown key (did you mean 'seeds'?)" in message
    assert "seeds" in message.split("allowed:")[1]


def test_a_misspelt_config_path_gets_the_closest_field(tmp_path: Path) -> None:
    data = table7()
    data["profiles"]["cpu"]["set"]["optim.lr_decy"] = 0.9
    message = error_of(tmp_path, data, profile=None)
    assert (
        "'optim.lr_decy' is not a configuration field (did you mean 'lr_decay'?); allowed at optim:"
        in message
    )


def test_wrong_type_names_field_and_value(tmp_path: Path) -> None:
    data = table7()
    data["profiles"]["cpu"]["seeds"] = "three"
    message = error_of(tmp_path, data, profile=None)
    assert "profiles.cpu.seeds" in message and "'three'" in message


def test_unknown_config_path_in_an_axis(tmp_path: Path) -> None:
    data = table7()
    data["grid"][0]["axes"]["model.colour"] = [1]
    message = error_of(tmp_path, data, profile=None)
    assert "grid.0.axes.model.colour" in message and "allowed at model: backbone" in message


def test_unknown_strategy_names_the_axis_and_allowed_strategies(tmp_path: Path) -> None:
    data = table7()
    data["grid"][0]["axes"]["train.strategy"] = ["tmt", "tmt3"]
    message = error_of(tmp_path, data)
    assert "grid.0.axes.train.strategy" in message and "'tmt3'" in message and "tmt_va3" in message


def test_unknown_backbone(tmp_path: Path) -> None:
    data = table7()
    data["base"]["model"]["backbone"] = "resnet"
    message = error_of(tmp_path, data)
    assert "table7.yaml" in message and "'resnet'" in message and "mixste" in message


def test_unknown_loss_term(tmp_path: Path) -> None:
    data = table7()
    data["base"]["train"] = {"loss": {"l1": 1.0}}
    message = error_of(tmp_path, data)
    assert "train.loss" in message and "l1" in message and "wmpjpe" in message


def test_mhformer_frames_not_divisible_by_nine_fails_before_training(tmp_path: Path) -> None:
    data = table7()
    data["base"]["model"]["backbone"] = "mhformer"
    data["grid"][0]["axes"]["model.frames"] = [10]
    message = error_of(tmp_path, data)
    assert "mhformer" in message and "frames=10" in message and "model.frames=10" in message


def test_claim_value_that_is_not_in_the_grid(tmp_path: Path) -> None:
    data = table7()
    data["claims"][0]["order"] = ["tmt", "tmt9"]
    message = error_of(tmp_path, data, profile=None)
    assert "claims.0 (tmt_best).order" in message and "'tmt9'" in message and "tmt1, tmt2, tmt" in message


def test_profile_axes_must_be_grid_values(tmp_path: Path) -> None:
    data = table7()
    data["profiles"]["cpu"]["axes"] = {"model.depth": [4, 5]}
    message = error_of(tmp_path, data, profile=None)
    assert (
        "profiles.cpu.axes.model.depth" in message and "5 is not a value" in message and "4, 6, 8" in message
    )
    data["profiles"]["cpu"]["axes"] = {"model.heads": [4]}
    assert "'model.heads' is not a grid axis" in error_of(tmp_path, data, profile=None)


def test_claim_needs_the_fields_of_its_test(tmp_path: Path) -> None:
    data = table7()
    del data["claims"][0]["order"]
    assert "needs order" in error_of(tmp_path, data, profile=None)


def test_a_correlation_claim_cannot_claim_a_decreasing_relation(tmp_path: Path) -> None:
    """The correlation test judges r > min; a 'decreasing' claim would be judged as increasing."""
    data = yaml.safe_load((ROOT / "studies" / "fig2.yaml").read_text())
    data["claims"][0]["direction"] = "decreasing"
    message = error_of(tmp_path, data, profile=None)
    assert "claims.0" in message and "decreasing is not supported" in message


def test_layout_metric_must_be_a_result_metric(tmp_path: Path) -> None:
    data = table7()
    data["layout"]["metric"] = "mpjpee"
    message = error_of(tmp_path, data, profile=None)
    assert "layout.metric" in message and "per_action.mpjpe" in message and "more problem" not in message


def test_every_study_has_the_three_profiles(tmp_path: Path) -> None:
    data = table7()
    del data["profiles"]["smoke"]
    assert "missing profile(s) smoke" in error_of(tmp_path, data, profile=None)


def test_unknown_profile_on_the_command_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, table7(), profile="gpu")
    assert "--profile" in message and "paper, cpu, smoke" in message


def test_study_name_must_match_the_file(tmp_path: Path) -> None:
    data = copy.deepcopy(table7())
    path = write(tmp_path, data, name="other")
    with pytest.raises(StudyError, match="must equal the file name 'other'"):
        load_study_file(path)


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "table7.yaml"
    path.write_text("study: table7\ngrid: [\n  - axes: {a: 1\n")
    with pytest.raises(StudyError, match=r"table7.yaml: not valid YAML at line \d+"):
        load_study_file(path)


def test_a_study_must_be_a_mapping() -> None:
    with pytest.raises(StudyError, match="a study is a mapping"):
        parse_study(["a"], "x.yaml")


def test_validate_command_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    data = table7()
    data["grid"][0]["axes"]["train.strategy"] = ["tmt3"]
    path = write(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "validate", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert str(path) in proc.stderr


def test_validate_command_accepts_the_shipped_studies(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    assert main(["validate", *map(str, STUDIES), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == len(STUDIES) and "smoke: " in out
