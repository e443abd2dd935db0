"""The ``--help`` layout shared by every command of ``python -m tmt``, ``python -m tmt.data`` and ``bench``.

A new user reads ``--help`` to learn what happens when an option is left out, so every option states its
default: a concrete default is appended as "(default: X)"; an option whose unset value means something
(the config file's value, the backbone's recipe) says so in its own help text, which mentions "default".
"""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append "(default: X)" to options with a concrete default whose help does not already state one;
    a repeatable option (``action="append"``, default ``[]``) gets "(default: none)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or not action.option_strings or unset:
            return text
        if action.default == []:
            return f"{text} (default: none)"
        return f"{text} (default: %(default)s)"
