"""W&B mirrors cells (one run per cell, offline by default) and can never fail or lose a cell."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
from pathlib import Path

import pytest

from bench import runner
from bench.cells import Cell
from bench.store import Store
from bench.tracking import Tracker, Tracking, default_mode, summary_metrics
from tmt.training.config import load_config


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
        config=load_config(config).resolved(),
        seed=seed,
    )


def fake_execute(cell, folder, callbacks, save_model=False):
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
    outcome = runner.run_cell(make_cell(), Store(tmp_path), tracking=Tracking("disabled"))
    assert outcome.status == "done"
    assert Tracker(make_cell(), "disabled").run is None


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
    outcome = runner.run_cell(cell, Store(tmp_path / "runs"), tracking=Tracking("offline"))
    assert outcome.status == "done"
    runs = list((tmp_path / "wb" / "wandb").glob(f"offline-run-*-{cell.id}"))
    assert len(runs) == 1
    assert (runs[0] / f"run-{cell.id}.wandb").stat().st_size > 0
    assert not [r for r in caplog.records if "W&B" in r.getMessage()]  # init, log and finish all worked


class _BrokenRun:
    def __init__(self) -> None:
        self.summary: dict = {}
        self.finished = False

    def define_metric(self, *args, **kwargs) -> None:
        pass

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
        outcome = runner.run_cell(cell, store, tracking=Tracking("online"))
    assert outcome.status == "done" and store.read_result(cell.id)["metrics"]["mpjpe"] == 80.0
    assert len(store.history(cell.id)) == 2
    assert f"W&B {'start' if broken == 'init' else 'log'} failed for cell {cell.id}" in caplog.text
    if broken == "log":
        assert run.finished  # the broken run was closed, tracking went off for the rest of the cell


# -- what a run records: a stand-in for the wandb module that keeps every call ---------------------------------


class _Recorded:
    """A wandb run that records what it is given; ``summary`` may hold what an earlier attempt logged."""

    def __init__(self, init: dict, summary: dict | None = None) -> None:
        self.init, self.summary, self.tags = init, dict(summary or {}), tuple(init.get("tags", ()))
        self.logged: list[dict] = []
        self.metrics: dict[str, str | None] = {}
        self.artifacts: list = []
        self.exit_code: int | None = None

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.metrics[name] = step_metric

    def log(self, values: dict) -> None:
        self.logged.append(values)

    def log_artifact(self, artifact) -> None:
        self.artifacts.append(artifact)

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


class _Artifact:
    def __init__(self, name: str, type: str, metadata: dict | None = None) -> None:
        self.name, self.type, self.files = name, type, []

    def add_file(self, path: str, name: str | None = None) -> None:
        self.files.append(name or Path(path).name)


def _fake_wandb(monkeypatch: pytest.MonkeyPatch, summary: dict | None = None) -> list[_Recorded]:
    runs: list[_Recorded] = []

    def init(**kwargs):
        runs.append(_Recorded(kwargs, summary))
        return runs[-1]

    fake = types.SimpleNamespace(
        init=init,
        Settings=lambda **kwargs: None,
        Table=lambda columns, data: {"columns": columns, "data": data},
        Artifact=_Artifact,
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return runs


def resumed_execute(cell, folder, callbacks, save_model=False):
    """Epochs 3 and 4 of a cell whose epochs 1 and 2 ran in a killed process (they are in the store)."""
    for epoch in (3, 4):
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"loss_step1": 0.5, "val_mpjpe": 90.0 - epoch, "epoch": epoch})
    if save_model:
        (folder / "model.pt").write_bytes(b"weights")
    history = [{"epoch": e, "val_mpjpe": 90.0 - e, "lr": 0.1 / e} for e in (1, 2, 3, 4)]
    return {
        "metrics": {
            "mpjpe": 80.0,
            "per_action": {"mpjpe": {"Walking": 79.0, "Eating": 81.0}},
            "per_joint_mpjpe": [1.0] * 17,
        },
        "selection": {"rule": "best_val", "epoch": 3},
        "history": history,
        "epochs_run": 4,
    }


@pytest.mark.parametrize(("wandb_had", "replayed"), [(0, [1, 2]), (1, [2])])
def test_a_resumed_cell_replays_the_stored_epochs_wandb_lacks(
    wandb_had: int, replayed: list[int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs = _fake_wandb(monkeypatch, {"epoch": wandb_had} if wandb_had else None)
    monkeypatch.setattr(runner, "execute", resumed_execute)
    store, cell = Store(tmp_path), make_cell()
    store.prepare(cell)
    for epoch in (1, 2):  # what the killed process had written
        store.append_history(cell.id, {"epoch": epoch, "val_mpjpe": 90.0 - epoch})
    assert runner.run_cell(cell, store, tracking=Tracking("offline")).status == "done"
    (run,) = runs
    epochs = [values["epoch"] for values in run.logged if "epoch" in values]
    assert epochs == [*replayed, 3, 4]  # every epoch once, in order
    assert run.metrics["*"] == "epoch" and run.metrics["train/*"] == "update"
    # the summary holds the selected epoch (3), not the last one (4)
    assert (
        run.summary["selected_epoch"] == 3
        and run.summary["val_mpjpe"] == 87.0
        and run.summary["lr"] == 0.1 / 3
    )
    tables = next(values for values in run.logged if "per_joint" in values)
    assert tables["per_joint"]["data"][2][:2] == ["RKnee", 1.0]
    assert tables["per_action"]["data"] == [["Eating", 81.0], ["Walking", 79.0]]
    assert run.exit_code == 0 and not run.artifacts


def test_variants_trials_and_models_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runs = _fake_wandb(monkeypatch)
    monkeypatch.setattr(runner, "execute", resumed_execute)
    tracking = Tracking(
        "offline",
        variant="+train.precision=bf16+model.depth=4",
        log_model=True,
        trial={"study": "s", "number": 7},
    )
    cell = make_cell()
    assert runner.run_cell(cell, Store(tmp_path), tracking=tracking).status == "done"
    (run,) = runs
    assert run.init["name"] == f"table7+train.precision=bf16+model.depth=4/{cell.describe()}"
    assert run.init["group"] == "table7+train.precision=bf16+model.depth=4"
    assert {"study:table7", "variant:train.precision=bf16", "variant:model.depth=4", "trial:s#7"} <= set(
        run.tags
    )
    assert run.init["config"]["bench"]["trial"] == {"study": "s", "number": 7}
    (artifact,) = run.artifacts
    assert (artifact.type, artifact.files) == ("model", ["model.pt"])


def test_a_pruned_trial_finishes_as_pruned_not_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs = _fake_wandb(monkeypatch)

    def pruned(cell, folder, callbacks, save_model=False):
        raise runner.CellStopped("pruned after epoch 2 (validation MPJPE 88.0 mm)")

    monkeypatch.setattr(runner, "execute", pruned)
    outcome = runner.run_cell(make_cell(), Store(tmp_path), tracking=Tracking("offline"))
    assert outcome.status == "stopped"
    (run,) = runs
    assert run.exit_code == 0 and "pruned" in run.tags
    assert run.summary["state"] == "pruned" and run.summary["stopped"].startswith("pruned after epoch 2")


def test_training_losses_are_logged_every_n_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _fake_wandb(monkeypatch)
    tracker = Tracker(make_cell(), Tracking("offline", log_every=2))
    for update in range(1, 6):
        tracker.on_batch_end(update, {"zeros": 1.0 / update, "features": float("nan")})
    (run,) = runs
    assert run.logged == [{"train/loss_step1": 0.5, "update": 2}, {"train/loss_step1": 0.25, "update": 4}]


def test_bad_tracking_options_are_refused() -> None:
    with pytest.raises(ValueError, match="--wandb-log-every: must be 0"):
        Tracking("offline", log_every=-1)
    with pytest.raises(ValueError, match="unknown mode 'cloud'"):
        Tracking("cloud")


def test_a_report_is_logged_to_a_study_level_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``bench report --wandb``: one run per study and profile, the report's files as an artifact and its
    cells (their own run ids) as a table, read here from the committed table7 cpu archive."""
    from bench.cli import main

    runs = _fake_wandb(monkeypatch)
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the archives live in results/
    out = tmp_path / "reports"
    args = [
        "report",
        "studies/table7.yaml",
        "--profile",
        "cpu",
        "--out",
        str(out),
        "--store",
        str(tmp_path / "s"),
    ]
    assert main([*args, "--wandb", "offline"]) == 0
    (run,) = runs
    assert (
        run.init["job_type"] == "report"
        and run.init["group"] == "table7"
        and run.init["id"] == "report-table7.cpu"
    )
    (artifact,) = run.artifacts
    assert artifact.type == "report"
    assert {"table7.cpu.md", "table7.cpu.csv"} <= set(artifact.files)
    assert any(name.endswith(".png") for name in artifact.files)
    (logged,) = run.logged
    table = logged["cells"]
    cell_ids = [row[table["columns"].index("cell_id")] for row in table["data"]]
    assert len(cell_ids) == 40 and "880352f6d6c3632e" in cell_ids  # every cell of the study, run or not
    statuses = [row[table["columns"].index("status")] for row in table["data"]]
    archived = sum(1 for line in (root / "results" / "table7.cpu.jsonl").read_text().splitlines() if line)
    assert statuses.count("done") == archived and set(statuses) <= {"done", "missing"}
    assert "table7.cpu: report logged to W&B (offline)" in capsys.readouterr().out


