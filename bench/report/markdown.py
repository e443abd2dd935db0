"""Render one study's report as markdown: a header that says what ran where, the paper-layout tables, the
failed cells, how each trained cell ended (converged or capped), the claims with their verdicts, and links to
the figures."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.as_run import AT_PAPER_SETTING, run_text
from bench.report.claims import EFFECT_RULE, UNCONVERGED, VERDICT_RULE, ClaimResult, Comparison
from bench.report.convergence import FIELDS, summary_line
from bench.report.stats import SHORT
from bench.report.tables import finished, status_counts, unique_cells
from bench.report.units import metric_unit
from bench.schema import Layout

CELL_LIBRARIES = ("python", "torch", "numpy")
"""The versions every cell's result records (``tmt.training.experiment.environment``), in report order."""


@dataclass
class ReportContext:
    """What a report states about itself besides the numbers: no clock time, report machine, report-writing
    revision or library versions (the cells' own revisions and versions are listed), so the same results give
    the same report on any machine: the committed reports are regenerated from the archive without a change."""

    study: str
    title: str
    profile: str
    source: str = ""
    paper: str | None = None
    description: str = ""
    data: str = ""
    seeds: list[int] = field(default_factory=list)
    protocol: str = ""
    """The training protocol's description (bench/protocol.py); empty: the profile names none."""
    recipes: dict[str, list[str]] = field(default_factory=dict)
    """Backbone -> the distinct training recipes its cells ran (stated with the protocol)."""
    paper_data: str = "Human3.6M"
    """The data the paper's numbers were measured on."""


# --- numbers --------------------------------------------------------------------------------------------


def num(value: Any, digits: int = 2) -> str:
    """A table number: '-' for missing, thousands separators for big counts."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value):
        return "-"
    value = float(value)
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def signed(value: Any, digits: int = 2) -> str:
    text = num(value, digits)
    return f"+{text}" if text != "-" and float(value) > 0 else text


def _md_row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    lines += [_md_row(r) for r in rows]
    return "\n".join(lines)


# --- sections -------------------------------------------------------------------------------------------


def render_header(ctx: ReportContext, results: pd.DataFrame) -> str:
    cells = unique_cells(results)
    counted = ", ".join(f"{n} {s}" for s, n in status_counts(cells).items())
    source = f" ({ctx.source})" if ctx.source else ""
    paper = f", paper table `{ctx.paper}`" if ctx.paper else ""
    lines = [f"# {ctx.title}", "", f"Study `{ctx.study}`{source}, profile **{ctx.profile}**{paper}.", ""]
    if ctx.description:
        lines += [ctx.description.strip(), ""]
    seeds = ", ".join(map(str, ctx.seeds)) or "-"
    lines += [
        f"- **Profile:** {ctx.profile} ({len(ctx.seeds)} seed{'s' * (len(ctx.seeds) != 1)}: {seeds})",
        f"- **Dataset:** {_dataset(ctx, cells)}",
    ]
    if ctx.protocol:
        lines.append(f"- **Protocol:** {ctx.protocol}")
        for backbone, recipes in ctx.recipes.items():
            lines.append(f"- **Recipe ({backbone}):** {'; '.join(recipes)}")
    lines += [
        f"- **Cells:** {len(cells)} ({counted})",
        f"- **Cells ran on:** {_ran_on(cells)}",
        f"- **Cells' code revisions:** {_cell_revisions(cells)}",
        f"- **Libraries:** {_libraries(cells)}",
    ]
    return "\n".join(lines)


def _dataset(ctx: ReportContext, cells: pd.DataFrame) -> str:
    found = []
    if "dataset.name" in cells.columns:
        done = finished(cells)
        cols = [c for c in ("dataset.name", "dataset.keypoints", "dataset.source") if c in done.columns]
        for values in done[cols].drop_duplicates().itertuples(index=False):
            found.append(" / ".join(str(v) for v in values if pd.notna(v)))
    text = f"{ctx.data} data" if ctx.data else ""
    if found:
        text += ("; " if text else "") + "cells read " + "; ".join(found)
    return text or "unknown"


def _ran_on(cells: pd.DataFrame) -> str:
    """The distinct machines the finished cells recorded (platform, CPU, threads, GPU, torch)."""
    done = finished(cells)
    env = [c for c in done.columns if c.startswith("environment.") and c != REVISION]
    if not env or done.empty:
        return "unknown (no finished cell)"
    parts = []
    for record in done[env].drop_duplicates().to_dict("records"):
        get = {k.removeprefix("environment."): v for k, v in record.items() if not _missing(v)}.get
        text = f"{get('platform', '?')}, {get('processor', '?')}"
        text += f", {int(get('threads'))} torch threads" if get("threads") is not None else ""
        text += f", GPU {get('cuda')}" if get("cuda") else ", no GPU"
        text += f", torch {get('torch')}" if get("torch") else ""
        parts.append(text)
    return "; ".join(parts)


REVISION = "environment.code_revision"


def _cell_revisions(cells: pd.DataFrame) -> str:
    """How many finished cells each code revision produced (cells record it since the runner does)."""
    done = finished(cells)
    if done.empty:
        return "none (no finished cell)"
    revisions = done[REVISION] if REVISION in done.columns else pd.Series("not recorded", index=done.index)
    counts = revisions.fillna("not recorded").value_counts()
    return ", ".join(
        f"`{rev[:12]}`{rev[40:]} ({n})" if len(rev) >= 40 else f"{rev} ({n})" for rev, n in counts.items()
    )


def _libraries(cells: pd.DataFrame) -> str:
    """The library versions the finished cells ran with, as each result records them (several versions of
    one library separated by " / "), never those of the process writing the report: the numbers are the
    cells', and a report must not change when it is regenerated with other versions installed."""
    done = finished(cells)
    parts = []
    for name in CELL_LIBRARIES:
        column = f"environment.{name}"
        found = done[column].dropna().astype(str).unique() if column in done.columns else []
        if len(found):
            parts.append(f"{name} {' / '.join(found)}")
    return ", ".join(parts) or "not recorded (no finished cell)"


