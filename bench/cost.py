"""What a cell costs before it runs: what training its configuration costs (:mod:`tmt.training.cost`: CPU
seconds on the development machine, GPU-hours per GPU type) plus what bench spends around it. ``--dry-run`` and
``bench validate`` print them, so a user can budget a study; a count (``kind: complexity``) trains nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.cells import Cell
from tmt.training.cost import GPU, workload
from tmt.training.cost import gpu_hours as config_gpu_hours

STARTUP_SECONDS = 0.3
"""Per cell: reading the data, building the model, writing the result, its W&B run (offline). Measured between
consecutive cells of the smoke job: 0.17 s with W&B disabled, 0.3 s offline."""

RUN_SECONDS = 7.0
"""Per ``bench run`` with cells to train: starting Python and torch, checking the data, the first cell's
loading (1-2 s more than the others') and writing the report. Measured on the smoke job: 5.7 s of its 17-22 s
lie outside its cells, plus the first cell's extra."""


def estimate_seconds(cell: Cell) -> float:
    """A rough cost of one cell (seconds on 2 CPU cores), for ``--dry-run`` and profile tuning: its training
    (:attr:`tmt.training.cost.Workload.cpu_seconds`) and the cell's start. Complexity cells: 1 s."""
    if cell.kind == "complexity":
        return 1.0
    return workload(cell.config).cpu_seconds + STARTUP_SECONDS


def estimate_run_seconds(cells: Sequence[Cell]) -> float:
    """A ``bench run`` of ``cells``: each cell's cost plus the run's own (0 when there is none to run)."""
    return RUN_SECONDS + sum(map(estimate_seconds, cells)) if cells else 0.0


def gpu_hours(cell: Cell, gpu: GPU) -> float:
    """Hours of one ``gpu`` for the cell (:func:`tmt.training.cost.gpu_hours`); a count trains nothing: 0."""
    return 0.0 if cell.kind == "complexity" else config_gpu_hours(cell.config, gpu)
