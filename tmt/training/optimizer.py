"""The optimizer and its learning-rate schedule, both fixed by the backbone's recipe
(:mod:`tmt.training.defaults`)."""

from __future__ import annotations

import torch
from torch import nn

from tmt.training.config import ExperimentConfig

FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


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
