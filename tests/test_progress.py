"""What a person waiting on ``tmt train`` / ``tmt evaluate`` sees when stdout is a log or a pipe."""

from __future__ import annotations

import io
import re

from tmt.cli import main
from tmt.progress import Progress, epoch_line, eta_seconds, format_seconds
from tmt.training.config import ExperimentConfig
from tmt.training.state import TrainState

TINY = [
    "--frames",
    "9",
    "--depth",
    "1",
    "--dim",
    "16",
    "--heads",
    "2",
    "--batch-clips",
    "16",
    "--threads",
    "1",
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_every_tenth_of_the_way_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("evaluate", 20, unit="test sequences", stream=stream)
    for _ in range(20):
        progress.advance()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("evaluate: 2/20 test sequences (")
    assert lines[-1].startswith("evaluate: 20/20 test sequences (")


def test_no_lines_when_asked_for_none_and_a_bar_on_a_terminal() -> None:
    silent = io.StringIO()
    progress = Progress("epoch 1/3", 5, fields=("loss",), lines=False, stream=silent)
    for _ in range(5):
        progress.advance(loss=0.5)
    progress.close()
    assert silent.getvalue() == ""

    terminal = Terminal()
    progress = Progress("epoch 1/3", 5, fields=("loss",), lines=False, stream=terminal)
    progress.advance(loss=0.5)
    progress.close()
    assert "epoch 1/3" in terminal.getvalue()


def test_epoch_line_states_losses_validation_time_and_eta() -> None:
    config = ExperimentConfig.model_validate({"optim": {"epochs": 10}})
    state = TrainState(epoch=2, wall_time_s=120.0, updates=20)
    record = {"epoch": 2, "loss_step1": 0.25, "loss_step2": 0.125, "val_mpjpe": 65.34, "test_mpjpe": None}
    assert eta_seconds(config, state) == 8 * 60.0
    line = epoch_line(record, config, state, 61.0)
    assert line == "epoch 2/10 | loss 0.2500 / 0.1250 | val MPJPE 65.3 mm | 61 s | ETA 8 min"

    capped = ExperimentConfig.model_validate({"optim": {"epochs": 10, "max_updates": 30}})
    assert eta_seconds(capped, state) == 60.0  # 10 updates per epoch: one epoch left
    plateau = ExperimentConfig.model_validate({"optim": {"epochs": 10, "stop_at_plateau": True}})
    assert "ETA <= 8 min" in epoch_line(record, plateau, state, 61.0)
    state.stop_reason = "epochs"
    assert epoch_line(record, config, state, 61.0).endswith("| done (epochs)")


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (41, 720, 3.5 * 3600, 2 * 86400)] == [
        "41 s",
        "12 min",
        "3.5 h",
        "2.0 days",
    ]


