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
    from rich.progress import ProgressColumn

    from tmt.training.config import ExperimentConfig
    from tmt.training.state import TrainState

BAR_WIDTH = 20
"""Characters of a live bar: with the texts beside it, a line fits 80 columns."""


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
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            shown = [TextColumn(f"{name} {{task.fields[{name}]:.4f}}") for name in fields]
            self._bar = RichProgress(
                text_column(label.replace("[", r"\[")),
                BarColumn(bar_width=BAR_WIDTH),
                MofNCompleteColumn(),
                *shown,
                TimeRemainingColumn(),
                console=live_console(self.stream),
                transient=True,
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
