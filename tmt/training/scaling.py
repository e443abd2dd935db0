"""The scale of TMT's extra channels in step 2 (``train.extra_scale``): a fixed factor, or each channel
standardised over the training windows, since raw velocities are far smaller than the normalised 2D input
(docs/deviations.md)."""

from __future__ import annotations

import numpy as np
import torch

from tmt.data.windows import WindowBank
from tmt.features import extra_features
from tmt.training.config import ExperimentConfig
from tmt.training.strategies import Strategy

CHUNK = 256
"""Windows per batch while the channels' spread is summed."""


def extra_channel_scale(
    strategy: Strategy, bank: WindowBank, config: ExperimentConfig, device: torch.device
) -> torch.Tensor | float:
    """The factor of ``train.extra_scale`` for the extra channels: the number itself, or with 'standardize'
    one factor per channel, 1 / (standard deviation of that channel's features over every training window)."""
    scale = config.train.extra_scale
    if scale != "standardize" or strategy.extra == "none":
        return float(scale) if scale != "standardize" else 1.0
    sums = sq = None
    count = 0
    for start in range(0, len(bank), CHUNK):
        index = np.arange(start, min(start + CHUNK, len(bank)))
        batch = bank.batch(index, np.zeros(len(index), dtype=bool))
        source = batch.pose_3d
        if config.train.velocity == "absolute":
            source = source + batch.root_3d[:, :, None, :]
        feats = extra_features(strategy.extra, batch.keypoints_2d, source).double().flatten(0, -2)
        sums = feats.sum(0) if sums is None else sums + feats.sum(0)
        sq = (feats**2).sum(0) if sq is None else sq + (feats**2).sum(0)
        count += feats.shape[0]
    if sums is None or sq is None:
        return 1.0
    std = (sq / count - (sums / count) ** 2).clamp_min(0).sqrt()
    return (1.0 / std.clamp_min(1e-8)).float().to(device)
