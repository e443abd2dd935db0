"""The cost of an update (``train.time_updates``): CPU seconds of this process, not wall time, so a thread
waiting for a core shared with other work does not count and the figure is what an idle core pays."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from tmt.training.checkpoints import Training
from tmt.training.state import TrainState


@contextmanager
def restored(training: Training, state: TrainState) -> Iterator[None]:
    """Run the body, then put back the weights, optimizer, scaler, RNG state and update count, so training
    goes on exactly as without it."""
    saved = (
        copy.deepcopy(training.model.state_dict()),
        copy.deepcopy(training.optimizer.state_dict()),
        training.scaler.state_dict(),
        torch.get_rng_state(),
        state.updates,
    )
    try:
        yield
    finally:
        model, optimizer, scaler, rng, state.updates = saved
        training.model.load_state_dict(model)
        training.optimizer.load_state_dict(optimizer)
        training.scaler.load_state_dict(scaler)
        torch.set_rng_state(rng)


def fewest_cpu_seconds(work: Callable[[], object], calls: int, rounds: int) -> float:
    """Fewest CPU seconds per call of ``work`` over ``rounds`` rounds of ``calls`` calls, after one warm-up
    call (which also compiles a compiled step)."""
    work()
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            work()
        best = min(best, (time.process_time() - start) / calls)
    return best
