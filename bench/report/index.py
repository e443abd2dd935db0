"""``reports/README.md``: one line per study with the profiles reported, cell counts, how many trained cells
converged, and claim verdicts.

Each report leaves a small ``<study>.<profile>.summary.json`` beside it; the index is rebuilt from all of
them, so reporting one study refreshes its line without re-reading the store for the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.claims import NOT_RUN, UNCONVERGED, ClaimResult
from bench.report.convergence import counts
from bench.report.markdown import ReportContext
from bench.report.tables import status_counts

SUMMARY_SUFFIX = ".summary.json"
INDEX = "README.md"
STATISTICS_FORMAT = "%.12g"
"""How the claims CSV and the summaries write a statistic: 12 significant digits. The BLAS kernel behind a
Pearson r or a p-value is chosen per CPU and changes its 16th digit; a report must not change with the
machine that writes it."""


def significant(value: float | None) -> float | None:
    """``value`` at :data:`STATISTICS_FORMAT`'s precision (None stays None)."""
    return None if value is None else float(STATISTICS_FORMAT % value)


def study_summary(
    ctx: ReportContext,
    results: pd.DataFrame,
    claims: Sequence[ClaimResult],
    report: str,
    endings: pd.DataFrame,
) -> dict[str, Any]:
    """The index's view of one report: identity, cell counts, convergence counts (``convergence.counts`` of
    ``endings``; None for a study of counts), claim verdicts, file name."""
    return {
        "study": ctx.study,
        "title": ctx.title,
        "profile": ctx.profile,
        "report": report,
        "cells": status_counts(results),
        "convergence": counts(endings) if len(endings) else None,
        "claims": [
            {"id": c.id, "verdict": c.verdict, "effect": significant(c.effect), "unit": c.unit}
            for c in claims
        ],
    }


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    path = out_dir / f"{summary['study']}.{summary['profile']}{SUMMARY_SUFFIX}"
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


UNINDEXED_PROFILES = ("smoke",)
"""CI's profile: its reports are written (and ignored by git) but not indexed beside the results."""


def load_summaries(out_dir: Path) -> list[dict[str, Any]]:
    summaries = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(out_dir.glob(f"*{SUMMARY_SUFFIX}"))
    ]
    return [s for s in summaries if s["profile"].split("+")[0] not in UNINDEXED_PROFILES]


def read_summary(out_dir: Path, study: str, profile: str) -> dict[str, Any] | None:
    """The summary of the report on disk for ``study`` and ``profile`` (with its variant), or None."""
    path = out_dir / f"{study}.{profile}{SUMMARY_SUFFIX}"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _natural(text: str) -> list[Any]:
    """table2 < table10; figures after tables."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def render_index(summaries: Sequence[dict[str, Any]]) -> str:
    by_study: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        by_study.setdefault(s["study"], []).append(s)
    lines = [
        "# Reports",
        "",
        "Written by `python -m bench report`; one line per study, one report per profile (profiles are never "
        "mixed). Cells: done / failed / missing. Converged: the finished trained cells that stopped at their "
        "validation plateau, of all finished trained cells. Verdicts (on Holm-adjusted p-values): holds, fails, "
        f"inconclusive, {UNCONVERGED} (a comparison read cells that did not converge) or {NOT_RUN} (the "
        "profile ran none of the claim's rows); the rule is stated in every report.",
        "",
        "| study | title | profiles | cells | converged | claims |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    order = sorted(by_study, key=lambda k: (not k.startswith("table"), _natural(k)))
    for study in order:
        reports = sorted(by_study[study], key=lambda s: s["profile"])
        profiles = ", ".join(f"[{s['profile']}]({s['report']})" for s in reports)
        cells = "; ".join(
            f"{s['profile']}: {s['cells']['done']} / {s['cells']['failed']} / {s['cells']['missing']}"
            for s in reports
        )
        converged = "; ".join(f"{s['profile']}: {_converged(s)}" for s in reports)
        verdicts: dict[str, list[str]] = {}
        for s in reports:
            for c in s["claims"]:
                verdicts.setdefault(c["id"], []).append(
                    c["verdict"] if len(reports) == 1 else f"{s['profile']} {c['verdict']}"
                )
        claims = "; ".join(f"`{cid}`: {', '.join(v)}" for cid, v in verdicts.items()) or "-"
        title = reports[0]["title"].replace("|", "\\|")
        lines.append(f"| {study} | {title} | {profiles} | {cells} | {converged} | {claims} |")
    return "\n".join(lines) + "\n"


def _converged(summary: dict[str, Any]) -> str:
    """'8 / 9'; '-' for a study of counts or a summary written before reports counted convergence."""
    n = summary.get("convergence")
    return f"{n['converged']} / {n['cells']}" if n else "-"


def write_index(out_dir: Path) -> Path:
    """Rebuild ``out_dir/README.md`` from every summary in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / INDEX
    path.write_text(render_index(load_summaries(out_dir)), encoding="utf-8")
    return path
