"""What a training run has done so far: the one object that the loop updates, a checkpoint saves and the
stopping rule and the progress line read."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class TrainState:
    """Everything a checkpoint holds besides the weights."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    best_test: float = math.inf
    best_val_epoch: int = 0
    best_test_epoch: int = 0
    best_val_state: dict[str, torch.Tensor] | None = None
    best_test_state: dict[str, torch.Tensor] | None = None
    wall_time_s: float = 0.0
    updates: int = 0
    stop_reason: str | None = None
    """None while training may go on; else one of :data:`tmt.training.stopping.STOP_REASONS`."""
    converged_epoch: int | None = None
    """With ``stop_reason == "plateau"``: the epoch whose best validation MPJPE was not beaten afterwards."""
    seconds_per_update: float | None = None
    """Fewest CPU seconds per update over ``train.time_updates`` timed batches (:mod:`tmt.training.timing`)."""

    def keep_best(self, model: nn.Module, val: float, test: float | None) -> None:
        """After an epoch: a CPU copy of the weights where its validation (or test) MPJPE is the best yet."""
        if val < self.best_val:
            self.best_val, self.best_val_epoch = val, self.epoch
            self.best_val_state = _cpu_copy(model)
        if test is not None and test < self.best_test:
            self.best_test, self.best_test_epoch = test, self.epoch
            self.best_test_state = _cpu_copy(model)


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in copy.copy(model.state_dict()).items()}
