"""``python -m bench report STUDY... | --all``: read the store, write one report per study and profile.

Per study and profile (never mixed): ``<out>/<study>.<profile>.md``, ``.csv`` (the paper-layout tables, each
row named by its ``table``, then for a training study one row per finished cell, ``table`` = ``convergence``,
with its labels, seed and ``converged``, ``stop_reason``, ``converged_epoch``, ``converged_updates``,
``converged_time_s``, ``stopped_epoch``), ``.summary.json`` (for the index) and
``<out>/figures/<study>.<profile>.*.png``; then ``<out>/README.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.as_run import DATA_NAMES, with_run_columns
from bench.report.claims import evaluate_claims
from bench.report.convergence import cell_endings
from bench.report.figures import study_figures
from bench.report.index import STATISTICS_FORMAT, read_summary, study_summary, write_index, write_summary
from bench.report.markdown import ReportContext, render_report
from bench.report.tables import build_table, in_paper_units, per_joint_rows, status_counts
from bench.schema import Claim, Layout
from bench.store import Store
from bench.study import Expansion

FIGURES = "figures"
CONVERGENCE = "convergence"
"""The ``table`` value of the CSV rows that say how each cell's training ended."""


def write_report(
    out_dir: Path,
    ctx: ReportContext,
    results: pd.DataFrame,
    layouts: Sequence[Layout],
    claims: Sequence[Claim],
    papers: Mapping[str, pd.DataFrame],
    axes: Sequence[str],
    *,
    exact: bool = False,
    grid: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write one study's report for one profile; returns its index summary.

    ``results`` is ``Store.results`` for the study's cells under ``ctx.profile`` only; ``papers`` maps a paper
    table name (``layout.paper``) to its DataFrame; ``axes`` are the study's grid axes; ``grid`` the labels
    of every grid point (``Study.points``), so that claims name the rows this profile did not run.
    """
    if "profile" in results.columns and results["profile"].nunique() > 1:
        raise ValueError(f"{ctx.study}: results mix profiles {sorted(results['profile'].unique())}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = in_paper_units(results, layouts)
    stem = f"{ctx.study}.{ctx.profile}"
    tables = [
        (
            layout,
            with_run_columns(
                build_table(results, layout, papers.get(layout.paper or "")), results, layout.rows
            ),
        )
        for layout in layouts
    ]
    claim_results = evaluate_claims(results, claims, tables, axes, exact=exact, grid=grid)
    for old in [*(out_dir / FIGURES).glob(f"{stem}.*.png"), *(out_dir / FIGURES).glob(f"{stem}.*.svg")]:
        old.unlink()
    pairs = list(zip(claims, claim_results, strict=True))
    figures = study_figures(results, tables, pairs, axes, out_dir / FIGURES, stem)
    endings = cell_endings(results, axes)
    parts = [table.assign(table=layout.name or layout.paper or ctx.study) for layout, table in tables]
    if len(endings):
        parts.append(endings.drop(columns="ending").assign(table=CONVERGENCE))
    csv = pd.concat(parts, ignore_index=True).convert_dtypes()  # counts stay integers beside empty cells
    csv.to_csv(out_dir / f"{stem}.csv", index=False)
    claim_rows = [row for claim in claim_results for row in claim.rows()]
    if claim_rows:
        claims_csv = out_dir / f"{stem}.claims.csv"
        pd.DataFrame(claim_rows).to_csv(claims_csv, index=False, float_format=STATISTICS_FORMAT)
    joints = per_joint_rows(results, axes)
    if len(joints):
        joints.to_csv(out_dir / f"{stem}.joints.csv", index=False)
    markdown = render_report(
        ctx, results, tables, claim_results, figures, axes, out_dir, f"{stem}.csv", endings
    )
    (out_dir / f"{stem}.md").write_text(markdown, encoding="utf-8")
    summary = study_summary(ctx, results, claim_results, f"{stem}.md", endings)
    write_summary(out_dir, summary)
    return summary


def all_studies(folder: Path = Path("studies")) -> list[Path]:
    """What ``--all`` reports: the paper's tables, then its figures, then the controls; not the searches."""
    files = sorted(folder.glob("*.yaml"))
    tables = [f for f in files if f.stem.startswith("table") and "_" not in f.stem]
    figures = [f for f in files if f.stem.startswith("fig")]
    rest = [f for f in files if f not in tables + figures and not f.stem.startswith("search_")]
    return sorted(tables, key=lambda f: int(f.stem[5:])) + figures + rest


def run(args: argparse.Namespace) -> int:
    """Report each of ``args.studies`` (or, with ``args.all``, each study of ``studies/`` with a results archive
    for ``args.profile``: whatever else the store holds, ``--all`` writes what the archives hold)."""
    from bench.archive import import_archive
    from bench.options import expansion_from_args

    out_dir, store = Path(args.out), Store(args.store)
    tracking = args.wandb
    if tracking != "disabled":
        from bench.tracking import tracking_mode

        tracking = tracking_mode(tracking)
    for path in args.studies or all_studies():
        expansion = expansion_from_args(args, path, check_models=False)
        if args.all and not expansion.archive(args.results).exists():
            continue  # --all regenerates the archived reports, not those of cells other studies archived
        import_archive(expansion.archive(args.results), store, expansion.cells)
        report_expansion(expansion, store, out_dir, tracking=tracking, replace=args.replace)
    print(f"index: {write_index(out_dir)}")
    return 0


def report_expansion(
    expansion: Expansion, store: Store, out_dir: Path, *, tracking: str = "disabled", replace: bool = False
) -> dict[str, Any] | None:
    """Write the report of one expanded study from the store (the cells ``bench run`` ran, or ``bench
    report`` expanded and took from the archive); a report with fewer finished cells than the one on disk is
    kept unless ``replace``. Returns the index summary written, or None."""
    from bench.paper import load_paper_table

    study = expansion.study
    profile_name = expansion.profile + expansion.variant
    layouts = [layout.model_copy(update={"paper": layout.paper or study.paper}) for layout in study.layouts]
    papers = {name: load_paper_table(name) for name in {lay.paper for lay in layouts if lay.paper}}
    profile = study.profiles[expansion.profile]
    data = expansion.data + (f" ({profile.synthetic} synthetic set)" if expansion.data == "synthetic" else "")
    ctx = ReportContext(
        study=study.study,
        title=study.title,
        profile=profile_name,
        source=expansion.source,
        paper=study.paper,
        description=study.description,
        data=data,
        seeds=sorted({cell.seed for cell in expansion.cells}),
        paper_data=DATA_NAMES[study.requires],
        **_protocol_context(expansion),
    )
    results = store.results(expansion.cells)
    name = f"{study.study} [{profile_name}]"
    if not results["status"].isin(["done", "failed"]).any():
        print(f"{name}: no finished cell in the store or archive; no report")
        return None
    on_disk = read_summary(out_dir, study.study, profile_name)
    done = status_counts(results)["done"]
    if on_disk and on_disk["cells"]["done"] > done and not replace:
        print(
            f"{name}: kept {out_dir / on_disk['report']}: it reports {on_disk['cells']['done']} finished "
            f"cells, the store and archive hold {done}; --replace writes the emptier report anyway"
        )
        return None
    summary = write_report(
        out_dir,
        ctx,
        results,
        layouts,
        study.claims,
        papers,
        list(study.axes),
        exact=study.kind == "complexity",
        grid=pd.DataFrame(study.points()),
    )
    if tracking != "disabled":
        _log_to_wandb(
            out_dir, f"{study.study}.{profile_name}", study.study, expansion.cells, results, tracking
        )
    verdicts = ", ".join(f"{c['id']} {c['verdict']}" for c in summary["claims"]) or "no claims"
    cells, ended = summary["cells"], summary["convergence"]
    converged = f"{ended['converged']} of {ended['cells']} converged; " if ended else ""
    print(
        f"{name}: {out_dir / summary['report']} "
        f"({cells['done']} done, {cells['failed']} failed, {cells['missing']} missing; {converged}{verdicts})"
    )
    return summary


def _protocol_context(expansion: Expansion) -> dict[str, Any]:
    """The header's protocol line and each backbone's recipes, for an expansion that names a protocol."""
    from bench.protocol import DESCRIPTIONS

    if expansion.protocol is None:
        return {}
    recipes: dict[str, list[str]] = {}
    for cell in expansion.cells:
        text = cell.config.recipe_text()
        found = recipes.setdefault(cell.config.model.backbone, [])
        if text not in found:
            found.append(text)
    return {"protocol": DESCRIPTIONS[expansion.protocol], "recipes": recipes}


def _log_to_wandb(
    out_dir: Path, stem: str, study: str, cells: Sequence[Any], results: pd.DataFrame, mode: str
) -> None:
    """The report's files and its cells (with status and MPJPE) to a W&B study-level run."""
    from bench.tracking import log_report

    files = [out_dir / f"{stem}.{suffix}" for suffix in ("md", "csv", "claims.csv", "joints.csv")]
    files = [f for f in files if f.exists()] + sorted((out_dir / FIGURES).glob(f"{stem}.*"))
    table = [
        {
            "cell_id": cell.id,
            "seed": cell.seed,
            "labels": ", ".join(f"{k}={v}" for k, v in cell.labels.items()),
            "status": str(row["status"]),
            "mpjpe": float(row["mpjpe"]) if pd.notna(row.get("mpjpe")) else None,
        }
        for cell, row in zip(cells, results.to_dict("records"), strict=True)  # Store.results: a row per cell
    ]
    if log_report(study, stem.split(".", 1)[1], files, table, mode):
        print(f"{stem}: report logged to W&B ({mode})")
