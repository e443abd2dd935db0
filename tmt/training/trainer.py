"""The training loop: epochs of strategy steps, per-epoch validation, checkpoints and exact resume.

Determinism: the data order of epoch ``e`` comes from a generator seeded with ``(seed, e)``, so it does not
depend on where a run was resumed; the global torch RNG (drop path) is saved in every checkpoint and restored.
A resumed run therefore ends with the same weights as an uninterrupted one (on the same machine and threads).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from tmt.data.prefetch import prefetched
from tmt.data.windows import Batch, WindowBank
from tmt.losses import build_loss
from tmt.models.checkpoint import read_checkpoint
from tmt.progress import Progress, format_seconds
from tmt.skeleton import H36M, joint_weights
from tmt.training.config import ExperimentConfig
from tmt.training.convergence import plateau_epoch
from tmt.training.distributed import SINGLE, Processes
from tmt.training.strategies import Strategy

FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


class TrainingFailed(RuntimeError):
    """Training stopped on a non-finite loss (or another numerical failure); ``reason`` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Callback(Protocol):
    """Told about every finished epoch. A callback may also define ``on_batch_end(update, losses)``, called
    after every batch with the number of updates so far and each step's loss (e.g. per-update logging)."""

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None: ...


@dataclass
class TrainState:
    """Everything a checkpoint holds besides the weights."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    best_test: float = math.inf
    best_val_epoch: int = 0
    best_test_epoch: int = 0
    best_val_state: dict[str, torch.Tensor] | None = None
    best_test_state: dict[str, torch.Tensor] | None = None
    wall_time_s: float = 0.0
    updates: int = 0
    stop_reason: str | None = None
    """None while training may go on; else one of :data:`STOP_REASONS`."""
    converged_epoch: int | None = None
    """With ``stop_reason == "plateau"``: the epoch whose best validation MPJPE was not beaten afterwards."""
    seconds_per_update: float | None = None
    """Fewest CPU seconds per update over ``train.time_updates`` timed batches (:meth:`Trainer.time_updates`)."""


STOP_REASONS = ("plateau", "epochs", "updates", "wall_time")
"""Why training ended: the validation MPJPE plateaued (converged), or a cap was reached first."""

CHECKPOINT_IGNORED = (
    ("train", "threads"),
    ("train", "prefetch"),
    ("train", "time_updates"),
    ("train", "device"),
    ("data", "root"),
    ("optim", "epochs"),
    ("optim", "max_updates"),
    ("optim", "max_wall_s"),
)
"""Config fields a run may change on resume: where and how fast it runs, and its caps (raising a cap continues
the same trajectory, since the lr schedule depends on the epoch only), not what it computes."""


def make_optimizer(model: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    """Adam(W) over the trainable parameters, as one fused kernel per step where torch has one.

    torch's default on the CPU is a Python loop over the parameters (about ten small ops each); the fused
    kernel does the same arithmetic in one pass over all of them.
    """
    opt = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if opt.optimizer == "adamw" else torch.optim.Adam
    kwargs = {"lr": opt.lr, "weight_decay": opt.weight_decay, "amsgrad": bool(opt.amsgrad)}
    if params and all(p.device.type in FUSED_OPTIMIZER_DEVICES and p.is_floating_point() for p in params):
        kwargs["fused"] = True
    return cls(params, **kwargs)


def learning_rate(config: ExperimentConfig, epoch: int) -> float:
    """lr for (0-based) ``epoch``: lr x decay after every epoch before it; with ``lr_halve_every`` n, after every
    n-th epoch x 0.5 instead of the decay (``lr_halving: instead``, MHFormer's script) or as well (``also``)."""
    opt = config.optim
    halvings = epoch // opt.lr_halve_every if opt.lr_halve_every else 0
    decays = epoch - halvings if opt.lr_halving == "instead" else epoch
    return opt.lr * opt.lr_decay**decays * 0.5**halvings


DEFAULT_PREFETCH_CUDA = 2
"""Batches assembled ahead on a GPU (``train.prefetch`` unset): enough to cover a slow batch; on a CPU none,
where the background thread would compete with the step for the cores (:mod:`tmt.data.prefetch`)."""


def batch_clips(config: ExperimentConfig) -> int:
    opt = config.optim
    if opt.batch_clips is not None:
        return opt.batch_clips
    return max(1, opt.batch_frames // config.model.frames)


def epoch_order(num_windows: int, flip: bool, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled window indices and flip flags of one epoch (every window seen plain and flipped with flip on)."""
    rng = np.random.default_rng([seed, epoch])
    index = np.arange(num_windows)
    flips = np.zeros(num_windows, dtype=bool)
    if flip:
        index = np.concatenate([index, index])
        flips = np.concatenate([flips, ~flips])
    order = rng.permutation(len(index))
    return index[order], flips[order]


def _autocast(config: ExperimentConfig, device: torch.device):
    precision = config.train.precision
    if precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Trainer:
    """Fits ``model`` on ``bank`` with ``strategy``; ``evaluate(model) -> dict`` scores it after each epoch."""

    def __init__(
        self,
        model: nn.Module,
        strategy: Strategy,
        bank: WindowBank,
        config: ExperimentConfig,
        *,
        validate: Callable[[nn.Module], float],
        test: Callable[[nn.Module], float] | None = None,
        checkpoint_path: Path | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        processes: Processes = SINGLE,
    ):
        self.model = model
        self.processes = processes
        self.strategy = strategy
        self.bank = bank
        self.config = config
        self.validate = validate
        self.test = test
        self.checkpoint_path = checkpoint_path
        self.callbacks = callbacks
        self.progress = progress
        self.device = torch.device(config.train.device)
        skeleton = getattr(bank, "skeleton", None) or H36M  # a bank without a skeleton is Human3.6M's
        self.loss_fn = build_loss(config.train.loss, joint_weights(skeleton))
        self.optimizer = make_optimizer(model, config)
        self.state = TrainState()
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.train.precision == "fp16")
        self.extra_scale = extra_channel_scale(strategy, bank, config, self.device)
        self._parallel: nn.Module | None = None
        if processes.parallel:
            from torch.nn.parallel import DistributedDataParallel

            on_gpu = self.device.type == "cuda"
            self._parallel = DistributedDataParallel(
                model, device_ids=[processes.local_rank] if on_gpu else None
            )
        self.step_fn = self._compiled_step() if config.train.compile else self._step
        self.prefetch = config.train.prefetch
        if self.prefetch is None:
            self.prefetch = DEFAULT_PREFETCH_CUDA if self.device.type == "cuda" else 0

    @property
    def net(self) -> nn.Module:
        """What the training step runs: the model, or its data-parallel wrapper (which syncs gradients)."""
        return self._parallel if self._parallel is not None else self.model

    # -- checkpoints -------------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically; it holds only tensors, numbers, strings and plain containers.
        With several processes rank 0 writes it (every rank holds the same weights and state)."""
        if self.checkpoint_path is None or not self.processes.main:
            return
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": dataclasses.asdict(self.state),
            "config": _resume_identity(self.config),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        try:
            torch.save(payload, tmp)
            os.replace(tmp, self.checkpoint_path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self) -> bool:
        """Resume from ``checkpoint_path`` if it exists; returns whether it did.

        Read with ``weights_only=True`` (no code runs from the file). A checkpoint of another configuration is
        refused rather than continued under the new one.
        """
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return False
        from tmt.errors import CheckpointError

        try:
            payload = read_checkpoint(self.checkpoint_path, map_location=self.device)
            state = TrainState(**payload["state"])
        except Exception as err:
            raise CheckpointError(
                f"{self.checkpoint_path}: unreadable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                "delete it to start this run afresh"
            ) from None
        saved = payload.get("config")
        if saved != _resume_identity(self.config):
            raise CheckpointError(
                f"{self.checkpoint_path}: this checkpoint belongs to a different configuration "
                f"({_first_difference(saved, _resume_identity(self.config))}); use another output folder "
                "or delete the checkpoint to start afresh"
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scaler.load_state_dict(payload["scaler"])
        self.state = state
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        return True

    # -- one optimisation step ---------------------------------------------------------------------------
    def _step(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with _autocast(self.config, self.device):
            pred = self.net(inp)
        if pred.shape[1] == 1 and target.shape[1] != 1:
            target = target[:, target.shape[1] // 2 : target.shape[1] // 2 + 1]
        return self.loss_fn.total(pred.float(), target)

    def _compiled_step(self):
        """The step (forward, loss; torch.compile derives the backward) compiled as one graph per batch shape.

        ``fallback_random`` keeps drop path drawing from torch's own generator, so a compiled run draws the
        same masks as an eager one and a checkpoint's RNG state resumes it exactly; ``dynamic=False`` compiles
        the one or two batch shapes of an epoch (a full batch and the last) as fixed-size graphs.
        """
        return torch.compile(self._step, dynamic=False, options={"fallback_random": True})

    def _update(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.config.optim.scale_grad_by_loss:
            self.scaler.scale(loss).backward(loss.detach())
        else:
            self.scaler.scale(loss).backward()
        if self.config.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def train_batch(
        self, batch: Batch, epoch: int = 0, number: int = 0, share: float = 1.0
    ) -> dict[str, float]:
        """Every update of the strategy on one batch; returns each step kind's loss over the global batch
        (the mean over its updates when a strategy takes a kind twice). ``epoch`` (0-based) and ``number``
        only name the batch in the error raised on a non-finite loss; ``share`` is this process's fraction of
        the global batch (1 for one process, see :mod:`tmt.training.distributed`)."""
        kp2d = batch.keypoints_2d.to(self.device, non_blocking=True)
        target = batch.pose_3d.to(self.device, non_blocking=True)
        velocity_source = target
        if self.config.train.velocity == "absolute":
            velocity_source = target + batch.root_3d.to(self.device)[:, :, None, :]
        losses: dict[str, list[float]] = {}
        for step in self.strategy.steps:
            inp = self.strategy.step_input(step, kp2d, velocity_source, self.extra_scale)
            loss = self.step_fn(inp, target)
            value = self.processes.total({"loss": float(loss.detach()) * share})["loss"]
            if not math.isfinite(value):
                raise TrainingFailed(
                    f"non-finite loss ({value}) in epoch {epoch + 1}, step '{step}', batch {number}"
                )
            self._update(loss * (share * self.processes.world_size) if self.processes.parallel else loss)
            self.state.updates += 1
            losses.setdefault(step, []).append(value)
        return {step: sum(values) / len(values) for step, values in losses.items()}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch over every window (plain and flipped); returns the mean loss of each step kind."""
        self.model.train()
        lr = learning_rate(self.config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        index, flips = epoch_order(
            len(self.bank), self.config.train.flip_augment, self.config.train.seed, epoch
        )
        size = batch_clips(self.config)
        sums = dict.fromkeys(self.strategy.steps, 0.0)
        n_batches = math.ceil(len(index) / size)
        label = f"epoch {epoch + 1}/{self.config.optim.epochs}"
        main = self.processes.main
        bar = Progress(label, n_batches, fields=("loss",), lines=False) if self.progress and main else None
        hooks = (getattr(c, "on_batch_end", None) for c in self.callbacks) if main else ()
        batch_hooks = [hook for hook in hooks if hook is not None]
        pin = self.device.type == "cuda"

        def assemble(number: int) -> tuple[Batch, float]:
            """This process's part of global batch ``number`` and its share of that batch."""
            chunk = np.arange(number * size, min((number + 1) * size, len(index)))
            mine = self.processes.share(chunk)
            share = len(mine) / len(chunk)
            if not len(mine):  # fewer windows than processes: join the gradient exchange with a zero share
                mine = chunk[:1]
            batch = self.bank.batch(index[mine], flips[mine])
            return (Batch(*(t.pin_memory() for t in batch)) if pin else batch), share

        for number, (batch, share) in enumerate(prefetched(assemble, n_batches, self.prefetch)):
            losses = self.train_batch(batch, epoch, number, share=share)
            for step, value in losses.items():
                sums[step] += value
            for on_batch_end in batch_hooks:
                on_batch_end(self.state.updates, dict(losses))
            if bar is not None:
                bar.advance(loss=value)
        if bar is not None:
            bar.close()
        return {step: total / max(n_batches, 1) for step, total in sums.items()} | {"lr": lr}

    # -- the cost of an update -----------------------------------------------------------------------------
    def time_updates(self, batches: int, rounds: int = 3) -> float:
        """Fewest CPU seconds per update over ``rounds`` rounds of ``batches`` batches (the first batches of
        epoch 1), after one warm-up batch (which also compiles a compiled step).

        CPU time of this process, not wall time: a thread waiting for a core shared with other work does not
        count, so the figure is what an idle core pays. The weights, optimizer, scaler, RNG state and update
        count are restored afterwards, so training goes on exactly as without the timing.
        """
        saved = (
            copy.deepcopy(self.model.state_dict()),
            copy.deepcopy(self.optimizer.state_dict()),
            self.scaler.state_dict(),
            torch.get_rng_state(),
            self.state.updates,
        )
        self.model.train()
        index, flips = epoch_order(len(self.bank), self.config.train.flip_augment, self.config.train.seed, 0)
        size = batch_clips(self.config)
        batch = self.bank.batch(index[:size], flips[:size])
        self.train_batch(batch)
        best = math.inf
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(batches):
                self.train_batch(batch)
            best = min(best, (time.process_time() - start) / (batches * self.strategy.updates_per_batch))
        model, optimizer, scaler, rng, self.state.updates = saved
        self.model.load_state_dict(model)
        self.optimizer.load_state_dict(optimizer)
        self.scaler.load_state_dict(scaler)
        torch.set_rng_state(rng)
        return best

    # -- the whole run -----------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until a stopping rule fires (``state.stop_reason``), resuming from the checkpoint if any."""
        self.load_checkpoint()
        state = self.state
        timed = self.config.train.time_updates
        if timed and state.seconds_per_update is None and not self.processes.parallel:
            state.seconds_per_update = self.time_updates(timed)
        state.stop_reason, state.converged_epoch = stopping_rule(
            self.config, state
        )  # the caps may have changed
        while state.stop_reason is None:
            epoch = state.epoch
            t0 = time.perf_counter()
            losses = self.train_epoch(epoch)
            train_time = time.perf_counter() - t0
            val = test = None
            if self.processes.main:
                val = self.validate(self.model)
                test = self.test(self.model) if self.test is not None else None
            epoch_wall_s = time.perf_counter() - t0
            val, test, train_time, epoch_wall_s = self.processes.broadcast(
                (val, test, train_time, epoch_wall_s)
            )
            state.wall_time_s += epoch_wall_s
            record = {
                "epoch": epoch + 1,
                "loss_step1": losses.get("zeros"),
                "loss_step2": losses.get("features"),
                "val_mpjpe": val,
                "test_mpjpe": test,
                "lr": losses["lr"],
                "epoch_time_s": train_time,
                "wall_time_s": state.wall_time_s,
                "updates": state.updates,
            }
            state.history.append(record)
            if val < state.best_val:
                state.best_val, state.best_val_epoch = val, epoch + 1
                state.best_val_state = _cpu_copy(self.model)
            if test is not None and test < state.best_test:
                state.best_test, state.best_test_epoch = test, epoch + 1
                state.best_test_state = _cpu_copy(self.model)
            state.epoch = epoch + 1
            state.stop_reason, state.converged_epoch = stopping_rule(self.config, state)
            self.save_checkpoint()
            if not self.processes.main:
                continue
            if self.progress:
                print(epoch_line(record, self.config, state, epoch_wall_s), flush=True)
            for callback in self.callbacks:
                callback.on_epoch_end(epoch + 1, dict(record))
        return state


def stopping_rule(config: ExperimentConfig, state: TrainState) -> tuple[str | None, int | None]:
    """(why training ends now, the converged epoch) after an epoch; (None, None) to go on.

    The plateau rule (``optim.stop_at_plateau``) is :func:`tmt.training.convergence.plateau_epoch` on the
    validation history; the caps are the epochs, the updates and the wall time, in that order.
    """
    opt = config.optim
    if opt.stop_at_plateau:
        val = [h["val_mpjpe"] for h in state.history]
        plateau = plateau_epoch(val, config.eval.plateau_patience, config.eval.plateau_min_delta)
        if plateau is not None:
            return "plateau", plateau
    if state.epoch >= opt.epochs:
        return "epochs", None
    if opt.max_updates is not None and state.updates >= opt.max_updates:
        return "updates", None
    if opt.max_wall_s is not None and state.wall_time_s >= opt.max_wall_s:
        return "wall_time", None
    return None, None


def eta_seconds(config: ExperimentConfig, state: TrainState) -> float:
    """Time left until the first cap (epochs, updates, wall time) at this run's mean time per epoch."""
    if state.stop_reason is not None or state.epoch == 0:
        return 0.0
    opt = config.optim
    per_epoch = state.wall_time_s / state.epoch
    epochs_left = opt.epochs - state.epoch
    if opt.max_updates is not None and state.updates:
        epochs_left = min(
            epochs_left, math.ceil((opt.max_updates - state.updates) * state.epoch / state.updates)
        )
    left = max(epochs_left, 0) * per_epoch
    if opt.max_wall_s is not None:
        left = min(left, max(opt.max_wall_s - state.wall_time_s, 0.0))
    return left


def epoch_line(
    record: dict[str, Any], config: ExperimentConfig, state: TrainState, epoch_wall_s: float
) -> str:
    """The one line a person watching ``tmt train`` (or its log) sees per epoch.

    "epoch 3/120 | loss 0.0812 / 0.0790 | val MPJPE 65.3 mm | 41 s | ETA 1.4 h": the step losses (step 1 /
    step 2 of a two-step strategy), the validation MPJPE, the epoch's wall time including validation and
    the time left; "ETA <=" when training may stop earlier at the validation plateau.
    """
    losses = [record[key] for key in ("loss_step1", "loss_step2") if record.get(key) is not None]
    parts = [
        f"epoch {record['epoch']}/{config.optim.epochs}",
        "loss " + " / ".join(f"{value:.4f}" for value in losses),
        f"val MPJPE {record['val_mpjpe']:.1f} mm",
    ]
    if record.get("test_mpjpe") is not None:
        parts.append(f"test MPJPE {record['test_mpjpe']:.1f} mm")
    parts.append(format_seconds(epoch_wall_s))
    if state.stop_reason is None:
        bound = "<= " if config.optim.stop_at_plateau else ""
        parts.append(f"ETA {bound}{format_seconds(eta_seconds(config, state))}")
    else:
        parts.append(f"done ({state.stop_reason})")
    return " | ".join(parts)


def _resume_identity(config: ExperimentConfig) -> dict[str, Any]:
    """The configuration a checkpoint must match to be resumed (JSON-able, without CHECKPOINT_IGNORED)."""
    out = config.model_dump(mode="json")
    for section, key in CHECKPOINT_IGNORED:
        out[section].pop(key, None)
    return out


def _first_difference(saved: Any, current: dict[str, Any]) -> str:
    if not isinstance(saved, dict):
        return "it records no configuration"
    for section in sorted(set(saved) | set(current)):
        a, b = saved.get(section) or {}, current.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"{section}.{key}: {a.get(key)!r} in the checkpoint, {b.get(key)!r} now"
    return "unknown difference"


def extra_channel_scale(
    strategy: Strategy, bank: WindowBank, config: ExperimentConfig, device: torch.device
) -> torch.Tensor | float:
    """The factor of ``train.extra_scale`` for the extra channels: the number itself, or with 'standardize'
    one factor per channel, 1 / (standard deviation of that channel's features over every training window)."""
    scale = config.train.extra_scale
    if scale != "standardize" or strategy.extra == "none":
        return float(scale) if scale != "standardize" else 1.0
    from tmt.features import extra_features

    sums = sq = None
    count = 0
    size = 256
    for start in range(0, len(bank), size):
        index = np.arange(start, min(start + size, len(bank)))
        batch = bank.batch(index, np.zeros(len(index), dtype=bool))
        source = batch.pose_3d
        if config.train.velocity == "absolute":
            source = source + batch.root_3d[:, :, None, :]
        feats = extra_features(strategy.extra, batch.keypoints_2d, source).double().flatten(0, -2)
        sums = feats.sum(0) if sums is None else sums + feats.sum(0)
        sq = (feats**2).sum(0) if sq is None else sq + (feats**2).sum(0)
        count += feats.shape[0]
    if sums is None or sq is None:
        return 1.0
    std = (sq / count - (sums / count) ** 2).clamp_min(0).sqrt()
    return (1.0 / std.clamp_min(1e-8)).float().to(device)


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in copy.copy(model.state_dict()).items()}
