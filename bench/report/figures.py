"""Report figures (seaborn on matplotlib's Agg canvas): what reads better as a picture than as a table.

- per-action bars, paper vs reproduced (per-action layouts, Tables 1 / 2),
- learning curves from the per-epoch history, validation MPJPE against updates and against wall time (every
  study whose cells trained),
- the trend of a ``monotonic`` claim, e.g. the m sweep of Table 8 (metric and effect vs the swept axis),
- per-joint error vs mean joint speed with a linear fit and Pearson r (``correlation`` claims, Fig. 2).

Figures are drawn on ``matplotlib.figure.Figure`` objects with an explicit Agg canvas, never through pyplot's
global state, so reports can be written from any thread or process without a display.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report.as_run import describe
from bench.report.claims import ClaimResult, done_cells, layout_for, paper_frame, select, trend_curves
from bench.report.tables import AVERAGE, long_values, unique_cells
from bench.report.units import axis_label, metric_label, metric_unit
from bench.schema import Claim, Layout
from tmt.skeleton import joint_names

PAPER, OURS = "paper", "reproduced"
MPJPE = "mpjpe"
"""The layout metric whose paper values (mm) mark the validation-MPJPE axes of the learning curves."""
DPI = 200
"""PNG resolution: print quality at the figures' sizes; every figure is also written as SVG (vector)."""


def new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    """A grid of ``width`` x ``height`` inch axes on its own Agg canvas (no pyplot state), seaborn's grid style."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    """``path`` (PNG) and the same figure as SVG beside it, both byte-for-byte reproducible (no date, no
    matplotlib version, fixed SVG ids), so regenerating a report changes no committed file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": "tmt-bench"}):
        fig.savefig(path.with_suffix(".svg"), metadata={"Date": None, "Creator": None})
    return path


def _row_label(key: tuple, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, key, strict=True)) or "all"


def _run_line(results: pd.DataFrame, labels: dict[str, Any]) -> str:
    """A title's second line: what the cells with ``labels`` ran (empty without an as-run record)."""
    text = describe(select(unique_cells(results), labels), labels)
    return "\n" + textwrap.fill(f"run as {text}", 56) if text else ""


