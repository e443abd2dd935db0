"""The result store: one folder per cell under a root (default ``runs/``), plain files only.

``<id>/config.json`` (written first, records every study that asked for the cell), ``checkpoint.pt`` (the
trainer's, for resume), ``history.jsonl`` (per-epoch records, appended), ``result.json`` (written atomically
once the cell finished: a cell is done iff it exists) and ``failure.json`` (why it failed). A per-cell
``lock`` file held with ``flock`` (:func:`tmt.files.file_lock`) keeps two processes from running one cell; the kernel
drops the lock when its process dies, so a killed worker never blocks the cell.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.cells import Cell
from tmt.files import file_lock, write_text_atomic
from tmt.training.experiment import CHECKPOINT, MODEL_FILE

DEFAULT_ROOT = "runs"
CONFIG, RESULT, FAILURE, HISTORY, LOCK = "config.json", "result.json", "failure.json", "history.jsonl", "lock"
"""A cell's files besides ``run_experiment``'s checkpoint and model (the evaluated weights, written only when
asked for: ``--wandb-log-model``)."""
RESULT_SCALARS = ("num_parameters", "train_time_s", "epochs_run", "train_windows", "evaluation_time_s")
RESULT_SECTIONS = ("convergence", "selection", "environment", "dataset", "fingerprints")
"""Result records read as dotted columns (``fingerprints.initial_weights``: the pairing test of the report)."""


def default_root() -> Path:
    return Path(os.environ.get("BENCH_STORE") or DEFAULT_ROOT)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=True))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def flatten(prefix: str, value: Any, out: dict[str, Any], sep: str = ".") -> None:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (``sep`` between the keys); lists stay whole (object columns)."""
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(f"{prefix}{sep}{key}" if prefix else str(key), item, out, sep)
    else:
        out[prefix] = value