def wandb_records(path: Path) -> list:
    """The records of a ``.wandb`` file (a LevelDB-style log of protobuf records after a 7-byte header).

    wandb 0.31 no longer ships a Python reader for its own files; this is the format's reading loop."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, pending, out = path.read_bytes(), 7, b"", []
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # padding to the end of a block
            pos += room
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


@pytest.mark.child_process  # the W&B service process
def test_a_resumed_cells_offline_run_holds_every_epoch_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A killed process wrote epochs 1 and 2 to the store but nothing to W&B; the resumed cell's offline run,
    read back from its .wandb file, holds epochs 1-4 once each, the selected epoch in its summary and the model
    artifact."""
    import json
    import subprocess
    import sys
    import time

    # A fresh process: the W&B service of this one may already be set up for another test's folder.
    script = (
        "from bench import runner; from bench.store import Store; from bench.tracking import Tracking\n"
        "import test_wandb as t\n"
        "runner.execute = t.resumed_execute\n"
        "store, cell = Store('runs'), t.make_cell()\n"
        "store.prepare(cell)\n"
        "for epoch in (1, 2):\n"
        "    store.append_history(cell.id, {'epoch': epoch, 'val_mpjpe': 90.0 - epoch})\n"
        "assert runner.run_cell(cell, store, tracking=Tracking('offline', log_model=True)).status == 'done'\n"
    )
    (tmp_path / "wb").mkdir()
    here = Path(__file__).resolve().parent
    env = {**os.environ, "WANDB_DIR": str(tmp_path / "wb"), "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    env["PYTHONPATH"] = os.pathsep.join([str(here.parent), str(here)])
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cell = make_cell()
    (path,) = (tmp_path / "wb" / "wandb").glob(f"offline-run-*-{cell.id}/run-{cell.id}.wandb")
    records = wandb_records(path)
    for _ in range(300):  # the W&B service may still be writing the file it was told to close
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            break
        time.sleep(0.1)
        records = wandb_records(path)
    epochs = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            if "val_mpjpe" in items:
                epochs.append(items["epoch"])
    assert epochs == [1, 2, 3, 4]
    summary = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({item.key: json.loads(item.value_json) for item in record.summary.update})
    assert summary["selected_epoch"] == 3 and summary["val_mpjpe"] == 87.0
    kinds = [record.WhichOneof("record_type") for record in records]
    assert "artifact" in kinds


DOCS = Path(__file__).resolve().parents[1] / "docs" / "studies.md"


@pytest.mark.parametrize("selection", ["best_val", "best_test"])
def test_each_epoch_logs_what_the_docs_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smoke_data: Path, selection: str
) -> None:
    """A real (tiny) cell: every epoch logs its losses, validation MPJPE, lr, times and updates; test MPJPE
    only when the weights are selected by it (best_test), as docs/studies.md states."""
    runs = _fake_wandb(monkeypatch)
    config = {
        "data": {"root": str(smoke_data), "max_train_windows": 16, "actions": ["Walking"]},
        "model": {"backbone": "mixste", "frames": 9, "depth": 1, "dim": 16, "heads": 2},
        "optim": {"epochs": 2, "batch_clips": 16},
        "eval": {"selection": selection},
    }
    cell = Cell("table7", "smoke", "train", {}, load_config(config).resolved(), 0)
    assert runner.run_cell(cell, Store(tmp_path), tracking=Tracking("offline")).status == "done"
    (run,) = runs
    epochs = [values for values in run.logged if "epoch" in values]
    expected = {
        "epoch",
        "loss_step1",
        "loss_step2",
        "val_mpjpe",
        "lr",
        "epoch_time_s",
        "wall_time_s",
        "updates",
    }
    if selection == "best_test":
        expected.add("test_mpjpe")
    assert [set(values) for values in epochs] == [expected, expected]
    docs = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "(losses of both steps, validation MPJPE, lr, times, updates)" in docs
    assert "test MPJPE only under `eval.selection: best_test`" in docs


