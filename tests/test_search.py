"""Searches: the search file, seeding, a smoke search, resume, pruning, stale trials, PostgreSQL workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from bench import runner
from bench.cli import main
from bench.loader import StudyError, load_study_file
from bench.search.objective import open_search, run_search
from bench.search.sampling import TrialSeededSampler
from bench.search.spec import Sampler, load_search, parse_search
from bench.search.storage import TrialLock, counted, driver_url, fail_stale_trials, open_storage
from bench.store import Store
from bench.study import expand_file

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "studies" / "search_dl_dm_T.yaml"
TABLE6 = ROOT / "studies" / "table6.yaml"
POSTGRES_URL = os.environ.get("TMT_TEST_POSTGRES_URL")

optuna.logging.set_verbosity(optuna.logging.ERROR)


def search_file(folder: Path, *, epochs: int = 2, windows: int = 40, **search: object) -> Path:
    """The shipped search file with other smoke epochs / clips and ``search`` keys replaced."""
    data = yaml.safe_load(SEARCH.read_text())
    data["profiles"]["smoke"]["set"].update({"optim.epochs": epochs, "data.max_train_windows": windows})
    data["search"].update(search)
    path = folder / "search_dl_dm_T.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "table6.yaml").write_text(TABLE6.read_text())  # its grid_study
    return path


def raw_epochs(store: Store, cell_id: str) -> list[int]:
    """Every epoch record ever appended to the cell's history (a cell trained twice repeats epochs)."""
    path = store.path(cell_id) / "history.jsonl"
    return [yaml.safe_load(line)["epoch"] for line in path.read_text().splitlines()] if path.exists() else []


def test_search_report_reads_the_papers_number_for_its_reference_point() -> None:
    """Matched through the report's paper lookup: Table 6 prints 18.6 mm at d_l 8, d_m 512, T 243 and has no
    row for d_l 4 at d_m 512 (it varies one factor at a time)."""
    from bench.search.report import paper_value

    spec = load_search(SEARCH)
    point = {"model.depth": 8, "model.dim": 512, "model.frames": 243}
    assert paper_value(spec, point) == ("table6", 18.6)
    assert paper_value(spec, point | {"model.frames": 81}) == ("table6", 24.7)
    assert paper_value(spec, point | {"model.depth": 4}) is None


# ------------------------------------------------------------------------------------------- the search file


def test_search_file_reference_is_table6s_cell_and_trials_scale_like_the_grid() -> None:
    spec = load_search(SEARCH)
    assert list(spec.section.space) == ["model.depth", "model.dim", "model.frames", "optim.lr"]
    # the paper's choice is Table 6's own cell: one result for both; the search selects on held-out
    # validation, so its paper profile runs Table 6's paper cell under the honest protocol
    for profile, protocol in (("paper", "honest"), ("cpu", None)):
        table6 = {c.id for c in expand_file(TABLE6, profile, protocol=protocol).cells}
        assert spec.reference(profile).cells[0].id in table6
    params = {"model.depth": 6, "model.dim": 128, "model.frames": 81, "optim.lr": 1e-4}
    cell = spec.trial_expansion(params, "cpu").cells[0]
    model = cell.config_dict["model"]
    assert cell.labels == params and cell.seed == 0
    assert (model["depth"], model["dim"], model["frames"]) == (2, 16, 15)  # Table 6's cpu mapping
    assert cell.config_dict["optim"]["lr"] == pytest.approx(5e-3)  # the profile's x50
    assert spec.trial_expansion(dict(params), "cpu").cells[0].id == cell.id
    assert spec.trial_expansion({**params, "optim.lr": 2e-4}, "cpu").cells[0].id != cell.id
    assert spec.trials_for("smoke") == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"model.width": {"choices": [1, 2]}}}, "search.space.model.width: 'model.width' is not a"),
        ({"space": {"model.dim": {"choices": [64, 100]}}}, "profile 'cpu' maps this field"),
        ({"space": {"model.dim": {"low": 64, "high": 512}}}, "search it over choices among those values"),
        (
            {"space": {"optim.lr": {"low": 1e-3, "high": 1e-5}}},
            "search.space.optim.lr: low (0.001) must be below",
        ),
        (
            {"pruner": {"type": "percentile"}},
            "search.pruner: unknown pruner; allowed: median, hyperband, none",
        ),
        ({"pruner": {"type": "median", "warmup": 1}}, "search.pruner.warmup: unknown key"),
        ({"direction": "maximize"}, "needs direction minimize"),
        ({"trials": {"smoke": 2, "gpu": 3}}, "search.trials: unknown profile(s) ['gpu']"),
        ({"grid_study": "table66.yaml"}, "search.grid_study: no study file 'table66.yaml' beside this one"),
    ],
)
def test_search_section_errors_name_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    data = yaml.safe_load(SEARCH.read_text())
    data["search"].update(change)
    path = tmp_path / "search_dl_dm_T.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "table6.yaml").write_text(TABLE6.read_text())
    with pytest.raises(StudyError) as info:
        parse_search(load_study_file(path), str(path))
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_sampler_is_seeded_per_trial() -> None:
    """Same seed and results: the same proposals; another seed: others (TPE's start-up and its model)."""
    spec = load_search(SEARCH)

    def proposals(seed: int) -> list[tuple]:
        sampler = TrialSeededSampler(Sampler(seed=seed, n_startup_trials=3))
        study = optuna.create_study(sampler=sampler)
        out = []
        for _ in range(6):
            trial = study.ask()
            params = spec.suggest(trial)
            study.tell(trial, params["model.depth"] + 1e4 * params["optim.lr"])
            out.append(tuple(params.values()))
        return out

    first = proposals(0)
    assert proposals(0) == first and proposals(1) != first
    assert len(set(first)) == 6


