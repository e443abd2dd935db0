"""Time to convergence (paper Table 5), computed from the per-epoch validation history.

Two rules, both reported:
- target: the first epoch whose validation MPJPE is at or below ``target_mpjpe`` (mm);
- plateau: the first epoch e after which the best validation MPJPE does not improve by more than
  ``min_delta`` mm within the next ``patience`` epochs. If the run ends before that can be decided, it is None.
Times are the cumulative wall time (training + validation) at that epoch.

Beside these post-hoc numbers, the record says how the run itself ended (``stop_reason``): at the plateau
(``optim.stop_at_plateau``, the run converged) or at a cap (epochs, updates, wall time), which is not
convergence.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def plateau_epoch(val: list[float], patience: int, min_delta: float) -> int | None:
    """1-based epoch at which the running best stops improving by more than ``min_delta`` for ``patience``."""
    best = np.minimum.accumulate(np.asarray(val, dtype=np.float64))
    for e in range(len(best) - patience):
        if best[e + patience] > best[e] - min_delta:
            return e + 1
    return None


def convergence_summary(
    history: list[dict[str, Any]],
    target_mpjpe: float | None,
    patience: int,
    min_delta: float,
    stop_reason: str | None = None,
    converged_epoch: int | None = None,
) -> dict[str, Any]:
    """Time to the target and to the plateau, and how the run ended (converged, or stopped at which cap)."""
    val = [h["val_mpjpe"] for h in history]
    wall = [h["wall_time_s"] for h in history]
    to_target = None
    if target_mpjpe is not None:
        to_target = next((i + 1 for i, v in enumerate(val) if v <= target_mpjpe), None)
    plateau = plateau_epoch(val, patience, min_delta) if val else None
    last = history[-1] if history else {}
    at = history[converged_epoch - 1] if converged_epoch else {}
    return {
        "stop_reason": stop_reason,
        "converged": stop_reason == "plateau",
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
        "rule": f"target: first epoch with val MPJPE <= target; plateau: best val MPJPE improves by <= "
        f"{min_delta} mm over the next {patience} epochs",
    }
