"""Executors: thread shares; the pool and submitit's local jobs match in-process results; Slurm settings."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from bench import executors, runner
from bench.archive import read_archive
from bench.cli import build_parser, main
from bench.executors import SlurmExecutor, executor_from_args, make_executor, worker_threads
from bench.loader import load_study_file
from bench.store import Store
from bench.study import expand_file
from tmt.errors import ConfigError, TmtError
from tmt.threads import THREAD_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
TABLE6 = ROOT / "studies" / "table6.yaml"
TIMING = ("epoch_time_s", "wall_time_s")


def two_cell_study(folder: Path, slurm: dict | None = None) -> Path:
    """Table 6 at its smoke size, two depths only (two cells of a few seconds)."""
    data = yaml.safe_load(TABLE6.read_text())
    data["grid"] = [{"axes": {"model.depth": [4, 6], "model.dim": [64], "model.frames": [27]}}]
    data["claims"] = []
    if slurm is not None:
        data["slurm"] = slurm
    path = folder / "table6.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def outcome(store: Store, cell_id: str) -> dict:
    """A cell's result without what differs between two identical runs (timings, the machine's view)."""
    result = store.read_result(cell_id)
    history = [{k: v for k, v in record.items() if k not in TIMING} for record in result["history"]]
    return {"metrics": result["metrics"], "history": history, "num_parameters": result["num_parameters"]}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, smoke_data: Path) -> tuple[Path, dict[str, dict]]:
    """The two cells run in this process: the results every executor must reproduce."""
    folder = tmp_path_factory.mktemp("baseline")
    study = two_cell_study(folder)
    expansion = expand_file(study, "smoke", settings={"data.root": str(smoke_data)})
    store = Store(folder / "runs")
    summary = runner.run_cells(expansion, store, live=False)
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    return study, {c.id: outcome(store, c.id) for c in expansion.cells}


def test_worker_threads_divide_the_cores() -> None:
    assert [worker_threads(jobs, cores) for jobs, cores in [(1, 8), (2, 2), (3, 16), (4, 2)]] == [8, 1, 5, 1]


def test_cell_job_limits_threads_unless_the_cell_sets_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smoke_data: Path
) -> None:
    for name in THREAD_VARIABLES:  # restored after the test
        monkeypatch.setenv(name, "1")
    seen: list[tuple[int, str]] = []

    def execute(cell, workdir, callbacks, save_model=False):
        seen.append((torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]))
        return {"metrics": {"mpjpe": 1.0}, "history": []}

    monkeypatch.setattr(runner, "execute", execute)
    cell = expand_file(two_cell_study(tmp_path), "smoke").cells[0]
    unset = dataclasses.replace(
        cell,
        config=cell.config.model_copy(
            update={"train": cell.config.train.model_copy(update={"threads": None})}
        ),
    )
    store = Store(tmp_path / "runs")
    try:
        executors.CellJob(runner.run_cell, store, 3, str(tmp_path), {})(unset)
        executors.CellJob(runner.run_cell, store, 3, str(tmp_path), {"force": True})(cell)  # 1 thread
    finally:
        torch.set_num_threads(1)
    assert seen == [(3, "3"), (1, "1")]


@pytest.mark.child_process
def test_pool_gives_the_in_process_results(
    baseline: tuple[Path, dict[str, dict]], tmp_path: Path, smoke_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, expected = baseline
    monkeypatch.chdir(tmp_path)
    args = ["run", str(study), "--profile", "smoke", "--store", "runs", "--no-report"]
    args += ["--set", f"data.root={smoke_data}", "--wandb", "disabled"]
    assert main([*args, "--jobs", "2"]) == 0
    store = Store(tmp_path / "runs")
    assert {cid: outcome(store, cid) for cid in expected} == expected
    stamps = [(store.path(cid) / "result.json").stat().st_mtime_ns for cid in expected]
    assert main([*args, "--executor", "pool", "--jobs", "2"]) == 0  # a rerun skips the finished cells
    assert [(store.path(cid) / "result.json").stat().st_mtime_ns for cid in expected] == stamps


@pytest.mark.child_process
def test_slurm_jobs_through_submitit_give_the_in_process_results(
    baseline: tuple[Path, dict[str, dict]], tmp_path: Path, smoke_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, expected = baseline
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the jobs are fresh interpreters
    expansion = expand_file(study, "smoke", settings={"data.root": str(smoke_data)})
    store = Store(tmp_path / "runs")
    slurm = SlurmExecutor(executors.SlurmOptions(cpus=1), cluster="local")
    archive = Path("results") / "table6.smoke.jsonl"  # relative: each job resolves it where it was submitted
    summary = runner.run_cells(expansion, store, executor=slurm, live=False, archive=archive)
    assert [o.status for o in summary.outcomes] == ["done", "done"], summary
    assert not [o.detail for o in summary.outcomes if "not archived" in o.detail]
    assert {cid: outcome(store, cid) for cid in expected} == expected
    assert sorted(read_archive(tmp_path / archive)) == sorted(expected)
    assert len(list((tmp_path / "runs" / ".slurm" / "table6").glob("*/*_result.pkl"))) == 2  # two jobs ran
    again = runner.run_cells(expansion, store, executor=slurm, live=False)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]


@pytest.mark.child_process
def test_a_slurm_job_of_two_processes_trains_its_cell_data_parallel(
    baseline: tuple[Path, dict[str, dict]], tmp_path: Path, smoke_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tasks_per_node: 2``: one job, two processes (gloo), one result written by rank 0 recording both."""
    study, expected = baseline
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    expansion = expand_file(study, "smoke", settings={"data.root": str(smoke_data)})
    expansion = dataclasses.replace(expansion, cells=expansion.cells[:1])
    store = Store(tmp_path / "runs")
    slurm = SlurmExecutor(executors.SlurmOptions(cpus=1, tasks_per_node=2), cluster="local")
    summary = runner.run_cells(expansion, store, executor=slurm, live=False)
    assert [o.status for o in summary.outcomes] == ["done"], summary
    cell = expansion.cells[0]
    result = store.read_result(cell.id)
    assert result["distributed"] == {"world_size": 2, "devices": ["cpu", "cpu"]}
    single = expected[cell.id]
    assert (
        len(result["history"]) == len(single["history"])
        and result["num_parameters"] == single["num_parameters"]
    )
    assert result["metrics"]["mpjpe"] > 0 and len(store.history(cell.id)) == len(single["history"])
    again = runner.run_cells(expansion, store, executor=slurm, live=False)  # both ranks skip a finished cell
    assert [o.status for o in again.outcomes] == ["skipped"]


