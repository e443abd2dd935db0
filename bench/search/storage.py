"""Where a search lives, and how a search survives its workers: Optuna storages, trial locks, stale trials.

- Default: a journal file ``<store>/optuna/<study-name>.journal`` (Optuna's ``JournalFileBackend``: safe for
  several worker processes on one machine). ``--storage PATH`` names another journal file.
- ``--storage postgresql://...`` (any SQLAlchemy URL): an ``RDBStorage`` for workers on several machines,
  with Optuna's heartbeat, so a trial whose worker stopped beating is failed by the next worker.
- Every worker holds an ``flock`` on ``<storage>.running/<trial number>.lock`` while its trial runs (taken
  with the lock already held, and released only after Optuna recorded the trial's end). The kernel drops the
  lock when the process dies, so a RUNNING trial whose lock file can be taken has lost its worker. With a
  journal (one machine) a RUNNING trial with no lock file after a grace period has lost it too.
- A stale trial is failed and enqueued again with the same parameters (up to ``MAX_RETRY`` times): the retry
  is the same cell, which resumes from its checkpoint. A failed trial that was retried does not count
  towards the search's trials.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from bench.store import Store
from tmt.errors import ConfigError
from tmt.files import file_lock, write_text_atomic

JOURNAL_DIR = "optuna"
STALE_GRACE_S = 60.0
"""A journal trial RUNNING this long with no worker lock is stale (sampling takes well under a second)."""
HEARTBEAT_S = 60
RDB_GRACE_S = 300
"""Optuna heartbeat of RDB trials: beat every minute; five minutes without a beat = the worker is gone."""
MAX_RETRY = 3
SCHEMA_ATTEMPTS = 3
BENCH_ATTR = "bench"
"""Study user attribute: what the study was created for (see :meth:`SearchSpec.identity`)."""


@dataclass(frozen=True)
class SearchStorage:
    storage: Any
    description: str
    journal: bool
    locks: Path


def default_study_name(search: str, profile: str) -> str:
    return f"{search}.{profile}"


def retry_callback() -> Any:
    """Optuna's retry callback (renamed in Optuna 4.9), enqueueing a failed trial's parameters once more."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        return (cls or optuna.storages.RetryFailedTrialCallback)(max_retry=MAX_RETRY)


def open_storage(url: str | None, store: Store, study_name: str) -> SearchStorage:
    """The storage ``--storage`` names (None: the journal file in the store)."""
    if url and "://" in url:
        return SearchStorage(
            storage=_rdb(url),
            description=_redact(url),
            journal=False,
            locks=store.root / JOURNAL_DIR / f"{study_name}.running",
        )
    path = Path(url) if url else store.root / JOURNAL_DIR / f"{study_name}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return SearchStorage(
        storage=JournalStorage(JournalFileBackend(str(path), lock_obj=FlockJournalLock(f"{path}.lock"))),
        description=str(path),
        journal=True,
        locks=path.with_name(f"{path.name}.running"),
    )


