"""W&B mirror of the store: one run per cell (group = study, job_type = strategy), never in charge.

The store decides whether a result exists; W&B only mirrors it. Every W&B call is guarded: a failure is logged
as a warning and tracking is switched off for that cell, so it can never fail or lose a cell. ``wandb`` is
imported only when tracking is on (it is slow to import).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cells import Cell
from bench.store import flatten
from tmt.errors import ConfigError
from tmt.skeleton import joint_names

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


def _init_run(**settings: Any) -> Any:
    """A W&B run with ``settings``, resumed when it exists (a resumed cell, a report written again), silent."""
    import wandb

    return wandb.init(
        **settings, resume="allow", reinit="create_new", settings=wandb.Settings(silent=True, console="off")
    )


def _finite(record: dict[str, Any]) -> dict[str, float]:
    """Numeric entries only (W&B rejects None; NaN is kept out of the charts)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = value
    return out


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The scalar results as a flat dict (``per_action/mpjpe/Directions`` style keys)."""
    out = {key: result[key] for key in ("num_parameters", "train_time_s", "epochs_run") if key in result}
    flatten("", result.get("metrics", {}), out, sep="/")
    flatten("convergence", result.get("convergence", {}), out, sep="/")
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass(frozen=True)
class Tracking:
    """What a cell's W&B run records besides its epochs (all plain data: it travels to pool workers).

    ``variant`` is the ``--set`` / ``--only`` suffix of the cells (``+train.precision=bf16``); ``log_every``
    logs the training losses every that many updates (0: per epoch only); ``log_model`` uploads the selected
    weights; ``trial`` names a search trial (``{"study": ..., "number": ...}``)."""

    mode: str = "disabled"
    variant: str = ""
    log_every: int = 0
    log_model: bool = False
    trial: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--wandb: unknown mode {self.mode!r}; allowed: {', '.join(MODES)}")
        if self.log_every < 0:
            raise ConfigError(
                f"--wandb-log-every: must be 0 (off) or a number of updates, got {self.log_every}"
            )


def selected_record(result: dict[str, Any]) -> dict[str, Any]:
    """The history record of the epoch whose weights were evaluated (``result["selection"]["epoch"]``)."""
    epoch = (result.get("selection") or {}).get("epoch")
    return next((dict(r) for r in result.get("history", []) if r.get("epoch") == epoch), {})


class Tracker:
    """Callback (``on_epoch_end``, ``on_batch_end``) plus ``finish`` / ``stop`` / ``fail``; all no-ops when
    disabled or after an error.

    A resumed cell's run first replays the stored epochs W&B lacks (``history``: the store's records), so its
    curve holds every epoch once even when the killed process never flushed its own. Every metric is plotted
    against ``epoch`` (the per-update losses against ``update``); the summary holds the selected epoch's
    values, not the last epoch's.
    """

    def __init__(
        self,
        cell: Cell,
        tracking: Tracking | str = "disabled",
        project: str | None = None,
        *,
        history: Sequence[dict[str, Any]] = (),
        model_file: Path | None = None,
    ):
        self.cell = cell
        self.tracking = tracking if isinstance(tracking, Tracking) else Tracking(mode=tracking)
        self.mode = self.tracking.mode
        self.project = project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT)
        self.model_file = model_file
        self.run: Any = None
        if self.mode != "disabled":
            self._guard("start", self._start)
            self._guard("replay", self._replay, history)

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        if self.run is None and what != "start":
            return
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
        cell, tracking = self.cell, self.tracking
        overrides = [part for part in tracking.variant.split("+") if part]
        tags = [cell.profile, cell.kind, f"study:{cell.study}", *(f"variant:{o}" for o in overrides)]
        bench = {"cell_id": cell.id, "profile": cell.profile, "labels": cell.labels, "study": cell.study}
        bench["variant"] = tracking.variant
        if tracking.trial is not None:
            tags.append(f"trial:{tracking.trial['study']}#{tracking.trial['number']}")
            bench["trial"] = dict(tracking.trial)
        self.run = _init_run(
            project=self.project,
            id=f"{cell.id}",
            name=f"{cell.study}{tracking.variant}/{cell.describe()}",
            group=f"{cell.study}{tracking.variant}",
            job_type=cell.config.train.strategy,
            config={**cell.config_dict, "bench": bench},
            tags=tags,
            mode=self.mode,
        )
        self.run.define_metric("epoch")
        self.run.define_metric("update")
        self.run.define_metric("train/*", step_metric="update")
        self.run.define_metric("*", step_metric="epoch")

    def _replay(self, history: Sequence[dict[str, Any]]) -> None:
        logged = int(self.run.summary.get("epoch") or 0)  # what a resumed W&B run already holds
        for record in history:
            if int(record.get("epoch", 0)) > logged:
                self.run.log({**_finite(record), "epoch": int(record["epoch"])})

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self._guard("log", lambda: self.run.log({**_finite(record), "epoch": epoch}))

    def on_batch_end(self, update: int, losses: dict[str, float]) -> None:
        every = self.tracking.log_every
        if self.run is None or not every or update % every:
            return
        names = {"zeros": "train/loss_step1", "features": "train/loss_step2"}
        values = {names.get(step, f"train/loss_{step}"): value for step, value in losses.items()}
        self._guard("log", lambda: self.run.log({**_finite(values), "update": update}))

    def finish(self, result: dict[str, Any]) -> None:
        def done() -> None:
            import wandb

            selected = selected_record(result)
            summary = {**_finite(selected), **summary_metrics(result)}
            summary["selected_epoch"] = selected.get("epoch")
            self.run.summary.update({k: v for k, v in summary.items() if v is not None})
            metrics = result.get("metrics", {})
            tables = {}
            if metrics.get("per_joint_mpjpe"):
                dataset = self.cell.config.data.dataset
                names = joint_names(dataset, len(metrics["per_joint_mpjpe"]))
                speed = metrics.get("per_joint_speed") or [None] * len(names)
                rows = [[n, e, v] for n, e, v in zip(names, metrics["per_joint_mpjpe"], speed, strict=True)]
                tables["per_joint"] = wandb.Table(
                    columns=["joint", "mpjpe_mm", "speed_mm_per_frame"], data=rows
                )
            per_action = metrics.get("per_action") or {}
            if per_action:
                actions = sorted({a for values in per_action.values() for a in values})
                columns = sorted(per_action)
                rows = [[a, *(per_action[m].get(a) for m in columns)] for a in actions]
                tables["per_action"] = wandb.Table(columns=["action", *columns], data=rows)
            if tables:
                self.run.log(tables)
            if self.tracking.log_model and self.model_file is not None and self.model_file.exists():
                artifact = wandb.Artifact(
                    f"model-{self.cell.id}", type="model", metadata={"cell": self.cell.id}
                )
                artifact.add_file(str(self.model_file))
                self.run.log_artifact(artifact)
            self.run.finish()
            self.run = None

        self._guard("finish", done)

    def stop(self, reason: str) -> None:
        """The cell was ended on purpose (a pruned trial): the run finishes cleanly, marked with why."""

        def stopped() -> None:
            self.run.summary.update({"stopped": reason, "state": "pruned"})
            self.run.tags = (*self.run.tags, "pruned")
            self.run.finish()
            self.run = None

        self._guard("stop", stopped)

    def fail(self, reason: str) -> None:
        def failed() -> None:
            self.run.summary.update({"failure": reason})
            self.run.finish(exit_code=1)
            self.run = None

        self._guard("fail", failed)


def log_report(
    study: str,
    profile: str,
    files: Sequence[Path],
    cells: list[dict[str, Any]],
    mode: str,
    project: str | None = None,
) -> bool:
    """Log a study's report to a study-level run (job type ``report``, group = the study): the files as one
    ``report`` artifact and a ``cells`` table whose ``cell_id`` column is each cell's own run id, so a cell
    shared by several studies is listed by every study it belongs to. False (and a warning) when W&B fails."""
    if mode == "disabled":
        return False
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"report-{study}.{profile}")
    try:
        import wandb

        run = _init_run(
            project=project or os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT),
            id=name,
            name=f"{study}.{profile} report",
            group=study,
            job_type="report",
            tags=["report", profile.split("+")[0], f"study:{study}"],
            mode=mode,
        )
        try:
            artifact = wandb.Artifact(name, type="report", metadata={"study": study, "profile": profile})
            for path in files:
                artifact.add_file(str(path), name=path.name)
            run.log_artifact(artifact)
            columns = sorted({key for cell in cells for key in cell})
            run.log(
                {"cells": wandb.Table(columns=columns, data=[[c.get(k) for k in columns] for c in cells])}
            )
        finally:
            run.finish()
    except Exception as err:  # the report is on disk; W&B only mirrors it
        log.warning("W&B report run for %s.%s failed (%s)", study, profile, err)
        return False
    return True
