"""Each backbone's reference training recipe, used wherever a config leaves a field as ``None``.

Sources: the reference implementations' run scripts: MixSTE's (AdamW, wd 0.1, lr 4e-5 x 0.99 per epoch, 1024 frames per batch,
WMPJPE + 0.5 TC + 2.0 MPJVE), PoseFormer's (AdamW, wd 0.1, lr 1e-4 x 0.99, 512 clips, plain MPJPE) and
MHFormer's (Adam with amsgrad, lr 1e-3, after each epoch x 0.95, or x 0.5 instead after every 5th, 256 clips,
MPJPE).
"""

from __future__ import annotations

from typing import Any

from tmt.losses import DEFAULT_LOSS
from tmt.training.config import ExperimentConfig

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


def resolve_config(config: ExperimentConfig) -> ExperimentConfig:
    """Return ``config`` with every ``None`` optimisation/loss/model field set to the backbone default."""
    from tmt.models import model_defaults

    backbone = config.model.backbone
    model_kwargs = model_defaults(backbone)
    recipe = RECIPES.get(backbone, RECIPES["mixste"])

    model_updates = {
        key: model_kwargs[key]
        for key in ("depth", "dim", "heads", "drop_path")
        if getattr(config.model, key) is None and key in model_kwargs
    }
    optim = config.optim
    optim_updates = {k: v for k, v in recipe["optim"].items() if getattr(optim, k) is None}
    if optim.batch_clips is not None or optim.batch_frames is not None:
        optim_updates.pop("batch_clips", None)
        optim_updates.pop("batch_frames", None)
    if optim.batch_clips is not None:  # it overrides batch_frames: the resolved config states only what runs
        optim_updates["batch_frames"] = None
    if optim.lr_halve_every is None and "lr_halve_every" not in recipe["optim"]:
        optim_updates.pop("lr_halve_every", None)
    train_updates = {"loss": dict(recipe["loss"])} if config.train.loss is None else {}
    eval_updates = {}
    if config.eval.zero_root is None:
        eval_updates["zero_root"] = bool(recipe.get("eval", {}).get("zero_root", False))

    return config.model_copy(
        update={
            "model": config.model.model_copy(update=model_updates),
            "optim": optim.model_copy(update=optim_updates),
            "train": config.train.model_copy(update=train_updates),
            "eval": config.eval.model_copy(update=eval_updates),
        }
    )