class FlockJournalLock:
    """The journal's write lock as an ``flock`` (:func:`tmt.files.file_lock`): the kernel drops it when its
    holder dies.

    Optuna's default symlink lock stays behind when a worker is killed while appending, and its stale-lock
    check stats the symlink's (missing) target, so every later worker would wait forever.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._held = contextlib.ExitStack()

    def acquire(self) -> bool:
        return self._held.enter_context(file_lock(self._path, wait=True))

    def release(self) -> None:
        self._held.close()


def _redact(url: str) -> str:
    """The URL without its password (for reports and messages)."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def driver_url(url: str) -> str:
    """A PostgreSQL URL without a driver gets the installed one (SQLAlchemy 2.1 assumes psycopg 3)."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}{sep}{rest}"
    return url


def _rdb(url: str) -> Any:
    from optuna.storages import RDBStorage

    # Optuna 4.9 renamed the callback argument; the old name still works but warns
    accepted = inspect.signature(RDBStorage).parameters
    name = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in accepted
        else "failed_trial_callback"
    )
    try:
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(
                        driver_url(url),
                        heartbeat_interval=HEARTBEAT_S,
                        grace_period=RDB_GRACE_S,
                        **{name: retry_callback()},
                    )
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # workers creating the tables of a new database at the same time: the loser retries
                if attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(1.0 + attempt)
    except ImportError as err:  # optuna's message when SQLAlchemy finds no driver for the URL
        raise ConfigError(
            f"--storage {_redact(url)}: no database driver for this URL ({err}); for PostgreSQL: "
            "pip install psycopg2-binary"
        ) from None
    except Exception as err:  # SQLAlchemy's connection and URL errors
        first = (str(err).strip().splitlines() or [""])[0]
        raise ConfigError(f"--storage {_redact(url)}: cannot open ({type(err).__name__}: {first})") from None


def open_study(
    handle: SearchStorage, name: str, identity: dict[str, Any], *, direction: str, sampler: Any, pruner: Any
) -> optuna.Study:
    """Create the study, or load it to continue; refuse one created for another space, profile or settings."""
    study = optuna.create_study(
        study_name=name,
        storage=handle.storage,
        sampler=sampler,
        pruner=pruner,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {name!r} in {handle.description} optimises in the other direction; "
            "use another --study-name"
        )
    existing = study.user_attrs.get(BENCH_ATTR)
    if existing is None:
        study.set_user_attr(BENCH_ATTR, identity)
    elif existing != identity:
        changed = sorted(k for k in set(existing) | set(identity) if existing.get(k) != identity.get(k))
        raise ConfigError(
            f"study {name!r} in {handle.description} was created with another {', '.join(changed)}; "
            "continue it with the same search file, profile and --set values, or start a new search with "
            "another --study-name"
        )
    return study


def counted(trials: Iterable[FrozenTrial]) -> int:
    """Trials that count towards the budget: all but the failed ones that were retried."""
    trials = list(trials)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))


class TrialLock:
    """The running worker's claim on its trial (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path: Path | None = None
        self._held = contextlib.ExitStack()

    def acquire(self, number: int) -> None:
        """Create ``<number>.lock`` already locked: a checker never sees it unheld while this worker lives."""
        self.release()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{number}.{os.getpid()}.tmp"
        self._held.enter_context(file_lock(tmp, wait=True))
        self.path = self.folder / f"{number}.lock"
        os.replace(tmp, self.path)

    def release(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._held.close()
        self.path = None


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str, *, retry: bool = True) -> bool:
    """Fail a RUNNING trial (once, whoever else tries) and enqueue its parameters again; False if it had
    ended already."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "failure", reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if retry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            retry_callback()(study, storage.get_trial(trial._trial_id))
    return True


def fail_stale_trials(
    study: optuna.Study,
    handle: SearchStorage,
    *,
    grace_s: float = STALE_GRACE_S,
    log: Callable[[str], None] = print,
) -> list[int]:
    """Fail (and retry) the RUNNING trials whose worker is gone; returns their numbers."""
    failed = []
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        path = handle.locks / f"{trial.number}.lock"
        reason = None
        if path.exists():
            with file_lock(path, create=False) as free:
                if free and study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                    reason = "its worker process ended without finishing it (killed or crashed)"
                    if fail_trial(study, trial, reason):
                        failed.append(trial.number)
                        path.unlink(missing_ok=True)
        elif handle.journal and trial.datetime_start is not None:
            age = (now - trial.datetime_start).total_seconds()
            if age > grace_s:
                reason = f"no worker has held it for {age:.0f} s"
                if fail_trial(study, trial, reason):
                    failed.append(trial.number)
        if trial.number in failed:
            log(f"trial {trial.number} was left running: {reason}; failed, and enqueued again to resume")
    return failed


def export_journal(journal: Path, folder: Path, study_name: str) -> Path:
    """Copy a journal file to ``<folder>/search_<name>.journal``, a file to commit beside the report that
    ``optuna-dashboard`` opens and ``--storage`` continues. Other workers may be appending: only complete
    lines are copied, and the copy replaces the old one atomically."""
    target = Path(folder) / f"search_{study_name.removeprefix('search_')}.journal"
    if target.resolve() == journal.resolve():  # the search ran on the exported file: a rewrite could drop
        return target  # what another worker appends meanwhile
    text = journal.read_text(encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text[: text.rfind("\n") + 1])
    return target
