"""Reports: the paper's tables beside the reproduced numbers, the paper's claims tested over seeds, figures.

Entry points: :func:`bench.report.cli.run` (``python -m bench report``) and :func:`write_report` for one study
and profile from a results DataFrame; the pieces are :func:`build_table`, :func:`evaluate_claims`,
:func:`bench.report.convergence.cell_endings` (how each trained cell ended), :func:`study_figures`,
:func:`render_report` and :func:`write_index`.
"""

from bench.report.claims import VERDICT_RULE, ClaimResult, Comparison, evaluate_claims
from bench.report.cli import write_report
from bench.report.figures import study_figures
from bench.report.index import write_index
from bench.report.markdown import ReportContext, render_report
from bench.report.tables import build_table

__all__ = [
    "VERDICT_RULE",
    "ClaimResult",
    "Comparison",
    "ReportContext",
    "build_table",
    "evaluate_claims",
    "render_report",
    "study_figures",
    "write_index",
    "write_report",
]
