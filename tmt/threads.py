"""How many threads a command gives torch when it is not told: the cores this process may run on (its CPU
affinity, which taskset, cgroups and Slurm restrict) that other work leaves idle.

torch's own default is a thread per core of the affinity, busy or not. Where other jobs keep those cores busy,
the threads wait on one another at every parallel region: on a 2-core machine running two training jobs,
``tmt evaluate`` took 73-121 s with torch's default and 23.5 s with one thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""The variables OpenMP, the BLAS libraries and numexpr read when they load."""
SAMPLE_S = 0.2
"""How long the cores are watched before choosing: long enough to see a busy core, short beside any command."""

PROC_STAT = Path("/proc/stat")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity; every CPU where the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def allowed_cores() -> int:
    """How many CPUs this process may run on, at least 1."""
    return max(1, len(allowed_cpus()))


def _cpu_times() -> dict[int, tuple[int, int]]:
    """(idle, total) clock ticks of each CPU since boot, from Linux's /proc/stat ({} elsewhere)."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (values[3] + values[4], sum(values))
    return times


def idle_cores(cpus: Sequence[int], seconds: float = SAMPLE_S) -> float | None:
    """How many of ``cpus`` sat idle over the next ``seconds`` (1.5: one idle core and one half busy); None
    where the system does not say."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    idle = 0.0
    for cpu in cpus:
        if cpu not in before or cpu not in after:
            return None
        ticks = after[cpu][1] - before[cpu][1]
        idle += (after[cpu][0] - before[cpu][0]) / ticks if ticks > 0 else 1.0
    return idle


def default_threads() -> int:
    """The idle cores among those this process may use, rounded, at least 1 (all of them where the system
    does not say how busy they are)."""
    cpus = allowed_cpus()
    idle = idle_cores(cpus)
    return len(cpus) if idle is None else min(len(cpus), max(1, round(idle)))


def export_thread_variables(threads: int) -> None:
    """Set :data:`THREAD_VARIABLES` for the libraries this process loads later (a worker sets them before it
    imports numpy or torch)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def limit_threads(threads: int) -> None:
    """Give this process ``threads`` threads: torch's intra-op threads now, the variables for what loads later
    (several processes sharing a machine's cores: bench's worker processes and Slurm jobs)."""
    export_thread_variables(threads)
    import torch

    torch.set_num_threads(threads)
