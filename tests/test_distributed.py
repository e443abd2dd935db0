"""Data-parallel training (tmt.training.distributed) on CPU with gloo: two processes sharing each global batch
train exactly as one process with that batch, TMT's two updates per batch included, and resume mid-run."""

from __future__ import annotations

import gc
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tmt.training import ExperimentConfig, get_strategy
from tmt.training.batches import epoch_order
from tmt.training.distributed import Processes
from tmt.training.experiment import build_experiment_model, load_dataset, training_windows
from tmt.training.trainer import Trainer

# 48 windows, plain and flipped: 96 per epoch, 8 per global batch (4 per process), 2 updates per batch (TMT);
# no dropout, so one process and two see the same numbers. 13 clips per batch leaves a last batch of 5.
MODEL = {"backbone": "mixste", "frames": 9, "depth": 1, "dim": 16, "heads": 2, "drop_path": 0.0}


def config(root: Path, epochs: int, batch: int = 8) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "data": {"root": str(root), "max_train_windows": 48, "validation_fraction": 0.1},
            "model": MODEL,
            "optim": {"epochs": epochs, "batch_clips": batch, "lr": 1e-3},
            "train": {"strategy": "tmt", "threads": 1},
        }
    ).resolved()


class Losses:
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        pass

    def on_batch_end(self, update: int, losses: dict[str, float]) -> None:
        self.values += [losses["zeros"], losses["features"]]


def train(cfg: ExperimentConfig, processes: Processes, checkpoint: Path | None) -> tuple[Trainer, Losses]:
    torch.manual_seed(cfg.train.seed)
    dataset = load_dataset(cfg)
    model = build_experiment_model(cfg)
    bank = training_windows(cfg, dataset.train, dataset.skeleton, model.eval_protocol)
    losses = Losses()
    trainer = Trainer(
        model,
        get_strategy("tmt"),
        bank,
        cfg,
        validate=lambda _m: 50.0,
        checkpoint_path=checkpoint,
        callbacks=[losses],
        progress=False,
        processes=processes,
    )
    trainer.fit()
    return trainer, losses


def first_batch_gradients(cfg: ExperimentConfig, processes: Processes, size: int) -> dict[str, torch.Tensor]:
    """The gradient of one update on this process's share of the epoch's first global batch of ``size``."""
    torch.manual_seed(cfg.train.seed)
    dataset = load_dataset(cfg)
    model = build_experiment_model(cfg)
    bank = training_windows(cfg, dataset.train, dataset.skeleton, model.eval_protocol)
    trainer = Trainer(model, get_strategy("tmt1"), bank, cfg, validate=lambda _m: 0.0, processes=processes)
    index, flips = epoch_order(len(bank), True, cfg.train.seed, 0)
    chunk = np.arange(size)
    mine = processes.share(chunk)
    trainer.train_batch(bank.batch(index[mine], flips[mine]), share=len(mine) / size)
    return {name: param.grad.clone() for name, param in model.named_parameters()}


