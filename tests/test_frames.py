"""``bench.results``: a study's cells as a DataFrame, read from the store and the archive, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parents[1]


def test_results_read_the_archive_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    store = tmp_path / "runs"
    df = bench.results("studies/table7.yaml", profile="cpu", store=store)
    assert not store.exists()  # reading created no store
    assert len(df) == 9 and set(df["status"]) == {"done"}
    assert df.groupby("train.strategy")["seed"].count().to_dict() == {"tmt": 3, "tmt1": 3, "tmt2": 3}
    # the same numbers as the committed report's table
    means = df.groupby("train.strategy")["mpjpe"].mean()
    committed = (ROOT / "reports" / "table7.cpu.md").read_text()
    for strategy in ("tmt1", "tmt2", "tmt"):
        assert f"{means[strategy]:.2f} ±" in committed
    assert {"per_action.mpjpe.Walking", "convergence.converged", "history"} <= set(df.columns)
    # beside the paper's labels (d_l 4, d_m 64, T 27), what each cell ran: 2 / 32 / 9 on the small synthetic set
    assert set(df["model.depth"]) == {4} and set(df["run_model.depth"]) == {2}
    assert set(df["run_model.dim"]) == {32} and set(df["run_model.frames"]) == {9}
    assert set(df["run_data"]) == {"synthetic-small"}
    assert set(df["run_scaled"]) == {"model.depth 4 -> 2, model.dim 64 -> 32, model.frames 27 -> 9"}


def test_a_cell_done_in_the_store_is_read_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.store import Store
    from bench.study import expand_file

    monkeypatch.chdir(ROOT)
    cell = expand_file("studies/table7.yaml", "cpu", check_models=False).cells[0]
    store = Store(tmp_path / "runs")
    store.prepare(cell)
    archived = json.loads((ROOT / "results" / "table7.cpu.jsonl").read_text().splitlines()[0])
    result = next(
        json.loads(line)["result"]
        for line in (ROOT / "results" / "table7.cpu.jsonl").read_text().splitlines()
        if json.loads(line)["cell_id"] == cell.id
    )
    store.write_result(cell.id, {**result, "metrics": {**result["metrics"], "mpjpe": 1.5}})
    df = bench.results("studies/table7.yaml", profile="cpu", store=tmp_path / "runs")
    assert df.set_index("cell_id").loc[cell.id, "mpjpe"] == 1.5
    assert archived["cell_id"] in set(df["cell_id"])
    assert (df["status"] == "done").sum() == 9
