"""What a study run shows while it works: cells done / remaining and the current cell's epoch.

On a terminal this is a live rich display (two bars, each one line narrower than the terminal, erased when
the run ends: the lines printed per cell are the record); elsewhere (logs, CI) one plain line per event, so
the output stays readable when piped.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from bench.cells import Cell
from tmt.progress import BAR_WIDTH, live_console, text_column

DESCRIPTION_WIDTH = 40
"""Characters of the study's and the cell's name in the live display (cut with an ellipsis beyond): the
line then fits 80 columns; each cell's line printed when it ends names it in full."""


def _escape(text: str) -> str:
    """Text shown verbatim by rich (study titles contain ``[profile]``, which rich would read as markup)."""
    from rich.markup import escape

    return escape(text)


class RunProgress:
    """Progress of one study run; also an ``on_epoch_end`` callback for the current cell."""

    def __init__(
        self,
        total: int,
        done: int = 0,
        *,
        title: str = "",
        stream: TextIO | None = None,
        live: bool | None = None,
    ):
        self.total, self.done, self.title = total, done, title
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._progress: Any = None
        self._cells_task: Any = None
        self._epoch_task: Any = None
        self._cell: Cell | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> RunProgress:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._progress = Progress(
                text_column("{task.description}", max_width=DESCRIPTION_WIDTH),
                BarColumn(bar_width=BAR_WIDTH),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=live_console(self.stream),
                transient=True,
            )
            self._cells_task = self._progress.add_task(
                _escape(f"{self.title} cells"), total=self.total, completed=self.done
            )
            self._epoch_task = self._progress.add_task("epoch", total=1, visible=False)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    # -- events ---------------------------------------------------------------------------------------------
    def cell_started(self, cell: Cell, resumed: bool) -> None:
        self._cell = cell
        note = " (resuming from its checkpoint)" if resumed else ""
        position = f"[{self.done + 1}/{self.total}]"
        if self._progress is not None:
            self._progress.update(
                self._epoch_task,
                description=_escape(f"{cell.id} {cell.describe()}"),
                total=cell.epochs,
                completed=0,
                visible=True,
            )
            if resumed:
                self.print(f"{position} {cell.id} {cell.describe()}{note}")
        else:
            self.print(f"{position} {cell.id} {cell.describe()}: running{note}")

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        val = record.get("val_mpjpe")
        text = f"epoch {epoch}/{self._cell.epochs if self._cell else '?'}"
        if isinstance(val, (int, float)):
            text += f" val MPJPE {val:.1f} mm"
        if self._progress is not None:
            self._progress.update(self._epoch_task, completed=epoch)
        else:
            self.print(f"    {text}")

    def cell_finished(self, cell: Cell, status: str, detail: str = "") -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._cells_task, completed=self.done)
            self._progress.update(self._epoch_task, visible=False)
        suffix = f": {detail}" if detail else ""
        self.print(f"[{self.done}/{self.total}] {cell.id} {cell.describe()}: {status}{suffix}")
