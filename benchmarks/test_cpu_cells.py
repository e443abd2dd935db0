"""The cpu profiles' cells at their own sizes: a training step (the baseline's one update, TMT's two) and
one epoch's validation, eager and compiled, on the synthetic small set the cells train on.

These are the numbers that decide what a study costs on the development machine (docs/performance.md):
run them with one thread, as the cells run, ``--bench-threads 1``. The configurations come from the study
files themselves (``bench.study.expand_file``), so a change of a profile changes what is timed.
"""

from __future__ import annotations

import functools

import pytest
import torch
from conftest import measure, record
from workloads import forward_flops

from bench.study import expand_file
from tmt.training.batches import batch_clips, epoch_order
from tmt.training.evaluate import evaluate_mpjpe
from tmt.training.experiment import prepare
from tmt.training.trainer import Trainer

CELLS = {
    # name: (study, profile, labels the cell must have)
    "table7-mixste": ("studies/table7.yaml", "cpu", {"model.depth": 4}),
    "table1-mhformer": ("studies/table1.yaml", "cpu", {"model.backbone": "mhformer"}),
    "table6-d12-l4-T9": ("studies/table6.yaml", "cpu", {"model.depth": 10, "model.dim": 64}),
    "table6-d36-l3-T9": ("studies/table6.yaml", "cpu", {"model.dim": 600}),
    "table6-d32-l3-T30": ("studies/table6.yaml", "cpu", {"model.frames": 256}),
}
TRAIN = [
    ("table7-mixste", "baseline"),
    ("table7-mixste", "tmt"),
    ("table1-mhformer", "baseline"),
    ("table1-mhformer", "tmt"),
    ("table6-d12-l4-T9", "tmt"),
    ("table6-d36-l3-T9", "tmt"),
    ("table6-d32-l3-T30", "tmt"),
]
VALIDATE = ["table7-mixste", "table1-mhformer"]


@functools.cache
def cell_config(name: str, strategy: str, compiled: bool):
    """The first seed's resolved configuration of the named cell, with ``strategy`` and ``train.compile``."""
    study, profile, labels = CELLS[name]
    cells = [c for c in expand_file(study, profile).cells if c.seed == 0]
    cell = next(c for c in cells if all(c.labels.get(k) == v for k, v in labels.items()))
    config = cell.config
    train = config.train.model_copy(update={"strategy": strategy, "compile": compiled, "time_updates": 0})
    return config.model_copy(update={"train": train})


def _case(name: str, strategy: str, compiled: bool):
    torch.manual_seed(0)
    experiment = prepare(cell_config(name, strategy, compiled))
    torch.set_num_threads(torch.get_num_threads())  # prepare() applied train.threads; --bench-threads wins
    return experiment


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize(("name", "strategy"), TRAIN, ids=[f"{n}-{s}" for n, s in TRAIN])
def test_cell_train_step(benchmark, device, name, strategy, compiled, pytestconfig):
    threads = pytestconfig.getoption("--bench-threads") or torch.get_num_threads()
    experiment = _case(name, strategy, compiled)
    torch.set_num_threads(threads)
    config = experiment.config
    trainer = Trainer(
        experiment.model,
        experiment.strategy,
        experiment.bank,
        config,
        validate=lambda _m: 0.0,
        progress=False,
    )
    size = batch_clips(config)
    index, flips = epoch_order(len(experiment.bank), config.train.flip_augment, config.train.seed, 0)
    batch = experiment.bank.batch(index[:size], flips[:size])
    seconds = measure(benchmark, lambda: trainer.train_batch(batch), device)
    flops = 3 * forward_flops(experiment.model, size) * experiment.strategy.updates_per_batch
    record(
        benchmark,
        "train",
        seconds,
        size,
        "clips_per_s",
        case=name,
        precision=config.train.precision,
        attention=config.model.attention,
        strategy=strategy,
        compile=compiled,
        device=device,
        flops=flops,
        seconds_per_update=seconds / experiment.strategy.updates_per_batch,
    )


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", VALIDATE)
def test_cell_validation_epoch(benchmark, device, name, compiled, pytestconfig):
    threads = pytestconfig.getoption("--bench-threads") or torch.get_num_threads()
    experiment = _case(name, "tmt", compiled)
    torch.set_num_threads(threads)
    predictor = experiment.predictor()
    sequences = experiment.validation
    seconds = measure(benchmark, lambda: evaluate_mpjpe(predictor, sequences), device)
    frames = sum(len(s.keypoints_2d) for s in sequences)
    record(
        benchmark,
        "validate",
        seconds,
        frames,
        "frames_per_s",
        case=name,
        precision=experiment.config.train.precision,
        attention=experiment.config.model.attention,
        strategy="tmt",
        compile=compiled,
        device=device,
        sequences=len(sequences),
    )
