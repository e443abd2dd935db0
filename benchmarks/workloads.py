"""The workloads the benchmark suite times: MixSTE training and evaluation at three sizes, and the data path.

Everything runs through the real code paths (``tmt.training.trainer.Trainer.train_batch``, ``Predictor``,
``WindowBank.batch`` and the strategies' inputs), on random-walk sequences, so a benchmark measures what a
training run pays and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tmt.complexity import full_flops
from tmt.data.windows import Batch, WindowBank
from tmt.skeleton import H36M
from tmt.training.config import ExperimentConfig
from tmt.training.evaluate import Predictor
from tmt.training.experiment import build_experiment_model
from tmt.training.strategies import get_strategy
from tmt.training.trainer import Trainer


@dataclass(frozen=True)
class Case:
    """One MixSTE size and the batch (in clips) it is timed with."""

    dim: int
    depth: int
    frames: int
    batch: int

    @property
    def name(self) -> str:
        return f"d{self.dim}-l{self.depth}-T{self.frames}-b{self.batch}"


ROOT = Path(__file__).resolve().parents[1]
CASES = (Case(64, 4, 27, 64), Case(128, 8, 27, 32), Case(512, 8, 243, 1))
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Sequence:
    """The fields a WindowBank reads from a recording."""

    keypoints_2d: np.ndarray
    pose_3d: np.ndarray
    root_3d: np.ndarray


def random_walk_sequences(num: int, frames: int, seed: int = 0) -> list[Sequence]:
    """Smooth random poses (cumulative sums of small steps), root joint at zero like the real data."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        pose = np.cumsum(rng.normal(0, 0.01, (frames, H36M.num_joints, 3)), axis=0).astype(np.float32)
        pose -= pose[:, :1]
        kp = np.cumsum(rng.normal(0, 0.01, (frames, H36M.num_joints, 2)), axis=0).astype(np.float32)
        root = np.cumsum(rng.normal(0, 0.01, (frames, 3)), axis=0) + np.array([0.0, 0.0, 4.0])
        out.append(Sequence(kp, pose, root.astype(np.float32)))
    return out


def experiment_config(
    case: Case,
    precision: str = "fp32",
    attention: str = "fused",
    strategy: str = "baseline",
    compile: bool = False,
    device: str = "cpu",
) -> ExperimentConfig:
    """MixSTE at ``case`` with its reference recipe (AdamW, the default MixSTE loss, flip augmentation)."""
    return ExperimentConfig.model_validate(
        {
            "model": {
                "backbone": "mixste",
                "frames": case.frames,
                "dim": case.dim,
                "depth": case.depth,
                "attention": attention,
            },
            "optim": {"batch_clips": case.batch, "epochs": 1},
            "train": {"strategy": strategy, "precision": precision, "compile": compile, "device": device},
            "eval": {"batch_clips": case.batch, "flip_test": False},
        }
    ).resolved()


def window_bank(case: Case, clips: int | None = None, seed: int = 0) -> WindowBank:
    """A bank of at least ``clips`` (default: four batches of) non-overlapping training windows."""
    clips = clips or 4 * case.batch
    per_sequence = 8
    sequences = random_walk_sequences(-(-clips // per_sequence), per_sequence * case.frames, seed)
    return WindowBank.from_sequences(sequences, case.frames, "seq2seq", skeleton=H36M)


def training_batch(bank: WindowBank, size: int, seed: int = 0) -> Batch:
    """``size`` random windows, half of them flipped, as the training loop draws them."""
    rng = np.random.default_rng(seed)
    return bank.batch(rng.choice(len(bank), size, replace=len(bank) < size), rng.random(size) < 0.5)


def make_model(config: ExperimentConfig) -> torch.nn.Module:
    torch.manual_seed(config.train.seed)
    return build_experiment_model(config).to(config.train.device)


def make_trainer(config: ExperimentConfig, bank: WindowBank) -> Trainer:
    strategy = get_strategy(config.train.strategy)
    return Trainer(make_model(config), strategy, bank, config, validate=lambda _m: 0.0, progress=False)


def forward_flops(model: torch.nn.Module, clips: int) -> int:
    """FLOPs of one forward pass over ``clips`` clips, attention matmuls included (tmt.complexity), counted
    on a copy built on the meta device: no arithmetic, no memory."""
    with torch.device("meta"):
        clip = torch.zeros(clips, model.frames, model.num_joints, model.in_chans)
        return full_flops(model.model_spec.build(), clip)


def train_flops(trainer: Trainer, clips: int) -> int:
    """FLOPs of one ``train_batch``: forward + backward (2 x forward) for every update of the strategy."""
    return 3 * forward_flops(trainer.model, clips) * trainer.strategy.updates_per_batch


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def make_predictor(config: ExperimentConfig, model: torch.nn.Module) -> Predictor:
    autocast = PRECISIONS[config.train.precision] if config.train.precision != "fp32" else None
    return Predictor(
        model,
        get_strategy(config.train.strategy),
        H36M,
        config.model.frames,
        flip_test=config.eval.flip_test,
        batch_clips=config.eval.batch_clips,
        device=config.train.device,
        autocast_dtype=autocast,
    )


def evaluation_sequence(case: Case, batches: int = 2, seed: int = 1) -> np.ndarray:
    """2D keypoints of one sequence that the seq2seq protocol cuts into exactly ``batches`` batches."""
    return random_walk_sequences(1, case.frames * case.batch * batches, seed)[0].keypoints_2d


def training_memory(
    case: Case, precision: str, attention: str, strategy: str, device: str, steps: int = 2
) -> dict:
    """Peak memory of training ``case`` for ``steps`` batches, measured in a fresh process so that nothing
    else the benchmark session allocated counts: on the CPU the peak resident set (Linux VmHWM, everything
    the operating system has to provide) and its rise over the resident set once model and optimizer exist;
    on CUDA the peak of allocated device memory and its rise over the weights and optimizer state."""
    spec = {"case": case.__dict__, "precision": precision, "attention": attention, "strategy": strategy}
    spec |= {"device": device, "steps": steps}
    return in_fresh_process(__file__, json.dumps(spec))


def in_fresh_process(script: str, argument: str) -> dict:
    """Run ``python script argument`` with the project and the benchmarks importable; the JSON it prints last."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, script, argument],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": path},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _probe(spec: dict) -> dict:
    """The child side of :func:`training_memory`."""
    case, device = Case(**spec["case"]), spec["device"]
    config = experiment_config(case, spec["precision"], spec["attention"], spec["strategy"], False, device)
    bank = window_bank(case)
    trainer = make_trainer(config, bank)
    batch = training_batch(bank, case.batch)
    cuda = torch.device(device).type == "cuda"
    before = torch.cuda.memory_allocated() if cuda else status_bytes("VmRSS")
    for _ in range(spec["steps"]):
        trainer.train_batch(batch)
    peak = torch.cuda.max_memory_allocated() if cuda else status_bytes("VmHWM")
    return {"peak_bytes": peak, "before_bytes": before, "step_bytes": peak - before}


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def timed(fn: Callable[[], object], device: str) -> float:
    """Seconds one call of ``fn`` takes, device work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(json.dumps(_probe(json.loads(sys.argv[1]))))
