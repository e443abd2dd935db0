"""Training strategies: which input each optimisation step sees, and how many updates a batch makes.

A strategy is data, not code: the extra channels appended to the 2D keypoints (``extra``) and, per batch, the
sequence of steps, each either ``"zeros"`` (the extra channels zeroed, paper step 1) or ``"features"`` (the extra
channels filled from the ground truth, paper step 2). Inference always uses zeros.

=========  =====  =====================  ==========================================
name       extra  steps per batch        paper
=========  =====  =====================  ==========================================
baseline   none   plain 2D (in_chans 2)   the backbone as published
tmt        v3     zeros, features         TMT (Sec. 3.1, Fig. 1), 5-D input
tmt1       v3     zeros                   TMT1: TMT without step 2 (Table 7)
tmt2       v3     features                TMT2: TMT without step 1 (Table 7)
tmt_v2     v2     zeros, features         2D velocity, 4-D input (Table 9)
tmt_a3     a3     zeros, features         3D acceleration, 5-D input (Table 9)
tmt_va3    va3    zeros, features         3D velocity + acceleration, 8-D (Table 9)
=========  =====  =====================  ==========================================

The equal-updates controls make a one-step strategy take TMT's two updates per batch, at the same learning
rate, on the same batches in the same order; they differ from TMT only in the input of the second update
(docs/deviations.md, "Equal updates"):

===========  =====  =====================  ========================================
baseline_x2  none   plain 2D, twice        the backbone with TMT's update count
tmt1_x2      v3     zeros, zeros           TMT1 with TMT's update count
tmt2_x2      v3     features, features     TMT2 with TMT's update count
===========  =====  =====================  ========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from tmt.errors import ConfigError
from tmt.features import EXTRA_CHANNELS, compose_input, extra_features, zeros_for

Step = Literal["zeros", "features"]


@dataclass(frozen=True)
class Strategy:
    name: str
    extra: str
    steps: tuple[Step, ...]

    @property
    def in_chans(self) -> int:
        return 2 + EXTRA_CHANNELS[self.extra]

    @property
    def updates_per_batch(self) -> int:
        return len(self.steps)

    def step_input(
        self,
        step: Step,
        keypoints_2d: torch.Tensor,
        pose_3d: torch.Tensor,
        scale: torch.Tensor | float = 1.0,
    ) -> torch.Tensor:
        """The model input for one optimisation step; ``pose_3d`` is the target the loss sees (for V3 / A3).

        ``scale`` multiplies the extra channels of step 2 (a number, or one factor per channel); 1 is the paper.
        """
        if self.extra == "none":
            return keypoints_2d
        if step == "zeros":
            return compose_input(keypoints_2d, zeros_for(self.extra, keypoints_2d))
        return compose_input(keypoints_2d, extra_features(self.extra, keypoints_2d, pose_3d) * scale)

    def inference_input(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        """What the model sees at test time: the 2D keypoints and zeros in every extra channel."""
        if self.extra == "none":
            return keypoints_2d
        return compose_input(keypoints_2d, zeros_for(self.extra, keypoints_2d))


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("baseline", "none", ("zeros",)),
        Strategy("tmt", "v3", ("zeros", "features")),
        Strategy("tmt1", "v3", ("zeros",)),
        Strategy("tmt2", "v3", ("features",)),
        Strategy("tmt_v2", "v2", ("zeros", "features")),
        Strategy("tmt_a3", "a3", ("zeros", "features")),
        Strategy("tmt_va3", "va3", ("zeros", "features")),
        Strategy("baseline_x2", "none", ("zeros", "zeros")),
        Strategy("tmt1_x2", "v3", ("zeros", "zeros")),
        Strategy("tmt2_x2", "v3", ("features", "features")),
    )
}


def register_strategy(strategy: Strategy, *, overwrite: bool = False) -> Strategy:
    """Make ``train.strategy: <strategy.name>`` train with ``strategy``: a user's order of steps or choice of
    extra channels (docs/extending.md). Its parts are checked here, so a bad one fails at import."""
    if strategy.extra not in EXTRA_CHANNELS:
        raise ConfigError(
            f"strategy {strategy.name}: extra {strategy.extra!r}; allowed: {sorted(EXTRA_CHANNELS)}"
        )
    if not strategy.steps or any(step not in ("zeros", "features") for step in strategy.steps):
        raise ConfigError(
            f"strategy {strategy.name}: steps {strategy.steps!r}; each is 'zeros' or 'features'"
        )
    if strategy.extra == "none" and "features" in strategy.steps:
        raise ConfigError(
            f"strategy {strategy.name}: a 'features' step needs extra channels (extra is 'none')"
        )
    if strategy.name in STRATEGIES and not overwrite:
        raise ConfigError(
            f"strategy {strategy.name!r} is already registered (pass overwrite=True to replace it)"
        )
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"train.strategy: unknown strategy {name!r}; allowed: {sorted(STRATEGIES)}"
        ) from None
