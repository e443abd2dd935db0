"""W&B mirror of the store: one run per cell (group = study, job_type = strategy), never in charge.

The store decides whether a result exists; W&B only mirrors it. Every W&B call is guarded: a failure is logged
as a warning and tracking is switched off for that cell, so it can never fail or lose a cell. ``wandb`` is
imported only when tracking is on (it is slow to import).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from bench.cells import Cell

MODES = ("online", "offline", "disabled")
DEFAULT_PROJECT = "tmt-bench"
log = logging.getLogger(__name__)


def default_mode() -> str:
    """``WANDB_MODE`` when it names a known mode, else offline (synced later with ``wandb sync``)."""
    mode = os.environ.get("WANDB_MODE", "offline")
    mode = "offline" if mode == "dryrun" else mode
    return mode if mode in MODES else "offline"


def server_reachable(timeout_s: float = 3.0) -> tuple[bool, str]:
    """Whether a TCP connection to the W&B server (``WANDB_BASE_URL``, else api.wandb.ai) opens in time."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host = url.hostname or "api.wandb.ai"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, f"{host}:{port}"
    except OSError:
        return False, f"{host}:{port}"


def tracking_mode(mode: str, say: Any = print) -> str:
    """``mode``, except online with the server unreachable: then offline for the whole run, said once.

    Each cell would otherwise spend about 90 s in wandb's own retries before giving up.
    """
    if mode != "online":
        return mode
    reachable, server = server_reachable()
    if reachable:
        return mode
    say(
        f"W&B server {server} is unreachable: runs are logged offline (upload later with `wandb sync wandb/`)"
    )
    return "offline"


def _finite(record: dict[str, Any]) -> dict[str, float]:
    """Numeric entries only (W&B rejects None; NaN is kept out of the charts)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = value
    return out


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The scalar results as a flat dict (``per_action/mpjpe/Directions`` style keys)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix] = value

    walk("", result.get("metrics", {}))
    walk("convergence", result.get("convergence", {}))
    for key in ("num_parameters", "train_time_s", "epochs_run"):
        if key in result:
            out[key] = result[key]
    return out


class Tracker:
    """Callback (``on_epoch_end``) plus ``finish`` / ``fail``; all no-ops when disabled or after an error."""

    def __init__(self, cell: Cell, mode: str = "disabled", project: str | None = None):
        if mode not in MODES:
            raise ValueError(f"--wandb: unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.cell = cell
        self.mode = mode
        self.project = project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT)
        self.run: Any = None
        if mode != "disabled":
            self._guard("start", self._start)

    @property
    def active(self) -> bool:
        return self.run is not None

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:  # W&B must never take a cell down with it
            log.warning(
                "W&B %s failed for cell %s (%s); tracking is off for this cell", what, self.cell.id, err
            )
            self._close_quietly()

    def _close_quietly(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:  # already failing; nothing more to do
                log.debug("W&B finish after an error failed", exc_info=True)

    def _start(self) -> None:
        import wandb

        cell = self.cell
        self.run = wandb.init(
            project=self.project,
            id=f"{cell.id}",
            name=f"{cell.study}/{cell.describe()}",
            group=cell.study,
            job_type=cell.strategy,
            config={
                **cell.config,
                "bench": {"cell_id": cell.id, "profile": cell.profile, "labels": cell.labels},
            },
            tags=[cell.profile, cell.kind],
            mode=self.mode,
            resume="allow",
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        if self.run is not None:
            self._guard("log", lambda: self.run.log({**_finite(record), "epoch": epoch}, step=epoch))

    def finish(self, result: dict[str, Any]) -> None:
        if self.run is None:
            return

        def done() -> None:
            self.run.summary.update(summary_metrics(result))
            self.run.finish()
            self.run = None

        self._guard("finish", done)

    def fail(self, reason: str) -> None:
        if self.run is None:
            return

        def failed() -> None:
            self.run.summary.update({"failure": reason})
            self.run.finish(exit_code=1)
            self.run = None

        self._guard("fail", failed)
