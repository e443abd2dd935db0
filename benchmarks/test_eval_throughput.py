"""Evaluation throughput of MixSTE through the test protocol's Predictor: clips/s, FLOP/s, fraction of peak.

The model runs in eval mode without gradients on whole sequences cut into T-frame chunks, ``batch`` clips
per forward pass, without flip averaging (which only doubles the passes).
"""

from __future__ import annotations

import pytest
from conftest import measure, record
from workloads import (
    CASES,
    evaluation_sequence,
    experiment_config,
    forward_flops,
    make_model,
    make_predictor,
)

BATCHES = 2  # forward passes per timed call


@pytest.mark.parametrize("attention", ["fused", "math"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_evaluate(benchmark, device, case, precision, attention):
    config = experiment_config(case, precision, attention, "baseline", False, device)
    model = make_model(config).eval()
    predictor = make_predictor(config, model)
    keypoints = evaluation_sequence(case, BATCHES)
    seconds = measure(benchmark, lambda: predictor.predict(keypoints), device)
    clips = case.batch * BATCHES
    record(
        benchmark,
        "evaluate",
        seconds,
        clips,
        "clips_per_s",
        case=case.name,
        precision=precision,
        attention=attention,
        strategy="baseline",
        compile=False,
        device=device,
        flops=forward_flops(model, clips),
    )
