"""Without ``--threads``, a command gives torch the cores of its CPU affinity that other work leaves idle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tmt import threads
from tmt.cli.threads import apply_threads
from tmt.errors import ConfigError


def _machine(monkeypatch: pytest.MonkeyPatch, affinity: set[int], busy: dict[int, float] | None) -> None:
    """Four CPUs, this process allowed on ``affinity``; each CPU of ``busy`` busy that share of the sample
    (the others idle); ``busy`` None: the system says nothing (no /proc/stat)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity, raising=False)
    ticks = iter([0, 100])

    def cpu_times() -> dict[int, tuple[int, int]]:
        now = next(ticks)
        if busy is None:
            return {}
        return {cpu: (round(now * (1 - busy.get(cpu, 0.0))), now) for cpu in range(4)}

    monkeypatch.setattr(threads, "_cpu_times", cpu_times)
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)


@pytest.mark.parametrize(
    ("affinity", "busy", "expected"),
    [
        ({0, 1, 2, 3}, {}, 4),  # an idle machine: every core
        ({0, 1, 2, 3}, {0: 1.0, 1: 1.0}, 2),  # two cores busy with other jobs
        ({0, 1}, {0: 1.0, 1: 1.0}, 1),  # every allowed core busy: still one thread
        ({0, 1}, {2: 1.0, 3: 1.0}, 2),  # work on cores this process may not use takes none of its
        ({0, 1}, {0: 0.7, 1: 0.2}, 1),  # 1.1 idle cores
        ({2}, None, 1),  # no load figures: the affinity alone
        ({0, 1, 2}, None, 3),
    ],
)
def test_default_threads_are_the_idle_cores_of_the_affinity(
    monkeypatch: pytest.MonkeyPatch, affinity: set[int], busy: dict | None, expected: int
) -> None:
    _machine(monkeypatch, affinity, busy)
    assert threads.default_threads() == expected


def test_a_command_without_threads_takes_the_default_unless_omp_num_threads_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = torch.get_num_threads()
    try:
        _machine(monkeypatch, {0, 1, 2}, {0: 1.0})
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        apply_threads(None)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as torchrun sets it for each process
        apply_threads(None)
        assert torch.get_num_threads() == 1
        apply_threads(3)
        assert torch.get_num_threads() == 3
        with pytest.raises(ConfigError, match="--threads: must be at least 1, got 0"):
            apply_threads(0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_core_uses_one_thread() -> None:
    """A real process started under an affinity of one CPU (as taskset or Slurm would start it)."""
    (cpu, *_) = sorted(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-c", "from tmt.threads import default_threads; print(default_threads())"],
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        cwd=Path(__file__).resolve().parents[1],  # this checkout's tmt, whatever a test left as the cwd
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1"
