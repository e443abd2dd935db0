"""``python -m tmt complexity``: parameters and FLOPs of a backbone (the paper's Table 4 and a full count)."""

from __future__ import annotations

import argparse

from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.complexity import measure_backbone

SIZE_OPTIONS = ("frames", "in_chans", "dim", "depth")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "complexity",
        formatter_class=DefaultsHelpFormatter,
        help="parameters and FLOPs of a backbone",
        description="Parameter count and FLOPs per clip and per output frame, in the paper's convention "
        "(2 x thop MACs, attention matmuls excluded) and as a full count including attention. "
        "Unset sizes take the backbone's defaults. Counting runs on torch's meta device (no arithmetic), "
        "so it takes milliseconds and needs no --threads.",
    )
    unset = "(default: the backbone's own)"
    parser.add_argument("--model", default="mixste", help="registered backbone name")
    parser.add_argument("--frames", type=int, help=f"frames per clip, T {unset}")
    parser.add_argument(
        "--in-chans", type=int, help=f"input channels per joint (2: 2D, 5: TMT's 2D + 3) {unset}"
    )
    parser.add_argument("--dim", type=int, help=f"model width d_m {unset}")
    parser.add_argument("--depth", type=int, help=f"number of blocks d_l {unset}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sizes = {name: getattr(args, name) for name in SIZE_OPTIONS if getattr(args, name) is not None}
    print(measure_backbone(args.model, **sizes).table())
    return 0