def per_action_figure(results: pd.DataFrame, table: pd.DataFrame, layout: Layout, path: Path) -> Path | None:
    """One bar panel per layout row: every action's paper value beside the reproduced mean (+- sd)."""
    ours = long_values(results, layout)
    ours = ours[ours["status"] == "done"].dropna(subset=["value"]).assign(source=OURS)
    paper = table.dropna(subset=["paper"]).rename(columns={"paper": "value"}).assign(source=PAPER)
    data = pd.concat([paper, ours], ignore_index=True)
    if data.empty:
        return None
    rows = list(layout.rows)
    keys = list(dict.fromkeys(map(tuple, table[rows].astype(str).to_numpy())))
    data["_row"] = list(map(tuple, data[rows].astype(str).to_numpy()))
    order = list(dict.fromkeys(table["action"]))
    fig, axes = new_figure(len(keys), 1, 12, 3.2)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        sub = data[data["_row"] == key]
        sns.barplot(
            sub,
            x="action",
            y="value",
            hue="source",
            hue_order=[PAPER, OURS],
            order=order,
            errorbar="sd",
            ax=ax,
        )
        named = dict(zip(rows, key, strict=True))
        ax.set_title(_row_label(key, rows) + _run_line(results, named), fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel(metric_label(layout.value_metric, layout.paper_scale))
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    return save_figure(fig, path)


def table_figure(results: pd.DataFrame, table: pd.DataFrame, layout: Layout, path: Path) -> Path | None:
    """The table as a picture, in its own layout: one panel per row that has reproduced cells, the table's
    columns along x; per column each seed's value (dots), their mean +- sd (bar) and the paper's value
    (a black square)."""
    col = layout.column_name
    rows = [r for r in layout.rows if r in table.columns]
    ours = long_values(results, layout)
    ours = ours[ours["status"] == "done"].dropna(subset=["value"])
    if ours.empty or col not in ours.columns:
        return None
    columns = [str(c) for c in dict.fromkeys(table[col])]
    position = {c: i for i, c in enumerate(columns)}

    def key(frame: pd.DataFrame) -> list[tuple]:
        return list(map(tuple, frame[rows].astype(str).to_numpy())) if rows else [()] * len(frame)

    ours = ours.assign(_row=key(ours), _x=ours[col].astype(str).map(position))
    paper = table.assign(_row=key(table), _x=table[col].astype(str).map(position))
    keys = list(dict.fromkeys(ours["_row"]))
    ncols = min(len(keys), 3)
    nrows = -(-len(keys) // ncols)
    fig, axes = new_figure(nrows, ncols, max(4.5, 1.1 * len(columns) + 1.5), 3.6)
    palette = sns.color_palette()
    for ax, row in zip(axes.ravel(), keys, strict=False):
        mine, theirs = ours[ours["_row"] == row], paper[paper["_row"] == row].dropna(subset=["paper"])
        jitter = (mine["seed"].rank(method="dense").to_numpy(float) - 2) * 0.06
        ax.scatter(mine["_x"] + jitter, mine["value"], s=12, color=palette[0], alpha=0.6, label="seeds")
        stats = mine.groupby("_x")["value"].agg(["mean", "std"]).fillna(0)
        ax.errorbar(
            stats.index + 0.18, stats["mean"], yerr=stats["std"], fmt="o", color=palette[0], capsize=3,
            label=f"{OURS} (mean ± sd)",
        )  # fmt: skip
        if len(theirs):
            ax.scatter(theirs["_x"] - 0.18, theirs["paper"], marker="s", color="black", s=24, label=PAPER)
        ax.set_xticks(range(len(columns)), columns, rotation=30 if len(columns) > 4 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(columns) - 0.4)
        ax.set(xlabel=axis_label(col), ylabel=metric_label(layout.value_metric, layout.paper_scale))
        named = dict(zip(rows, row, strict=True))
        ax.set_title(textwrap.fill(_row_label(row, rows), 48) + _run_line(results, named), fontsize=9)
    for ax in axes.ravel()[len(keys) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    return save_figure(fig, path)


def learning_curves(results: pd.DataFrame, hue: str | None, rows: Sequence[str]) -> pd.DataFrame:
    """Per (panel row, ``hue`` value, epoch) over the finished cells' histories: the seed-mean updates, wall
    time (min) and validation MPJPE, its min and max over seeds, and the number of seeds."""
    records = []
    for cell in unique_cells(results).to_dict("records"):
        history = cell.get("history")
        if cell.get("status") != "done" or not isinstance(history, list):
            continue
        for rec in history:
            if rec.get("val_mpjpe") is None or rec.get("wall_time_s") is None:
                continue
            records.append(
                {
                    "_row": _row_label(tuple(cell.get(r) for r in rows), rows),
                    "_hue": str(cell.get(hue)) if hue else "all cells",
                    "epoch": rec.get("epoch"),
                    "seed": cell.get("seed"),
                    "updates": rec.get("updates", np.nan),
                    "minutes": rec["wall_time_s"] / 60.0,
                    "val": rec["val_mpjpe"],
                }
            )
    if not records:
        return pd.DataFrame()
    data = pd.DataFrame(records).astype({"updates": float, "val": float})
    return (
        data.groupby(["_row", "_hue", "epoch"], sort=False)
        .agg(
            updates=("updates", "mean"),
            minutes=("minutes", "mean"),
            val=("val", "mean"),
            lo=("val", "min"),
            hi=("val", "max"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )


def learning_curve_figure(
    results: pd.DataFrame,
    hue: str | None,
    rows: Sequence[str],
    reference: tuple[Layout, pd.DataFrame] | None,
    path: Path,
) -> Path | None:
    """Validation MPJPE against updates (left) and wall time (right), one line per value of ``hue``: the mean
    over the seeds still training at each epoch, a band from their min to max, one row of panels per value of
    ``rows``. ``reference`` (an MPJPE layout and its table) adds the paper's number of each line dashed."""
    curves = learning_curves(results, hue, rows)
    if curves.empty:
        return None
    panels = list(dict.fromkeys(curves["_row"]))
    named_rows = {
        _row_label(tuple(cell.get(r) for r in rows), rows): {r: cell.get(r) for r in rows}
        for cell in unique_cells(results).to_dict("records")
    }
    values = list(dict.fromkeys(curves["_hue"]))
    colours = dict(zip(values, sns.color_palette(n_colors=len(values)), strict=True))
    fig, axes = new_figure(len(panels), 2, 5.0, 3.0)
    for ax_row, panel in zip(axes, panels, strict=True):
        for value, colour in colours.items():
            line = curves[(curves["_row"] == panel) & (curves["_hue"] == value)].sort_values("epoch")
            if line.empty:
                continue
            named = named_rows[panel] | ({hue: value} if hue else {})
            paper = paper_mpjpe(reference, named)
            label = f"{value} (n={int(line['seeds'].max())})"
            for ax, x in zip(ax_row, ("updates", "minutes"), strict=True):
                ax.plot(line[x], line["val"], color=colour, marker="o", markersize=2.5, lw=1.2, label=label)
                ax.fill_between(line[x], line["lo"], line["hi"], color=colour, alpha=0.2, lw=0)
                if paper is not None:
                    ax.axhline(paper, color=colour, ls="--", lw=1, label=f"{value}: {PAPER} {paper:g} mm")
        for ax, xlabel in zip(ax_row, ("updates", "wall time (min)"), strict=True):
            ax.set(xlabel=xlabel, ylabel=metric_label("val_mpjpe"))
            ax.set_title(panel + _run_line(results, named_rows[panel]), fontsize=9)
        ax_row[-1].legend(
            title=hue, fontsize=7, title_fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5)
        )
    return save_figure(fig, path)


def paper_mpjpe(reference: tuple[Layout, pd.DataFrame] | None, named: dict[str, Any]) -> float | None:
    """The paper's MPJPE of the one table entry with these labels (None: no such entry or several)."""
    if reference is None:
        return None
    layout, table = reference
    entries = table[table["action"] == AVERAGE] if layout.per_action else table
    values = select(entries, named)["paper"].dropna().unique()
    return float(values[0]) if len(values) == 1 else None


def trend_figure(
    results: pd.DataFrame,
    claim: Claim,
    axes_names: Sequence[str],
    layout: Layout,
    table: pd.DataFrame | None,
    path: Path,
) -> Path | None:
    """A monotonic claim's sweep, reproduced mean +- sd over seeds beside the paper's curve: the metric of
    both compared values (left, effect claims only) and the claimed quantity (right)."""
    done = done_cells(results, claim.where)
    paper = select(paper_frame(table, layout), claim.where) if table is not None else None
    curves = trend_curves(done, claim, axes_names)
    if curves.empty:
        return None
    eff = claim.effect
    fig, axes = new_figure(1, 1 if eff is None else 2, 5.5, 3.8)
    if eff is not None:
        for value in (eff.lhs, eff.rhs):
            spec = claim.model_copy(update={"metric": eff.metric, "effect": None})
            pick = {eff.over: value}
            theirs = None if paper is None else trend_curves(select(paper, pick), spec, axes_names)
            _curve(axes[0, 0], trend_curves(select(done, pick), spec, axes_names), theirs, str(value))
        axes[0, 0].set(xlabel=axis_label(claim.along), ylabel=metric_label(eff.metric, layout.paper_scale))
        axes[0, 0].legend(fontsize=8)
    ax = axes[0, -1]
    _curve(
        ax, curves, trend_curves(paper, claim, axes_names), "effect" if eff is not None else str(claim.metric)
    )
    ax.set(xlabel=axis_label(claim.along), ylabel=_quantity(claim, layout.paper_scale))
    ax.legend(fontsize=8)
    fig.suptitle(claim.text + _run_line(done, claim.where), fontsize=9)
    return save_figure(fig, path)


def _curve(ax, curves: pd.DataFrame, paper_curves: pd.DataFrame | None, label: str) -> None:
    """Seed mean +- sd as an error-bar line, the paper's curve dashed in the same colour."""
    if curves.empty:
        return
    x = curves.columns.to_numpy(float)
    mean, sd = curves.mean().to_numpy(float), curves.std().fillna(0).to_numpy(float)
    bars = ax.errorbar(x, mean, yerr=sd, marker="o", markersize=4, capsize=3, label=f"{label} ({OURS})")
    if paper_curves is not None and not paper_curves.empty:
        colour = bars.lines[0].get_color()
        px, py = paper_curves.columns.to_numpy(float), paper_curves.iloc[0].to_numpy(float)
        ax.plot(px, py, "--", marker="s", markersize=3, color=colour, alpha=0.7, label=f"{label} ({PAPER})")


def _quantity(claim: Claim, scale: float = 1.0) -> str:
    """The trend's y axis in words: the metric with its unit, or the effect's formula with its unit."""
    eff = claim.effect
    if eff is None:
        return metric_label(str(claim.metric), scale)
    unit = metric_unit(eff.metric, scale)
    formulas = {
        "relative": f"({eff.lhs} - {eff.rhs}) / {eff.lhs} (%)",
        "absolute": f"{eff.lhs} - {eff.rhs}" + (f" ({unit})" if unit else ""),
        "ratio": f"{eff.lhs} / {eff.rhs}",
    }
    return f"{metric_label(eff.metric, scale).split(' (')[0]}: {formulas[eff.kind]}"


def joint_speed_figure(results: pd.DataFrame, claim: Claim, result: ClaimResult, path: Path) -> Path | None:
    """Per-joint error vs mean joint speed (averaged over cells) with a least-squares line and Pearson r."""
    done = done_cells(results, claim.where)
    arrays = {}
    for name in (claim.x, claim.y):
        values = [
            np.asarray(v, float) for v in done.get(name, []) if isinstance(v, (list, tuple, np.ndarray))
        ]
        if not values or len({v.shape for v in values}) != 1:
            return None
        arrays[name] = np.stack(values).mean(axis=0)
    x, y = arrays[claim.x], arrays[claim.y]
    if x.shape != y.shape:
        return None
    keep = y != 0  # the root of a root-relative pose, as in the claim
    names = np.asarray(joint_names("h36m", len(x)))
    fig, axes = new_figure(1, 1, 6, 4.5)
    ax = axes[0, 0]
    sns.regplot(x=x[keep], y=y[keep], ax=ax, ci=None, scatter_kws={"s": 25}, line_kws={"lw": 1.5})
    for xi, yi, name in zip(x[keep], y[keep], names[keep], strict=True):
        ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    r = (
        f"r = {result.effect:.2f}, Holm p = {result.p_adjusted:.2g}"
        if result.p_adjusted is not None
        else "r undefined"
    )
    ax.set_title(f"{claim.y} vs {claim.x} ({r}, {result.verdict})" + _run_line(done, claim.where), fontsize=9)
    ax.set(xlabel=metric_label(str(claim.x)), ylabel=metric_label(str(claim.y)))
    return save_figure(fig, path)


def variant_axis(layout: Layout, claims: Sequence[Claim], results: pd.DataFrame) -> str | None:
    """The axis whose values a study compares: the layout's columns, else the first claim's ``over``, else
    the last layout row (None when the cells do not carry it)."""
    over = next((c.over for c in claims if c.over), None)
    axis = layout.columns or over or (layout.rows[-1] if layout.rows else None)
    return axis if axis in results.columns else None


def study_figures(
    results: pd.DataFrame,
    tables: Sequence[tuple[Layout, pd.DataFrame]],
    claims: Sequence[tuple[Claim, ClaimResult]],
    axes_names: Sequence[str],
    out_dir: Path,
    stem: str,
) -> list[tuple[str, Path]]:
    """Every figure that applies to a study, written as ``out_dir/<stem>.<what>.png``.

    Returns (caption, path) pairs of the files written (a figure without data is skipped).
    """
    out: list[tuple[str, Path | None]] = []
    for i, (layout, table) in enumerate(tables):
        if layout.per_action:
            name = (layout.name or f"layout{i}") if len(tables) > 1 else "per_action"
            path = per_action_figure(results, table, layout, out_dir / f"{stem}.{name}.png")
            out.append((f"Per-action {layout.metric}: paper vs reproduced", path))
        else:
            name = f"table.{re.sub(r'[^a-z0-9]+', '_', (layout.name or str(i)).lower()).strip('_')}"
            name = name if len(tables) > 1 else "table"
            path = table_figure(results, table, layout, out_dir / f"{stem}.{name}.png")
            out.append(
                (f"{layout.name or 'The table'}: {metric_label(layout.value_metric, layout.paper_scale)}, "
                 "each seed, the mean ± sd and the paper's value", path)
            )  # fmt: skip
    if tables:
        layout = tables[0][0]
        hue = variant_axis(layout, [c for c, _ in claims], results)
        rows = [r for r in layout.rows if r != hue and r in results.columns]
        reference = next(((lay, tab) for lay, tab in tables if lay.value_metric == MPJPE), None)
        path = learning_curve_figure(results, hue, rows, reference, out_dir / f"{stem}.learning_curves.png")
        caption = (
            f"Learning curves: {metric_label('val_mpjpe')} against updates and wall time, one line per "
            f"{hue or 'study'} (mean over the seeds still training, band: their min to max)"
        )
        if reference is not None:
            caption += "; dashed: the paper's MPJPE"
        out.append((caption, path))
    for claim, result in claims:
        target = out_dir / f"{stem}.{claim.id}.png"
        if claim.test == "monotonic":
            layout, table = layout_for(claim, tables)
            out.append(
                (f"{claim.id}: {claim.text}", trend_figure(results, claim, axes_names, layout, table, target))
            )
        elif claim.test == "correlation":
            out.append((f"{claim.id}: {claim.text}", joint_speed_figure(results, claim, result, target)))
    return [(caption, path) for caption, path in out if path is not None]
