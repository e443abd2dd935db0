"""W&B mirrors cells (one run per cell, offline by default) and can never fail or lose a cell."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from bench import runner
from bench.cells import Cell
from bench.store import Store
from bench.tracking import Tracker, default_mode, summary_metrics


def make_cell(seed: int = 0) -> Cell:
    config = {
        "model": {"backbone": "mixste", "dim": 16},
        "optim": {"epochs": 2},
        "train": {"strategy": "tmt", "seed": seed},
    }
    return Cell(
        study="table7",
        profile="smoke",
        kind="train",
        labels={"train.strategy": "tmt"},
        config=config,
        seed=seed,
    )


def fake_execute(cell, folder, callbacks):
    for epoch in (1, 2):
        for callback in callbacks:
            callback.on_epoch_end(
                epoch, {"loss_step1": 1.0 / epoch, "loss_step2": None, "val_mpjpe": 90.0 - epoch}
            )
    return {
        "metrics": {"mpjpe": 80.0, "per_action": {"mpjpe": {"Walking": 79.0}}, "per_joint_mpjpe": [1.0] * 17},
        "convergence": {"time_to_target_s": None, "epochs_to_plateau": 2},
        "history": [],
        "num_parameters": 10,
        "train_time_s": 1.0,
        "epochs_run": 2,
    }


def test_mode_defaults_to_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert default_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert default_mode() == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert default_mode() == "offline"


def test_disabled_tracking_never_imports_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # any import of wandb would now raise ImportError
    monkeypatch.setattr(runner, "execute", fake_execute)
    outcome = runner.run_cell(make_cell(), Store(tmp_path), wandb_mode="disabled")
    assert outcome.status == "done"
    assert not Tracker(make_cell(), "disabled").active


def test_summary_metrics_are_flat_numbers() -> None:
    summary = summary_metrics(fake_execute(make_cell(), None, []))
    assert summary["mpjpe"] == 80.0 and summary["per_action/mpjpe/Walking"] == 79.0
    assert summary["convergence/epochs_to_plateau"] == 2 and "convergence/time_to_target_s" not in summary
    assert "per_joint_mpjpe" not in summary


@pytest.mark.child_process  # the W&B service process
def test_offline_run_is_written_per_cell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wb").mkdir()
    monkeypatch.setattr(runner, "execute", fake_execute)
    cell = make_cell()
    outcome = runner.run_cell(cell, Store(tmp_path / "runs"), wandb_mode="offline")
    assert outcome.status == "done"
    runs = list((tmp_path / "wb" / "wandb").glob(f"offline-run-*-{cell.id}"))
    assert len(runs) == 1
    assert (runs[0] / f"run-{cell.id}.wandb").stat().st_size > 0
    assert not [r for r in caplog.records if "W&B" in r.getMessage()]  # init, log and finish all worked


class _BrokenRun:
    def __init__(self) -> None:
        self.summary: dict = {}
        self.finished = False

    def log(self, *args, **kwargs) -> None:
        raise ConnectionError("the W&B service went away")

    def finish(self, *args, **kwargs) -> None:
        self.finished = True


@pytest.mark.parametrize("broken", ["init", "log"])
def test_wandb_failure_never_fails_or_loses_a_cell(
    broken: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _BrokenRun()

    def init(**kwargs):
        if broken == "init":
            raise RuntimeError("wandb.init timed out")
        return run

    fake = types.SimpleNamespace(init=init, Settings=lambda **kwargs: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr(runner, "execute", fake_execute)
    store = Store(tmp_path)
    cell = make_cell()
    with caplog.at_level(logging.WARNING, logger="bench.tracking"):
        outcome = runner.run_cell(cell, store, wandb_mode="online")
    assert outcome.status == "done" and store.read_result(cell.id)["metrics"]["mpjpe"] == 80.0
    assert len(store.history(cell.id)) == 2
    assert f"W&B {'start' if broken == 'init' else 'log'} failed for cell {cell.id}" in caplog.text
    if broken == "log":
        assert run.finished  # the broken run was closed, tracking went off for the rest of the cell
