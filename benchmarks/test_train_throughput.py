"""Training throughput of MixSTE: clips/s, achieved FLOP/s, fraction of the matmul peak, and the peak memory
of training steps (measured in a fresh process).

Variants per size: fp32 and bf16 autocast, fused and textbook attention (the baseline strategy: 2-D input, one
update per batch), TMT (5-D input, two updates per batch) with fused attention, and torch.compile at the
middle size.
"""

from __future__ import annotations

import pytest
from conftest import measure, record
from workloads import (
    CASES,
    experiment_config,
    make_trainer,
    train_flops,
    training_batch,
    training_memory,
    window_bank,
)

VARIANTS = [
    *[(p, a, "baseline", False) for p in ("fp32", "bf16") for a in ("fused", "math")],
    *[(p, "fused", "tmt", False) for p in ("fp32", "bf16")],
]


def _params():
    for case in CASES:
        for precision, attention, strategy, compiled in VARIANTS:
            yield pytest.param(
                case,
                precision,
                attention,
                strategy,
                compiled,
                id=f"{case.name}-{precision}-{attention}-{strategy}",
            )
        if case.dim == 128:
            for precision in ("fp32", "bf16"):
                yield pytest.param(
                    case,
                    precision,
                    "fused",
                    "baseline",
                    True,
                    id=f"{case.name}-{precision}-fused-baseline-compile",
                    marks=pytest.mark.compile,
                )


@pytest.mark.parametrize(("case", "precision", "attention", "strategy", "compiled"), list(_params()))
def test_train(benchmark, device, case, precision, attention, strategy, compiled):
    config = experiment_config(case, precision, attention, strategy, compiled, device)
    bank = window_bank(case)
    trainer = make_trainer(config, bank)
    batch = training_batch(bank, case.batch)
    seconds = measure(benchmark, lambda: trainer.train_batch(batch), device)
    memory = None if compiled else training_memory(case, precision, attention, strategy, device)
    record(
        benchmark,
        "train",
        seconds,
        case.batch,
        "clips_per_s",
        case=case.name,
        precision=precision,
        attention=attention,
        strategy=strategy,
        compile=compiled,
        device=device,
        flops=train_flops(trainer, case.batch),
        peak_memory=memory["peak_bytes"] if memory else None,
        step_memory=memory["step_bytes"] if memory else None,
    )
