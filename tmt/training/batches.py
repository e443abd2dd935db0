"""The batches of an epoch: their order, their size and this process's share of each.

The order of epoch ``e`` comes from a generator seeded with ``(seed, e)``, so it does not depend on where a
run was resumed; every process computes the same order and takes its share of each global batch
(:mod:`tmt.training.distributed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tmt.data.windows import Batch, WindowBank
from tmt.training.config import ExperimentConfig
from tmt.training.distributed import SINGLE, Processes


def batch_clips(config: ExperimentConfig) -> int:
    """Clips per batch: ``optim.batch_clips``, or as many clips as ``optim.batch_frames`` holds."""
    opt = config.optim
    if opt.batch_clips is not None:
        return opt.batch_clips
    return max(1, opt.batch_frames // config.model.frames)


def epoch_order(num_windows: int, flip: bool, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled window indices and flip flags of one epoch (every window seen plain and flipped with flip on)."""
    rng = np.random.default_rng([seed, epoch])
    index = np.arange(num_windows)
    flips = np.zeros(num_windows, dtype=bool)
    if flip:
        index = np.concatenate([index, index])
        flips = np.concatenate([flips, ~flips])
    order = rng.permutation(len(index))
    return index[order], flips[order]


DEFAULT_PREFETCH_CUDA = 2
"""Batches assembled ahead on a GPU (``train.prefetch`` unset): enough to cover a slow batch; on a CPU none,
where the background thread would compete with the step for the cores (:mod:`tmt.data.prefetch`)."""


def prefetch_depth(config: ExperimentConfig, device: torch.device) -> int:
    """Batches assembled ahead of the step: ``train.prefetch``, else the default of the device."""
    if config.train.prefetch is not None:
        return config.train.prefetch
    return DEFAULT_PREFETCH_CUDA if device.type == "cuda" else 0


@dataclass(frozen=True)
class EpochBatches:
    """The global batches of one epoch, each as this process trains on it."""

    bank: WindowBank
    index: np.ndarray
    flips: np.ndarray
    size: int
    processes: Processes = SINGLE
    pin: bool = False
    """Pin each batch's memory (for a fast copy to a GPU)."""

    @classmethod
    def of(
        cls,
        bank: WindowBank,
        config: ExperimentConfig,
        epoch: int,
        processes: Processes = SINGLE,
        pin: bool = False,
    ) -> EpochBatches:
        index, flips = epoch_order(len(bank), config.train.flip_augment, config.train.seed, epoch)
        return cls(bank, index, flips, batch_clips(config), processes, pin)

    def __len__(self) -> int:
        return math.ceil(len(self.index) / self.size)

    def part(self, number: int) -> tuple[Batch, float]:
        """This process's part of global batch ``number`` and its share of that batch."""
        chunk = np.arange(number * self.size, min((number + 1) * self.size, len(self.index)))
        mine = self.processes.share(chunk)
        share = len(mine) / len(chunk)
        if not len(mine):  # fewer windows than processes: join the gradient exchange with a zero share
            mine = chunk[:1]
        batch = self.bank.batch(self.index[mine], self.flips[mine])
        return (Batch(*(t.pin_memory() for t in batch)) if self.pin else batch), share
