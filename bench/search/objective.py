"""One search worker: trials as cells of the store, pruned on per-epoch validation MPJPE, up to the budget.

A trial is one cell: the search file's base + the profile + the sampled values + seed 0, run by the runner's
own ``run_cell`` into the same store (and W&B mirror) as ``bench run``. Sampling values already run gives the
same cell, whose result is reused: its history is reported to the trial and its value returned, nothing
retrained. A cell stopped by the pruner keeps its checkpoint and history but no result, so a later trial with
those values resumes it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.runner import CellStopped, ensure_data, run_cell
from bench.search.sampling import TrialSeededSampler, make_pruner, pruner_spec
from bench.search.spec import SearchSpec, objective_value
from bench.search.storage import (
    SearchStorage,
    TrialLock,
    counted,
    default_study_name,
    fail_stale_trials,
    fail_trial,
    open_storage,
    open_study,
    retry_callback,
)
from bench.store import Store
from bench.tracking import Tracking
from tmt.errors import TmtError

BUSY_POLL_S = 1.0


class TrialFailed(Exception):
    """The trial's cell failed (or cannot be built); the search records it and goes on."""


class TrialReporter:
    """Epoch callback: reports validation MPJPE to the trial and stops the cell when the pruner says so."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.reported: set[int] = set()

    def report(self, epoch: int, record: dict[str, Any]) -> bool:
        """Report one epoch (once); True when the trial should now be pruned."""
        value = record.get("val_mpjpe")
        if epoch in self.reported or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        self.trial.report(float(value), step=epoch)
        self.reported.add(epoch)
        return self.trial.should_prune()

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        if self.report(epoch, record):
            raise CellStopped(f"pruned after epoch {epoch} (validation MPJPE {record['val_mpjpe']:.1f} mm)")


def describe(params: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return " ".join(f"{path.split('.')[-1]}={value(v)}" for path, v in params.items())


@dataclass
class Objective:
    """Callable for ``study.optimize``: one trial = one cell (see the module docstring)."""

    spec: SearchSpec
    profile: str
    store: Store
    lock: TrialLock
    data: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    tracking: Tracking = field(default_factory=Tracking)
    log: Callable[[str], None] = print

    def __call__(self, trial: optuna.Trial) -> float:
        self.lock.acquire(trial.number)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if "failure" in trial.user_attrs:  # a retry carries its predecessor's attributes
            trial.set_user_attr("failure", None)
        params = self.spec.suggest(trial)
        try:
            expansion = self.spec.trial_expansion(
                params, self.profile, data=self.data, settings=self.settings
            )
        except TmtError as err:
            self._fail(trial, f"the configuration cannot run: {err}")
        cell = expansion.cells[0]
        trial.set_user_attr("cell_id", cell.id)
        ensure_data(expansion, self.log)
        reporter = TrialReporter(trial)
        resumed = {r["epoch"]: r for r in self.store.history(cell.id) if "epoch" in r}
        for epoch in sorted(resumed):  # a cell run before (pruned, killed, or done): its epochs so far
            prune = reporter.report(epoch, resumed[epoch])
            if prune and not self.store.is_done(cell.id):
                detail = f"pruned after epoch {epoch}, which its cell had already run"
                self.log(f"trial {trial.number}: {describe(params)} (cell {cell.id}): {detail}")
                raise optuna.TrialPruned(detail)
        self.log(f"trial {trial.number}: {describe(params)} (cell {cell.id})")
        t0 = time.perf_counter()
        while True:
            trial_tracking = replace(
                self.tracking, trial={"study": trial.study.study_name, "number": trial.number}
            )
            outcome = run_cell(cell, self.store, tracking=trial_tracking, callbacks=[reporter])
            if outcome.status != "busy":
                break
            while self.store.is_locked(cell.id):  # another worker runs this very cell: wait, then reuse it
                time.sleep(BUSY_POLL_S)
        seconds = time.perf_counter() - t0
        if outcome.status == "stopped":
            self.log(f"trial {trial.number}: {outcome.detail} [{seconds:.0f} s]")
            raise optuna.TrialPruned(outcome.detail)
        if outcome.status == "failed":
            self._fail(trial, outcome.detail)
        result = self.store.read_result(cell.id) or {}
        if outcome.status == "skipped":
            for record in result.get("history", []):
                reporter.report(int(record.get("epoch", 0)), record)
        value = objective_value(result, self.spec.section.metric)
        metrics = result.get("metrics", {})
        trial.set_user_attr("test_mpjpe", metrics.get("mpjpe"))
        trial.set_user_attr("epochs_run", result.get("epochs_run"))
        trial.set_user_attr("train_time_s", result.get("train_time_s"))
        how = "reused the stored result" if outcome.status == "skipped" else f"{seconds:.0f} s"
        self.log(f"trial {trial.number}: {self.spec.section.metric} {value:.2f} ({how})")
        if not math.isfinite(value):
            self._fail(trial, f"the result has no finite {self.spec.section.metric}")
        return value

    def _fail(self, trial: optuna.Trial, reason: str) -> NoReturn:
        trial.set_user_attr("failure", reason)
        self.log(f"trial {trial.number}: failed: {reason}")
        raise TrialFailed(reason)

    def finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """``optimize`` callback, after Optuna recorded the trial's end: the trial is no longer claimed."""
        self.lock.release()


