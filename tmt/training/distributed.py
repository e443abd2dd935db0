"""Data-parallel training across processes (``torchrun``): which process this is, and the few collective
operations the trainer needs.

Every process reads the whole epoch's window order (the same seed gives the same order everywhere) and takes
its contiguous share of each global batch, so the global batch is the single-process batch. Each process
scales its loss by its share of the batch before the backward pass; DistributedDataParallel's gradient mean
over processes is then exactly the gradient of the mean loss over the global batch, whatever the shares. TMT's
two updates per batch run in lock step, one gradient exchange each. Validation, checkpoints, progress and
results come from rank 0, which broadcasts what every rank needs to agree on (the validation MPJPE that
decides the plateau). One process (no ``WORLD_SIZE`` in the environment) is the plain trainer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Processes:
    """This process's place among ``world_size`` data-parallel processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Processes:
        """The torchrun variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); one process without them."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, checkpoints, prints and writes results."""
        return self.rank == 0

    def start(self, device: str) -> None:
        """Join the process group (NCCL on GPUs, gloo on CPUs) unless alone or already joined."""
        if not self.parallel or dist.is_initialized():
            return
        on_gpu = torch.device(device).type == "cuda"
        if on_gpu:
            torch.cuda.set_device(self.local_rank)  # "cuda" then means this process's GPU
        dist.init_process_group("nccl" if on_gpu else "gloo")

    def data_parallel(self, model: nn.Module, device: torch.device) -> nn.Module | None:
        """``model`` wrapped to average its gradients over the processes; None for one process."""
        if not self.parallel:
            return None
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.local_rank] if device.type == "cuda" else None)

    def share(self, indices: np.ndarray) -> np.ndarray:
        """This process's contiguous share of one global batch of window indices (sizes differ by at most 1)."""
        if not self.parallel:
            return indices
        return np.array_split(indices, self.world_size)[self.rank]

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.parallel:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, values: dict[str, float]) -> dict[str, float]:
        """Every key summed over the processes (each passes its share-weighted values)."""
        if not self.parallel:
            return values
        keys = sorted(values)
        summed = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(summed)
        return dict(zip(keys, summed.tolist(), strict=True))

    def describe(self, device: str) -> dict[str, Any]:
        """What a result records about where it ran."""
        devices = [device]
        if self.parallel:
            devices = [None] * self.world_size
            dist.all_gather_object(devices, device)
        return {"world_size": self.world_size, "devices": devices}


SINGLE = Processes()
