"""Where a study's cells run: in this process, in a pool of local worker processes, or as Slurm jobs.

Every executor hands each cell to :func:`bench.runner.run_cell` against the same store, so they are
interchangeable: the store's per-cell lock keeps two workers off one cell, and a rerun skips every finished
cell whichever executor ran it. Worker processes get a share of the cores (``max(1, cores // jobs)`` torch and
BLAS threads, unless the cell sets ``train.threads``) so that N workers never oversubscribe the machine.

This module imports neither torch nor the runner at import time: a spawned worker unpickles its entry point
from here and limits its threads before the numerical libraries load.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from bench.outcome import CellOutcome
from tmt.errors import ConfigError
from tmt.plugins import import_modules, imported_modules
from tmt.threads import allowed_cores, export_thread_variables, limit_threads
from tmt.validation import StrictModel, describe

if TYPE_CHECKING:
    from bench.cells import Cell
    from bench.store import Store
    from tmt.progress import RunsProgress

EXECUTORS = ("local", "pool", "slurm")
SLURM_CLUSTERS = ("slurm", "local")
"""``local`` runs the "Slurm" jobs as local processes through submitit (tests, or a machine without Slurm)."""
SLURM_FLAGS: dict[str, tuple[type, str]] = {
    "partition": (str, "NAME"),
    "time": (str, "TIME"),
    "gpus": (int, "N"),
    "cpus": (int, "N"),
    "mem": (str, "SIZE"),
    "nodes": (int, "N"),
    "tasks_per_node": (int, "N"),
}
"""The Slurm settings ``bench run`` takes as ``--slurm-<name>`` (type, metavar; the words are the
:class:`SlurmOptions` field's), over a study's."""


Report = Callable[["Cell", CellOutcome], None]
RunCell = Callable[..., CellOutcome]
"""``bench.runner.run_cell``: handed to the executors (and pickled by name into workers), so that they never
import the runner that imports them."""


# ------------------------------------------------------------------------------------------------- threads


def worker_threads(jobs: int, cores: int | None = None) -> int:
    """Threads per worker when ``jobs`` workers share ``cores`` cores."""
    return max(1, (cores or allowed_cores()) // max(1, jobs))


def _set_thread_variables(threads: int) -> None:
    """Pool-worker initializer: runs before the worker imports numpy or torch.

    On Linux the worker also asks to be killed with its parent, so a killed ``bench run`` leaves no worker
    behind that goes on training (and holding its cell's lock) unseen.
    """
    export_thread_variables(threads)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass(frozen=True)
class CellJob:
    """A cell in a worker process or a Slurm job, run as the submitter would: from its working directory
    (relative data roots and stores resolve as they did there), with the modules it imported with ``--import``
    (a user's backbone must be registered here too) and a bounded thread count (None: all the cores the job
    was given; the cell's own ``train.threads`` wins). Pickled whole to the worker, ``run_cell`` by name.

    ``distributed``: one process of a Slurm job that trains its cell data-parallel; it first sets the
    torch.distributed variables of the job's tasks (rank, world size, the first node as the rendezvous).
    Rank 0 runs the cell against the store; the other ranks train beside it (:func:`bench.runner.run_cell`).
    """

    run_cell: RunCell
    store: Store
    threads: int | None
    cwd: str
    options: dict[str, Any]
    modules: tuple[str, ...] = ()
    distributed: bool = False

    def __call__(self, cell: Cell) -> CellOutcome:
        if self.distributed:
            import submitit

            # each process keeps every GPU of its node visible and picks its own by LOCAL_RANK
            submitit.helpers.TorchDistributedEnvironment().export(
                set_cuda_visible_devices=False, overwrite=True
            )
        os.chdir(self.cwd)
        import_modules(self.modules)
        limit_threads(cell.config.train.threads or self.threads or allowed_cores())
        return self.run_cell(cell, self.store, **self.options)


def _collect(
    jobs: Sequence[tuple[Cell, Any]],
    ended: Iterable[Any],
    outcome: Callable[[Any], CellOutcome],
    failure: Callable[[Any, Exception], str],
    report: Report,
) -> None:
    """Report each cell as its job ends (``ended``: the jobs in the order they end). A job that died outside
    ``run_cell`` (killed, out of memory, a time limit) fails its cell, which resumes from its checkpoint on the
    next run; ``failure(job, err)`` says how."""
    cells = {id(job): cell for cell, job in jobs}
    for job in ended:
        cell = cells[id(job)]
        try:
            found = outcome(job)
        except Exception as err:
            found = CellOutcome(cell.id, "failed", failure(job, err))
        report(cell, found)


# ----------------------------------------------------------------------------------------------- executors


class Executor:
    """Where a study's cells run. This one runs them one at a time in this process, the epoch shown live
    (``local``); its subclasses hand them to other processes."""

    name = "local"

    def run(
        self,
        cells: Sequence[Cell],
        store: Store,
        report: Report,
        run_cell: RunCell,
        *,
        progress: RunsProgress | None = None,
        **options: Any,
    ) -> None:
        """Run every cell with ``run_cell(cell, store, **options)``, calling ``report(cell, outcome)`` as each
        ends."""
        for cell in cells:
            report(cell, run_cell(cell, store, progress=progress, **options))


class _JobExecutor(Executor):
    """An executor whose cells run as :class:`CellJob` in other processes (the progress display stays here)."""

    threads: int | None = None
    distributed = False

    def run(
        self,
        cells: Sequence[Cell],
        store: Store,
        report: Report,
        run_cell: RunCell,
        *,
        progress: RunsProgress | None = None,
        **options: Any,
    ) -> None:
        from bench.store import Store

        if cells:
            store = Store(store.root.resolve())
            job = CellJob(
                run_cell, store, self.threads, os.getcwd(), options, imported_modules(), self.distributed
            )
            self.submit(cells, job, report)

    def submit(self, cells: Sequence[Cell], job: CellJob, report: Report) -> None:
        """Run ``job`` on every cell and report each outcome as it arrives."""
        raise NotImplementedError


class PoolExecutor(_JobExecutor):
    """``jobs`` spawned worker processes (no forked torch state), each with ``cores // jobs`` threads."""

    name = "pool"

    def __init__(self, jobs: int, cores: int | None = None):
        self.jobs = jobs
        self.threads = worker_threads(jobs, cores)

    def submit(self, cells: Sequence[Cell], job: CellJob, report: Report) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(
            max_workers=min(self.jobs, len(cells)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_thread_variables,
            initargs=(self.threads,),
        ) as pool:
            futures = [(cell, pool.submit(job, cell)) for cell in cells]
            try:
                _collect(
                    futures,
                    as_completed([future for _, future in futures]),
                    lambda future: future.result(),
                    lambda _, err: f"worker process failed: {type(err).__name__}: {err}",
                    report,
                )
            except BaseException:  # interrupted, or the study was stopped: start no further cell
                pool.shutdown(wait=False, cancel_futures=True)
                raise


class SlurmOptions(StrictModel):
    """Slurm settings of a study (its ``slurm:`` section) or of the command line (``--slurm-*``)."""

    partition: str | None = Field(None, description="partition")
    time: str | int | None = Field(None, description="time limit: minutes, or HH:MM:SS, D-HH:MM, ...")
    gpus: int | None = Field(None, ge=0, description="GPUs per job")
    cpus: int | None = Field(None, ge=1, description="CPUs per job (= the cell's torch threads)")
    nodes: int | None = Field(
        None, ge=1, description="nodes per job: with tasks_per_node, one cell trains data-parallel"
    )
    tasks_per_node: int | None = Field(
        None, ge=1, description="processes per node, each training its share of every batch (usually = gpus)"
    )
    mem: str | int | None = Field(None, description="memory per job: GB, or a number with M / G / T")
    setup: list[str] = Field(default_factory=list, description="shell lines run before each job")
    additional: dict[str, Any] = Field(
        default_factory=dict, description="further sbatch options, e.g. {account: ..., qos: ...}"
    )

    def merged(self, overrides: dict[str, Any]) -> SlurmOptions:
        """These settings with the non-None ``overrides`` (the command line) on top."""
        return self.model_copy(update={k: v for k, v in overrides.items() if v is not None})

    @property
    def processes(self) -> int:
        """Processes per job: more than one trains each cell data-parallel (torch.distributed)."""
        return (self.nodes or 1) * (self.tasks_per_node or 1)

    def check(self, where: Callable[[str], str]) -> None:
        """Parse the time and memory formats now rather than at submission; ``where(field)`` names a field."""
        if self.time is not None:
            parse_minutes(self.time, where("time"))
        if self.mem is not None:
            parse_gigabytes(self.mem, where("mem"))

    def parameters(self, name: str, parallelism: int | None = None) -> dict[str, Any]:
        """submitit ``AutoExecutor.update_parameters`` keywords (generic ones, then ``slurm_*`` ones)."""
        params: dict[str, Any] = {"name": name}
        if self.time is not None:
            params["timeout_min"] = parse_minutes(self.time, "slurm time")
        if self.mem is not None:
            params["mem_gb"] = parse_gigabytes(self.mem, "slurm mem")
        given = self.model_dump(include=set(SUBMITIT_NAMES))
        params |= {SUBMITIT_NAMES[k]: v for k, v in given.items() if v not in (None, "", [], {})}
        if parallelism:
            params["slurm_array_parallelism"] = parallelism
        return params


SUBMITIT_NAMES = {
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "nodes": "nodes",
    "tasks_per_node": "tasks_per_node",
    "partition": "slurm_partition",
    "setup": "slurm_setup",
    "additional": "slurm_additional_parameters",
}
"""The submitit keyword of each :class:`SlurmOptions` field that passes as it is (when set)."""


def parse_minutes(value: str | int, where: str = "slurm time") -> int:
    """Slurm's time formats -> minutes (seconds round up): ``90``, ``"MM:SS"``, ``"HH:MM:SS"``,
    ``"D-HH"``, ``"D-HH:MM"``, ``"D-HH:MM:SS"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"{where}: must be at least 1 minute, got {value}")
        return value
    match = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2})", str(value).strip())
    if not match:
        raise ConfigError(
            f"{where}: expected minutes or a Slurm time such as 01:30:00 or 2-00:00, got {value!r}"
        )
    days, clock = match.group(1), [int(part) for part in match.group(2).split(":")]
    if days is None:
        if len(clock) == 3:
            hours, minutes, seconds = clock
        else:
            hours, minutes, seconds = 0, clock[0], clock[1] if len(clock) == 2 else 0
    else:
        hours, minutes, seconds = [*clock, 0, 0][:3]
    total = int(days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise ConfigError(f"{where}: must be at least 1 minute, got {value!r}")
    return total


def parse_gigabytes(value: str | int | float, where: str = "slurm mem") -> float:
    """``32``, ``"32G"``, ``"32GB"``, ``"16000M"``, ``"1T"`` -> gigabytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, unit = float(value), "G"
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([MGT]?)B?\s*", str(value), flags=re.IGNORECASE)
        if not match:
            raise ConfigError(f"{where}: expected a size such as 32G or 16000M, got {value!r}")
        amount, unit = float(match.group(1)), (match.group(2) or "G").upper()
    gigabytes = amount * {"M": 1 / 1024, "G": 1.0, "T": 1024.0}[unit]
    if gigabytes <= 0:
        raise ConfigError(f"{where}: must be positive, got {value!r}")
    return gigabytes


def slurm_options(section: dict[str, Any], source: str) -> SlurmOptions:
    """A study's ``slurm:`` section, validated; errors name the file and the key."""
    try:
        options = SlurmOptions.model_validate(section or {})
    except ValidationError as err:
        raise ConfigError(describe(source, err, SlurmOptions, prefix=("slurm",))) from None
    options.check(lambda name: f"{source}: slurm.{name}")
    return options


class SlurmExecutor(_JobExecutor):
    """One job per cell through submitit (a job array); the submitting process waits and reports each one.

    A job of several processes (``nodes`` x ``tasks_per_node``) trains its cell data-parallel, one process per
    task (:mod:`tmt.training.distributed`); rank 0 writes the cell's result, which records the world size.

    The store (and the data) must be on a filesystem the compute nodes share. A job that is killed (time
    limit, preemption) leaves its cell's checkpoint: the next run resumes it. Interrupting the waiting process
    cancels the jobs that are not finished.
    """

    name = "slurm"

    def __init__(
        self,
        options: SlurmOptions,
        *,
        cluster: str = "slurm",
        parallelism: int | None = None,
        folder: Path | None = None,
        poll_s: float | None = None,
    ):
        if cluster not in SLURM_CLUSTERS:
            raise ConfigError(f"--slurm-cluster: {cluster!r}; allowed: {', '.join(SLURM_CLUSTERS)}")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError(
                "--executor slurm: sbatch is not on PATH (no Slurm here); run on a Slurm login node, or use "
                "--slurm-cluster local to run the jobs as local processes"
            )
        self.options, self.cluster, self.parallelism = options, cluster, parallelism
        self.threads = options.cpus  # None: every core the job was given
        self.distributed = options.processes > 1
        self.folder = folder
        self.poll_s = poll_s if poll_s is not None else (1.0 if cluster == "local" else 15.0)

    def submit(self, cells: Sequence[Cell], job: CellJob, report: Report) -> None:
        import submitit

        folder = (self.folder or job.store.root / ".slurm" / cells[0].study).resolve()
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        params = self.options.parameters(f"bench-{cells[0].study}", self.parallelism)
        if self.cluster == "local":
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
            params.setdefault("timeout_min", 7 * 24 * 60)  # submitit's local default is a few minutes
        executor.update_parameters(**params)
        with executor.batch():
            submitted = [(cell, executor.submit(job, cell)) for cell in cells]
        try:
            _collect(
                submitted,
                submitit.helpers.as_completed([job for _, job in submitted], poll_frequency=self.poll_s),
                lambda job: job.results()[0],  # a job of several processes: rank 0 records the cell
                lambda job, err: (
                    f"Slurm job {job.job_id} failed: {type(err).__name__}: "
                    + "".join(str(err).strip().splitlines()[:1])
                ),
                report,
            )
        except KeyboardInterrupt:
            for _, job in submitted:
                if not job.done():
                    job.cancel(check=False)
            raise


def make_executor(
    name: str | None = None, *, jobs: int = 1, slurm: SlurmOptions | None = None, cluster: str = "slurm"
) -> Executor:
    """The executor called ``name`` (None: ``pool`` when ``jobs`` > 1, else ``local``)."""
    if jobs < 1:
        raise ConfigError(f"--jobs: must be at least 1, got {jobs}")
    name = name or ("pool" if jobs > 1 else "local")
    if name == "local":
        if jobs > 1:
            raise ConfigError(
                f"--executor local runs one cell at a time in this process; "
                f"--jobs {jobs} needs --executor pool"
            )
        return Executor()
    if name == "pool":
        return PoolExecutor(jobs)
    if name == "slurm":
        return SlurmExecutor(slurm or SlurmOptions(), cluster=cluster, parallelism=jobs if jobs > 1 else None)
    raise ConfigError(f"--executor: {name!r}; allowed: {', '.join(EXECUTORS)}")


def executor_from_args(args: Any, study: Any, source: str) -> Executor:
    """The executor asked for on the ``run`` command line; Slurm settings: the study's, then ``--slurm-*``."""
    slurm = None
    if args.executor == "slurm":
        flags = {name: getattr(args, f"slurm_{name}") for name in SLURM_FLAGS}
        SlurmOptions.model_validate({k: v for k, v in flags.items() if v is not None}).check(
            lambda name: f"--slurm-{name}"
        )
        slurm = slurm_options(getattr(study, "slurm", None) or {}, source).merged(flags)
    return make_executor(args.executor, jobs=args.jobs, slurm=slurm, cluster=args.slurm_cluster)
