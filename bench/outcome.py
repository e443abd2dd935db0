"""How one cell's run ended: the record that runner, executors and search pass around."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellOutcome:
    cell_id: str
    status: str  # done | failed | skipped (already done) | busy (another process holds it) | stopped
    detail: str = ""
    seconds: float = 0.0
    disk_full: bool = False
    """The cell failed because a write found no space: the study stops rather than fail every other cell."""
