"""How each trained cell ended: converged (at its validation plateau, or over its fixed budget), at a cap, or
unknown.

A cell's result records it in its ``convergence`` section (``tmt.training.convergence.convergence_summary``):
``stop_reason`` is ``plateau`` (converged) or the cap that ended the run (``epochs``, ``updates``,
``wall_time``); a run under the budget rule trains its epochs and converged when its last epochs improved the
best validation MPJPE by at most the stated amount (``tail_improvement_mm``); results written before runs
recorded it have no ``stop_reason`` and count as not converged.
Numbers of a run cut at a cap depend on where the cap was set, so the claims do not judge them (see
``claims.UNCONVERGED``) and every training report lists each cell's ending. Cells that train nothing
(``kind: complexity``, ``epochs_run`` 0: deterministic counts) have nothing to converge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.report.tables import finished

SECTION = "convergence."
CONVERGED = f"{SECTION}converged"
STOP_REASON = f"{SECTION}stop_reason"
CAPS = {"epochs": "epochs", "updates": "updates", "wall_time": "wall time"}
"""stop_reason of a capped run -> the cap's name in a report."""
FIELDS = (
    "converged",
    "stop_reason",
    "converged_epoch",
    "converged_updates",
    "converged_time_s",
    "stopped_epoch",
    "tail_improvement_mm",
)
"""The ``convergence`` fields a report's CSV carries per cell."""
UNKNOWN = "unknown (the result records no convergence)"


def trained(frame: pd.DataFrame) -> pd.Series:
    """False for the cells that train nothing (complexity cells: ``kind`` complexity or ``epochs_run`` 0)."""
    out = pd.Series(True, index=frame.index)
    if "kind" in frame.columns:
        out &= frame["kind"].ne("complexity")
    if "epochs_run" in frame.columns:
        out &= pd.to_numeric(frame["epochs_run"], errors="coerce").ne(0)
    return out


def converged(frame: pd.DataFrame) -> pd.Series:
    """True for the cells whose run stopped at its validation plateau; False for a cap or no record."""
    if CONVERGED not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[CONVERGED].eq(True)


def ending(cell: Mapping[str, Any]) -> str:
    """'converged at epoch e (u updates, s s)', 'stopped at the cap (epochs) after epoch e' or unknown; under
    the budget rule 'trained its budget of e epochs (u updates); the last p % improved validation by x mm'."""
    tail = cell.get(f"{SECTION}tail_improvement_mm")
    fraction = cell.get(f"{SECTION}tail_fraction")
    if fraction is not None and not pd.isna(fraction) and cell.get(STOP_REASON) == "epochs":
        verdict = "converged" if cell.get(CONVERGED) is True else "not converged"
        improved = "?" if tail is None or pd.isna(tail) else f"{float(tail):.2f}"
        return (
            f"{verdict}: trained its budget of {_count(cell.get(f'{SECTION}stopped_epoch'))} epochs "
            f"({_count(cell.get(f'{SECTION}stopped_updates'))} updates); the last {float(fraction):.0%} of "
            f"them improved the best validation MPJPE by {improved} mm"
        )
    if cell.get(CONVERGED) is True:
        updates, seconds = cell.get(f"{SECTION}converged_updates"), cell.get(f"{SECTION}converged_time_s")
        return (
            f"converged at epoch {_count(cell.get(f'{SECTION}converged_epoch'))} "
            f"({_count(updates)} updates, {_seconds(seconds)})"
        )
    reason = cell.get(STOP_REASON)
    if reason in CAPS:
        return (
            f"stopped at the cap ({CAPS[reason]}) after epoch {_count(cell.get(f'{SECTION}stopped_epoch'))}"
        )
    return UNKNOWN


def cell_endings(results: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """One row per finished cell that trained: ``cell_id``, its labels (``axes``), ``seed``, :data:`FIELDS`
    and ``ending``; empty for a study of counts."""
    done = finished(results)
    done = done[trained(done)]
    labels = [a for a in axes if a in done.columns]
    out = done.reindex(columns=["cell_id", *labels, "seed"]).reset_index(drop=True)
    records = done.to_dict("records")
    for name in FIELDS:
        out[name] = [r.get(f"{SECTION}{name}") for r in records]
    out["ending"] = [ending(r) for r in records]
    return out


def counts(endings: pd.DataFrame) -> dict[str, int]:
    """How many finished cells converged, stopped at a cap without converging, or record nothing (a cell
    that converged by the budget rule ran to its epochs cap: it counts as converged only)."""
    done = int(endings["converged"].eq(True).sum())
    capped = int((endings["stop_reason"].isin(list(CAPS)) & ~endings["converged"].eq(True)).sum())
    return {
        "cells": len(endings),
        "converged": done,
        "capped": capped,
        "unknown": len(endings) - done - capped,
    }


def summary_line(endings: pd.DataFrame) -> str:
    """E.g. '8 of 9 finished cells converged; 1 stopped at a cap (epochs 1); 0 unknown'."""
    n = counts(endings)
    caps = endings.loc[~endings["converged"].eq(True), "stop_reason"].map(CAPS).dropna().value_counts()
    by_cap = f" ({', '.join(f'{cap} {k}' for cap, k in caps.items())})" if len(caps) else ""
    return (
        f"{n['converged']} of {n['cells']} finished cells converged; {n['capped']} stopped at a cap{by_cap}; "
        f"{n['unknown']} unknown (results that record no convergence)"
    )


def unconverged_cells(cells: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """'labels, seed s: ending' of each of ``cells`` that trained and did not converge."""
    labels = [a for a in axes if a in cells.columns]
    return [
        ", ".join([*(f"{a}={cell[a]}" for a in labels), f"seed {cell.get('seed')}"]) + f": {ending(cell)}"
        for cell in cells[trained(cells) & ~converged(cells)].to_dict("records")
    ]


def _count(value: Any) -> str:
    return "?" if value is None or pd.isna(value) else f"{int(value):,}"


def _seconds(value: Any) -> str:
    return "? s" if value is None or pd.isna(value) else f"{float(value):.1f} s"
