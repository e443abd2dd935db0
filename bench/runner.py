"""Running cells into the store: skip what is done, resume what was cut, record what failed, go on.

``run_cell`` is a top-level function of picklable arguments (a :class:`Cell`, a :class:`Store`, plain
options), so the executors of :mod:`bench.executors` (in-process, a local process pool, Slurm jobs) all hand
cells to it.

A finished cell is added to the study's results archive by the process that finished it, while it still holds
the cell's lock, rather than by the coordinating process as the outcome arrives: a worker needs nobody else to
be alive for its cell to reach the archive (a Slurm array outlives the shell that submitted it, and the
coordinator may be killed between a cell's end and its report), and :func:`bench.archive.export_archive`
serialises the workers, wherever they run, with a lock beside the archive.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.archive import export_archive
from bench.cells import Cell
from bench.executors import Executor, make_executor
from bench.outcome import CellOutcome
from bench.store import Store
from bench.study import Expansion
from bench.tracking import Tracker, Tracking, tracking_mode
from tmt.data.synth_folder import ensure_synthetic
from tmt.errors import CheckpointError, DataError, TmtError
from tmt.progress import RunsProgress
from tmt.training.experiment import MODEL_FILE
from tmt.training.identity import DATA_INCIDENTAL


class CellStopped(Exception):
    """Raised by a callback to end a cell early on purpose (a pruned search trial).

    The cell keeps its checkpoint and history and records neither a result nor a failure: it stays resumable.
    """


class StudyStopped(RuntimeError):
    """Raised by the outcome handler to end a study early (the disk is full); finished cells are kept."""


class HistoryWriter:
    """Appends every epoch record to the cell's ``history.jsonl`` as it happens."""

    def __init__(self, store: Store, cell_id: str):
        self.store, self.cell_id = store, cell_id

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self.store.append_history(self.cell_id, {**record, "epoch": epoch})


def execute(
    cell: Cell, workdir: Path, callbacks: Sequence[Any], *, save_model: bool = False
) -> dict[str, Any]:
    """Do the cell's work and return its result record (raises on failure); ``save_model`` also writes the
    evaluated weights to ``workdir/model.pt``."""
    if cell.kind == "complexity":
        from tmt.complexity import complexity_record

        return complexity_record(cell.config)
    from tmt.training import run_experiment

    record = run_experiment(
        cell.config, workdir, callbacks=list(callbacks), progress=False, save_model=save_model
    )
    if record is None:  # only rank 0 runs this function
        raise TmtError(f"{cell.id}: a data-parallel rank other than 0 ran the cell's recording step")
    return record


