"""Stub models for the tests: their right answer follows from their definition."""

from __future__ import annotations

import torch
from torch import nn


class RootPredictor(nn.Module):
    """Predicts every joint at the root: a joint's error is its ground-truth distance from the root."""

    eval_protocol = "seq2seq"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:3], 3)


class CentreRootPredictor(nn.Module):
    """A seq2frame model (as PoseFormer) that predicts every joint of the centre frame at the root; its one
    parameter only gives an optimizer something to hold."""

    eval_protocol = "seq2frame"

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1, x.shape[2], 3) + 0 * self.anchor
