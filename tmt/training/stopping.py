"""When training ends: at the validation plateau (converged) or at the first cap reached."""

from __future__ import annotations

from tmt.training.config import ExperimentConfig
from tmt.training.convergence import plateau_epoch
from tmt.training.state import TrainState

STOP_REASONS = ("plateau", "epochs", "updates", "wall_time")
"""Why training ended: the validation MPJPE plateaued (converged), or a cap was reached first."""


def stopping_rule(config: ExperimentConfig, state: TrainState) -> tuple[str | None, int | None]:
    """(why training ends now, the converged epoch) after an epoch; (None, None) to go on.

    The plateau rule (``optim.stop_at_plateau``) is :func:`tmt.training.convergence.plateau_epoch` on the
    validation history; the caps are the epochs, the updates and the wall time, in that order.
    """
    opt = config.optim
    if opt.stop_at_plateau:
        val = [h["val_mpjpe"] for h in state.history]
        plateau = plateau_epoch(val, config.eval.plateau_patience, config.eval.plateau_min_delta)
        if plateau is not None:
            return "plateau", plateau
    if state.epoch >= opt.epochs:
        return "epochs", None
    if opt.max_updates is not None and state.updates >= opt.max_updates:
        return "updates", None
    if opt.max_wall_s is not None and state.wall_time_s >= opt.max_wall_s:
        return "wall_time", None
    return None, None
