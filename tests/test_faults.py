"""Faults a long study meets: a full disk, a corrupt checkpoint, a read-only folder, an unreachable W&B server,
and SIGKILL at any moment (data generation, training, checkpoint write, report)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_runner import ROOT, tiny_study

from bench import runner, tracking
from bench.archive import read_archive
from bench.store import Store
from bench.study import expand_file


def test_a_full_disk_fails_the_cell_keeps_the_others_and_stops_the_study(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tiny_study(workdir, epochs=1, strategies=("tmt1", "tmt"))
    expansion = expand_file(study, "smoke")
    store = Store(workdir / "runs")
    first = expansion.cells[0]
    assert runner.run_cells(expansion.__class__(**{**expansion.__dict__, "cells": [first]}), store).count(
        "done"
    )

    import torch

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)  # the checkpoint write
    monkeypatch.setattr(Store, "write_failure", no_space)  # and then the failure record
    summary = runner.run_cells(expansion, store)
    statuses = [o.status for o in summary.outcomes]
    assert statuses[0] == "skipped" and statuses[1] == "failed" and set(statuses[2:]) == {"not run"}
    assert "No space left on device" in summary.outcomes[1].detail
    assert "failure record could not be written" in summary.outcomes[1].detail
    assert summary.stopped and "no space left" in summary.stopped
    assert store.is_done(first.id)  # the finished cell is kept
    assert not list(store.root.rglob("*.tmp"))  # no half-written checkpoint left behind


def test_a_corrupt_checkpoint_is_set_aside_and_the_cell_restarts(workdir: Path) -> None:
    study = tiny_study(workdir, epochs=1, strategies=("tmt1",))
    expansion = expand_file(study, "smoke")
    cell = expansion.cells[0]
    store = Store(workdir / "runs")
    with store.lock(cell.id):
        store.prepare(cell)
    (store.path(cell.id) / "checkpoint.pt").write_bytes(b"\x00" * 64)
    small = expansion.__class__(**{**expansion.__dict__, "cells": [cell]})
    assert [o.status for o in runner.run_cells(small, store).outcomes] == ["done"]
    assert (store.path(cell.id) / "checkpoint.pt.unreadable").read_bytes() == b"\x00" * 64


def test_a_read_only_store_is_one_error_before_any_work(workdir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    study = tiny_study(workdir, epochs=1, strategies=("tmt1",))
    (workdir / "ro").mkdir(mode=0o500)
    with pytest.raises(runner.TmtError, match=r"ro: the result store folder is not writable \(permission"):
        runner.run_cells(expand_file(study, "smoke"), Store(workdir / "ro"))


def test_check_writable_names_the_folder_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(
        runner.TmtError, match=r"file/sub: the report folder is not writable \(.*file is a file"
    ):
        runner.check_writable(tmp_path / "file" / "sub", "report")
    runner.check_writable(tmp_path / "new" / "deep", "report")
    assert not (tmp_path / "new").exists()


def test_an_unreachable_wandb_server_means_offline_for_the_run_said_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    said: list[str] = []
    assert tracking.tracking_mode("online", said.append) == "offline"
    assert len(said) == 1 and "127.0.0.1:9 is unreachable" in said[0]
    assert tracking.tracking_mode("disabled", said.append) == "disabled" and len(said) == 1


# -- SIGKILL at chosen points of a real study, then a rerun ----------------------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    phase, after = sys.argv[1], int(sys.argv[2])
    calls = {"n": 0}

    def kill_on(call):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > after:
                os.kill(os.getpid(), signal.SIGKILL)
            return call(*args, **kwargs)
        return wrapped

    def kill_after(call):
        def wrapped(*args, **kwargs):
            out = call(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] > after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return wrapped

    import numpy, torch
    import bench.report.cli, bench.runner, bench.store, tmt.training.trainer
    if phase == "generation":  # between two of the synthetic set's files
        numpy.savez_compressed = kill_after(numpy.savez_compressed)
    elif phase == "training":  # in the middle of an epoch
        tmt.training.trainer.Trainer.train_batch = kill_after(tmt.training.trainer.Trainer.train_batch)
    elif phase == "checkpoint":  # while the checkpoint is half written
        real_save = torch.save
        def half(obj, f, *a, **k):
            real_save(obj, f, *a, **k)
            calls["n"] += 1
            if calls["n"] > after:
                with open(f, "r+b") as handle:
                    handle.truncate(100)
                os.kill(os.getpid(), signal.SIGKILL)
        torch.save = half
    elif phase == "result":  # as a cell's result is written
        bench.store.write_json_atomic = kill_on(bench.store.write_json_atomic)
    elif phase == "report":
        bench.report.cli.write_report = kill_on(bench.report.cli.write_report)
    elif phase == "between":  # a cell finished and archived, the next one not begun
        bench.runner.run_cell = kill_on(bench.runner.run_cell)
    elif phase == "archive":  # the archive's new text written and synced, not yet renamed over the old one
        real_replace = os.replace
        def replace(src, dst, *a, **k):
            if str(dst).endswith(".jsonl"):
                calls["n"] += 1
                if calls["n"] > after:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    from bench.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def _run(cwd: Path, args: list[str], phase: str | None = None, after: int = 0) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    if phase is None:
        command = [sys.executable, "-m", "bench", *args]
    else:
        command = [sys.executable, "-c", KILLER, phase, str(after), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300).returncode


def _archived_and_done(folder: Path) -> tuple[list[str], list[str]]:
    """The ids in the study's archive (which must read as a whole) and those of the store's finished cells."""
    store = Store(folder / "runs")
    archived = read_archive(folder / "results" / "table7.smoke.jsonl")
    return sorted(archived), [cid for cid in store.cell_ids() if store.is_done(cid)]


def _outcome(folder: Path) -> dict[str, float]:
    """Every cell's final numbers, by cell id (what must not depend on where the run was killed)."""
    store = Store(folder / "runs")
    out = {}
    for cid in store.cell_ids():
        result = store.read_result(cid)
        out[cid] = (result["metrics"]["mpjpe"], [h["val_mpjpe"] for h in result["history"]])
    return out


