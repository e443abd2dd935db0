"""The paper-layout table: paper value beside the reproduced mean +- std over seeds, delta, relative effects.

The result is a tidy DataFrame (one row per paper-table entry) so the same object feeds the CSV, the markdown
rendering and the claims' paper-side effects:

    <row axes...>, <column axis>, paper, mean, std, n, n_failed, n_missing, delta, rel_pct, paper_rel_pct

``delta = mean - paper``. ``rel_pct = (baseline - x) / baseline * 100`` (the paper's "improvement"
convention, e.g. Table 8) from the reproduced means, ``paper_rel_pct`` the same from the paper's values. The
baseline is the entry that differs only in the effect axis, whose value is ``layout.baseline`` ("baseline" by
default); the effect axis is the column axis when its values contain the baseline, else the first row axis
that does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics import PER_ACTION
from bench.schema import Layout
from tmt.errors import ConfigError
from tmt.skeleton import H36M_ACTIONS, joint_names

AVERAGE = "Average"
TABLE_STATS = ("paper", "mean", "std", "n", "n_failed", "n_missing", "delta", "rel_pct", "paper_rel_pct")


def norm_value(value: Any) -> float | str:
    """Comparable form of a label or a paper cell: numbers as floats ('0.80' == 0.8), blanks (None, NaN,
    empty) as ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).strip()
    if text.lower() == "nan":
        return ""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def label_key(values: Sequence[Any]) -> tuple:
    """A row's labels in comparable form (27 == 27.0, a blank label as '')."""
    return tuple(norm_value(v) for v in values)