def run_cell(
    cell: Cell,
    store: Store,
    *,
    force: bool = False,
    tracking: Tracking | None = None,
    progress: RunsProgress | None = None,
    callbacks: Sequence[Any] = (),
    archive: Path | None = None,
) -> CellOutcome:
    """Run one cell unless it is done (or running elsewhere); record its result or its failure.

    ``callbacks`` get every epoch after the history is written; one may raise :class:`CellStopped`.
    ``tracking`` says what the cell's W&B run records (off by default). ``archive``: the results archive the
    cell is added to as soon as its result is written (see the module docstring).
    """
    from tmt.training.distributed import Processes

    processes = Processes.from_env()  # a multi-process Slurm job (bench.executors.CellJob, distributed)
    if not processes.main:
        return _train_beside_rank_0(cell, store, processes)
    with store.lock(cell.id) as held:
        if not held:
            outcome = CellOutcome(cell.id, "busy", "another process is running it")
        elif store.is_done(cell.id) and not force:
            store.prepare(cell)
            outcome = CellOutcome(cell.id, "skipped", "already done")
        else:
            outcome = None
            if force:
                store.clear(cell.id)
            workdir = store.prepare(cell)
        if processes.parallel:  # the other ranks train only if this one does
            processes.start(cell.config.train.device)
            processes.broadcast(outcome is None)
        if outcome is not None:
            return outcome
        resumed = store.has_checkpoint(cell.id)
        if progress is not None:
            progress.run_started(f"{cell.id} {cell.describe()}", cell.epochs, resumed)
        tracking = tracking or Tracking()
        tracker = Tracker(cell, tracking, history=store.history(cell.id), model_file=workdir / MODEL_FILE)
        epoch_callbacks: list[Any] = [HistoryWriter(store, cell.id), tracker]
        if progress is not None:
            epoch_callbacks.append(progress)
        epoch_callbacks.extend(callbacks)
        t0 = time.perf_counter()
        try:
            try:
                result = execute(cell, workdir, epoch_callbacks, save_model=tracking.log_model)
            except CheckpointError as err:  # unreadable (or foreign) checkpoint: keep it aside, start afresh
                kept = store.set_checkpoint_aside(cell.id)
                if processes.parallel:  # the other ranks stopped at the same file: the next run starts afresh
                    raise CheckpointError(
                        f"{err}; it was moved to {kept.name}: rerun to start afresh"
                    ) from None
                if progress is not None:
                    progress.print(f"    {cell.id}: {err}; it was moved to {kept.name} and the cell restarts")
                result = execute(cell, workdir, epoch_callbacks, save_model=tracking.log_model)
            metrics = result.get("metrics", {}).items()  # a NaN or infinite metric is a failure, not a number
            bad = [name for name, value in metrics if isinstance(value, float) and not math.isfinite(value)]
            if bad:
                raise FloatingPointError(f"non-finite result metric(s): {', '.join(bad)}")
            result = {
                **result,
                "cell": {"id": cell.id, "profile": cell.profile, "kind": cell.kind, "seed": cell.seed},
            }
            store.write_result(cell.id, result)
        except CellStopped as stop:
            tracker.stop(str(stop))
            return CellOutcome(cell.id, "stopped", str(stop), time.perf_counter() - t0)
        except Exception as err:  # recorded, and the study goes on (KeyboardInterrupt is not caught)
            reason = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
            try:
                store.write_failure(cell.id, reason, traceback.format_exc())
            except OSError as write_error:
                reason += f" (its failure record could not be written either: {write_error.strerror})"
            tracker.fail(reason)
            full = any(getattr(e, "errno", None) == errno.ENOSPC for e in _chain(err))
            return CellOutcome(cell.id, "failed", reason, time.perf_counter() - t0, disk_full=full)
        detail = _summary(result) + (_archived(archive, store, cell) if archive is not None else "")
        tracker.finish(result)
        return CellOutcome(cell.id, "done", detail, time.perf_counter() - t0)


def _archived(archive: Path, store: Store, cell: Cell) -> str:
    """Add the finished cell to the archive; what went wrong, for the outcome's detail, else "".

    The result is safe in the store whatever happens here, and the next run of the study archives it.
    """
    try:
        export_archive(archive, store, [cell])
    except (OSError, DataError) as err:
        return f"; not archived ({err}): the next run of the study archives it"
    return ""


