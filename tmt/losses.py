"""Training losses on pose windows (B, T, J, 3): the MixSTE loss terms and a builder for weighted sums.

TMT keeps the loss of the backbone it is applied to (paper Sec. 4.6); for MixSTE that is
WMPJPE + 0.5 TC + 2.0 MPJVE (``DEFAULT_LOSS``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import torch

from tmt.errors import ConfigError
from tmt.skeleton import H36M_JOINT_WEIGHTS

LOSS_TERMS: tuple[str, ...] = ("mpjpe", "wmpjpe", "tc", "mpjve")

DEFAULT_LOSS: dict[str, float] = {"wmpjpe": 1.0, "tc": 0.5, "mpjve": 2.0}
"""MixSTE's loss as its reference training code sets it. The MixSTE paper text gives 1.0 (not 2.0) for the
MPJVE term; the code's value is the default here, written down so that runs can override it."""


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.shape != target.shape:
        raise ConfigError(
            f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape "
            "(a centre-frame model's target must be sliced to the centre frame)"
        )


def _joint_weights(weights: Sequence[float] | torch.Tensor, pred: torch.Tensor, name: str) -> torch.Tensor:
    w = torch.as_tensor(weights, dtype=pred.dtype, device=pred.device)
    if w.shape != (pred.shape[-2],):
        raise ConfigError(f"{name}: {tuple(w.shape)} joint weights for {pred.shape[-2]} joints")
    return w


def _zero(pred: torch.Tensor) -> torch.Tensor:
    """A zero that stays attached to the graph, so backward works even on a loss made only of this term."""
    return pred.sum() * 0.0


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint error."""
    _check_same_shape(pred, target, "mpjpe_loss")
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def weighted_mpjpe_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Mean over batch, frames and joints of ``w_j * ||P_hat - P||``."""
    _check_same_shape(pred, target, "weighted_mpjpe_loss")
    w = _joint_weights(weights, pred, "weighted_mpjpe_loss")
    return (w * torch.linalg.vector_norm(pred - target, dim=-1)).mean()


def tc_loss(pred: torch.Tensor, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Temporal consistency: mean over b, t, j, c of ``w_j * (P_hat[t+1] - P_hat[t])^2`` (prediction only)."""
    w = _joint_weights(weights, pred, "tc_loss")
    if pred.shape[-3] < 2:
        return _zero(pred)
    return (w[:, None] * torch.diff(pred, dim=-3).square()).mean()


def mpjve_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error of the frame-to-frame velocities; zero for single-frame windows."""
    _check_same_shape(pred, target, "mpjve_loss")
    if pred.shape[-3] < 2:
        return _zero(pred)
    return torch.linalg.vector_norm(torch.diff(pred, dim=-3) - torch.diff(target, dim=-3), dim=-1).mean()


class LossFunction:
    """A weighted sum of loss terms. Calling it returns the total and every term's unweighted value.

    Terms with coefficient 0 are computed without gradient and reported only (for logging).
    """

    def __init__(
        self, spec: Mapping[str, float], joint_weights: Sequence[float] = H36M_JOINT_WEIGHTS
    ) -> None:
        self.spec = dict(spec)
        self.joint_weights = tuple(float(w) for w in joint_weights)
        self._terms: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
            "mpjpe": mpjpe_loss,
            "wmpjpe": lambda p, t: weighted_mpjpe_loss(p, t, self.joint_weights),
            "tc": lambda p, t: tc_loss(p, self.joint_weights),
            "mpjve": mpjve_loss,
        }

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        total = _zero(pred)
        values: dict[str, float] = {}
        for name, coefficient in self.spec.items():
            if coefficient == 0:
                with torch.no_grad():
                    values[name] = float(self._terms[name](pred, target))
                continue
            term = self._terms[name](pred, target)
            total = total + coefficient * term
            values[name] = float(term.detach())
        return total, values

    def total(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted sum alone: the same total as calling the loss, without reading any term back to the
        host, so that a training step synchronises once (on the total) and torch.compile traces it whole."""
        total = _zero(pred)
        for name, coefficient in self.spec.items():
            if coefficient != 0:
                total = total + coefficient * self._terms[name](pred, target)
        return total

    def __repr__(self) -> str:
        return f"LossFunction({self.spec})"


def build_loss(
    spec: Mapping[str, float], joint_weights: Sequence[float] = H36M_JOINT_WEIGHTS
) -> LossFunction:
    """Check a loss spec (term name -> coefficient) and build it; ``joint_weights`` are in skeleton order."""
    allowed = ", ".join(LOSS_TERMS)
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"loss: expected a mapping of term names ({allowed}) to coefficients, got {spec!r}")
    for name, coefficient in spec.items():
        if name not in LOSS_TERMS:
            raise ConfigError(f"loss: unknown term {name!r}; allowed terms are {allowed}")
        if (
            isinstance(coefficient, bool)
            or not isinstance(coefficient, numbers.Real)
            or not math.isfinite(coefficient)
            or coefficient < 0
        ):
            raise ConfigError(
                f"loss: term {name!r} needs a finite, non-negative coefficient, got {coefficient!r} "
                f"(allowed terms are {allowed})"
            )
    if all(coefficient == 0 for coefficient in spec.values()):
        raise ConfigError(f"loss: every coefficient in {dict(spec)} is 0, nothing would be trained")
    return LossFunction(spec, joint_weights)
