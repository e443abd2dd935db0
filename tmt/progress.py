"""Progress where a person waits: a live bar on a terminal, plain lines in logs and pipes.

A live bar redraws one line in place, which is unreadable in a log file or a CI console; there a line every
tenth of the way (or, for training, one line per epoch) says the same without the control characters.

A live line must stay shorter than the terminal. A line that reaches the last column is wrapped by many
terminals into two rows, while the display moves the cursor up by one to redraw it: every refresh then
leaves a copy behind (hundreds of repeated lines in a long run) and overwrites the lines printed above it.
So every live display here draws on :func:`live_console`, one column narrower than the terminal, with a bar
of fixed width and texts cut with an ellipsis rather than wrapped.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import ProgressColumn

    from tmt.training.config import ExperimentConfig
    from tmt.training.state import TrainState

BAR_WIDTH = 20
"""Characters of a live bar: with the texts beside it, a line fits 80 columns."""
NAME_WIDTH = 40
"""Characters of a series' title and of a run's name in its live display (cut with an ellipsis beyond): the
line then fits 80 columns; the line printed as each run ends names it in full."""


def format_seconds(seconds: float) -> str:
    """A duration at the precision a person plans with: "41 s", "12 min", "3.5 h", "2.0 days"."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def live_console(stream: TextIO) -> Console:
    """A rich console on ``stream`` one column narrower than the terminal (see the module's docstring)."""
    from rich.console import Console

    return Console(file=stream, width=max(Console(file=stream).width - 1, 20))


def text_column(template: str, max_width: int | None = None) -> ProgressColumn:
    """A column of text that is cut with an ellipsis (at ``max_width``, or where the line would not fit),
    never wrapped onto a second row."""
    from rich.progress import TextColumn
    from rich.table import Column

    return TextColumn(template, table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max_width))


def live_bars(stream: TextIO, label: ProgressColumn, *after: ProgressColumn) -> RichProgress:
    """A transient rich display on :func:`live_console`: ``label``, a bar of fixed width, the count, then
    ``after`` (each task one line; erased when it stops)."""
    from rich.progress import BarColumn, MofNCompleteColumn
    from rich.progress import Progress as RichProgress

    bar = BarColumn(bar_width=BAR_WIDTH)
    return RichProgress(
        label, bar, MofNCompleteColumn(), *after, console=live_console(stream), transient=True
    )


