"""The paper's numbers, as printed: one CSV per table (transcription notes in NOTES.md beside them).

Every column is read as a string so that printed precision survives (``44.0``, ``0.00004``); callers convert
what they compare. The files ship inside the package, so reports never depend on a checkout layout.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from tmt.errors import ConfigError


def paper_tables() -> list[str]:
    """Names of the shipped tables (file stems), e.g. ``table7`` or ``table2_p1``."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(".csv") for f in files if f.name.endswith(".csv"))


def load_paper_table(name: str) -> pd.DataFrame:
    """The paper's table ``name`` (e.g. ``"table7"``), every value the printed string ("" if blank)."""
    path = resources.files(__name__).joinpath(f"{name}.csv")
    if not path.is_file():
        raise ConfigError(f"paper table {name!r} does not exist; available: {', '.join(paper_tables())}")
    with path.open(encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)
