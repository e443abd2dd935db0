"""The runner: skip done cells, resume a killed one, record failures and go on; the table7 smoke study end to end."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench import runner
from bench.cli import main
from bench.store import Store
from bench.study import expand_file
from tmt.revision import code_revision

ROOT = Path(__file__).resolve().parents[1]
TABLE7 = ROOT / "studies" / "table7.yaml"


def tiny_study(
    path: Path, epochs: int = 1, strategies: tuple[str, ...] = ("tmt1", "tmt"), windows: int = 24
) -> Path:
    """Table 7's shape at the smallest size: depth 4 / 8, the given strategies, one walking action."""
    data = yaml.safe_load(TABLE7.read_text())
    data["grid"] = [
        {
            "axes": {
                "model.depth": [4, 8],
                "model.dim": [64],
                "model.frames": [27],
                "train.strategy": list(strategies),
            }
        }
    ]
    smoke = data["profiles"]["smoke"]
    smoke["set"].update(
        {"optim.epochs": epochs, "data.max_train_windows": windows, "data.actions": ["Walking"]}
    )
    smoke["scale"] = {
        "model.depth": {"map": {4: 1, 8: 2}},
        "model.dim": {"map": {64: 8}},
        "model.frames": {"map": {27: 9}},
    }
    data["profiles"]["smoke"] = smoke
    data["claims"] = [c for c in data["claims"] if set(c.get("order", [])) <= set(strategies)]
    names = data["layout"]["paper_values"]["train.strategy"]
    data["layout"]["paper_values"]["train.strategy"] = {k: v for k, v in names.items() if k in strategies}
    out = path / "table7.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def fake_result(mpjpe: float = 42.0) -> dict:
    return {"metrics": {"mpjpe": mpjpe}, "history": [], "train_time_s": 0.1, "epochs_run": 1}


