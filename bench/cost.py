"""What a cell costs before it runs: CPU seconds on the development machine and GPU-hours per GPU type.

Both come from one count of the cell's work (:class:`Workload`: the frames its training updates and its
evaluation passes see, and the multiply-accumulates per frame of its backbone). ``--dry-run`` and
``bench validate`` print them, so a user can budget a study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.cells import Cell

SECONDS_PER_MAC = 6.4e-11
TRAIN_SECONDS_PER_FRAME = 5.9e-5
EVAL_SECONDS_PER_FRAME = 2.9e-5
"""The calibration of every CPU estimate: seconds per multiply-accumulate, plus a fixed cost per frame of every
training update (data, element-wise ops, optimiser) and per frame of every evaluation forward pass (chunking,
flip, metrics). Fitted by ``python benchmarks/fit_cost.py runs`` to the training + evaluation time of the 39
converged cpu cells of the committed results (MixSTE and MHFormer, one torch thread, two cells at a time on a
shared 2-core machine) and of table7's 12 smoke cells on that machine: an estimate is a median 0.97 of what
a cpu cell took (0.4-1.7), 0.8 for a smoke cell. Re-measure on new hardware and change these numbers."""

STARTUP_SECONDS = 0.3
"""Per cell: reading the data, building the model, writing the result, its W&B run (offline). Measured between
consecutive cells of the smoke job: 0.17 s with W&B disabled, 0.3 s offline."""

RUN_SECONDS = 7.0
"""Per ``bench run`` with cells to train: starting Python and torch, checking the data, the first cell's
loading (1-2 s more than the others') and writing the report. Measured on the smoke job: 5.7 s of its 17-22 s
lie outside its cells, plus the first cell's extra."""

DATA_FRAMES = {
    # (training frames, test frames) over all cameras
    "smoke": (600 * 150, 232 * 150),
    "small": (600 * 450, 232 * 450),
    "full": (600 * 2500, 232 * 2500),
    "h36m": (1_559_752, 543_344),
    "mpi_inf_3dhp": (1_031_701, 2_929),
}
"""Frames of each data set (the synthetic sizes: 600 training / 232 test sequences of the mean length)."""


@dataclass(frozen=True)
class Workload:
    """The arithmetic of one training cell: what its updates and evaluation passes see."""

    train_frames: float
    """Frames through the training step, over every epoch, flip and update per batch."""
    eval_frames: float
    """Frames scored by the evaluation passes (validation every epoch, the test set once; flip test x 2)."""
    frame_macs: float
    """Multiply-accumulates of one forward pass per input frame."""
    clip_frames: int
    """Input frames run per evaluated frame: 1 for seq2seq backbones, T for those scoring one frame a clip."""

    @property
    def flops(self) -> float:
        """Floating-point operations: 2 per MAC; a training frame costs its forward and backward (x 3)."""
        return 2 * self.frame_macs * (3 * self.train_frames + self.clip_frames * self.eval_frames)


def workload(cell: Cell) -> Workload:
    """Training: windows x flips x updates per batch x epochs x T frames; evaluation: the validation tail
    every epoch and the test set, x 2 for the flip test."""
    from tmt.complexity import frame_macs
    from tmt.training.strategies import get_strategy

    cfg = cell.config_dict
    data, model, optim, train = cfg["data"], cfg["model"], cfg["optim"], cfg["train"]
    train_frames, test_frames = DATA_FRAMES.get(data["synthetic"] or data["dataset"], DATA_FRAMES["h36m"])
    if data.get("actions"):
        share = len(data["actions"]) / 15
        train_frames, test_frames = train_frames * share, test_frames * share
    if data.get("test_subjects"):
        test_frames *= len(data["test_subjects"]) / 2
    val_frames = train_frames * data.get("validation_fraction", 0.1)
    train_frames -= val_frames
    T = model["frames"]
    per_frame, seq2seq = frame_macs(cell.config)
    windows = train_frames / T if seq2seq else train_frames / (data.get("train_stride") or 1)
    if data.get("max_train_windows"):
        windows = min(windows, data["max_train_windows"])
    flips = 2 if train.get("flip_augment", True) else 1
    updates = get_strategy(train["strategy"]).updates_per_batch
    return Workload(
        train_frames=windows * flips * updates * optim["epochs"] * T,
        eval_frames=2 * (val_frames * optim["epochs"] + test_frames),
        frame_macs=per_frame,
        clip_frames=1 if seq2seq else T,
    )


def estimate_seconds(cell: Cell) -> float:
    """A rough cost of one cell (seconds on 2 CPU cores), for ``--dry-run`` and profile tuning: each frame's
    MACs at ``SECONDS_PER_MAC`` plus the fixed costs per frame. Complexity cells: 1 s."""
    if cell.kind == "complexity":
        return 1.0
    w = workload(cell)
    training = w.train_frames * (3 * w.frame_macs * SECONDS_PER_MAC + TRAIN_SECONDS_PER_FRAME)
    evaluation = w.eval_frames * (w.clip_frames * w.frame_macs * SECONDS_PER_MAC + EVAL_SECONDS_PER_FRAME)
    return training + evaluation + STARTUP_SECONDS


def estimate_run_seconds(cells: Sequence[Cell]) -> float:
    """A ``bench run`` of ``cells``: each cell's cost plus the run's own (0 when there is none to run)."""
    return RUN_SECONDS + sum(map(estimate_seconds, cells)) if cells else 0.0


@dataclass(frozen=True)
class GPU:
    """A GPU type's documented dense peak (NVIDIA's data sheets), TFLOP/s: fp32 without tensor cores, and
    bf16 / fp16 tensor cores with fp32 accumulation (what autocast runs)."""

    name: str
    fp32_tflops: float
    half_tflops: float


GPUS = (
    GPU("H100 SXM", 67.0, 989.0),
    GPU("A100", 19.5, 312.0),
    GPU("RTX 3090 Ti", 40.0, 80.0),  # the paper's card (two of them)
)

GPU_UTILISATION = 0.13
"""The share of the peak a cell's arithmetic is assumed to reach, calibrated on the one GPU timing there is
(no GPU step time has been measured here yet, docs/performance.md): the paper trained MixSTE at T 243 (batch
1024 frames, fp32) on two RTX 3090 Ti in 2205 min (Table 5), 73.5 card-hours; taken as the profile's 120
epochs that is 13 % of the cards' fp32 peak. If that run stopped earlier, the share was lower and these
estimates are low."""


def gpu_hours(cell: Cell, gpu: GPU) -> float:
    """Hours of one ``gpu`` for the cell: its FLOPs at ``GPU_UTILISATION`` of the peak in its precision.
    Complexity cells count nothing: 0."""
    if cell.kind == "complexity":
        return 0.0
    half = cell.config_dict["train"].get("precision", "fp32") in ("bf16", "fp16")
    peak = (gpu.half_tflops if half else gpu.fp32_tflops) * 1e12
    return workload(cell).flops / (peak * GPU_UTILISATION) / 3600
