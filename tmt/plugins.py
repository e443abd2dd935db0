"""User code named on the command line (``--import MODULE``): modules that register backbones (or anything
else) before a command reads its configuration.

Code runs only when the user names it here or installs a package that declares it (the ``tmt.backbones``
entry points, loaded by :mod:`tmt.models.registry`); a study or config file can name a registered backbone
but never a module to import. Worker processes re-import the same modules (:func:`imported_modules`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tmt.errors import ConfigError

_imported: list[str] = []


def add_import_option(parser: argparse.ArgumentParser) -> None:
    """The ``--import MODULE`` option (repeatable) of every ``tmt`` and ``bench`` sub-command."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this Python module first, e.g. one that registers a backbone with "
        "tmt.models.register_model (repeatable; looked up in the working directory, then installed packages)",
    )


def import_modules(names: Sequence[str]) -> None:
    """Import each module once, from the working directory first (as ``python -m`` would), then the
    installed packages. A missing module or one that fails to import is a ConfigError naming it."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for name in names:
        if name in _imported:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and (name == err.name or name.startswith(f"{err.name}.")):
                raise ConfigError(
                    f"--import: no module named {name!r} (looked in {cwd} and the installed packages)"
                ) from None
            raise ConfigError(f"--import {name}: it imports a missing module: {err}") from err
        except Exception as err:  # the user's module raised while importing
            raise ConfigError(f"--import {name}: importing it failed: {type(err).__name__}: {err}") from err
        _imported.append(name)


def imported_modules() -> tuple[str, ...]:
    """The modules this process imported through :func:`import_modules`, in order."""
    return tuple(_imported)