def test_done_cells_are_skipped_and_force_reruns_them(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def execute(cell, folder, callbacks, save_model=False):
        calls.append(cell.id)
        for callback in callbacks:
            callback.on_epoch_end(1, {"val_mpjpe": 50.0})
        return fake_result()

    monkeypatch.setattr(runner, "execute", execute)
    expansion = expand_file(tiny_study(workdir), "smoke")
    store = Store(workdir / "runs")
    first = runner.run_cells(expansion, store)
    assert first.count("done") == 4 and len(calls) == 4
    second = runner.run_cells(expansion, store)
    assert second.count("skipped") == 4 and len(calls) == 4
    assert store.history(expansion.cells[0].id) == [{"epoch": 1, "val_mpjpe": 50.0}]
    third = runner.run_cells(expansion, store, force=True)
    assert third.count("done") == 4 and len(calls) == 8
    assert len(store.history(expansion.cells[0].id)) == 1  # --force starts the cell from scratch


def test_failed_cell_is_recorded_and_the_study_goes_on(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expansion = expand_file(tiny_study(workdir), "smoke")
    bad, nan = expansion.cells[1].id, expansion.cells[2].id

    def execute(cell, folder, callbacks, save_model=False):
        if cell.id == bad:
            raise RuntimeError("the loader exploded")
        return fake_result(math.nan if cell.id == nan else 40.0)

    monkeypatch.setattr(runner, "execute", execute)
    store = Store(workdir / "runs")
    summary = runner.run_cells(expansion, store)
    assert [o.status for o in summary.outcomes] == ["done", "failed", "failed", "done"]
    failure = store.read_failure(bad)
    assert failure["reason"] == "RuntimeError: the loader exploded" and "Traceback" in failure["traceback"]
    assert "non-finite result metric(s): mpjpe" in store.read_failure(nan)["reason"]
    frame = store.results(expansion.cells)
    assert list(frame["status"]) == ["done", "failed", "failed", "done"]
    assert frame.loc[frame.cell_id == bad, "failure"].item() == "RuntimeError: the loader exploded"
    # a rerun retries the failed cells only
    monkeypatch.setattr(runner, "execute", lambda cell, folder, callbacks, save_model=False: fake_result())
    again = runner.run_cells(expansion, store)
    assert [o.status for o in again.outcomes] == ["skipped", "done", "done", "skipped"]
    assert store.read_failure(bad) is None


def test_run_command_reports_failures_with_exit_status_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def execute(cell, folder, callbacks, save_model=False):
        from tmt.training import TrainingFailed

        if cell.labels["train.strategy"] == "tmt":
            raise TrainingFailed("non-finite loss (nan) at epoch 1, step 3")
        return fake_result()

    monkeypatch.setattr(runner, "execute", execute)
    study = tiny_study(workdir)
    assert main(["run", str(study), "--profile", "smoke", "--out", str(workdir / "reports")]) == 1
    out = capsys.readouterr().out
    assert "2 done, 2 failed" in out and out.count("non-finite loss (nan) at epoch 1, step 3") >= 2
    report = (workdir / "reports" / "table7.smoke.md").read_text()
    assert "non-finite loss (nan) at epoch 1, step 3" in report


def test_dry_run_lists_cells_and_cost_without_running(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "execute", lambda *a: pytest.fail("a dry run must not run cells"))
    assert main(["run", str(TABLE7), "--profile", "cpu", "--dry-run", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert (
        "10 cells" in out and out.count("missing") == 10 and "estimated time" in out
    )  # first row x 5 strategies x 2 seeds
    assert not (workdir / "runs").exists()


def test_missing_real_data_stops_before_any_work(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "execute", lambda *a: pytest.fail("no cell may start without its data"))
    assert main(["run", str(TABLE7), "--profile", "paper", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "data/h36m/data_3d_h36m.npz" in err and "--data synthetic" in err and "Traceback" not in err
    assert not [p for p in (workdir / "runs").glob("*/result.json")]


def test_synthetic_set_is_generated_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []

    def write_synth(root, size, seed, detector_name):
        (Path(root) / "data_3d_h36m.npz").write_bytes(b"")
        written.append(Path(root))

    import tmt.data.synth

    monkeypatch.setattr(tmt.data.synth, "write_synth", write_synth)
    monkeypatch.chdir(tmp_path)
    expansion = expand_file(TABLE7, "smoke")
    runner.ensure_data(expansion, log=lambda text: None)
    runner.ensure_data(expansion, log=lambda text: None)
    assert len(written) == 1 and (tmp_path / "data" / "synthetic-smoke" / "data_3d_h36m.npz").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["synthetic-smoke"]


@pytest.mark.child_process
def test_killed_cell_resumes_with_no_lost_or_duplicated_cells(workdir: Path) -> None:
    """SIGKILL a real run in the middle of a cell's training, then run again: every cell ends done once."""
    # 4 epochs of 96 clips: the kill after epoch 1 leaves the cell seconds of work, so it lands mid-training
    study = tiny_study(workdir, epochs=4, strategies=("tmt1",), windows=96)
    expansion = expand_file(study, "smoke")
    store = Store(workdir / "runs")
    first, second = expansion.cells
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(study), "--profile", "smoke", "--no-report"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(store.history(second.id)) < 1:  # the second cell has finished one of its four epochs
            assert proc.poll() is None and time.monotonic() < deadline, (
                "the run ended before it could be killed"
            )
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert store.status(first.id) == "done" and store.status(second.id) == "missing"
    assert store.has_checkpoint(second.id)
    first_result = (store.path(first.id) / "result.json").stat().st_mtime_ns

    summary = runner.run_cells(expansion, store)
    assert [o.status for o in summary.outcomes] == ["skipped", "done"]
    assert (store.path(first.id) / "result.json").stat().st_mtime_ns == first_result
    result = store.read_result(second.id)
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4] and result["epochs_run"] == 4
    assert result["environment"]["code_revision"] == code_revision()  # which code produced the numbers
    assert [h["epoch"] for h in store.history(second.id)] == [1, 2, 3, 4]
    assert sorted(p.name for p in store.root.iterdir()) == sorted(c.id for c in expansion.cells)


@pytest.mark.slow  # two spawned workers import torch: ~20 s on 2 cores
def test_worker_processes_run_every_cell_once(workdir: Path) -> None:
    """``--jobs 2``: two spawned workers share the cells through the store's locks, the archive holds both
    cells once, sorted; a rerun skips them all."""
    study = tiny_study(workdir, epochs=1, strategies=("tmt",))
    expansion = expand_file(study, "smoke")
    store, archive = Store(workdir / "runs"), workdir / "results" / "table7.smoke.jsonl"
    summary = runner.run_cells(expansion, store, jobs=2, archive=archive)
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    assert all(len(store.history(c.id)) == 1 for c in expansion.cells)
    lines = archive.read_text().splitlines()
    assert [json.loads(line)["cell_id"] for line in lines] == sorted(c.id for c in expansion.cells)
    assert [o.status for o in runner.run_cells(expansion, store, jobs=2).outcomes] == ["skipped", "skipped"]


def test_table7_smoke_end_to_end(tmp_path: Path, smoke_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m bench run studies/table7.yaml --profile smoke``: 4 rows x 5 strategies, all done, report written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copytree(smoke_data, tmp_path / "data" / "synthetic-smoke")
    t0 = time.monotonic()
    status = main(
        ["run", str(TABLE7), "--profile", "smoke", "--wandb", "disabled", "--out", str(tmp_path / "reports")]
    )
    elapsed = time.monotonic() - t0
    expansion = expand_file(TABLE7, "smoke")
    frame = Store(tmp_path / "runs").results(expansion.cells)
    assert list(frame["status"]) == ["done"] * 20, frame[["status", "failure"]]
    assert status == 0
    assert frame.groupby(["model.depth", "model.dim"]).size().to_dict() == {
        (4, 64): 5,
        (6, 64): 5,
        (8, 64): 5,
        (8, 128): 5,
    }
    assert set(frame["train.strategy"]) == {"tmt1", "tmt2", "tmt", "tmt1_x2", "tmt2_x2"}
    assert frame["mpjpe"].map(math.isfinite).all() and (frame["mpjpe"] > 0).all()
    assert frame["epochs_run"].eq(1).all()
    print(f"table7 smoke: {elapsed:.1f} s")
    # the committed archive alone regenerates the report: no store, no training
    archive = tmp_path / "results" / "table7.smoke.jsonl"
    assert len(archive.read_text().splitlines()) == 20
    shutil.rmtree(tmp_path / "runs")
    assert main(["report", str(TABLE7), "--profile", "smoke", "--out", str(tmp_path / "again")]) == 0
    first, again = (tmp_path / d / "table7.smoke.md" for d in ("reports", "again"))
    assert again.read_text() == first.read_text()


def test_set_overrides_every_cell_and_changes_its_identity(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def ids(*extra: str) -> list[str]:
        assert main(["run", str(TABLE7), "--profile", "smoke", "--dry-run", *extra]) == 0
        return [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:21]]

    plain, gpu = ids(), ids("--set", "train.device=cuda", "--set", "optim.epochs=2")
    assert len(set(plain)) == len(set(gpu)) == 20 and not set(plain) & set(gpu)
    settings = {"train.device": "cuda", "optim.epochs": 2}
    cells = expand_file(TABLE7, "smoke", settings=settings).cells
    assert [c.id for c in cells] == gpu
    assert {(c.config_dict["train"]["device"], c.config_dict["optim"]["epochs"]) for c in cells} == {
        ("cuda", 2)
    }
    assert main(["run", str(TABLE7), "--dry-run", "--set", "train.gpu=1"]) == 2
    assert "--set train.gpu" in capsys.readouterr().err
