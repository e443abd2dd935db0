"""The training loop: epochs of strategy steps, per-epoch validation, a checkpoint per epoch, exact resume
(a resumed run ends with the same weights as an uninterrupted one, on the same machine and threads).

Around the loop, each in the module named for it: the batches and their seeded order
(:mod:`~tmt.training.batches`), the checkpoint (:mod:`~tmt.training.checkpoints`), the optimizer and lr
schedule (:mod:`~tmt.training.optimizer`), the extra channels' scale (:mod:`~tmt.training.scaling`), the
stopping rule (:mod:`~tmt.training.stopping`), the cost of an update (:mod:`~tmt.training.timing`) and the
line per epoch (:mod:`tmt.progress`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from tmt.data.prefetch import prefetched
from tmt.data.windows import Batch, WindowBank
from tmt.losses import build_loss
from tmt.progress import Progress, epoch_line
from tmt.skeleton import H36M, joint_weights
from tmt.training.batches import EpochBatches, prefetch_depth
from tmt.training.checkpoints import Training, load_checkpoint, save_checkpoint
from tmt.training.config import ExperimentConfig
from tmt.training.distributed import SINGLE, Processes
from tmt.training.optimizer import learning_rate, make_optimizer
from tmt.training.scaling import extra_channel_scale
from tmt.training.state import TrainState
from tmt.training.stopping import stopping_rule
from tmt.training.strategies import Strategy
from tmt.training.timing import fewest_cpu_seconds, restored


class TrainingFailed(RuntimeError):
    """Training stopped on a non-finite loss (or another numerical failure); ``reason`` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Callback(Protocol):
    """Told about every finished epoch; may also define ``on_batch_end(update, losses)``, told after every
    batch the updates so far and each step's loss (e.g. per-update logging)."""

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None: ...


def _autocast(config: ExperimentConfig, device: torch.device):
    precision = config.train.precision
    if precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Trainer:
    """Fits ``model`` on ``bank`` with ``strategy``; ``validate(model)`` (and ``test``) score it each epoch."""

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
        self.validate, self.test = validate, test
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
        self._parallel = processes.data_parallel(model, self.device)
        self.step_fn = self._compiled_step() if config.train.compile else self._step
        self.prefetch = prefetch_depth(config, self.device)

    @property
    def net(self) -> nn.Module:
        """What the training step runs: the model, or its data-parallel wrapper (which syncs gradients)."""
        return self._parallel if self._parallel is not None else self.model

    @property
    def training(self) -> Training:
        """What a checkpoint saves besides the state."""
        return Training(self.model, self.optimizer, self.scaler, self.config)

    def save_checkpoint(self) -> None:
        """With several processes rank 0 writes it (every rank holds the same weights and state)."""
        if self.checkpoint_path is not None and self.processes.main:
            save_checkpoint(self.checkpoint_path, self.training, self.state)

    def load_checkpoint(self) -> bool:
        """Resume from ``checkpoint_path`` if it exists; returns whether it did."""
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return False
        self.state = load_checkpoint(self.checkpoint_path, self.training, self.device)
        return True

    def _step(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with _autocast(self.config, self.device):
            pred = self.net(inp)
        if pred.shape[1] == 1 and target.shape[1] != 1:
            target = target[:, target.shape[1] // 2 : target.shape[1] // 2 + 1]
        return self.loss_fn.total(pred.float(), target)

    def _compiled_step(self):
        """The step (forward, loss; torch.compile derives the backward) as one graph per batch shape (a full
        batch and the last); ``fallback_random`` keeps drop path on torch's generator, so a compiled run draws
        the masks of an eager one and a checkpoint's RNG state resumes it exactly."""
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
        pin = self.device.type == "cuda"
        batches = EpochBatches.of(self.bank, self.config, epoch, self.processes, pin)
        sums = dict.fromkeys(self.strategy.steps, 0.0)
        n_batches, main = len(batches), self.processes.main
        label = f"epoch {epoch + 1}/{self.config.optim.epochs}"
        bar = Progress(label, n_batches, fields=("loss",), lines=False) if self.progress and main else None
        batch_hooks = [c.on_batch_end for c in self.callbacks if main and getattr(c, "on_batch_end", None)]
        for number, (batch, share) in enumerate(prefetched(batches.part, n_batches, self.prefetch)):
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

    def time_updates(self, batches: int, rounds: int = 3) -> float:
        """Fewest CPU seconds per update over ``rounds`` x ``batches`` batches; the state is restored after."""
        with restored(self.training, self.state):
            self.model.train()
            first = EpochBatches.of(self.bank, self.config, epoch=0)
            batch = self.bank.batch(first.index[: first.size], first.flips[: first.size])
            seconds = fewest_cpu_seconds(lambda: self.train_batch(batch), batches, rounds)
        return seconds / self.strategy.updates_per_batch

    def fit(self) -> TrainState:
        """Train until a stopping rule fires (``state.stop_reason``), resuming from the checkpoint if any."""
        self.load_checkpoint()
        state = self.state
        timed = self.config.train.time_updates
        if timed and state.seconds_per_update is None and not self.processes.parallel:
            state.seconds_per_update = self.time_updates(timed)
        state.stop_reason, state.converged_epoch = stopping_rule(self.config, state)  # new caps on resume
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
            state.epoch = epoch + 1
            state.keep_best(self.model, val, test)
            state.stop_reason, state.converged_epoch = stopping_rule(self.config, state)
            self.save_checkpoint()
            if not self.processes.main:
                continue
            if self.progress:
                print(epoch_line(record, self.config, state, epoch_wall_s), flush=True)
            for callback in self.callbacks:
                callback.on_epoch_end(epoch + 1, dict(record))
        return state