def _train_beside_rank_0(cell: Cell, store: Store, processes: Any) -> CellOutcome:
    """A data-parallel rank other than 0: trains its share of every batch if rank 0 runs the cell (rank 0
    holds the cell's lock and writes its checkpoint, history and result)."""
    processes.start(cell.config.train.device)
    if not processes.broadcast(None):
        return CellOutcome(cell.id, "skipped", f"rank 0 does not run it (rank {processes.rank})")
    from tmt.training import run_experiment

    t0 = time.perf_counter()
    run_experiment(cell.config, store.path(cell.id), callbacks=[], progress=False)
    return CellOutcome(
        cell.id, "done", f"rank {processes.rank} of {processes.world_size}", time.perf_counter() - t0
    )


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or during."""
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _summary(result: dict[str, Any]) -> str:
    metrics = result.get("metrics", {})
    if "mpjpe" in metrics:
        return f"MPJPE {metrics['mpjpe']:.1f} mm in {result.get('train_time_s', 0):.0f} s"
    if "num_parameters" in metrics:
        return f"{metrics['num_parameters']:,} parameters"
    return "done"


# ------------------------------------------------------------------------------------------------------- data


def ensure_data(expansion: Expansion, log: Any = print) -> None:
    """Stop before any work when real data is missing; generate the synthetic set on first use."""
    missing = expansion.missing_data()
    if missing:
        study = expansion.study
        raise DataError(
            f"{expansion.source}: the {expansion.profile} profile runs on real {study.requires} data, and "
            f"these files are missing: {', '.join(missing)}. Put them there (see docs/studies.md), or run on "
            f"the synthetic stand-in: python -m bench run {expansion.source} --profile {expansion.profile} "
            "--data synthetic (the cpu and smoke profiles use synthetic data by default)"
        )
    if expansion.study.kind == "complexity":
        return
    if expansion.data != "synthetic":
        check_real_data(expansion)
        return
    seen: set[tuple[str, str, int]] = set()
    for cell in expansion.cells:
        data = cell.config.data
        key = (str(data.root), data.synthetic, data.synthetic_seed)
        if key not in seen:
            seen.add(key)
            ensure_synthetic(data.root, data.synthetic, data.synthetic_seed, log=log)


def check_real_data(expansion: Expansion) -> None:
    """Open and check every distinct data selection of the study once, so a corrupt or foreign file stops
    the study with one line before any cell runs instead of failing every cell in turn."""
    from tmt.training.experiment import load_dataset

    seen: set[str] = set()
    for cell in expansion.cells:
        config = cell.config
        key = config.data.model_dump_json(exclude=set(DATA_INCIDENTAL))
        if key not in seen:
            seen.add(key)
            load_dataset(config)


# ------------------------------------------------------------------------------------------------------ study


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be written (or created): it names the folder and why.

    Nothing is created here: the nearest existing folder on the way must let this process add entries.
    """
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
    if existing != folder and not existing.is_dir():
        raise TmtError(f"{folder}: the {what} folder is not writable ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TmtError(f"{folder}: the {what} folder is not writable (permission denied at {existing})")


@dataclass(frozen=True)
class RunSummary:
    outcomes: list[CellOutcome]
    stopped: str | None = None
    """Why the study ended before every cell ran (the disk filled), or None."""
    archived: int = 0
    """Cells in the results archive after the run (0 without one, or when the study stopped)."""

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def run_cells(
    expansion: Expansion,
    store: Store,
    *,
    force: bool = False,
    tracking: Tracking | None = None,
    live: bool | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
    archive: Path | None = None,
) -> RunSummary:
    """Run every cell of an expansion; a failed cell never stops the others.

    ``executor`` (:mod:`bench.executors`) decides where the cells run. By default ``jobs`` = 1 runs them in this
    process, in order, with the epoch shown live, and ``jobs`` > 1 hands them to that many worker processes
    (each cell's lock keeps workers, and other runs, off each other's cells).

    With an ``archive`` (the study's results archive), the cells already done are added to it before any cell
    runs, each cell as it finishes (by the process that ran it) and, at the end, every finished cell again: a
    cell that a run of another study sharing it finished meanwhile, or whose own export failed.
    """
    cells = expansion.cells
    check_writable(store.root, "result store")
    done_before = 0 if force else sum(store.is_done(c.id) for c in cells)
    outcomes: dict[str, CellOutcome] = {}
    title = f"{expansion.study.study} [{expansion.profile}]"
    with RunsProgress(len(cells), done_before, title=title, unit="cells", live=live) as progress:
        progress.print(f"{title}: {len(cells)} cells, {done_before} already done, store {store.root}")
        ensure_data(expansion, progress.print)
        pending = []
        for cell in cells:
            if not force and store.is_done(cell.id):
                outcomes[cell.id] = CellOutcome(cell.id, "skipped", "already done")
                with store.lock(cell.id) as held:
                    if held:
                        store.prepare(cell)
            else:
                pending.append(cell)
        if archive is not None:  # the cells done before this run (those with an outcome already)
            export_archive(archive, store, [cell for cell in cells if cell.id in outcomes])

        def report(cell: Cell, outcome: CellOutcome) -> None:
            outcomes[cell.id] = outcome
            if outcome.status == "busy":
                progress.print(f"    {cell.id} {cell.describe()}: skipped, {outcome.detail}")
            else:
                progress.run_finished(f"{cell.id} {cell.describe()}", outcome.status, outcome.detail)
            if outcome.disk_full:
                raise StudyStopped(
                    f"{store.root}: no space left on the device; the study stopped after cell {cell.id} "
                    "failed, finished cells are kept; free space and rerun to go on"
                )

        chosen = executor if executor is not None else make_executor(jobs=jobs)
        tracking = tracking or Tracking()
        tracking = dataclasses.replace(tracking, mode=tracking_mode(tracking.mode, progress.print))
        stopped = None
        try:
            chosen.run(
                pending,
                store,
                report,
                run_cell,
                progress=progress,
                force=force,
                tracking=tracking,
                archive=archive,
            )
        except StudyStopped as stop:
            stopped = str(stop)
    archived = export_archive(archive, store, cells) if archive is not None and stopped is None else 0
    not_run = CellOutcome("", "not run", "the study stopped first")
    return RunSummary([outcomes.get(c.id, not_run) for c in cells], stopped, archived)
