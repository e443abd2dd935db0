"""Each backbone's reference training recipe, used wherever a config leaves a field as ``None``
(:meth:`tmt.training.config.ExperimentConfig.resolved`).

Sources: the reference implementations' run scripts: MixSTE's (AdamW, wd 0.1, lr 4e-5 x 0.99 per epoch, 1024 frames per batch,
WMPJPE + 0.5 TC + 2.0 MPJVE), PoseFormer's (AdamW, wd 0.1, lr 1e-4 x 0.99, 512 clips, plain MPJPE) and
MHFormer's (Adam with amsgrad, lr 1e-3, after each epoch x 0.95, or x 0.5 instead after every 5th, 256 clips,
MPJPE).
"""

from __future__ import annotations

from typing import Any

from tmt.losses import DEFAULT_LOSS

RECIPES: dict[str, dict[str, Any]] = {
    "mixste": {
        "optim": {
            "optimizer": "adamw",
            "lr": 4e-5,
            "lr_decay": 0.99,
            "weight_decay": 0.1,
            "amsgrad": False,
            "batch_frames": 1024,
        },
        "loss": dict(DEFAULT_LOSS),
    },
    "poseformer": {
        "optim": {
            "optimizer": "adamw",
            "lr": 1e-4,
            "lr_decay": 0.99,
            "weight_decay": 0.1,
            "amsgrad": False,
            "batch_clips": 512,
        },
        "loss": {"mpjpe": 1.0},
    },
    "mhformer": {
        "optim": {
            "optimizer": "adam",
            "lr": 1e-3,
            "lr_decay": 0.95,
            "lr_halve_every": 5,
            "lr_halving": "instead",
            "weight_decay": 0.0,
            "amsgrad": True,
            "batch_clips": 256,
        },
        "loss": {"mpjpe": 1.0},
        "eval": {"zero_root": True},
    },
}
"""Reference optimisation recipe per backbone. A backbone without an entry uses MixSTE's."""

GRADIENT_QUIRK_BACKBONES = ("mixste",)
"""Backbones whose reference training script scales every gradient by the loss (MixSTE's calls
``loss.backward(loss.detach())``); ``optim.scale_grad_by_loss`` reproduces it, which bench's reference
protocol turns on for these backbones only."""
