"""Expanding studies into cells: ids, seeds, profiles (set / scale / overrides), data choice and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.cells import canonical_json, cell_id
from bench.cost import estimate_seconds
from bench.loader import StudyError, parse_study
from bench.runner import ensure_data
from bench.schema import ScaleRule
from bench.study import expand, expand_file, scale_value
from tmt.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
TABLE7 = ROOT / "studies" / "table7.yaml"


def table7() -> dict:
    """studies/table7.yaml with its cpu profile over the whole grid (the file's runs the first row only)."""
    data = yaml.safe_load(TABLE7.read_text())
    data["profiles"]["cpu"].pop("axes", None)
    return data


def cells_of(data: dict, profile: str = "cpu", **kwargs):
    return expand(parse_study(data, "table7.yaml"), "table7.yaml", profile, **kwargs).cells


def reorder(value):
    """The same data with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(v) for v in value]
    return value


def test_cell_id_does_not_depend_on_key_order() -> None:
    config = {"model": {"dim": 64, "depth": 4}, "train": {"seed": 0, "strategy": "tmt"}}
    assert cell_id(config, "cpu", "train") == cell_id(reorder(config), "cpu", "train")
    assert canonical_json(config) == canonical_json(reorder(config))
    assert cell_id(config, "cpu", "train") != cell_id(config, "smoke", "train")
    assert cell_id(config, "cpu", "train") != cell_id(config, "cpu", "complexity")
    assert len(cell_id(config, "cpu", "train")) == 16


def test_study_with_reordered_keys_gives_the_same_cells() -> None:
    data = table7()
    assert reorder(data) != list(data) and list(reorder(data)) == list(data)[::-1]
    assert sorted(c.id for c in cells_of(reorder(data))) == sorted(c.id for c in cells_of(data))


def test_cell_ids_are_stable_across_processes(tmp_path: Path) -> None:
    """The id is a pure function of the file: recomputing it in a fresh interpreter gives the same digests."""
    import subprocess
    import sys

    code = (
        "import json,sys; from bench.study import expand_file; "
        f"print(json.dumps([c.id for c in expand_file({str(TABLE7)!r}, 'smoke').cells]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [c.id for c in cells_of(table7(), "smoke")]


def test_seeds_and_data_location() -> None:
    cells = cells_of(table7(), "cpu")  # 4 rows x 5 strategies x the profile's 8 seeds
    assert len(cells) == 20 * 8
    assert sorted({c.seed for c in cells}) == list(range(8))
    assert all(c.config_dict["train"]["seed"] == c.seed for c in cells)
    assert len({c.id for c in cells}) == 160
    assert len(cells_of(table7(), "cpu", seeds=5)) == 100
    with pytest.raises(StudyError, match="--seeds"):
        cells_of(table7(), "cpu", seeds=0)
    # where the data lies is not part of the experiment
    cell = cells[0]
    moved = json.loads(json.dumps(cell.config_dict))
    moved["data"]["root"] = "/elsewhere"
    assert cell_id(moved, cell.profile, cell.kind) == cell.id


def test_labels_are_nominal_and_configs_are_scaled() -> None:
    cells = cells_of(table7(), "smoke")
    assert len(cells) == 20
    by_label = {
        (c.labels["model.depth"], c.labels["model.dim"], c.labels["train.strategy"]): c for c in cells
    }
    big = by_label[(8, 128, "tmt")].config_dict["model"]
    assert (big["depth"], big["dim"], big["frames"], big["heads"]) == (3, 24, 9, 2)
    small = by_label[(4, 64, "tmt1")].config_dict["model"]
    assert (small["depth"], small["dim"]) == (1, 16)
    paper = {
        (c.labels["model.depth"], c.labels["model.dim"]): c.config_dict for c in cells_of(table7(), "paper")
    }
    assert paper[(8, 128)]["model"]["dim"] == 128 and paper[(8, 128)]["optim"]["epochs"] == 120
    # the resolved config states the backbone's defaults
    assert paper[(8, 128)]["optim"]["lr"] == pytest.approx(4e-5)
    assert paper[(8, 128)]["train"]["loss"] == {"wmpjpe": 1.0, "tc": 0.5, "mpjve": 2.0}


def test_each_cell_states_what_it_ran_beside_its_paper_labels() -> None:
    """Labels stay the paper's values; ``as_run`` says what trained: every label that is a config field, the
    sizes d_l / d_m / T (labels or not), each field the profile scaled, and the data."""
    table1 = expand_file(ROOT / "studies" / "table1.yaml", "cpu", check_models=False).cells
    mixste = next(c for c in table1 if c.labels["model.backbone"] == "mixste")
    assert mixste.labels["model.frames"] == 81
    assert mixste.as_run() == {
        "run_model.backbone": "mixste",
        "run_model.frames": 9,
        "run_train.strategy": "baseline",
        "run_model.depth": 2,  # MixSTE's 8 x 0.25, no label of table1
        "run_model.dim": 32,  # 512 x 0.0625
        "run_data": "synthetic-small",
        "run_scaled": "model.frames 81 -> 9, model.dim 512 -> 32, model.depth 8 -> 2",
    }
    table5 = expand_file(ROOT / "studies" / "table5.yaml", "cpu", check_models=False).cells
    run = next(c for c in table5 if c.labels["optim.batch_frames"] == 2048).as_run()
    assert (run["run_optim.lr"], run["run_optim.batch_clips"]) == (0.004, 64)  # batch in clips, not frames
    assert "run_optim.batch_frames" not in run
    counted = expand_file(ROOT / "studies" / "table4.yaml", "cpu", check_models=False).cells[0].as_run()
    assert (counted["run_model.dim"], counted["run_data"], counted["run_scaled"]) == (512, "none", "")
    paper = cells_of(table7(), "paper")[0].as_run()
    assert (paper["run_model.depth"], paper["run_data"], paper["run_scaled"]) == (4, "h36m", "")


@pytest.mark.parametrize(
    ("value", "rule", "nominal", "expected"),
    [
        (512, 0.125, 512, 64),
        (600, ScaleRule(factor=0.125, multiple_of=8), 600, 72),
        (243, ScaleRule(cap=27), 243, 27),
        (9, ScaleRule(cap=27), 9, 9),
        (4, ScaleRule(factor=0.1, min=2), 4, 2),
        (243, ScaleRule(map={"243": 27, "81": 15}), 243, 27),
        (30, ScaleRule(map={"243": 27}, factor=0.5), 243, 27),
        (0.001, 0.5, 0.001, 0.0005),
        (None, 0.5, None, None),
    ],
)
def test_scale_value(value, rule, nominal, expected) -> None:
    out = scale_value(value, rule, nominal)
    assert out == pytest.approx(expected) if expected is not None else out is None
    assert type(out) is type(expected)


def test_scaling_that_merges_rows_is_an_error() -> None:
    data = table7()
    data["profiles"]["cpu"]["scale"] = {"model.depth": {"cap": 4}}
    with pytest.raises(StudyError, match="become the same experiment after scaling"):
        cells_of(data, "cpu")


def test_profile_axes_and_only_narrow_the_grid_without_changing_cell_ids() -> None:
    full = {c.id: c for c in cells_of(table7(), "cpu", seeds=1)}
    data = table7()
    data["profiles"]["cpu"]["axes"] = {"model.depth": [4, 8]}
    narrowed = cells_of(data, "cpu", seeds=1)
    assert {c.labels["model.depth"] for c in narrowed} == {4, 8}
    assert all(c.id in full for c in narrowed)  # the same experiments as in the full grid
    only = cells_of(data, "cpu", seeds=1, only={"model.depth": [8], "train.strategy": ["tmt"]})
    assert sorted(c.labels["model.dim"] for c in only) == [64, 128]
    assert all(c.labels["train.strategy"] == "tmt" for c in only)
    with pytest.raises(StudyError, match=r"--only model.depth: none of \[6\] is run by profile 'cpu'"):
        cells_of(data, "cpu", only={"model.depth": [6]})
    with pytest.raises(
        StudyError, match=r"--only model.depth: \[5\] not values of the axis; allowed: 4, 6, 8"
    ):
        cells_of(table7(), "cpu", only={"model.depth": [5]})
    with pytest.raises(StudyError, match=r"--only model\.heads: not a grid axis"):
        cells_of(table7(), "cpu", only={"model.heads": [4]})


def test_overrides_apply_to_matching_cells_only() -> None:
    data = table7()
    data["grid"].append(
        {"axes": {"model.backbone": ["poseformer"], "model.frames": [27], "train.strategy": ["tmt"]}}
    )
    data["profiles"]["cpu"]["overrides"] = [
        {"when": {"model.backbone": "poseformer"}, "set": {"model.heads": 8}, "scale": {"model.dim": 0.5}}
    ]
    cells = cells_of(data, "cpu", seeds=1)
    pose = [c for c in cells if c.labels.get("model.backbone") == "poseformer"]
    mix = [c for c in cells if "model.backbone" not in c.labels]
    assert pose and all(
        c.config_dict["model"]["dim"] == 16 and c.config_dict["model"]["heads"] == 8 for c in pose
    )
    assert all(c.config_dict["model"]["heads"] == 4 for c in mix)


def test_an_override_may_set_the_seeds_of_the_cells_it_matches() -> None:
    """table1's way: 8 seeds for the MixSTE row, the profile's 3 for the others; --seeds sets them all."""
    data = table7()
    data["grid"].append(
        {"axes": {"model.backbone": ["poseformer"], "model.frames": [27], "train.strategy": ["tmt"]}}
    )
    data["profiles"]["cpu"]["seeds"] = 3
    data["profiles"]["cpu"]["overrides"] = [{"when": {"model.backbone": "poseformer"}, "seeds": 5}]
    cells = cells_of(data, "cpu")
    pose = [c.seed for c in cells if c.labels.get("model.backbone") == "poseformer"]
    assert pose == [0, 1, 2, 3, 4]
    assert {c.seed for c in cells if "model.backbone" not in c.labels} == {0, 1, 2}
    assert {c.seed for c in cells_of(data, "cpu", seeds=2)} == {0, 1}
    data["profiles"]["cpu"]["overrides"][0]["seeds"] = 0
    with pytest.raises(StudyError, match="seeds"):
        cells_of(data, "cpu")


def test_label_axes_apply_their_settings() -> None:
    data = table7()
    data["labels"] = {"loss": {"plain": {"train.loss": {"mpjpe": 1.0}}, "ours": {}}}
    data["grid"] = [{"axes": {"loss": ["plain", "ours"], "train.strategy": ["tmt"]}}]
    data["layout"] = {"rows": ["loss"], "columns": "train.strategy", "metric": "mpjpe"}
    data["claims"] = []
    cells = {c.labels["loss"]: c for c in cells_of(data, "cpu", seeds=1)}
    assert cells["plain"].config_dict["train"]["loss"] == {"mpjpe": 1.0}
    assert cells["ours"].config_dict["train"]["loss"] == {"wmpjpe": 1.0, "tc": 0.5, "mpjve": 2.0}


def test_synthetic_and_real_data_choice(tmp_path: Path) -> None:
    data = table7()
    data["base"]["data"] = {"keypoints": "cpn_ft_h36m_dbb"}
    synthetic = cells_of(data, "cpu", seeds=1)
    assert {c.config_dict["data"]["root"] for c in synthetic} == {"data/synthetic-small"}
    assert {c.config_dict["data"]["keypoints"] for c in synthetic} == {"synth_cpn"}
    data["base"]["data"]["root"] = str(tmp_path / "h36m")
    study = parse_study(data, "table7.yaml")
    real = expand(study, "table7.yaml", "cpu", seeds=1, data="real")
    assert {c.config_dict["data"]["keypoints"] for c in real.cells} == {"cpn_ft_h36m_dbb"}
    missing = real.missing_data()
    assert {Path(p).name for p in missing} == {"data_3d_h36m.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz"}
    with pytest.raises(DataError, match="--data synthetic") as info:
        ensure_data(real)
    assert "data_3d_h36m.npz" in str(info.value) and "table7.yaml" in str(info.value)


def test_paper_profile_runs_on_real_data_by_default() -> None:
    expansion = expand(parse_study(table7(), "table7.yaml"), "table7.yaml", "paper")
    assert expansion.data == "real"
    assert {c.config_dict["data"]["root"] for c in expansion.cells} == {"data/h36m"}
    assert {c.config_dict["data"]["synthetic"] for c in expansion.cells} == {None}


def test_cost_estimate_orders_profiles() -> None:
    smoke = sum(estimate_seconds(c) for c in cells_of(table7(), "smoke"))
    cpu = sum(estimate_seconds(c) for c in cells_of(table7(), "cpu"))
    paper = sum(estimate_seconds(c) for c in cells_of(table7(), "paper"))
    assert 0 < smoke < cpu < paper


def test_only_on_the_command_line_is_checked_before_any_work(tmp_path: Path, capsys) -> None:
    from bench.cli import main

    store = str(tmp_path / "runs")
    assert main(["run", str(TABLE7), "--only", "model.depth", "--dry-run", "--store", store]) == 2
    assert "--only: expected AXIS=V1,V2" in capsys.readouterr().err
    assert main(["run", str(TABLE7), "--only", "model.depth=5", "--dry-run", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "table7.yaml: --only model.depth: [5] not values of the axis; allowed: 4, 6, 8" in err
    smoke = ["--profile", "smoke", "--dry-run", "--store", store]
    assert main(["run", str(TABLE7), "--only", "model.depth=4,6", *smoke]) == 0
    out = capsys.readouterr().out
    assert "10 cells" in out and "depth=8" not in out
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_real_data_cell_is_identified_by_the_contents_of_its_files(tmp_path: Path) -> None:
    """Other data gets other cells (never a result computed on something else); the same files elsewhere
    share them; the synthetic set's ids do not depend on where it lies."""
    from h36m_fixtures import write_h36m_fixture

    def ids(root: Path) -> list[str]:
        data = table7()
        data["base"]["data"] = {"keypoints": "gt", "root": str(root)}
        study = parse_study(data, "table7.yaml")
        return [c.id for c in expand(study, "table7.yaml", "cpu", seeds=1, data="real").cells]

    write_h36m_fixture(tmp_path / "a", seed=0)
    write_h36m_fixture(tmp_path / "b", seed=0)
    write_h36m_fixture(tmp_path / "c", seed=1)
    assert ids(tmp_path / "a") == ids(tmp_path / "b")  # identical files in another folder
    assert ids(tmp_path / "a") != ids(tmp_path / "c")  # other data
    assert ids(tmp_path / "a") != ids(tmp_path / "missing")
    (tmp_path / "b" / "data_2d_h36m_gt.npz").write_bytes(b"broken")
    assert ids(tmp_path / "a") != ids(tmp_path / "b")  # a broken file is not the data the results came from
    synthetic = table7()
    moved = table7()
    moved["base"]["data"] = {"keypoints": "gt", "root": str(tmp_path / "elsewhere")}
    assert [c.id for c in cells_of(synthetic, "cpu")] == [c.id for c in cells_of(moved, "cpu")]


# -- cell identity pinned by literals (the ids of the committed results archive) --------------------------------


def test_cell_ids_are_the_committed_archives_and_name_their_labels() -> None:
    """The ids below are in results/table7.cpu.jsonl and the committed reports: any change to what a cell id
    hashes (key names, JSON form, defaults left out) would orphan every stored result."""
    cells = expand_file(ROOT / "studies" / "table7.yaml", "cpu").cells
    assert [c.id for c in cells[:3]] == ["880352f6d6c3632e", "a08114efbffc2d63", "91da01b5dc3cb8a5"]
    assert cells[0].describe() == "depth=4 dim=64 frames=27 strategy=tmt1 seed=0"
    record = cells[0].record()
    assert {k: record[k] for k in ("cell_id", "kind", "profile", "seed")} == {
        "cell_id": "880352f6d6c3632e",
        "kind": "train",
        "profile": "cpu",
        "seed": 0,
    }
    labels = {"model.depth": 4, "model.dim": 64, "model.frames": 27, "train.strategy": "tmt1"}
    assert record["studies"] == {
        "table7": {"labels": labels, "source": str(ROOT / "studies" / "table7.yaml")}
    }
    assert "data_fingerprint" not in record  # synthetic data: no file fingerprint


def test_fields_at_their_defaults_leave_the_id_alone_and_others_change_it() -> None:
    config = expand_file(ROOT / "studies" / "table7.yaml", "cpu").cells[0].config_dict
    base = cell_id(config, "cpu", "train")
    assert base == "880352f6d6c3632e"
    train = config["train"]
    assert cell_id({**config, "train": {**train, "extra_scale": 1.0}}, "cpu", "train") == base
    assert cell_id({**config, "train": {**train, "extra_scale": "standardize"}}, "cpu", "train") != base
    assert cell_id({**config, "data": {**config["data"], "root": "/elsewhere"}}, "cpu", "train") == base
    assert (
        cell_id(config, "cpu", "train", data="abc") == "3833ba55c9cc87fc"
    )  # a real-data fingerprint (golden)
    no_root = {**config, "data": {k: v for k, v in config["data"].items() if k != "root"}}
    assert cell_id(no_root, "cpu", "train") == base  # a config without the excluded field
    assert cell_id(config, "smoke", "train") != base and cell_id(config, "cpu", "complexity") != base


def test_canonical_json_is_compact_sorted_ascii_and_refuses_nan() -> None:
    from pathlib import PurePosixPath

    value = {"b": (1, 2.5), "a": "é", "p": PurePosixPath("x/y"), "n": {"z": [("t",)]}}
    assert canonical_json(value) == '{"a":"\\u00e9","b":[1,2.5],"n":{"z":[["t"]]},"p":"x/y"}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_prefetching_batches_is_not_part_of_a_cells_identity() -> None:
    """When batches are gathered does not change what runs: --set train.prefetch keeps every cell id."""
    plain = [c.id for c in cells_of(table7(), "smoke")]
    ahead = cells_of(table7(), "smoke", settings={"train.prefetch": 2})
    assert [c.id for c in ahead] == plain
    assert {c.config.train.prefetch for c in ahead} == {2}