def open_search(
    spec: SearchSpec,
    profile: str,
    store: Store,
    *,
    storage_url: str | None = None,
    study_name: str | None = None,
    pruner: str | None = None,
    data: str | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[optuna.Study, SearchStorage]:
    """The Optuna study of this search (created on first use), with its seeded sampler and its pruner."""
    settings = dict(settings or {})
    epochs = spec.reference(profile, data=data, settings=settings).cells[0].epochs
    name = study_name or default_study_name(spec.name, profile)
    handle = open_storage(storage_url, store, name)
    study = open_study(
        handle,
        name,
        spec.identity(profile, data, settings),
        direction=spec.section.direction,
        sampler=TrialSeededSampler(spec.section.sampler),
        pruner=make_pruner(pruner_spec(spec.section.pruner, pruner), epochs),
    )
    return study, handle


def run_search(
    spec: SearchSpec,
    profile: str,
    store: Store,
    *,
    trials: int | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    pruner: str | None = None,
    data: str | None = None,
    settings: dict[str, Any] | None = None,
    tracking: Tracking | None = None,
    log: Callable[[str], None] = print,
) -> tuple[optuna.Study, SearchStorage]:
    """Run trials until the study holds ``trials`` counted trials (this worker's share when others help) and
    none is waiting (enqueued or retried trials always run).

    A rerun continues the same study. Before every trial, RUNNING trials whose worker is gone are failed and
    enqueued again. Interrupting a trial fails it and enqueues it again, so the next run resumes its cell.
    """
    budget = spec.trials_for(profile) if trials is None else trials
    if budget < 0:
        raise TmtError(f"--trials: must be at least 0, got {budget}")
    settings = dict(settings or {})
    reference = spec.reference(profile, data=data, settings=settings)
    ensure_data(reference, log)  # missing real data: stop now
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the objective logs each trial itself
    try:
        study, handle = open_search(
            spec,
            profile,
            store,
            storage_url=storage_url,
            study_name=study_name,
            pruner=pruner,
            data=data,
            settings=settings,
        )
        objective = Objective(
            spec,
            profile,
            store,
            TrialLock(handle.locks),
            data,
            settings,
            dataclasses.replace(tracking or Tracking(), variant=reference.variant),
            log=log,
        )
        while True:
            fail_stale_trials(study, handle, log=log)
            trials = study.get_trials(deepcopy=False)
            if counted(trials) >= budget and not any(t.state == TrialState.WAITING for t in trials):
                break
            try:
                study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=[objective.finished])
            except KeyboardInterrupt:
                _requeue_interrupted(study, objective.lock)
                raise
            finally:
                objective.lock.release()
    finally:
        optuna.logging.set_verbosity(previous)
    return study, handle


def _requeue_interrupted(study: optuna.Study, lock: TrialLock) -> None:
    """Optuna failed the interrupted trial: enqueue it again so that the next run resumes its cell."""
    if lock.path is None:
        return
    number = int(lock.path.stem)
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number and trial.state in (TrialState.RUNNING, TrialState.FAIL):
            if trial.state == TrialState.RUNNING:
                fail_trial(study, trial, "interrupted")
            else:
                retry_callback()(study, trial)