class Progress:
    """Progress over ``total`` items of one loop.

    On a terminal: a transient rich bar with the count, the ``fields`` passed to :meth:`advance` and the time
    left. Elsewhere: with ``lines``, a line "<label>: n/total <unit> (elapsed)" every tenth of the way;
    without, nothing (the caller prints its own summary, as training does once per epoch).
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "",
        fields: Sequence[str] = (),
        lines: bool = True,
        stream: TextIO | None = None,
    ):
        self.label, self.total, self.unit, self.lines = label, total, unit, lines
        self.stream = stream or sys.stdout
        self.count = 0
        self.every = max(1, math.ceil(total / 10))
        self.started = time.perf_counter()
        self._bar: Any = None
        if self.stream.isatty():
            from rich.progress import TextColumn, TimeRemainingColumn

            shown = [TextColumn(f"{name} {{task.fields[{name}]:.4f}}") for name in fields]
            self._bar = live_bars(
                self.stream, text_column(label.replace("[", r"\[")), *shown, TimeRemainingColumn()
            )
            self._task = self._bar.add_task(label, total=total, **dict.fromkeys(fields, math.nan))
            self._bar.start()

    def advance(self, **fields: float) -> None:
        """One more item done; ``fields`` update the values the bar shows (e.g. the last loss)."""
        self.count += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, **fields)
        elif self.lines and (self.count % self.every == 0 or self.count == self.total):
            elapsed = format_seconds(time.perf_counter() - self.started)
            unit = f" {self.unit}" if self.unit else ""
            print(f"{self.label}: {self.count}/{self.total}{unit} ({elapsed})", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class RunsProgress:
    """Progress of a series of training runs (a study's cells): runs done / remaining and the current run's
    epoch; also the ``on_epoch_end`` callback of the current run.

    On a terminal two live bars, erased when the series ends (the line printed as each run ends is the
    record); elsewhere (logs, CI) one plain line per event. A run is named by ``name`` (its id and what it
    is) and trains ``epochs`` epochs.
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        *,
        title: str = "",
        unit: str = "runs",
        stream: TextIO | None = None,
        live: bool | None = None,
    ):
        self.total, self.done, self.title, self.unit = total, done, title, unit
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._progress: Any = None
        self._runs_task: Any = None
        self._epoch_task: Any = None
        self._epochs: int | None = None

    def __enter__(self) -> RunsProgress:
        if self.live:
            from rich.markup import escape  # titles contain "[profile]", which rich would read as markup
            from rich.progress import TimeElapsedColumn

            label = text_column("{task.description}", max_width=NAME_WIDTH)
            self._progress = live_bars(self.stream, label, TimeElapsedColumn())
            title = escape(f"{self.title} {self.unit}")
            self._runs_task = self._progress.add_task(title, total=self.total, completed=self.done)
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

    def run_started(self, name: str, epochs: int, resumed: bool) -> None:
        self._epochs = epochs
        note = " (resuming from its checkpoint)" if resumed else ""
        position = f"[{self.done + 1}/{self.total}]"
        if self._progress is not None:
            from rich.markup import escape

            shown = escape(name)
            self._progress.update(
                self._epoch_task, description=shown, total=epochs, completed=0, visible=True
            )
            if resumed:
                self.print(f"{position} {name}{note}")
        else:
            self.print(f"{position} {name}: running{note}")

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        val = record.get("val_mpjpe")
        text = f"epoch {epoch}/{self._epochs or '?'}"
        if isinstance(val, (int, float)):
            text += f" val MPJPE {val:.1f} mm"
        if self._progress is not None:
            self._progress.update(self._epoch_task, completed=epoch)
        else:
            self.print(f"    {text}")

    def run_finished(self, name: str, status: str, detail: str = "") -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._runs_task, completed=self.done)
            self._progress.update(self._epoch_task, visible=False)
        suffix = f": {detail}" if detail else ""
        self.print(f"[{self.done}/{self.total}] {name}: {status}{suffix}")


def eta_seconds(config: ExperimentConfig, state: TrainState) -> float:
    """Time left until the first cap (epochs, updates, wall time) at this run's mean time per epoch."""
    if state.stop_reason is not None or state.epoch == 0:
        return 0.0
    opt = config.optim
    per_epoch = state.wall_time_s / state.epoch
    epochs_left = opt.epochs - state.epoch
    if opt.max_updates is not None and state.updates:
        epochs_left = min(
            epochs_left, math.ceil((opt.max_updates - state.updates) * state.epoch / state.updates)
        )
    left = max(epochs_left, 0) * per_epoch
    if opt.max_wall_s is not None:
        left = min(left, max(opt.max_wall_s - state.wall_time_s, 0.0))
    return left


def epoch_line(
    record: dict[str, Any], config: ExperimentConfig, state: TrainState, epoch_wall_s: float
) -> str:
    """The one line a person watching ``tmt train`` (or its log) sees per epoch.

    "epoch 3/120 | loss 0.0812 / 0.0790 | val MPJPE 65.3 mm | 41 s | ETA 1.4 h": the step losses (step 1 /
    step 2 of a two-step strategy), the validation MPJPE, the epoch's wall time including validation and
    the time left; "ETA <=" when training may stop earlier at the validation plateau.
    """
    losses = [record[key] for key in ("loss_step1", "loss_step2") if record.get(key) is not None]
    parts = [
        f"epoch {record['epoch']}/{config.optim.epochs}",
        "loss " + " / ".join(f"{value:.4f}" for value in losses),
        f"val MPJPE {record['val_mpjpe']:.1f} mm",
    ]
    if record.get("test_mpjpe") is not None:
        parts.append(f"test MPJPE {record['test_mpjpe']:.1f} mm")
    parts.append(format_seconds(epoch_wall_s))
    if state.stop_reason is None:
        bound = "<= " if config.optim.stop_at_plateau else ""
        parts.append(f"ETA {bound}{format_seconds(eta_seconds(config, state))}")
    else:
        parts.append(f"done ({state.stop_reason})")
    return " | ".join(parts)