OTHER_SETTING = "†"
"""Marks the delta of a row that ran at other sizes or on other data than the paper's number."""


def render_table(table: pd.DataFrame, layout: Layout) -> str:
    """The paper's layout, each row stacked as paper / reproduced / delta (/ relative effects); with the
    cells' as-run record (``as_run.with_run_columns``) a "run as" column beside the paper's row labels, and
    the delta of a row that ran at another setting than its paper value marked."""
    col = layout.column_name
    rows = list(layout.rows)
    columns = list(dict.fromkeys(table[col]))
    baseline = table.attrs.get("baseline", layout.baseline)
    as_run = AT_PAPER_SETTING in table.columns
    lines = [
        ("paper", lambda r: paper_num(r["paper"])),
        ("reproduced", _ours),
        ("delta", lambda r: signed(r["delta"])),
    ]
    effect_lines = [
        (f"vs {baseline} %, reproduced", lambda r: signed(r["rel_pct"])),
        (f"vs {baseline} %, paper", lambda r: signed(r["paper_rel_pct"])),
    ]
    out = []
    for key, grp in table.groupby(rows, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        records = grp.to_dict("records")
        by_col = dict(zip(grp[col], records, strict=True))
        has_effect = grp["rel_pct"].notna().any() or grp["paper_rel_pct"].notna().any()
        run = [run_text(_run_values(records[0]), dict(zip(rows, key, strict=True)))] if as_run else []
        other = as_run and _elsewhere(records[0][AT_PAPER_SETTING]) and grp["paper"].notna().any()
        for i, (label, fmt) in enumerate(lines + (effect_lines if has_effect else [])):
            first = [*(str(k) for k in key), *run] if i == 0 else [""] * (len(rows) + len(run))
            label = f"{label} {OTHER_SETTING}" if label == "delta" and other else label
            out.append([*first, label, *(fmt(by_col[c]) if c in by_col else "" for c in columns)])
    return md_table([*rows, *(["run as"] if as_run else []), "", *map(str, columns)], out)


def _run_values(record: dict[str, Any]) -> dict[str, Any]:
    """A table entry's as-run fields (``run_*``), as ``as_run.run_text`` reads them."""
    return {k: (None if _missing(v) else v) for k, v in record.items() if k.startswith("run_")}


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a value a record does not have."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _elsewhere(at_paper_setting: Any) -> bool:
    """A row's ``delta_at_paper_setting`` says it ran at another setting (unknown is not marked)."""
    return not _missing(at_paper_setting) and not at_paper_setting


def other_setting_note(tables: Sequence[tuple[Layout, pd.DataFrame]], paper_data: str) -> str:
    """The footnote of a marked delta, when a row of ``tables`` with a paper value ran at another setting."""
    marked = any(
        AT_PAPER_SETTING in t.columns and (t[AT_PAPER_SETTING].map(_elsewhere) & t["paper"].notna()).any()
        for _, t in tables
    )
    if not marked:
        return ""
    return (
        f"{OTHER_SETTING} The paper's value is at the paper's sizes on {paper_data}; this row ran as its "
        '"run as" says (labels: the paper\'s row), so its delta compares two settings, not the method. The '
        "claims compare cells of one setting with each other."
    )


def _relative_rule(table: pd.DataFrame) -> str:
    """How to read the "vs <baseline> %" lines, when the table has them."""
    baseline = table.attrs.get("baseline")
    if not len(table) or not (table["rel_pct"].notna().any() or table["paper_rel_pct"].notna().any()):
        return ""
    return (
        f"vs {baseline} % = ({baseline} - value) / {baseline} x 100, against the {baseline} entry that differs "
        f"only in `{table.attrs.get('effect_axis')}`: positive means lower than {baseline} (the paper's "
        '"improvement"). '
    )


def _run_rule(table: pd.DataFrame) -> str:
    """How to read the "run as" column, when the table has it."""
    if AT_PAPER_SETTING not in table.columns:
        return ""
    return (
        "The row labels are the paper's; run as = what the row's cells trained (d_l depth, d_m width, T frames, "
        'and any other field the profile changed; "mixed" where the cells differ) and the data they read. '
    )


def paper_num(value: Any) -> str:
    """A paper number as printed (no padding to a fixed number of decimals)."""
    return "-" if value is None or pd.isna(value) else f"{float(value):g}"


def _ours(r: dict[str, Any]) -> str:
    n = int(r["n"])
    text = "-" if n == 0 else num(r["mean"]) + ("" if n < 2 else f" ± {num(r['std'])}")
    notes = [f"n={n}"]
    notes += [f"{int(r[k])} {w}" for k, w in (("n_failed", "failed"), ("n_missing", "missing")) if r[k]]
    return f"{text} ({', '.join(notes)})"


def render_failures(results: pd.DataFrame, axes: Sequence[str]) -> str:
    """Failed cells with their reason; cells not run yet as a count."""
    cells = unique_cells(results)
    if "status" not in cells.columns:
        return "No cells."
    failed = cells[cells["status"] == "failed"]
    missing = cells[cells["status"] == "missing"]
    lines = []
    if failed.empty:
        lines.append("No failed cells.")
    else:
        rows = []
        for _, cell in failed.iterrows():
            labels = ", ".join(f"{a}={cell[a]}" for a in axes if a in cell.index)
            reason = str(cell.get("failure") or "unknown").strip().splitlines()
            rows.append(
                [f"`{cell['cell_id']}`", labels, cell.get("seed"), reason[0] if reason else "unknown"]
            )
        lines.append(md_table(["cell", "labels", "seed", "reason"], rows))
    if len(missing):
        lines += ["", f"{len(missing)} cell(s) not run yet (missing from the store)."]
    return "\n".join(lines)


def render_convergence(endings: pd.DataFrame, csv_name: str) -> str:
    """How each finished cell's training ended (``convergence.cell_endings``), after a one-line count."""
    labels = [c for c in endings.columns if c not in ("cell_id", "seed", "ending", *FIELDS)]
    rows = [
        [f"`{e['cell_id']}`", *(e[a] for a in labels), e["seed"], e["ending"]] for _, e in endings.iterrows()
    ]
    return "\n".join(
        [
            f"{summary_line(endings)}. Claims do not judge cells that did not converge: a comparison reading "
            f"one is **{UNCONVERGED}**. The numbers per cell are in [{csv_name}]({csv_name}).",
            "",
            md_table(["cell", *labels, "seed", "training ended"], rows),
        ]
    )


def render_claims(claims: Sequence[ClaimResult], csv_name: str, paper_elsewhere: str = "") -> str:
    """Summary table of every claim, the verdict rule, then each claim's detail and comparisons; every
    number is also in ``csv_name``. ``paper_elsewhere``: the data of the paper's numbers, when the cells ran
    at another setting (the paper's effects are then the paper's, not this setting's)."""
    if not claims:
        return "This study states no claims."
    header = ["claim", "text", "verdict", "effect", "paper's effect", "95% CI", "p", "Holm p", "MDE", "n"]
    rows = [
        [
            f"`{c.id}`",
            c.text + (f" (run on {c.rows_run[0]} of {c.rows_run[1]} rows)" if c.rows_run else ""),
            f"**{c.verdict}**",
            f"{num(c.effect, 3)} {c.unit}" if c.effect is not None else "-",
            *_stats(c)[1:],
        ]
        for c in claims
    ]
    parts = [
        md_table(header, rows),
        "",
        "Every claim and comparison with its interval bounds, p, Holm-adjusted p, minimum detectable effect, n "
        f"and procedure: [{csv_name}]({csv_name}).",
    ]
    if paper_elsewhere:
        parts += [
            "",
            f"The paper's effects come from the paper's numbers, at its sizes on {paper_elsewhere}; the measured "
            'ones from the cells as they ran (the tables\' "run as").',
        ]
    parts += ["", f"*Effect.* {EFFECT_RULE}", "", f"*Verdict rule.* {VERDICT_RULE}"]
    for c in claims:
        parts += ["", f"**`{c.id}`** ({c.test}; {c.procedure}): {c.detail}"]
        if len(c.components) > 1:
            comp_rows = [[k.label, k.verdict, SHORT.get(k.procedure, "-"), *_stats(k)] for k in c.components]
            comp_header = ["comparison", "verdict", "test", *header[3:]]
            parts += ["", md_table(comp_header, comp_rows)]
    return "\n".join(parts)


def _stats(k: Comparison | ClaimResult) -> list[Any]:
    """measured, paper, CI, p, Holm-adjusted p, MDE, n of a comparison or a claim, formatted."""
    ci = f"[{num(k.ci[0], 3)}, {num(k.ci[1], 3)}]" if k.ci else "-"
    return [
        num(k.effect, 3),
        num(k.paper_effect, 3),
        ci,
        _small(k.p_value),
        _small(k.p_adjusted),
        num(k.mde, 3),
        k.n,
    ]


def _small(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p < 1e-3 else f"{p:.3f}"


def render_report(
    ctx: ReportContext,
    results: pd.DataFrame,
    tables: Sequence[tuple[Layout, pd.DataFrame]],
    claims: Sequence[ClaimResult],
    figures: Sequence[tuple[str, Path]],
    axes: Sequence[str],
    out_dir: Path,
    csv_name: str,
    endings: pd.DataFrame | None = None,
) -> str:
    """The whole markdown report; figure links are relative to ``out_dir`` (where the report lives).
    ``endings`` (``convergence.cell_endings``) adds the convergence section when a finished cell trained."""
    parts = [render_header(ctx, results), ""]
    joints = ""
    if "per_joint_mpjpe" in results.columns and results["per_joint_mpjpe"].notna().any():
        name = csv_name.replace(".csv", ".joints.csv")
        joints = f"; each finished cell's per-joint MPJPE and joint speed in [{name}]({name})"
    for layout, table in tables:
        name = layout.name or layout.paper or ctx.paper or "table"
        unit = metric_unit(layout.value_metric, layout.paper_scale)
        note = other_setting_note([(layout, table)], ctx.paper_data)
        parts += [
            f"## {name}: {layout.metric}"
            + (f" (paper column `{layout.paper_metric}`)" if layout.paper_metric else ""),
            "",
            "Reproduced = mean ± sd over seeds (n = finished cells); delta = reproduced - paper"
            + (f"; values in {unit}" if unit else "")
            + f". {_relative_rule(table)}{_run_rule(table)}All numbers in [{csv_name}]({csv_name}){joints}.",
            "",
            render_table(table, layout) if len(table) else "No cells.",
            "",
            *([note, ""] if note else []),
        ]
    parts += ["## Failed cells", "", render_failures(results, axes), ""]
    if endings is not None and len(endings):
        parts += ["## Convergence", "", render_convergence(endings, csv_name), ""]
    parts += [
        "## Claims",
        "",
        render_claims(
            claims,
            csv_name.replace(".csv", ".claims.csv"),
            ctx.paper_data if other_setting_note(tables, ctx.paper_data) else "",
        ),
    ]
    if figures:
        parts += ["", "## Figures"]
        for caption, path in figures:
            link = os.path.relpath(path, out_dir)
            vector = os.path.relpath(path.with_suffix(".svg"), out_dir)
            parts += ["", f"![{caption}]({link})", "", f"*{caption}* ([SVG]({vector}))"]
    return "\n".join(parts) + "\n"
