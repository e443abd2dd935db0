"""The data path of a training step: windows/s of batch assembly (gather, flip, features, transfer).

Timed per batch exactly as ``Trainer.train_batch`` consumes it: ``WindowBank.batch`` with half the windows
flipped, the transfer to the device, and every step input of the strategy (for TMT: zeros, then the
ground-truth 3D velocity). The summary sets it against the bf16 training step of the same size.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import measure, record
from workloads import CASES, window_bank

from tmt.training.strategies import get_strategy

BANK_CLIPS = 4096


def assemble(bank, strategy, indices, flips, device):
    batch = bank.batch(indices, flips)
    kp2d = batch.keypoints_2d.to(device)
    target = batch.pose_3d.to(device)
    return [strategy.step_input(step, kp2d, target) for step in strategy.steps]


@pytest.mark.parametrize("strategy", ["baseline", "tmt"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_batch_assembly(benchmark, device, case, strategy):
    bank = window_bank(case, clips=BANK_CLIPS)
    plan = get_strategy(strategy)
    rng = np.random.default_rng(0)
    indices = rng.permutation(len(bank))[: case.batch]
    flips = rng.random(case.batch) < 0.5
    seconds = measure(benchmark, lambda: assemble(bank, plan, indices, flips, device), device)
    record(
        benchmark,
        "data",
        seconds,
        case.batch,
        "windows_per_s",
        case=case.name,
        strategy=strategy,
        device=device,
        precision="fp32",
        attention="-",
        compile=False,
    )
