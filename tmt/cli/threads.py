"""``--threads`` for the commands that run a model: one option, one check, one rule (without it, the idle
cores this process may use: :func:`tmt.threads.default_threads`)."""

from __future__ import annotations

import argparse
import os

from tmt.errors import ConfigError

THREADS_HELP = (
    "torch intra-op threads (default: the cores of this process's CPU affinity that other work leaves idle, "
    "at least 1; $OMP_NUM_THREADS when set)"
)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op threads: ``threads``, else the idle cores of the process's affinity, unless
    ``OMP_NUM_THREADS`` is set (torch follows it; torchrun sets 1 for each of its processes); refuse a count
    below 1."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads: must be at least 1, got {threads}")
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    from tmt.threads import default_threads

    torch.set_num_threads(threads or default_threads())
