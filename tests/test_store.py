"""The plain-file store: atomic results, failures, history, locks that die with their process, results frame."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cells import Cell
from bench.store import Store
from tmt.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def make_cell(seed: int = 0, study: str = "table7", strategy: str = "tmt", depth: int = 4) -> Cell:
    config = {
        "data": {"root": "data/synthetic-smoke", "synthetic": "smoke"},
        "model": {"backbone": "mixste", "depth": depth, "dim": 16, "frames": 9},
        "optim": {"epochs": 2},
        "train": {"strategy": strategy, "seed": seed},
    }
    labels = {"model.depth": depth, "train.strategy": strategy}
    return Cell(
        study=study,
        profile="smoke",
        kind="train",
        labels=labels,
        config=load_config(config).resolved(),
        seed=seed,
    )


def fake_result(mpjpe: float = 40.0) -> dict:
    return {
        "metrics": {
            "mpjpe": mpjpe,
            "p_mpjpe": mpjpe * 0.8,
            "mpjve": 2.5,
            "per_action": {"mpjpe": {"Walking": mpjpe - 1, "Eating": mpjpe + 1}},
            "per_joint_mpjpe": [1.0] * 17,
            "per_joint_speed": [2.0] * 17,
        },
        "history": [{"epoch": 1, "val_mpjpe": 50.0}, {"epoch": 2, "val_mpjpe": 45.0}],
        "convergence": {"time_to_target_s": 12.5, "epochs_to_target": None},
        "num_parameters": 1234,
        "train_time_s": 3.0,
        "epochs_run": 2,
        "environment": {"torch": "x"},
        "fingerprints": {"initial_weights": "0123456789abcdef", "batch_order": "fedcba9876543210"},
    }


def test_done_iff_result_written_atomically(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    assert store.status(cell.id) == "missing"
    store.prepare(cell)
    assert store.status(cell.id) == "missing" and not store.is_done(cell.id)
    store.write_result(cell.id, fake_result())
    assert store.status(cell.id) == "done"
    assert sorted(p.name for p in store.path(cell.id).iterdir()) == ["config.json", "result.json"]
    assert store.read_result(cell.id)["metrics"]["mpjpe"] == 40.0


def test_failure_is_recorded_and_cleared_by_a_later_result(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    store.write_failure(cell.id, "TrainingFailed: non-finite loss at epoch 1", "Traceback ...")
    assert store.status(cell.id) == "failed"
    assert store.read_failure(cell.id)["reason"].startswith("TrainingFailed")
    store.write_result(cell.id, fake_result())
    assert store.status(cell.id) == "done" and store.read_failure(cell.id) is None


def test_clear_forgets_outcome_and_progress(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    folder = store.prepare(cell)
    (folder / "checkpoint.pt").write_bytes(b"x")
    store.append_history(cell.id, {"epoch": 1})
    store.write_result(cell.id, fake_result())
    store.clear(cell.id)
    assert (
        store.status(cell.id) == "missing"
        and not store.has_checkpoint(cell.id)
        and store.history(cell.id) == []
    )
    assert (folder / "config.json").exists()


def test_config_json_keeps_labels_of_every_study(tmp_path: Path) -> None:
    store = Store(tmp_path)
    a, b = make_cell(study="table6"), make_cell(study="table7")
    assert a.id == b.id
    store.prepare(a)
    store.prepare(b)
    record = store.read_config(a.id)
    assert set(record["studies"]) == {"table6", "table7"}
    assert record["config"] == a.config_dict and record["cell_id"] == a.id


def test_history_keeps_one_record_per_epoch_and_skips_a_cut_line(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    for epoch, val in [(1, 9.0), (2, 8.0), (2, 7.5), (3, 7.0)]:  # epoch 2 replayed after a resume
        store.append_history(cell.id, {"epoch": epoch, "val_mpjpe": val})
    with open(store.path(cell.id) / "history.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "val_')  # killed mid-write
    history = store.history(cell.id)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[1]["val_mpjpe"] == 7.5


def test_results_frame_has_labels_status_and_flattened_metrics(tmp_path: Path) -> None:
    store = Store(tmp_path)
    done, failed, missing = make_cell(0), make_cell(1), make_cell(2)
    for cell in (done, failed):
        store.prepare(cell)
    store.write_result(done.id, fake_result(41.0))
    store.write_failure(failed.id, "FloatingPointError: non-finite result metric(s): mpjpe")
    frame = store.results([done, failed, missing])
    assert list(frame["status"]) == ["done", "failed", "missing"]
    assert list(frame["cell_id"]) == [done.id, failed.id, missing.id]
    assert list(frame["seed"]) == [0, 1, 2]
    assert set(frame["train.strategy"]) == {"tmt"} and set(frame["model.depth"]) == {4}
    row = frame.iloc[0]
    assert row["mpjpe"] == 41.0 and row["per_action.mpjpe.Walking"] == 40.0
    assert row["convergence.time_to_target_s"] == 12.5 and row["num_parameters"] == 1234
    assert row["per_joint_mpjpe"] == [1.0] * 17 and len(row["history"]) == 2
    assert frame.iloc[1]["failure"].startswith("FloatingPointError")
    assert math.isnan(frame.iloc[1]["mpjpe"]) and math.isnan(frame.iloc[2]["mpjpe"])
    assert {"study", "profile", "kind"} <= set(frame.columns)


def test_results_of_no_cells_is_an_empty_frame_with_the_columns(tmp_path: Path) -> None:
    frame = Store(tmp_path).results([])
    assert frame.empty and "status" in frame.columns


def test_lock_is_exclusive(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    with store.lock(cell.id) as first:
        assert first
        assert store.is_locked(cell.id)
        with store.lock(cell.id) as second:
            assert not second
    assert not store.is_locked(cell.id)
    with store.lock(cell.id) as again:
        assert again


def test_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    code = (
        "import sys, time; from bench.store import Store; "
        f"ctx = Store({str(tmp_path)!r}).lock({cell.id!r}); held = ctx.__enter__(); "
        "print(held, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        assert store.is_locked(cell.id)
        with store.lock(cell.id) as held:
            assert not held
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while store.is_locked(cell.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    with store.lock(cell.id) as held:
        assert held


def test_store_root_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCH_STORE", str(tmp_path / "elsewhere"))
    assert Store().root == tmp_path / "elsewhere"
    monkeypatch.delenv("BENCH_STORE")
    assert Store().root == Path("runs")


def test_result_json_is_plain_json(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    store.write_result(cell.id, fake_result())
    json.loads((store.path(cell.id) / "result.json").read_text())
    assert not [p for p in store.path(cell.id).iterdir() if p.name.endswith(".tmp")]


def test_merge_config_adds_another_records_studies_and_keeps_its_own(tmp_path: Path) -> None:
    """An archived record of the same cell (from another study) adds its study; labels already in the store win,
    and a record that adds nothing leaves the file untouched."""
    store, mine, theirs = Store(tmp_path), make_cell(study="table7"), make_cell(study="table6")
    store.prepare(mine)
    path = store.path(mine.id) / "config.json"
    record = theirs.record()
    record["studies"]["table7"] = {"labels": {"stale": True}}
    store.merge_config(mine.id, record)
    merged = store.read_config(mine.id)
    assert set(merged["studies"]) == {"table6", "table7"}
    assert merged["studies"]["table7"] == mine.record()["studies"]["table7"]
    assert merged["studies"]["table6"] == theirs.record()["studies"]["table6"]
    assert merged["config"] == mine.config_dict and merged["cell_id"] == mine.id
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    store.merge_config(mine.id, theirs.record())
    assert path.stat().st_mtime_ns == stamp - 10**9  # nothing new: not rewritten


def test_an_unreadable_checkpoint_is_set_aside_not_deleted(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    folder = store.prepare(cell)
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    kept = store.set_checkpoint_aside(cell.id)
    assert kept == folder / "checkpoint.pt.unreadable"
    assert kept.read_bytes() == b"not a checkpoint"
    assert not store.has_checkpoint(cell.id)


def test_cell_ids_are_the_folders_with_a_config_in_order(tmp_path: Path) -> None:
    assert Store(tmp_path / "nowhere").cell_ids() == []
    store = Store(tmp_path)
    cells = [make_cell(seed) for seed in (0, 1, 2)]
    for cell in cells:
        store.prepare(cell)
    (tmp_path / "stray").mkdir()  # a folder without config.json is not a cell
    assert store.cell_ids() == sorted(c.id for c in cells)


def test_a_failure_records_reason_traceback_and_time(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    store.write_failure(cell.id, "DataError: missing file", "Traceback (most recent call last): ...")
    record = json.loads((store.path(cell.id) / "failure.json").read_text())
    store.write_failure(cell.id, "DataError: missing file")
    assert json.loads((store.path(cell.id) / "failure.json").read_text())["traceback"] == ""
    assert set(record) == {"reason", "traceback", "time"}
    assert record["reason"] == "DataError: missing file"
    assert record["traceback"] == "Traceback (most recent call last): ..."
    assert time.strptime(record["time"], "%Y-%m-%dT%H:%M:%S%z").tm_year >= 2024


def test_history_lines_are_sorted_json_and_unnumbered_records_count_on(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    store.append_history(cell.id, {"val_mpjpe": 9.0, "epoch": 1})
    store.append_history(cell.id, {"val_mpjpe": float("nan")})  # no epoch: the next one, epoch 2
    lines = (store.path(cell.id) / "history.jsonl").read_text().splitlines()
    assert lines[0] == '{"epoch": 1, "val_mpjpe": 9.0}'
    assert lines[1] == '{"val_mpjpe": NaN}'
    history = store.history(cell.id)
    assert len(history) == 2 and history[0] == {"epoch": 1, "val_mpjpe": 9.0}
    assert math.isnan(history[1]["val_mpjpe"])
    store.append_history(cell.id, {"epoch": 2, "val_mpjpe": 8.0})  # replaces the unnumbered epoch 2
    assert store.history(cell.id) == [{"epoch": 1, "val_mpjpe": 9.0}, {"epoch": 2, "val_mpjpe": 8.0}]


def test_a_failed_cells_row_names_the_failure_and_keeps_its_epochs(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    store.append_history(cell.id, {"epoch": 1, "val_mpjpe": 90.0})
    store.write_failure(cell.id, "TrainingFailed: non-finite loss")
    row = store.row(cell)
    assert row["status"] == "failed" and row["failure"] == "TrainingFailed: non-finite loss"
    assert row["history"] == [{"epoch": 1, "val_mpjpe": 90.0}]
    assert "mpjpe" not in row
    assert (row["study"], row["profile"], row["kind"], row["seed"]) == ("table7", "smoke", "train", 0)


def test_json_files_are_indented_sorted_and_keep_non_finite_numbers(tmp_path: Path) -> None:
    from bench.store import read_json, write_json_atomic

    path = tmp_path / "r.json"
    write_json_atomic(path, {"b": 1, "a": float("nan"), "c": {"z": [1, 2], "y": "é"}})
    assert path.read_text(encoding="utf-8") == (
        '{\n "a": NaN,\n "b": 1,\n "c": {\n  "y": "\\u00e9",\n  "z": [\n   1,\n   2\n  ]\n }\n}'
    )
    assert read_json(path)["c"] == {"z": [1, 2], "y": "é"}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_a_released_lock_is_not_reported_as_held(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    assert not store.is_locked(cell.id)  # no lock file yet
    with store.lock(cell.id) as held:
        assert held
    assert not store.is_locked(cell.id)


def test_preparing_a_cell_again_for_the_same_study_leaves_its_config_alone(tmp_path: Path) -> None:
    store, cell = Store(tmp_path), make_cell()
    path = store.prepare(cell) / "config.json"
    stamp = path.stat().st_mtime_ns - 10**9
    os.utime(path, ns=(stamp, stamp))
    store.prepare(cell)
    assert path.stat().st_mtime_ns == stamp
    assert store.read_config("no-such-cell") is None and store.read_result(cell.id) is None


def test_a_finished_cells_row_without_metrics_or_history(tmp_path: Path) -> None:
    store, done, missing = Store(tmp_path), make_cell(0), make_cell(1)
    store.prepare(done)
    store.write_result(done.id, {"num_parameters": 7})
    row = store.row(done)
    assert row["failure"] is None and row["history"] == [] and row["num_parameters"] == 7
    assert "" not in row  # no metrics: no columns from them
    assert "per_joint_mpjpe" not in row
    full = make_cell(2)
    store.prepare(full)
    store.write_result(full.id, fake_result())
    assert store.row(full)["per_joint_speed"] == [2.0] * 17
    # what the report's pairing rule reads: the initial weights and batch order the cell trained from
    assert store.row(full)["fingerprints.initial_weights"] == "0123456789abcdef"
    assert store.row(full)["fingerprints.batch_order"] == "fedcba9876543210"
    assert store.row(missing) == {
        "cell_id": missing.id,
        "study": "table7",
        "profile": "smoke",
        "kind": "train",
        "seed": 1,
        "status": "missing",
        "failure": None,
        "model.depth": 4,
        "train.strategy": "tmt",
        "run_model.depth": 4,  # what it runs, known before it ran
        "run_train.strategy": "tmt",
        "run_model.dim": 16,
        "run_model.frames": 9,
        "run_data": "synthetic-smoke",
        "run_scaled": "",
    }
    empty = store.results([])
    assert list(empty.columns) == ["cell_id", "study", "profile", "kind", "seed", "status", "failure"]