# ------------------------------------------------------------------------------------------------ searches


def test_smoke_search_end_to_end_and_a_rerun_continues_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", str(SEARCH), "--profile", "smoke", "--store", "runs", "--out", "reports"]
    assert main([*args, "--trials", "3"]) == 0
    store = Store(workdir / "runs")
    assert (workdir / "runs" / "optuna" / "search_dl_dm_T.smoke.journal").exists()
    study, _ = open_search(load_search(SEARCH), "smoke", store)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:  # every trial is a cell of the store, labelled with its sampled values
        cell_id = trial.user_attrs["cell_id"]
        labels = store.read_config(cell_id)["studies"]["search_dl_dm_T"]["labels"]
        assert labels == trial.params
        assert store.is_done(cell_id) == (trial.state == TrialState.COMPLETE)
        assert sorted(trial.intermediate_values) == raw_epochs(store, cell_id)
    done = {
        t.user_attrs["cell_id"]: store.path(t.user_attrs["cell_id"])
        for t in trials
        if t.state.name == "COMPLETE"
    }
    stamps = {cid: (path / "result.json").stat().st_mtime_ns for cid, path in done.items()}
    report = (workdir / "reports" / "search_dl_dm_T.smoke.md").read_text()
    assert "## Best trials" in report and "## Parameter importances" in report
    assert "model.depth (d_l)" in report and "18.6 mm" in report  # Table 6's number for d_l 8, d_m 512, T 243
    assert (workdir / "reports" / "search_dl_dm_T.smoke.png").stat().st_size > 10_000
    assert "best: trial" in capsys.readouterr().out

    assert main([*args, "--trials", "4", "--no-report"]) == 0  # continues: one more trial, nothing retrained
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and trials[3].state != TrialState.RUNNING
    assert {cid: (path / "result.json").stat().st_mtime_ns for cid, path in done.items()} == stamps
    assert main([*args, "--trials", "4", "--no-report"]) == 0 and len(study.get_trials()) == 4


def fake_execute(calls: list[str], val_by_depth: dict[int, float], epochs: int = 3):
    """A deterministic stand-in for training (same runner code path): val MPJPE set by the sampled depth."""

    def execute(cell, workdir, callbacks, save_model=False):
        calls.append(cell.id)
        val = val_by_depth[cell.labels["model.depth"]]
        history = []
        for epoch in range(1, epochs + 1):
            history.append({"epoch": epoch, "val_mpjpe": val})
            for callback in callbacks:
                callback.on_epoch_end(epoch, history[-1])
        return {
            "metrics": {"mpjpe": val},
            "history": history,
            "epochs_run": epochs,
            "selection": {"epoch": epochs},
        }

    return execute


