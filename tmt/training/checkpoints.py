"""The training checkpoint: plain data (tensors, numbers, strings, containers; never a pickled class), written
atomically and resumed only under the same configuration (the fields a resumed run may change are
:data:`tmt.training.identity.INCIDENTAL`'s).

Determinism: the global torch RNG (drop path) is saved and restored with the weights, the optimizer and the
:class:`TrainState`, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tmt.errors import CheckpointError
from tmt.models.checkpoint import read_checkpoint
from tmt.training.config import ExperimentConfig
from tmt.training.identity import resume_identity
from tmt.training.state import TrainState


@dataclasses.dataclass(frozen=True)
class Training:
    """What a checkpoint saves and restores besides the :class:`TrainState`."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    config: ExperimentConfig


def save_checkpoint(path: Path, training: Training, state: TrainState) -> None:
    """Write the checkpoint atomically (a temporary file renamed over the old one)."""
    payload = {
        "model": training.model.state_dict(),
        "optimizer": training.optimizer.state_dict(),
        "scaler": training.scaler.state_dict(),
        "state": dataclasses.asdict(state),
        "config": resume_identity(training.config.model_dump(mode="json")),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, training: Training, device: torch.device) -> TrainState:
    """Restore ``training`` and the RNG from ``path``; returns the saved state.

    Read with ``weights_only=True`` (no code runs from the file). A checkpoint of another configuration is
    refused rather than continued under the new one.
    """
    try:
        payload = read_checkpoint(path, map_location=device)
        state = TrainState(**payload["state"])
    except Exception as err:
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
            "delete it to start this run afresh"
        ) from None
    saved, current = payload.get("config"), resume_identity(training.config.model_dump(mode="json"))
    if saved != current:
        raise CheckpointError(
            f"{path}: this checkpoint belongs to a different configuration "
            f"({first_difference(saved, current)}); use another output folder "
            "or delete the checkpoint to start afresh"
        )
    training.model.load_state_dict(payload["model"])
    training.optimizer.load_state_dict(payload["optimizer"])
    training.scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return state


def first_difference(saved: Any, current: dict[str, Any]) -> str:
    """The first field (sorted) in which a checkpoint's configuration differs from the current one."""
    if not isinstance(saved, dict):
        return "it records no configuration"
    for section in sorted(set(saved) | set(current)):
        a, b = saved.get(section) or {}, current.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"{section}.{key}: {a.get(key)!r} in the checkpoint, {b.get(key)!r} now"
    return "unknown difference"