@pytest.mark.child_process
def test_sigkill_at_any_phase_then_rerun_gives_the_uninterrupted_results(
    tmp_path: Path, smoke_data: Path
) -> None:
    """Killed during data generation, training, a checkpoint write, a result write and the report, each
    interrupted run has archived every cell it finished and is rerun once: the results equal an uninterrupted
    run's, no cell is lost or duplicated, no temporary file is left."""
    phases = [("generation", 1), ("training", 3), ("checkpoint", 1), ("result", 3), ("report", 0)]
    runs = {}
    for name, after in [("straight", 0), *phases]:
        folder = tmp_path / name
        (folder / "data").mkdir(parents=True)
        if name != "generation":  # the session's copy of the same (deterministic) set saves its generation
            os.symlink(smoke_data, folder / "data" / "synthetic-smoke")
        study = tiny_study(folder, epochs=2, strategies=("tmt1",), windows=32)
        args = ["run", str(study), "--profile", "smoke", "--out", str(folder / "reports")]
        if name != "straight":
            assert _run(folder, args, name, after) == -signal.SIGKILL, name
            archived, done = _archived_and_done(folder)
            assert archived == done, name
        assert _run(folder, args) == 0, name
        runs[name] = _outcome(folder)
        leftovers = [
            p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmt-synthetic.partial" in p.name
        ]
        assert not leftovers, (name, leftovers)
        assert (folder / "reports" / "table7.smoke.md").exists()
        archive = (folder / "results" / "table7.smoke.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["cell_id"] for line in archive) == sorted(runs[name])
    for name, _ in phases:
        assert runs[name] == runs["straight"], name


@pytest.mark.child_process
def test_sigkill_between_cells_or_during_the_archive_write_loses_no_finished_cell(
    tmp_path: Path, smoke_data: Path
) -> None:
    """Killed after the first of two cells, before the second begins: the archive holds the first. Killed
    while the second cell is written into the archive (the new text synced, not yet renamed over the old):
    the archive is the previous complete one, and the rerun archives both cells and leaves no temporary file."""
    for phase in ("between", "archive"):
        folder = tmp_path / phase
        (folder / "data").mkdir(parents=True)
        os.symlink(smoke_data, folder / "data" / "synthetic-smoke")
        study = tiny_study(folder, epochs=1, strategies=("tmt1",), windows=16)
        first, second = (cell.id for cell in expand_file(study, "smoke").cells)
        args = ["run", str(study), "--profile", "smoke", "--no-report"]
        assert _run(folder, args, phase, 1) == -signal.SIGKILL, phase
        archived, done = _archived_and_done(folder)
        assert archived == [first], phase
        assert done == ([first] if phase == "between" else sorted([first, second])), phase
    assert (folder / "results" / ".table7.smoke.jsonl.tmp").exists()  # the text that never replaced it
    assert _run(folder, args) == 0
    assert _archived_and_done(folder) == (sorted([first, second]), sorted([first, second]))
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_corrupt_real_data_stops_the_study_before_any_work(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from h36m_fixtures import write_h36m_fixture

    from bench.cli import main

    root = write_h36m_fixture(workdir / "h36m")
    (root / "data_2d_h36m_gt.npz").write_bytes(b"PK\x03\x04 truncated")
    study = tiny_study(workdir, epochs=1, strategies=("tmt1",))
    args = ["run", str(study), "--profile", "smoke", "--data", "real", "--set", f"data.root={root}"]
    assert main([*args, "--out", str(workdir / "reports")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "data_2d_h36m_gt.npz: not a readable npz file" in err
    assert err.count("\n") == 1
    assert not any((workdir / "runs").glob("*/*")) and not (workdir / "reports").exists()


def test_a_read_only_report_folder_is_one_error_before_any_work(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    (workdir / "reports").write_text("a file where the report folder should be")
    study = tiny_study(workdir, epochs=1, strategies=("tmt1",))
    assert main(["run", str(study), "--profile", "smoke", "--out", str(workdir / "reports" / "x")]) == 2
    assert "the report folder is not writable" in capsys.readouterr().err
    assert not any((workdir / "runs").glob("*/*"))
