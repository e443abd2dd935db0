"""The data path at real size: the full synthetic set (about Human3.6M's 1.5 M training frames) loaded,
windowed and batched as the paper profiles' cells use it.

- ``test_full_size_load``: ``load_dataset`` and ``training_windows`` of a paper-size cell, in a fresh process
  (seconds and peak resident memory after each step), for MixSTE (seq2seq, T 243) and PoseFormer (seq2frame,
  T 81, a window on every frame: the largest bank).
- ``test_full_size_batches``: windows/s of the paper's batches drawn from that bank (MixSTE: 1024 frames =
  4 clips of 243; PoseFormer: 1024 clips of 81), half of them flipped, pinned on CUDA.
- ``test_prefetch_hides_the_data_path``: the wait for data per training step when the step leaves the host
  idle, as a GPU step does (a sleep of one batch's assembly time stands in for it), with batches assembled
  on demand and two ahead in the background (``train.prefetch``).

The set is generated into ``data/synthetic-full`` on first use (about 2 minutes; kept for later runs).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
import torch
from conftest import measure, record
from workloads import ROOT, in_fresh_process, status_bytes

from tmt.data.prefetch import prefetched
from tmt.data.synth_folder import ensure_synthetic
from tmt.training.batches import epoch_order
from tmt.training.config import ExperimentConfig
from tmt.training.experiment import load_dataset, training_windows

FULL_SET = ROOT / "data" / "synthetic-full"
PAPER_CELLS = {
    # backbone: (T, window layout, clips per batch as the reference code batches them)
    "mixste": (243, "seq2seq", 1024 // 243),
    "poseformer": (81, "seq2frame", 1024),
}


def paper_config(backbone: str) -> ExperimentConfig:
    frames, _, batch = PAPER_CELLS[backbone]
    return ExperimentConfig.model_validate(
        {
            "data": {"root": str(FULL_SET), "synthetic": "full", "validation_fraction": 0.0},
            "model": {"backbone": backbone, "frames": frames},
            "optim": {"batch_clips": batch},
        }
    ).resolved()


@pytest.fixture(scope="module")
def full_set() -> None:
    ensure_synthetic(FULL_SET, "full", seed=0, log=print)


@pytest.fixture(scope="module", params=sorted(PAPER_CELLS))
def bank(request, full_set):
    config = paper_config(request.param)
    dataset = load_dataset(config)
    mode = PAPER_CELLS[request.param][1]
    return request.param, training_windows(config, dataset.train, dataset.skeleton, mode)


@pytest.mark.parametrize("backbone", sorted(PAPER_CELLS))
def test_full_size_load(benchmark, full_set, backbone):
    result = {}

    def probe() -> None:
        result.update(in_fresh_process(__file__, backbone))

    benchmark.pedantic(probe, rounds=1, iterations=1)
    record(
        benchmark,
        "data_full",
        result["load_s"] + result["windows_s"],
        result["windows"],
        "windows_per_s",
        case=backbone,
        step="load + windows",
        **result,
    )


def test_full_size_batches(benchmark, bank, device):
    backbone, windows = bank
    size = PAPER_CELLS[backbone][2]
    index, flips = epoch_order(len(windows), True, 0, 0)
    pin = torch.device(device).type == "cuda"
    state = {"next": 0}

    def one_batch() -> None:
        start = state["next"] % (len(index) - size)
        state["next"] += size
        batch = windows.batch(index[start : start + size], flips[start : start + size])
        for tensor in batch:
            (tensor.pin_memory() if pin else tensor).to(device, non_blocking=True)

    seconds = measure(benchmark, one_batch, device)
    record(benchmark, "data_full", seconds, size, "windows_per_s", case=backbone, step="batch", batch=size)


def test_prefetch_hides_the_data_path(benchmark, bank):
    """Per step: assemble a batch (this thread or the background one), then a stand-in for a GPU step that
    frees the host for as long as one assembly takes. The wait per step is the time beyond the step's own."""
    backbone, windows = bank
    size = PAPER_CELLS[backbone][2]
    index, flips = epoch_order(len(windows), True, 0, 0)
    steps = 40

    def make(number: int):
        start = number * size
        return windows.batch(index[start : start + size], flips[start : start + size])

    step_s = _seconds(lambda: make(0))
    waits = {}

    def run() -> None:
        for ahead in (0, 2):
            start = time.perf_counter()
            for _batch in prefetched(make, steps, ahead):
                time.sleep(step_s)
            waits[ahead] = (time.perf_counter() - start) / steps - step_s

    benchmark.pedantic(run, rounds=1, iterations=1)
    record(
        benchmark,
        "data_full",
        step_s,
        size,
        "windows_per_s",
        case=backbone,
        step="prefetch",
        step_s=step_s,
        wait_s_on_demand=waits[0],
        wait_s_prefetched=waits[2],
    )


def _seconds(fn) -> float:
    """Median of five calls after one warm-up."""
    fn()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _probe(backbone: str) -> dict:
    """The child side of :func:`test_full_size_load`: seconds and peak resident memory after each step."""
    config = paper_config(backbone)
    start = time.perf_counter()
    dataset = load_dataset(config)
    loaded = time.perf_counter()
    load_peak = status_bytes("VmHWM")
    bank = training_windows(config, dataset.train, dataset.skeleton, PAPER_CELLS[backbone][1])
    bank.batch(np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool))  # the mirrored copies, made on first use
    done = time.perf_counter()
    return {
        "load_s": loaded - start,
        "windows_s": done - loaded,
        "train_frames": bank.num_frames,
        "windows": len(bank),
        "load_peak_bytes": load_peak,
        "peak_memory": status_bytes("VmHWM"),
        "bank_bytes": sum(  # frames, windows and the mirrored copies
            a.nbytes
            for a in (bank.keypoints_2d, bank.pose_3d, bank.root_3d, bank.window_seq, bank.window_start)
        )
        + sum(a.nbytes for a in bank._flipped()),
    }


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1])))
