"""What ran, beside the paper's labels: a cell's labels are the paper's nominal values (``model.depth 4``), its
``run_*`` fields (``bench.cells.Cell.as_run``) what it trained (depth 2 on the synthetic small set).

A row of a table, a figure panel or a claim reads several cells; its as-run value of a field is the one value
they agree on, else "mixed". The text names the sizes in the paper's notation, then any label the profile
changed and any other field it scaled, then the data: ``d_l 2 / d_m 32 / T 9 on synthetic-small``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.cells import RUN, RUN_DATA, RUN_SCALED, SIZE_FIELDS
from bench.report.tables import label_key, norm_value

MIXED = "mixed"
AT_PAPER_SETTING = "delta_at_paper_setting"
"""The table column that says whether a row ran at the paper's sizes on the paper's data (so that its delta
compares the reproduction with the paper, not two settings)."""
PAPER_NAMES = {"model.depth": "d_l", "model.dim": "d_m", "model.frames": "T"}
DATA_NAMES = {"h36m": "Human3.6M", "mpi_inf_3dhp": "MPI-INF-3DHP"}
NO_DATA = "none"
"""``run_data`` of a count, which reads no data."""


def run_fields(cells: pd.DataFrame, rows: Sequence[str]) -> list[str]:
    """The ``run_*`` columns that describe ``cells`` grouped by the label axes ``rows``: the model sizes, the
    rows' own fields, every other field a profile scaled (not a label), then the data; none when the cells
    carry no as-run record."""
    present = [c for c in cells.columns if c.startswith(RUN) and c not in (RUN_DATA, RUN_SCALED)]
    other = [c for c in present if c.removeprefix(RUN) not in cells.columns]  # not a label: scaled
    wanted = [f"{RUN}{s}" for s in SIZE_FIELDS] + [f"{RUN}{r}" for r in rows] + other
    fields = [c for c in dict.fromkeys(wanted) if c in present]
    return fields + ([RUN_DATA] if RUN_DATA in cells.columns else [])


def agreed(cells: pd.DataFrame, fields: Sequence[str]) -> dict[str, Any]:
    """Each field's one value over ``cells`` ("mixed" where they differ, None where none is recorded)."""
    out: dict[str, Any] = {}
    for f in fields:
        values = {norm_value(v): v for v in cells[f] if norm_value(v) != ""} if f in cells.columns else {}
        out[f] = next(iter(values.values())) if len(values) == 1 else (MIXED if values else None)
    return out


def at_paper_setting(cells: pd.DataFrame) -> bool | None:
    """Whether every cell ran at the paper's sizes on real data (or counted, reading none): its profile scaled
    nothing. None when the cells carry no as-run record."""
    if RUN_DATA not in cells.columns or RUN_SCALED not in cells.columns or cells.empty:
        return None
    synthetic = cells[RUN_DATA].astype(str).str.startswith("synthetic")
    scaled = cells[RUN_SCALED].fillna("").astype(str) != ""
    return not bool(synthetic.any() or scaled.any())


def run_text(values: Mapping[str, Any], labels: Mapping[str, Any]) -> str:
    """``values`` (``agreed``) as one line: the sizes in the paper's notation, a label's field only where it
    differs from the label, other fields always (by their last name: ``lr``), then the data; empty without a
    record."""
    parts = []
    for column, value in values.items():
        field = column.removeprefix(RUN)
        if column == RUN_DATA or value is None:
            continue
        if field in labels and field not in PAPER_NAMES and norm_value(labels[field]) == norm_value(value):
            continue
        parts.append(f"{PAPER_NAMES.get(field, field.rpartition('.')[2])} {plain_number(value)}")
    data = values.get(RUN_DATA)
    text = " / ".join(parts)
    if data not in (None, NO_DATA):
        text += f" on {DATA_NAMES.get(str(data), data)}"
    return text.strip()


def describe(cells: pd.DataFrame, labels: Mapping[str, Any]) -> str:
    """What ``cells`` (those of one row or panel, named by ``labels``) ran, as :func:`run_text`."""
    return run_text(agreed(cells, run_fields(cells, list(labels))), labels)


def with_run_columns(table: pd.DataFrame, results: pd.DataFrame, rows: Sequence[str]) -> pd.DataFrame:
    """``table`` (one row per entry of a layout) with each layout row's as-run fields and
    ``delta_at_paper_setting``, from that row's cells; unchanged when the cells carry no as-run record."""
    fields = run_fields(results, rows)
    if not fields or table.empty:
        return table
    labels = [label_key(v) for v in results[list(rows)].to_numpy().tolist()]
    entries = [label_key(v) for v in table[list(rows)].to_numpy().tolist()]
    found: dict[tuple, dict[str, Any]] = {}
    for key in dict.fromkeys(entries):
        cells = results.loc[np.array([k == key for k in labels], dtype=bool)]
        found[key] = agreed(cells, fields) | {AT_PAPER_SETTING: at_paper_setting(cells)}
    out = table.copy()
    for column in [*fields, AT_PAPER_SETTING]:
        out[column] = [found[key][column] for key in entries]
    return out


def plain_number(value: Any) -> str:
    """27 for 27.0, 0.002 for 2e-3 as written, words as they are, "-" for none: a setting's value as a study
    writes it (a run's field, a search's parameter)."""
    number = norm_value(value)
    if number == "":
        return "-"
    if isinstance(number, float):
        return str(int(number)) if number.is_integer() else f"{number:g}"
    return str(value)
