"""Command-line values shared by ``bench run``, ``report`` and ``search``: ``--set PATH=VALUE`` and
``--only AXIS=V1,V2``, parsed once into plain dicts (values as YAML scalars), and the W&B options, turned into
one :class:`bench.tracking.Tracking`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.tracking import MODES, Tracking, default_mode
from tmt.errors import TmtError


def parse_only(items: Sequence[str]) -> dict[str, list[object]]:
    """``["model.depth=4,6"]`` -> ``{"model.depth": [4, 6]}`` (values parsed as YAML scalars)."""
    import yaml

    only: dict[str, list[object]] = {}
    for item in items:
        axis, sep, text = item.partition("=")
        if not sep or not axis.strip() or not text.strip():
            raise TmtError(f"--only: expected AXIS=V1,V2 (e.g. model.depth=4,6), got {item!r}")
        if axis.strip() in only:
            raise TmtError(f"--only {axis.strip()}: given twice; list every value once: AXIS=V1,V2")
        only[axis.strip()] = [yaml.safe_load(v) for v in text.split(",")]
    return only


def parse_settings(items: Sequence[str]) -> dict[str, object]:
    """``["train.device=cuda", "optim.epochs=3"]`` -> ``{"train.device": "cuda", "optim.epochs": 3}``."""
    import yaml

    settings: dict[str, object] = {}
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise TmtError(f"--set: expected PATH=VALUE (e.g. train.device=cuda), got {item!r}")
        if path.strip() in settings:
            raise TmtError(f"--set {path.strip()}: given twice; which value would win is not obvious")
        try:
            settings[path.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise TmtError(f"--set {path.strip()}: {text!r} is not a YAML value") from None
    return settings


def add_wandb_options(p: argparse.ArgumentParser) -> None:
    """W&B options of ``run`` and ``search``."""
    p.add_argument(
        "--wandb",
        choices=MODES,
        default=None,
        help="W&B mirror of each cell (default: $WANDB_MODE, else offline: every cell is logged to ./wandb/ "
        "for a later `wandb sync wandb/`; disabled logs nothing, online uploads as it runs)",
    )
    p.add_argument(
        "--wandb-log-every",
        type=int,
        default=0,
        metavar="N",
        help="also log the training losses every N updates (default: 0, per epoch only)",
    )
    p.add_argument(
        "--wandb-log-model",
        action="store_true",
        help="upload each finished cell's evaluated weights as a W&B model artifact",
    )


def tracking_from_args(args: argparse.Namespace, variant: str = "") -> Tracking:
    """The :class:`bench.tracking.Tracking` the command line asks for; ``variant`` is the expansion's
    (:attr:`bench.study.Expansion.variant`), which names the cells' W&B group as it names their archive."""
    try:
        return Tracking(
            mode=args.wandb or default_mode(),
            variant=variant,
            log_every=args.wandb_log_every,
            log_model=args.wandb_log_model,
        )
    except ValueError as err:
        raise TmtError(str(err)) from None
