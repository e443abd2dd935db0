"""The one catalogue of the metrics a result records: each one's name, unit and words, and whether a study's
layouts and claims may name it (``column``: a number per cell, ``list``: per joint; ``per_action``: also
``per_action.<name>``, one column per Human3.6M action). The schema, the report's units and figure labels
and the search report all read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PER_ACTION = "per_action."
"""Prefix of the columns that spread one metric per Human3.6M action (plus the average)."""


@dataclass(frozen=True)
class Metric:
    name: str
    """The key in a result; a dotted name is a key in a section (``convergence.epochs_to_plateau``)."""
    unit: str = ""
    words: str = ""
    """The metric in words ("" : its name)."""
    study: Literal["column", "list", "per_action", None] = "column"
    """How a study may name it (None: not at all; it is the history's or a search's)."""

    @property
    def key(self) -> str:
        """The last part of the name: what a dotted column (``per_action.mpjpe.Walking``) is matched by."""
        return self.name.rpartition(".")[2]


METRICS = (
    Metric("mpjpe", "mm", "MPJPE", "per_action"),
    Metric("p_mpjpe", "mm", "P-MPJPE", "per_action"),
    Metric("n_mpjpe", "mm", "N-MPJPE"),
    Metric("mpjve", "mm", "MPJVE", "per_action"),
    Metric("pck", "%", "PCK"),
    Metric("auc", "%", "AUC"),
    Metric("num_parameters", "parameters", "parameters"),
    Metric("paper_flops", "FLOPs", "FLOPs"),
    Metric("full_flops"),
    Metric("train_time_s"),
    Metric("epochs_run"),
    Metric("convergence.epochs_to_target"),
    Metric("convergence.time_to_target_s", "s", "training time to the target"),
    Metric("convergence.updates_to_target", "updates", "updates to the target"),
    Metric("convergence.core_time_to_target_s", "s", "idle-core time to the target"),
    Metric("convergence.epochs_to_plateau", "epochs", "epochs to the plateau"),
    Metric("convergence.time_to_plateau_s", "s", "training time to the plateau"),
    Metric("per_joint_mpjpe", "mm", "joint's MPJPE", "list"),
    Metric("per_joint_speed", "mm / frame", "joint's mean speed", "list"),
    Metric("val_mpjpe", "mm", "validation MPJPE", None),
    Metric("wmpjpe", "mm", study=None),
)
BY_KEY = {metric.key: metric for metric in METRICS}


def find_metric(column: str) -> Metric | None:
    """The metric a result column holds: the first part of its dotted name that is a metric's key."""
    return next((BY_KEY[part] for part in column.split(".") if part in BY_KEY), None)


def study_metrics() -> list[str]:
    """Every column a layout or claim may name, in the catalogue's order (numbers, per action, lists)."""
    names = [m.name for m in METRICS if m.study in ("column", "per_action")]
    names += [f"{PER_ACTION}{m.name}" for m in METRICS if m.study == "per_action"]
    return names + [m.name for m in METRICS if m.study == "list"]