def test_train_prints_a_line_per_epoch_and_evaluate_counts_sequences(smoke_data, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "--data", str(smoke_data), *TINY, "--epochs", "2", "--max-train-windows", "24"]
    assert main([*argv, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert re.fullmatch(
        r"epoch 1/2 \| loss [\d.]+ / [\d.]+ \| val MPJPE [\d.]+ mm \| [\d.]+ (s|min) \| ETA [\d.]+ (s|min)",
        epochs[0],
    )
    assert epochs[1].startswith("epoch 2/2 |") and epochs[1].endswith("| done (epochs)")
    assert lines[lines.index(epochs[1]) + 1].startswith("evaluate: ")  # the final test evaluation

    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    counts = re.findall(r"^evaluate: (\d+)/(\d+) test sequences", printed, flags=re.MULTILINE)
    assert counts and counts[-1][0] == counts[-1][1]
    assert "Average" in printed

    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--threads", "1", "--quiet"]) == 0
    assert "evaluate:" not in capsys.readouterr().out


def test_eta_is_zero_before_the_first_epoch_and_after_the_end_and_bounded_by_every_cap() -> None:
    config = ExperimentConfig.model_validate({"optim": {"epochs": 10}})
    assert eta_seconds(config, TrainState(epoch=0)) == 0.0
    assert eta_seconds(config, TrainState(epoch=1, wall_time_s=30.0)) == 9 * 30.0  # one epoch seen is enough
    assert eta_seconds(config, TrainState(epoch=2, wall_time_s=60.0, stop_reason="plateau")) == 0.0
    # 3 epochs, 90 updates (30 each): 45 more updates are 1.5 epochs, rounded up to 2: 2 x 20 s
    capped = ExperimentConfig.model_validate({"optim": {"epochs": 10, "max_updates": 135}})
    assert eta_seconds(capped, TrainState(epoch=3, wall_time_s=60.0, updates=90)) == 40.0
    walled = ExperimentConfig.model_validate({"optim": {"epochs": 10, "max_wall_s": 100.0}})
    assert (
        eta_seconds(walled, TrainState(epoch=3, wall_time_s=60.0)) == 40.0
    )  # 140 s of epochs, 40 of wall time


def test_eta_is_zero_once_a_cap_is_reached_before_training_has_said_so() -> None:
    """At the last epoch, past the update cap or past the wall time, nothing is left (never a negative time)."""
    last = ExperimentConfig.model_validate({"optim": {"epochs": 3}})
    assert eta_seconds(last, TrainState(epoch=3, wall_time_s=60.0)) == 0.0
    updates = ExperimentConfig.model_validate({"optim": {"epochs": 10, "max_updates": 80}})
    assert eta_seconds(updates, TrainState(epoch=3, wall_time_s=60.0, updates=90)) == 0.0
    walled = ExperimentConfig.model_validate({"optim": {"epochs": 10, "max_wall_s": 50.0}})
    assert eta_seconds(walled, TrainState(epoch=3, wall_time_s=60.0)) == 0.0


def test_epoch_line_shows_the_test_mpjpe_when_the_epoch_measured_it() -> None:
    config = ExperimentConfig.model_validate({"optim": {"epochs": 10}})
    state = TrainState(epoch=2, wall_time_s=120.0, updates=20)
    record = {"epoch": 2, "loss_step1": 0.25, "val_mpjpe": 65.34, "test_mpjpe": 61.26}
    line = epoch_line(record, config, state, 61.0)
    assert line == "epoch 2/10 | loss 0.2500 | val MPJPE 65.3 mm | test MPJPE 61.3 mm | 61 s | ETA 8 min"


class Screen:
    """A terminal of ``width`` columns as many are: a character written into the last column wraps the
    cursor to the next row at once. Understands what rich's live display writes: text, CR, LF, cursor up
    (ESC [ n A) and erase line (ESC [ 2 K); other escape sequences (colours, cursor visibility) change
    nothing on it."""

    def __init__(self, width: int) -> None:
        self.width, self.rows, self.row, self.col = width, [[]], 0, 0

    def feed(self, text: str) -> None:
        for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|.", text, flags=re.DOTALL):
            if token == "\r":
                self.col = 0
            elif token == "\n":
                self._down()
            elif token.startswith("\x1b"):
                if token.endswith("A"):
                    self.row = max(0, self.row - int(token[2:-1] or 1))
                elif token == "\x1b[2K":
                    self.rows[self.row] = []
            else:
                line = self.rows[self.row]
                line += [" "] * (self.col + 1 - len(line))
                line[self.col] = token
                self.col += 1
                if self.col == self.width:
                    self._down()

    def _down(self) -> None:
        self.row, self.col = self.row + 1, 0
        if self.row == len(self.rows):
            self.rows.append([])

    def lines(self) -> list[str]:
        return [text for text in ("".join(row).rstrip() for row in self.rows) if text]


def _tiny_cells(count: int) -> list:
    from bench.cells import Cell
    from tmt.training.config import load_config

    config = load_config({"model": {"dim": 16, "depth": 1}, "optim": {"epochs": 3}}).resolved()
    labels = {"model.depth": 8, "model.dim": 128, "model.frames": 27, "train.strategy": "tmt1"}
    return [Cell("table7", "smoke", "train", labels, config, seed) for seed in range(count)]


def test_a_study_run_at_80_columns_leaves_exactly_its_lines(monkeypatch) -> None:
    """On an 80-column terminal the live bars never reach the last column (else each refresh would leave a
    copy behind and overwrite the lines above) and vanish at the end: the screen then holds each cell's line
    once, and no bar."""
    from tmt.progress import RunsProgress

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = Terminal()
    cells = _tiny_cells(12)
    with RunsProgress(len(cells), title="table7 [smoke]", unit="cells", stream=terminal) as progress:
        progress.print("table7 [smoke]: 12 cells")
        for cell in cells:
            progress.run_started(f"{cell.id} {cell.describe()}", cell.epochs, resumed=False)
            for epoch in (1, 2, 3):
                progress.on_epoch_end(epoch, {"val_mpjpe": 400.0})
                progress._progress.refresh()
            progress.run_finished(f"{cell.id} {cell.describe()}", "done", "MPJPE 426.0 mm")
    screen = Screen(80)
    screen.feed(terminal.getvalue())
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "━" in drawn and max(map(len, re.split(r"[\r\n]", drawn))) < 80
    lines = screen.lines()
    assert not [line for line in lines if "━" in line]
    expected = [
        f"[{n}/12] {cell.id} {cell.describe()}: done: MPJPE 426.0 mm" for n, cell in enumerate(cells, 1)
    ]
    assert " ".join(lines) == " ".join(["table7 [smoke]: 12 cells", *expected])  # printed lines wrap at words


def test_a_training_bar_at_80_columns_fits_and_vanishes(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = Terminal()
    progress = Progress("epoch 12/45", 1188, fields=("loss",), lines=False, stream=terminal)
    for _ in range(1188):
        progress.advance(loss=0.1234)
    progress._bar.refresh()
    progress.close()
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())
    assert "1188/1188" in drawn and max(map(len, re.split(r"[\r\n]", drawn))) < 80
    screen = Screen(80)
    screen.feed(terminal.getvalue())
    assert screen.lines() == []