def test_the_offline_default_and_its_opt_out_are_stated() -> None:
    """Offline logging writes ./wandb/; --help and the README say so, and how to turn it off."""
    from bench.cli import build_parser

    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    run_parser = subcommands.choices["run"]
    (wandb_help,) = [a.help for a in run_parser._actions if a.dest == "wandb"]
    assert "else offline" in wandb_help and "./wandb/" in wandb_help and "disabled logs nothing" in wandb_help
    readme = " ".join((DOCS.parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert "./wandb/" in readme and "--wandb disabled" in readme


def test_a_protocol_run_gets_its_own_wandb_group(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--protocol honest`` names other experiments than the profile's own: their W&B group is the
    expansion's variant, as their archive and report are, never the group of the profile's cells (on the
    smoke profile both protocols run the same cells, which ``--force`` reruns here)."""
    from bench.cli import main

    runs = _fake_wandb(monkeypatch)
    monkeypatch.setattr(runner, "execute", fake_execute)
    study = Path(__file__).resolve().parents[1] / "studies" / "table7.yaml"
    args = [
        "run",
        str(study),
        "--profile",
        "smoke",
        "--only",
        "model.dim=128",
        "--only",
        "train.strategy=tmt",
    ]
    args += ["--wandb", "offline", "--no-report", "--results", str(workdir / "results")]
    assert main(args) == 0
    assert main([*args, "--protocol", "honest", "--force"]) == 0
    variant = "+model.dim=128+train.strategy=tmt"
    assert [run.init["group"] for run in runs] == [f"table7{variant}", f"table7+protocol=honest{variant}"]
    assert (workdir / "results" / f"table7.smoke+protocol=honest{variant}.jsonl").exists()
