"""Time to convergence (paper Table 5), computed from the per-epoch validation history.

Two rules, both reported:
- target: the first epoch whose validation MPJPE is at or below ``target_mpjpe`` (mm), with the updates
  made by then;
- plateau: the first epoch e after which the best validation MPJPE does not improve by more than
  ``min_delta`` mm within the next ``patience`` epochs. If the run ends before that can be decided, it is None.
Times are the cumulative wall time (training + validation) at that epoch.

Beside these post-hoc numbers, the record says how the run itself ended (``stop_reason``) and whether it
converged, by one of two rules:
- plateau stop (``optim.stop_at_plateau``): the run stopped at the plateau; a cap (epochs, updates, wall time)
  reached first is not convergence;
- budget (``eval.tail_fraction``): the run trains its fixed budget of epochs, the same for every seed and
  arm, with the learning rate annealed towards zero, and converged when the best validation MPJPE of the
  last ``tail_fraction`` of its epochs improves on the best before them by at most ``tail_delta`` mm. The
  stop then does not move with validation noise, and the tail shows that the budget was long enough.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def plateau_epoch(val: list[float], patience: int, min_delta: float) -> int | None:
    """1-based epoch at which the running best stops improving by more than ``min_delta`` for ``patience``."""
    best = np.minimum.accumulate(np.asarray(val, dtype=np.float64))
    for e in range(len(best) - patience):
        if best[e + patience] > best[e] - min_delta:
            return e + 1
    return None


def tail_improvement(val: list[float], fraction: float) -> float | None:
    """mm by which the best validation MPJPE of the last ``fraction`` of the epochs (at least one) beats the
    best of the epochs before them (0 when it does not); None without an epoch before the tail."""
    tail = max(1, math.ceil(fraction * len(val)))
    if len(val) <= tail:
        return None
    return max(0.0, float(min(val[:-tail]) - min(val)))


def convergence_summary(
    history: list[dict[str, Any]],
    target_mpjpe: float | None,
    patience: int,
    min_delta: float,
    stop_reason: str | None = None,
    converged_epoch: int | None = None,
    tail_fraction: float | None = None,
    tail_delta: float = 1.0,
) -> dict[str, Any]:
    """Time to the target and to the plateau, how the run ended, and whether it converged (the plateau stop,
    or with ``tail_fraction`` the budget rule of the module docstring)."""
    val = [h["val_mpjpe"] for h in history]
    wall = [h["wall_time_s"] for h in history]
    to_target = None
    if target_mpjpe is not None:
        to_target = next((i + 1 for i, v in enumerate(val) if v <= target_mpjpe), None)
    plateau = plateau_epoch(val, patience, min_delta) if val else None
    last = history[-1] if history else {}
    budget = tail_fraction is not None
    tail = tail_improvement(val, tail_fraction) if budget and val else None
    converged = stop_reason == "plateau"
    if budget and stop_reason == "epochs":
        converged = tail is not None and tail <= tail_delta
        converged_epoch = last.get("epoch") if converged else None
    at = history[converged_epoch - 1] if converged_epoch else {}
    rule = (
        f"budget: the run trains its fixed epochs; converged when the best val MPJPE of the last "
        f"{tail_fraction:.0%} of them improves on the best before by <= {tail_delta} mm"
        if budget
        else f"plateau: best val MPJPE improves by <= {min_delta} mm over the next {patience} epochs"
    )
    out = {
        "stop_reason": stop_reason,
        "converged": converged,
        "converged_epoch": converged_epoch,
        "converged_updates": at.get("updates"),
        "converged_time_s": at.get("wall_time_s"),
        "stopped_epoch": last.get("epoch"),
        "stopped_updates": last.get("updates"),
        "stopped_time_s": last.get("wall_time_s"),
        "target_mpjpe": target_mpjpe,
        "epochs_to_target": to_target,
        "time_to_target_s": wall[to_target - 1] if to_target else None,
        "epochs_to_plateau": plateau,
        "time_to_plateau_s": wall[plateau - 1] if plateau else None,
        "rule": f"target: first epoch with val MPJPE <= target; {rule}",
    }
    if budget:
        out["tail_fraction"] = tail_fraction
        out["tail_improvement_mm"] = tail
    if target_mpjpe is not None:
        out["updates_to_target"] = history[to_target - 1].get("updates") if to_target else None
    return out