def test_pruning_stops_worse_trials_without_recording_a_result(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(runner, "execute", fake_execute(calls, {4: 50.0, 10: 90.0}))
    path = search_file(
        workdir, epochs=3, pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    )
    spec, store = load_search(path), Store(workdir / "runs")
    study, _ = open_search(spec, "smoke", store)
    good = {"model.depth": 4, "model.dim": 64, "model.frames": 27, "optim.lr": 4e-5}
    bad = {**good, "model.depth": 10}
    for params in (good, bad, bad, good):
        study.enqueue_trial(params)
    run_search(spec, "smoke", store, trials=4, log=lambda text: None)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED, TrialState.COMPLETE]
    pruned = study.trials[1].user_attrs["cell_id"]
    assert store.status(pruned) == "missing"  # neither a result nor a failure: resumable
    assert raw_epochs(store, pruned) == [1]  # stopped after its first epoch of three
    # the same values again: its stored epoch is replayed to the pruner, which prunes it without training;
    # the good values again reuse the finished cell
    assert calls == [study.trials[0].user_attrs["cell_id"], pruned]
    assert study.trials[3].value == 50.0


def test_the_report_ranks_the_trials_against_the_grid_study_and_exports_the_storage(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Table 6's grid trained (depth 8 best, 50 mm), then three trials: the third is the first within 1 mm of
    it; the exported journal is a file Optuna's journal backend (what optuna-dashboard opens) reads whole."""
    monkeypatch.setattr(runner, "execute", fake_execute([], {4: 60.0, 6: 55.0, 8: 50.0, 10: 70.0}))
    path = search_file(workdir, epochs=3)
    out = ["--store", "runs", "--results", "results", "--out", "reports"]
    assert main(["run", str(workdir / "table6.yaml"), "--profile", "smoke", *out]) == 0
    study, _ = open_search(load_search(path), "smoke", Store(workdir / "runs"))
    for depth in (4, 10, 8):
        study.enqueue_trial({"model.depth": depth, "model.dim": 64, "model.frames": 27, "optim.lr": 4e-5})
    assert main(["search", str(path), "--profile", "smoke", "--trials", "3", *out]) == 0
    report = (workdir / "reports" / "search_dl_dm_T.smoke.md").read_text()
    assert "## Against the grid of `table6.yaml`" in report
    assert "13 of the grid's 13 configurations have finished cells" in report
    assert "model.depth 8, model.dim 64, model.frames 27 (run as model.depth 3, " in report
    assert "50.00 mm (n = 1; test MPJPE 50.00 mm)" in report
    assert "first came within 1 mm of it at trial 2 (3 trials sampled)" in report
    journal = Path("results") / "search_dl_dm_T.smoke.journal"
    assert f"`optuna-dashboard {journal}` opens it" in report
    exported = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert len(optuna.load_study(study_name="search_dl_dm_T.smoke", storage=exported).trials) == 3
    before = journal.stat().st_ino  # continuing on the exported file leaves it where other workers append
    assert main(["search", str(path), "--profile", "smoke", "--trials", "3", "--storage", str(journal)]) == 0
    assert journal.stat().st_ino == before
    # a store without the grid's cells reads them from table6's results archive
    assert main(["search", str(path), "--profile", "smoke", "--trials", "0", "--store", "fresh"]) == 0
    assert (
        "13 of the grid's 13 configurations have finished cells"
        in (workdir / "reports" / "search_dl_dm_T.smoke.md").read_text()
    )


def test_interrupting_a_trial_enqueues_it_again(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(cell, workdir, callbacks, save_model=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "execute", interrupted)
    spec, store = load_search(SEARCH), Store(workdir / "runs")
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, "smoke", store, trials=2, log=lambda text: None)
    study, handle = open_search(spec, "smoke", store)
    cut, retry = study.get_trials()
    assert (cut.state, retry.state) == (TrialState.FAIL, TrialState.WAITING)
    assert retry.params == cut.params and retry.system_attrs["failed_trial"] == 0
    assert not list(handle.locks.glob("*.lock"))  # the claim was released
    assert store.status(cut.user_attrs["cell_id"]) == "missing"


def test_stale_running_trials_are_failed_and_enqueued_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    handle = open_storage(None, store, "stale")
    study = optuna.create_study(study_name="stale", storage=handle.storage)
    dead, alive, unclaimed = (study.ask() for _ in range(3))
    for trial in (dead, alive, unclaimed):
        trial.suggest_int("model.depth", 1, 8)
    handle.locks.mkdir(parents=True)
    (handle.locks / f"{dead.number}.lock").write_text("host 1\n")  # a lock file nobody holds: worker gone
    held = TrialLock(handle.locks)
    held.acquire(alive.number)
    try:
        assert fail_stale_trials(study, handle, grace_s=3600, log=lambda text: None) == [dead.number]
        assert fail_stale_trials(study, handle, grace_s=0, log=lambda text: None) == [unclaimed.number]
    finally:
        held.release()
    trials = study.get_trials()
    assert [t.state for t in trials[:3]] == [TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL]
    retries = trials[3:]
    assert [t.state for t in retries] == [TrialState.WAITING, TrialState.WAITING]
    assert [t.system_attrs["failed_trial"] for t in retries] == [dead.number, unclaimed.number]
    assert [t.params for t in retries] == [dead.params, unclaimed.params]
    assert "worker process ended" in trials[0].user_attrs["failure"]
    assert counted(trials) == 3  # the retried failures do not count; the retries (waiting) do


@pytest.mark.child_process
def test_interrupted_search_resumes_its_cut_trial(workdir: Path) -> None:
    """SIGKILL a search worker in the middle of a trial's training; the rerun fails that trial, retries it
    (the same cell, resumed from its checkpoint) and completes the search."""
    path = search_file(workdir, epochs=3, windows=96, pruner={"type": "none"})
    store = Store(workdir / "runs")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "bench", "search", str(path), "--profile", "smoke", "--trials", "2"]
    proc = subprocess.Popen(
        [*command, "--store", "runs", "--no-report"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not [p for p in store.root.glob("*/history.jsonl") if not (p.parent / "result.json").exists()]:
            assert proc.poll() is None and time.monotonic() < deadline, "the search ended before the kill"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    spec = load_search(path)
    study, _ = open_search(spec, "smoke", store)
    cut = study.trials[0]
    assert cut.state == TrialState.RUNNING and not store.is_done(cut.user_attrs["cell_id"])

    lines: list[str] = []
    run_search(spec, "smoke", store, log=lines.append, trials=2)
    trials = study.get_trials()
    assert any("trial 0 was left running" in line for line in lines)
    assert trials[0].state == TrialState.FAIL and "worker process ended" in trials[0].user_attrs["failure"]
    retry = trials[1]
    assert retry.system_attrs["failed_trial"] == 0 and retry.state == TrialState.COMPLETE
    assert retry.params == cut.params and retry.user_attrs["cell_id"] == cut.user_attrs["cell_id"]
    assert counted(trials) == 2 and [t.state for t in trials[2:]] == [TrialState.COMPLETE]
    epochs = raw_epochs(store, cut.user_attrs["cell_id"])  # resumed: no epoch recorded twice
    assert epochs[0] == 1 and len(epochs) == len(set(epochs))
    assert store.read_result(cut.user_attrs["cell_id"])["epochs_run"] == 3


@pytest.mark.child_process
@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="TMT_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server and sets it)",
)
def test_two_workers_share_one_search_on_postgresql(workdir: Path) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    path = search_file(workdir, epochs=2, windows=40)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    command = [
        sys.executable, "-m", "bench", "search", str(path), "--profile", "smoke", "--trials", "4",
        "--storage", POSTGRES_URL, "--study-name", name, "--store", "runs", "--no-report",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    url = driver_url(POSTGRES_URL)  # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
    study = optuna.load_study(study_name=name, storage=url)
    try:
        trials = study.get_trials()
        assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # complete: none left
        assert 4 <= counted(trials) <= 5  # both check the budget before each trial: one may start a 5th
        assert len({t.number for t in trials}) == len(trials)
        assert len({t.user_attrs["worker"] for t in trials}) == 2, outputs  # both workers ran trials
        store = Store(workdir / "runs")
        for trial in trials:  # no cell trained twice: every epoch appended once
            epochs = raw_epochs(store, trial.user_attrs["cell_id"])
            assert len(epochs) == len(set(epochs)) and epochs == sorted(trial.intermediate_values)
    finally:
        optuna.delete_study(study_name=name, storage=url)