def unique_cells(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: a cell shared by two grid blocks (same id) is one experiment, counted once."""
    if "cell_id" not in results.columns:
        return results.reset_index(drop=True)
    return results.drop_duplicates("cell_id").reset_index(drop=True)


def finished(results: pd.DataFrame) -> pd.DataFrame:
    """The finished cells, each once (none when the frame records no status)."""
    cells = unique_cells(results)
    return cells[cells["status"] == "done"] if "status" in cells.columns else cells.iloc[0:0]


def status_counts(results: pd.DataFrame) -> dict[str, int]:
    """How many of the cells (each once) are done, failed and missing."""
    cells = unique_cells(results)
    status = cells["status"] if "status" in cells.columns else pd.Series(dtype=str)
    return {s: int((status == s).sum()) for s in ("done", "failed", "missing")}


def in_paper_units(results: pd.DataFrame, layouts: Sequence[Layout]) -> pd.DataFrame:
    """``results`` with each layout's metric multiplied by its ``paper_scale`` (parameters -> M, s -> min), so
    that tables, deltas and claims all speak the paper's units."""
    scales: dict[str, float] = {}
    for layout in layouts:
        known = scales.setdefault(layout.value_metric, layout.paper_scale)
        if known != layout.paper_scale:
            raise ConfigError(
                f"layout.paper_scale: metric {layout.value_metric!r} has two scales ({known}, {layout.paper_scale})"
            )
    scaled = results.copy()
    for metric, scale in scales.items():
        if scale == 1.0:
            continue
        columns = [c for c in scaled.columns if c == metric or c.startswith(f"{PER_ACTION}{metric}.")]
        for column in columns:
            scaled[column] = pd.to_numeric(scaled[column], errors="coerce") * scale
    return scaled


def long_values(results: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Every cell's value(s) for the layout metric: row axes, other paper-mapped axes, column value, seed,
    status, value."""
    results = unique_cells(results)
    missing = [a for a in layout.axes if a not in results.columns]
    if missing and not results.empty:
        raise ConfigError(f"layout: axes {missing} are not labels of the study's cells ({_labels(results)})")
    extra = [a for a in layout.mapped_axes if a in results.columns and a not in layout.axes]
    base = results.reindex(columns=[*layout.rows, *extra, "seed", "status"])
    if layout.per_action:
        m = layout.value_metric
        sources = {a: f"per_action.{m}.{a}" for a in H36M_ACTIONS} | {AVERAGE: m}
        parts = [base.assign(action=name, value=_column(results, col)) for name, col in sources.items()]
        return pd.concat(parts, ignore_index=True) if parts else base
    column = results[layout.columns] if layout.columns else layout.metric
    return base.assign(**{layout.column_name: column, "value": _column(results, layout.metric)})


def build_table(results: pd.DataFrame, layout: Layout, paper: pd.DataFrame | None) -> pd.DataFrame:
    """Reproduced statistics per paper-table entry, beside the paper's number and the relative effects."""
    keys = [*layout.rows, layout.column_name]
    values = long_values(results, layout)
    if values.empty:
        return pd.DataFrame(columns=[*keys, *TABLE_STATS])
    done = values[values["status"] == "done"]
    _check_separated(done, keys, layout)
    table = values[keys].drop_duplicates().reset_index(drop=True)
    stats = done.groupby(keys, sort=False, dropna=False)["value"].agg(mean="mean", std="std", n="count")
    flags = values.assign(n_failed=values["status"].eq("failed"), n_missing=values["status"].eq("missing"))
    counts = flags.groupby(keys, sort=False, dropna=False)[["n_failed", "n_missing"]].sum()
    table = table.merge(stats.reset_index(), on=keys, how="left").merge(
        counts.reset_index(), on=keys, how="left"
    )
    table["n"] = table["n"].fillna(0).astype(int)
    table["paper"] = paper_values(_with_mapped_axes(table[keys], values, keys, layout), layout, paper)
    table["delta"] = table["mean"] - table["paper"]
    axis = effect_axis(table, layout)
    table["rel_pct"], table["paper_rel_pct"] = np.nan, np.nan
    if axis is not None:
        table["rel_pct"] = relative_effect(table, keys, axis, layout.baseline, "mean")
        table["paper_rel_pct"] = relative_effect(table, keys, axis, layout.baseline, "paper")
    table.attrs.update(keys=keys, effect_axis=axis, baseline=layout.baseline)
    return table[[*keys, *TABLE_STATS]]


def _with_mapped_axes(
    entries: pd.DataFrame, values: pd.DataFrame, keys: list[str], layout: Layout
) -> pd.DataFrame:
    """Entries plus the paper-mapped axes outside the layout (e.g. a constant T), which must be constant."""
    extra = [a for a in layout.mapped_axes if a in values.columns and a not in keys]
    if not extra:
        return entries
    per_entry = values.groupby(keys, sort=False, dropna=False)[extra].nunique()
    varying = [a for a in extra if (per_entry[a] > 1).any()]
    if varying:
        raise ConfigError(f"layout.rows: {varying} vary inside one table entry; add them to layout.rows")
    firsts = values.groupby(keys, sort=False, dropna=False)[extra].first().reset_index()
    return entries.merge(firsts, on=keys, how="left").set_axis(entries.index)


def effect_axis(table: pd.DataFrame, layout: Layout) -> str | None:
    """The axis whose baseline value relative effects compare against (None: the table has no baseline)."""
    candidates = [layout.columns] if layout.columns else []
    candidates += list(layout.rows)
    for axis in candidates:
        if axis in table.columns and (table[axis].astype(str) == layout.baseline).any():
            return axis
    return None


def relative_effect(table: pd.DataFrame, keys: list[str], axis: str, baseline: str, value: str) -> pd.Series:
    """(baseline - x) / baseline * 100 per entry; the baseline is the entry differing only in ``axis``."""
    others = [k for k in keys if k != axis]
    base = table[table[axis].astype(str) == baseline][[*others, value]].rename(columns={value: "_base"})
    if others:
        merged = table[[*others, axis, value]].merge(base, on=others, how="left")
    else:
        merged = table[[axis, value]].assign(_base=base["_base"].iloc[0] if len(base) else np.nan)
    rel = (merged["_base"] - merged[value]) / merged["_base"] * 100.0
    rel[merged[axis].astype(str) == baseline] = np.nan
    return rel.set_axis(table.index)


def paper_values(entries: pd.DataFrame, layout: Layout, paper: pd.DataFrame | None) -> pd.Series:
    """The paper's number for each entry (NaN where the paper has no such row).

    An entry reads the paper rows that pass ``paper_filter``, the ``match`` of every ``paper_rows`` item whose
    labels it carries, and, for its other axes, ``paper_columns`` (values translated by ``paper_values``).
    """
    if paper is None or layout.paper_metric is None:
        return pd.Series(np.nan, index=entries.index)
    columns = dict(layout.paper_columns)
    if layout.per_action:
        columns.setdefault("action", "action")
    named = [layout.paper_metric, *columns.values(), *layout.paper_filter]
    named += [c for row in layout.paper_rows for c in row.match]
    unknown = [c for c in named if c not in paper.columns]
    if unknown:
        raise ConfigError(
            f"layout ({layout.paper or 'paper'}): {unknown} are not columns of the paper table; "
            f"allowed: {list(paper.columns)}"
        )
    normed = paper.map(norm_value)
    base = _matches(normed, layout.paper_filter)
    mapping = {a: {norm_value(k): v for k, v in vals.items()} for a, vals in layout.paper_values.items()}
    out = []
    for _, entry in entries.iterrows():
        wanted: dict[str, Any] = {}
        covered: set[str] = set()
        for row in layout.paper_rows:
            if all(norm_value(entry.get(a)) == norm_value(v) for a, v in row.labels.items()):
                wanted.update(row.match)
                covered.update(row.labels)
        for axis, col in columns.items():
            if axis in entry.index and axis not in covered:
                wanted[col] = mapping.get(axis, {}).get(norm_value(entry[axis]), entry[axis])
        found = paper.loc[base & _matches(normed, wanted), layout.paper_metric]
        out.append(_single_value(found, entry, layout))
    return pd.Series(out, index=entries.index, dtype=float)


def _matches(normed: pd.DataFrame, wanted: Mapping[str, Any]) -> pd.Series:
    mask = pd.Series(True, index=normed.index)
    for col, value in wanted.items():
        target = norm_value(value)
        mask &= normed[col].map(lambda v, t=target: v == t)
    return mask


def _single_value(found: pd.Series, entry: pd.Series, layout: Layout) -> float:
    numbers = {float(v) for v in found if norm_value(v) != ""}
    if not numbers:
        return np.nan
    if len(numbers) > 1:
        raise ConfigError(
            f"layout.paper_columns: entry {dict(entry)} matches {len(found)} paper rows with different "
            f"{layout.paper_metric} values {sorted(numbers)}; map more axes to paper columns"
        )
    return numbers.pop()


def _check_separated(done: pd.DataFrame, keys: list[str], layout: Layout) -> None:
    """Two finished cells with the same seed in one table entry means an axis is missing from the layout."""
    if done.empty:
        return
    per_seed = done.groupby([*keys, "seed"], sort=False, dropna=False).size()
    if (per_seed > 1).any():
        where = dict(zip([*keys, "seed"], per_seed[per_seed > 1].index[0], strict=True))
        raise ConfigError(
            f"layout.rows: several cells share the entry {where}; add the axis that varies between them "
            f"to layout.rows {list(layout.rows)}"
        )


def _column(results: pd.DataFrame, name: str) -> pd.Series:
    if name in results.columns:
        return pd.to_numeric(results[name], errors="coerce")
    return pd.Series(np.nan, index=results.index)


def _labels(results: pd.DataFrame) -> list[str]:
    return [c for c in results.columns if "." in c and not c.startswith(("per_action.", "convergence."))]


def per_joint_rows(results: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """One row per (finished cell, joint): the cell's labels and seed, the joint's name, its MPJPE (mm) and
    its mean ground-truth speed (mm per frame); empty when no cell recorded per-joint values."""
    cells = finished(results)
    if "per_joint_mpjpe" not in cells.columns:
        return pd.DataFrame()
    rows = []
    for _, cell in cells.iterrows():
        errors = cell["per_joint_mpjpe"]
        if not isinstance(errors, (list, tuple, np.ndarray)):
            continue
        speeds = cell.get("per_joint_speed")
        speeds = speeds if isinstance(speeds, (list, tuple, np.ndarray)) else [None] * len(errors)
        names = joint_names(str(cell.get("dataset.name")), len(errors))
        labels = {a: cell[a] for a in axes if a in cells.columns}
        for name, error, speed in zip(names, errors, speeds, strict=True):
            rows.append(
                {"cell_id": cell["cell_id"], **labels, "seed": cell["seed"], "joint": name, "mpjpe_mm": error}
                | {"speed_mm_per_frame": speed}
            )
    return pd.DataFrame(rows)
