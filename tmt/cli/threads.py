"""``--threads`` for the commands that run a model: one option, one check, one rule (torch's default: a thread
per core, unless told otherwise)."""

from __future__ import annotations

import argparse

from tmt.errors import ConfigError


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, one per core)")


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op threads when ``--threads`` was given; refuse a count below 1."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads: must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
