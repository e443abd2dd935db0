"""``bench.results``: a study's cells as a DataFrame, read from the store and the archive, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "results" / "table7.cpu.jsonl"


def _archived_ids() -> set[str]:
    return {json.loads(line)["cell_id"] for line in ARCHIVE.read_text().splitlines() if line.strip()}


def test_results_read_the_archive_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.study import expand_file

    monkeypatch.chdir(ROOT)
    store = tmp_path / "runs"
    df = bench.results("studies/table7.yaml", profile="cpu", store=store)
    assert not store.exists()  # reading created no store
    expected = {c.id for c in expand_file("studies/table7.yaml", "cpu", check_models=False).cells}
    assert set(df["cell_id"]) == expected  # every cell of the study, finished or not
    done = df[df["status"] == "done"]
    assert set(done["cell_id"]) == expected & _archived_ids() and len(done) > 0
    # the same numbers as the committed report's table
    means = done.groupby("train.strategy")["mpjpe"].mean()
    committed = (ROOT / "reports" / "table7.cpu.md").read_text()
    for strategy, mean in means.items():
        assert f"{mean:.2f} ±" in committed or f"{mean:.2f} |" in committed, strategy
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
    archived = _archived_ids()
    cell = next(
        c for c in expand_file("studies/table7.yaml", "cpu", check_models=False).cells if c.id in archived
    )
    store = Store(tmp_path / "runs")
    store.prepare(cell)
    result = next(
        json.loads(line)["result"]
        for line in ARCHIVE.read_text().splitlines()
        if json.loads(line)["cell_id"] == cell.id
    )
    store.write_result(cell.id, {**result, "metrics": {**result["metrics"], "mpjpe": 1.5}})
    df = bench.results("studies/table7.yaml", profile="cpu", store=tmp_path / "runs")
    assert df.set_index("cell_id").loc[cell.id, "mpjpe"] == 1.5  # the store's result wins over the archive
    assert (df["status"] == "done").sum() == len(set(df["cell_id"]) & archived)
