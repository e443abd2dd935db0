"""``python -m tmt``: the library's command line (train, evaluate, lift, complexity).

Each sub-command lives in its own module exposing ``register(subparsers)``; bad input is reported as one
line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tmt.errors import TmtError
from tmt.plugins import add_import_option, import_modules

SUBCOMMANDS = ("train", "evaluate", "lift", "complexity")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tmt", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tmt.cli.{name}").register(subparsers)
    for sub in subparsers.choices.values():
        add_import_option(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import_modules(args.imports)
        return int(args.func(args) or 0)
    except TmtError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