def test_slurm_settings_come_from_the_study_then_the_command_line(tmp_path: Path) -> None:
    section = {"partition": "gpu", "time": 60, "cpus": 8, "mem": "16G", "additional": {"account": "tmt"}}
    path = two_cell_study(tmp_path, slurm=section)
    flags = ["--executor", "slurm", "--slurm-cluster", "local", "--jobs", "3"]
    flags += [
        "--slurm-time",
        "1-00:00:00",
        "--slurm-gpus",
        "1",
        "--slurm-nodes",
        "2",
        "--slurm-tasks-per-node",
        "4",
    ]
    args = build_parser().parse_args(["run", str(path), *flags])
    executor = executor_from_args(args, load_study_file(path), str(path))
    assert executor.options.processes == 8
    assert executor.options.parameters("bench-table6", executor.parallelism) == {
        "name": "bench-table6",
        "timeout_min": 1440,  # the command line wins over the study's 60
        "mem_gb": 16.0,
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "nodes": 2,
        "tasks_per_node": 4,
        "slurm_partition": "gpu",
        "slurm_additional_parameters": {"account": "tmt"},
        "slurm_array_parallelism": 3,
    }


@pytest.mark.parametrize(
    ("slurm", "extra", "message"),
    [
        (
            {"partiton": "gpu"},
            [],
            "table6.yaml: slurm.partiton: unknown key (did you mean 'partition'?); allowed: partition",
        ),
        ({"time": "soon"}, [], "table6.yaml: slurm.time: expected minutes or a Slurm time"),
        ({}, ["--slurm-mem", "lots"], "--slurm-mem: expected a size such as 32G"),
        ({}, ["--slurm-time", "0"], "--slurm-time: must be at least 1 minute"),
    ],
)
def test_bad_slurm_settings_name_their_source(tmp_path: Path, slurm: dict, extra: list, message: str) -> None:
    path = two_cell_study(tmp_path, slurm=slurm)
    args = build_parser().parse_args(
        ["run", str(path), "--executor", "slurm", "--slurm-cluster", "local", *extra]
    )
    with pytest.raises(ConfigError) as info:
        executor_from_args(args, load_study_file(path), str(path))
    assert message in str(info.value)


def test_executor_choices_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TmtError, match="--jobs 2 needs --executor pool"):
        make_executor("local", jobs=2)
    if shutil.which("sbatch") is None:
        with pytest.raises(TmtError, match="--slurm-cluster local"):
            make_executor("slurm")
    assert main(["run", str(TABLE6), "--profile", "smoke", "--executor", "local", "--jobs", "2"]) == 2
    assert "needs --executor pool" in capsys.readouterr().err
