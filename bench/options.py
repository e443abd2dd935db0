"""The command-line options that ``bench run``, ``report`` and ``search`` share, defined once: which cells
(``--profile``, ``--data``, ``--set PATH=VALUE``, and for a study's grid ``--seeds``, ``--only AXIS=V1,V2``,
``--protocol``), where results go (``--store``, ``--results``, ``--out``) and the W&B options; ``--set`` and
``--only`` parsed once into plain dicts (values as YAML scalars), the W&B options into one
:class:`bench.tracking.Tracking`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.protocol import PROTOCOLS
from bench.tracking import MODES, Tracking, default_mode
from tmt.errors import TmtError

if TYPE_CHECKING:
    from bench.study import Expansion

DEFAULT_PROFILE = "cpu"
DATA_CHOICES = ("real", "synthetic")


def add_cell_options(p: argparse.ArgumentParser, *, grid: bool = True) -> None:
    """The options that choose a study's cells; ``grid``: also those of a study's grid (``--seeds``,
    ``--only``, ``--protocol``), which a search's trials (one seed, sampled values) do not take."""
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="paper (the paper's settings, real data), cpu (scaled, synthetic data, >= 3 seeds) or smoke (a "
        "minute, CI)",
    )
    p.add_argument(
        "--data",
        choices=DATA_CHOICES,
        default=None,
        help="real data or the synthetic stand-in (default: the profile's: paper real, cpu/smoke synthetic)",
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a config field in every cell, e.g. train.device=cuda (repeatable; part of the cell ids)",
    )
    if not grid:
        return
    p.add_argument(
        "--seeds", type=int, default=None, metavar="N", help="seeds 0..N-1 (default: the profile's)"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="run (or report) only these values of a grid axis, e.g. model.depth=4 (repeatable)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="training protocol instead of the profile's: reference (no held-out validation, best test "
        "epoch, MixSTE's gradient scaling; the paper profiles' default) or honest (10 %% held out, best "
        "validation epoch, plain gradients); its cells are reported apart (+protocol=...)",
    )


def add_output_options(p: argparse.ArgumentParser, *, no_report: bool = True) -> None:
    """Where results go: the store, the results archive and the report folder (``no_report``: a command
    that reports after its work can be told not to)."""
    p.add_argument(
        "--store", type=Path, default=None, help="result store folder (default: $BENCH_STORE or ./runs)"
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="results archive folder: <study>.<profile>.jsonl per study, read before a run and written as "
        "each cell finishes",
    )
    p.add_argument("--out", type=Path, default=Path("reports"), help="report folder")
    if no_report:
        p.add_argument("--no-report", action="store_true", help="do not write the report afterwards")


def expansion_from_args(args: argparse.Namespace, path: Path, *, check_models: bool = True) -> Expansion:
    """The expansion of the study file ``path`` under the cell options of the command line."""
    from bench.loader import load_study_file
    from bench.study import expand

    return expand(
        load_study_file(path),
        str(path),
        args.profile,
        seeds=args.seeds,
        data=args.data,
        check_models=check_models,
        settings=parse_settings(args.settings),
        only=parse_only(args.only),
        protocol=args.protocol,
    )


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
    mode = args.wandb or default_mode()
    return Tracking(mode, variant, log_every=args.wandb_log_every, log_model=args.wandb_log_model)