def worker(
    rank: int,
    world: int,
    port: int,
    cfg: ExperimentConfig,
    out: Path,
    checkpoint: Path | None,
    grads: int = 0,
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    processes = Processes.from_env()
    processes.start("cpu")
    try:
        if grads:
            torch.save(first_batch_gradients(cfg, processes, grads), out / f"grads{rank}.pt")
        else:
            trainer, losses = train(cfg, processes, checkpoint)
            torch.save(
                {
                    "losses": losses.values,
                    "weights": trainer.model.state_dict(),
                    "updates": trainer.state.updates,
                },
                out / f"rank{rank}.pt",
            )
            del trainer
    finally:
        leave_process_group()


def leave_process_group() -> None:
    """Wait for the other process, free the DistributedDataParallel wrapper (it holds the gloo group), then
    destroy the group: a process that exits with gloo's threads still running aborts ("terminate called
    without an active exception"), which the other process sees as a lost peer."""
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def run_two(cfg: ExperimentConfig, out: Path, checkpoint: Path | None = None) -> list[dict]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(worker, args=(2, port, cfg, out, checkpoint), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def assert_same_weights(a: dict, b: dict, exact: bool = False) -> None:
    """Float tolerance: the two runs sum the same losses in another order (last-bit differences), and Adam
    divides by the root of tiny second moments, which magnifies them to about 1e-4 after a few dozen updates
    of 1e-3 each (the losses above still agree to 1e-5). Processes of one run are bit-identical."""
    for key, value in a.items():
        tolerance = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-3, "atol": 1e-3}
        torch.testing.assert_close(b[key], value, **tolerance)


@pytest.mark.child_process
@pytest.mark.parametrize("batch", [8, 13])
def test_two_processes_train_as_one_with_the_same_global_batch(
    smoke_data: Path, tmp_path: Path, batch: int
) -> None:
    cfg = config(smoke_data, epochs=1, batch=batch)
    alone, losses = train(cfg, Processes(), None)
    ranks = run_two(cfg, tmp_path)
    # every update's loss is the global batch's mean loss, on both processes, as the single process saw it
    np.testing.assert_allclose(ranks[0]["losses"], losses.values, rtol=1e-5)
    assert ranks[1]["losses"] == []  # callbacks run on rank 0 only
    assert ranks[0]["updates"] == ranks[1]["updates"] == alone.state.updates == 2 * -(-96 // batch)
    assert_same_weights(alone.model.state_dict(), ranks[0]["weights"])
    assert_same_weights(ranks[0]["weights"], ranks[1]["weights"], exact=True)


@pytest.mark.child_process
def test_uneven_shares_give_the_gradient_of_the_global_batch(smoke_data: Path, tmp_path: Path) -> None:
    """13 windows on 2 processes (7 and 6): each scales its loss by its share, so the exchanged gradient is the
    single process's gradient of the mean over all 13 (an unweighted mean of the two would be off by ~4 %)."""
    cfg = config(smoke_data, epochs=1)
    alone = first_batch_gradients(cfg, Processes(), 13)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(worker, args=(2, port, cfg, tmp_path, None, 13), nprocs=2, join=True)
    for rank in (0, 1):
        shared = torch.load(tmp_path / f"grads{rank}.pt", weights_only=True)
        for name, grad in alone.items():
            torch.testing.assert_close(shared[name], grad, rtol=1e-5, atol=1e-7)


@pytest.mark.child_process
def test_a_data_parallel_run_resumes_mid_run(smoke_data: Path, tmp_path: Path) -> None:
    """One epoch on two processes, checkpointed by rank 0; both resume it for a second epoch and end where
    one process training two epochs straight ends."""
    straight, _ = train(config(smoke_data, epochs=2), Processes(), None)
    checkpoint = tmp_path / "checkpoint.pt"
    run_two(config(smoke_data, epochs=1), tmp_path, checkpoint)
    assert torch.load(checkpoint, weights_only=True)["state"]["epoch"] == 1
    ranks = run_two(config(smoke_data, epochs=2), tmp_path, checkpoint)
    assert ranks[0]["updates"] == straight.state.updates
    assert_same_weights(straight.model.state_dict(), ranks[0]["weights"])


def test_one_process_without_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = Processes.from_env()
    assert (alone.parallel, alone.main, alone.world_size) == (False, True, 1)
    assert alone.share(np.arange(5)).tolist() == [0, 1, 2, 3, 4] and alone.broadcast(3) == 3
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    third = Processes.from_env()
    assert third.share(np.arange(8)).tolist() == [6, 7]  # shares of 3, 3 and 2
    assert not third.main and third.parallel


@pytest.mark.child_process
def test_torchrun_trains_one_model_on_two_processes(smoke_data: Path, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2 -m tmt train``: one run, rank 0 writes the result, which records both
    processes and their devices."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "tmt", "train", "--data", str(smoke_data), "--backbone", "mixste", "--frames", "9"]
    command += ["--depth", "1", "--dim", "16", "--heads", "2", "--epochs", "1", "--max-train-windows", "48"]
    command += ["--threads", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["distributed"] == {"world_size": 2, "devices": ["cpu", "cpu"]}
    assert result["epochs_run"] == 1 and result["metrics"]["mpjpe"] > 0
    assert proc.stdout.count("selected epoch") == 1  # printed by rank 0 only
