"""The code revision a result was produced with (``git rev-parse HEAD`` of the checkout), which every
experiment's record states (:func:`tmt.training.experiment.environment`)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

CODE_PATHS = (":/tmt", ":/bench")
"""The code that produces results (this package, and bench, which runs its studies); edits elsewhere (reports,
docs, studies: a result records its own config) do not make a revision "uncommitted"."""


def code_revision(root: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the checkout (``+ uncommitted changes`` when tracked files of ``tmt/`` or
    ``bench/`` differ from it)."""
    cwd = root or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", *CODE_PATHS], cwd=cwd, capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty.returncode == 1 else "") if head else "unknown"


@functools.cache
def process_revision() -> str:
    """The revision this process's code came from, read once (the files may change while it runs)."""
    return code_revision()