class Store:
    """Plain-file result store; safe for several processes on one machine (and on a shared filesystem)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def path(self, cell_id: str) -> Path:
        return self.root / cell_id

    # -- state ----------------------------------------------------------------------------------------------
    def is_done(self, cell_id: str) -> bool:
        return (self.path(cell_id) / RESULT).exists()

    def status(self, cell_id: str) -> str:
        """``done`` (result exists), ``failed`` (failure recorded, no result) or ``missing``."""
        folder = self.path(cell_id)
        if (folder / RESULT).exists():
            return "done"
        if (folder / FAILURE).exists():
            return "failed"
        return "missing"

    def has_checkpoint(self, cell_id: str) -> bool:
        return (self.path(cell_id) / CHECKPOINT).exists()

    def cell_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG).exists())

    # -- locking --------------------------------------------------------------------------------------------
    def lock(self, cell_id: str) -> contextlib.AbstractContextManager[bool]:
        """Try to take the cell's lock without waiting; the ``with`` block gets whether this process holds it."""
        self.path(cell_id).mkdir(parents=True, exist_ok=True)
        return file_lock(self.path(cell_id) / LOCK)

    def is_locked(self, cell_id: str) -> bool:
        """Whether another process is running the cell right now."""
        path = self.path(cell_id) / LOCK
        with file_lock(path, create=False) as free:
            return not free and path.exists()

    # -- writing (callers hold the cell's lock) -------------------------------------------------------------
    def prepare(self, cell: Cell) -> Path:
        """Create the cell folder and write or merge ``config.json`` (labels are kept per study)."""
        folder = self.path(cell.id)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / CONFIG).exists():
            self.merge_config(cell.id, cell.record(), replace=True)
        else:
            write_json_atomic(folder / CONFIG, cell.record())
        return folder

    def merge_config(self, cell_id: str, record: dict[str, Any], *, replace: bool = False) -> None:
        """Add the studies (and their labels) of another ``config.json`` record of the same cell; ``replace``:
        its labels of a study the file names already replace the file's (the cell's own, as expanded now)."""
        path = self.path(cell_id) / CONFIG
        old = read_json(path)
        studies, new = old.get("studies", {}), record.get("studies", {})
        merged = {**studies, **new} if replace else {**new, **studies}
        if merged != studies:
            write_json_atomic(path, {**old, "studies": merged})

    def set_checkpoint_aside(self, cell_id: str) -> Path:
        """Rename an unusable checkpoint to ``checkpoint.pt.unreadable`` (kept for inspection, never loaded)."""
        kept = self.path(cell_id) / f"{CHECKPOINT}.unreadable"
        os.replace(self.path(cell_id) / CHECKPOINT, kept)
        return kept

    def clear(self, cell_id: str) -> None:
        """Forget a cell's outcome and progress (``--force``): result, failure, history, checkpoint, weights."""
        folder = self.path(cell_id)
        for name in (RESULT, FAILURE, HISTORY, CHECKPOINT, MODEL_FILE):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()

    def append_history(self, cell_id: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, allow_nan=True)
        with open(self.path(cell_id) / HISTORY, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()

    def write_result(self, cell_id: str, result: dict[str, Any]) -> None:
        write_json_atomic(self.path(cell_id) / RESULT, result)
        with contextlib.suppress(FileNotFoundError):
            (self.path(cell_id) / FAILURE).unlink()

    def write_failure(self, cell_id: str, reason: str, traceback_text: str = "") -> None:
        record = {"reason": reason, "traceback": traceback_text, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_json_atomic(self.path(cell_id) / FAILURE, record)

    # -- reading --------------------------------------------------------------------------------------------
    def read_config(self, cell_id: str) -> dict[str, Any] | None:
        path = self.path(cell_id) / CONFIG
        return read_json(path) if path.exists() else None

    def read_result(self, cell_id: str) -> dict[str, Any] | None:
        path = self.path(cell_id) / RESULT
        return read_json(path) if path.exists() else None

    def read_failure(self, cell_id: str) -> dict[str, Any] | None:
        path = self.path(cell_id) / FAILURE
        return read_json(path) if path.exists() else None

    def history(self, cell_id: str) -> list[dict[str, Any]]:
        """Per-epoch records, one per epoch (a replayed epoch after a resume keeps its latest record)."""
        path = self.path(cell_id) / HISTORY
        if not path.exists():
            return []
        by_epoch: dict[int, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill is skipped
                record = json.loads(line)
                by_epoch[int(record.get("epoch", len(by_epoch) + 1))] = record
        return [by_epoch[e] for e in sorted(by_epoch)]

    def row(self, cell: Cell) -> dict[str, Any]:
        """One flat record of a cell: identity, labels, what it ran (``Cell.as_run``), status and flattened
        metrics."""
        cid = cell.id
        row: dict[str, Any] = {
            "cell_id": cid,
            "study": cell.study,
            "profile": cell.profile,
            "kind": cell.kind,
            "seed": cell.seed,
            "status": self.status(cid),
            "failure": None,
        }
        row.update(cell.labels)
        row.update(cell.as_run())
        if row["status"] == "failed":
            row["failure"] = (self.read_failure(cid) or {}).get("reason")
            row["history"] = self.history(cid)
            return row
        result = self.read_result(cid) if row["status"] == "done" else None
        if result is None:
            return row
        flatten("", result.get("metrics", {}), row)  # per-joint lists stay whole (object columns)
        for name in RESULT_SCALARS:
            if name in result:
                row[name] = result[name]
        for section in RESULT_SECTIONS:
            if isinstance(result.get(section), dict):
                flatten(section, result[section], row)
        row["history"] = result.get("history", [])
        return row

    def results(self, cells: Iterable[Cell]) -> pd.DataFrame:
        """One row per cell (done, failed or missing), in the order given."""
        rows = [self.row(cell) for cell in cells]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=["cell_id", "study", "profile", "kind", "seed", "status", "failure"])
        return frame
