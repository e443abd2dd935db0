"""What training a configuration costs before it runs: CPU seconds on the development machine and GPU-hours per
GPU type.

Both come from one count of the work (:class:`Workload`: the frames the training updates and the evaluation
passes see, and the multiply-accumulates per frame of the backbone, :func:`tmt.complexity.frame_macs`), so
they follow the trainer and the test protocol as they are; bench prints them per cell (``--dry-run``,
``bench validate``) so that a user can budget a study.
"""

from __future__ import annotations

from dataclasses import dataclass

from tmt.training.config import ResolvedConfig

SECONDS_PER_MAC = 6.4e-11
TRAIN_SECONDS_PER_FRAME = 5.9e-5
EVAL_SECONDS_PER_FRAME = 2.9e-5
"""The calibration of every CPU estimate: seconds per multiply-accumulate, plus a fixed cost per frame of every
training update (data, element-wise ops, optimiser) and per frame of every evaluation forward pass (chunking,
flip, metrics). Fitted by ``python benchmarks/fit_cost.py runs`` to the training + evaluation time of the 39
converged cpu cells of the committed results (MixSTE and MHFormer, one torch thread, two cells at a time on a
shared 2-core machine) and of table7's 12 smoke cells on that machine: an estimate is a median 0.97 of what
a cpu cell took (0.4-1.7), 0.8 for a smoke cell. Re-measure on new hardware and change these numbers."""

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
    """The arithmetic of one training run: what its updates and evaluation passes see."""

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

    @property
    def cpu_seconds(self) -> float:
        """Seconds on the development machine's 2 CPU cores: each frame's MACs at ``SECONDS_PER_MAC`` plus the
        fixed costs per frame (rough)."""
        training = self.train_frames * (3 * self.frame_macs * SECONDS_PER_MAC + TRAIN_SECONDS_PER_FRAME)
        per_eval_frame = self.clip_frames * self.frame_macs * SECONDS_PER_MAC + EVAL_SECONDS_PER_FRAME
        return training + self.eval_frames * per_eval_frame


def workload(config: ResolvedConfig) -> Workload:
    """Training: windows x flips x updates per batch x epochs x T frames; evaluation: the validation tail
    every epoch and the test set, x 2 for the flip test."""
    from tmt.complexity import frame_macs
    from tmt.training.strategies import get_strategy

    data, optim, train = config.data, config.optim, config.train
    train_frames, test_frames = DATA_FRAMES.get(data.synthetic or data.dataset, DATA_FRAMES["h36m"])
    if data.actions:
        share = len(data.actions) / 15
        train_frames, test_frames = train_frames * share, test_frames * share
    if data.test_subjects:
        test_frames *= len(data.test_subjects) / 2
    val_frames = train_frames * data.validation_fraction
    train_frames -= val_frames
    T = config.model.frames
    per_frame, seq2seq = frame_macs(config)
    windows = train_frames / T if seq2seq else train_frames / (data.train_stride or 1)
    if data.max_train_windows:
        windows = min(windows, data.max_train_windows)
    flips = 2 if train.flip_augment else 1
    updates = get_strategy(train.strategy).updates_per_batch
    return Workload(
        train_frames=windows * flips * updates * optim.epochs * T,
        eval_frames=2 * (val_frames * optim.epochs + test_frames),
        frame_macs=per_frame,
        clip_frames=1 if seq2seq else T,
    )


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
"""The share of the peak a run's arithmetic is assumed to reach, calibrated on the one GPU timing there is
(no GPU step time has been measured here yet, docs/performance.md): the paper trained MixSTE at T 243 (batch
1024 frames, fp32) on two RTX 3090 Ti in 2205 min (Table 5), 73.5 card-hours; taken as the profile's 120
epochs that is 13 % of the cards' fp32 peak. If that run stopped earlier, the share was lower and these
estimates are low."""


def gpu_hours(config: ResolvedConfig, gpu: GPU) -> float:
    """Hours of one ``gpu`` for the run: its FLOPs at ``GPU_UTILISATION`` of the peak in its precision."""
    half = config.train.precision in ("bf16", "fp16")
    peak = (gpu.half_tflops if half else gpu.fp32_tflops) * 1e12
    return workload(config).flops / (peak * GPU_UTILISATION) / 3600
