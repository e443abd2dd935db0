"""Test a study's paper claims on the reproduced cells: measured effect, 95 % CI, p-value, verdict.

Every test reduces to an effect whose sign (relative to a threshold, 0 unless stated) the claim predicts.
Cells pair when they agree on every grid axis except the compared one, and on the seed.

- ``ordered`` / ``less``: for each consecutive pair (a, b) of ``order`` (a claimed lower), the paired
  difference ``b - a`` of ``metric``; claimed > 0. ``per_row: true`` tests each layout row alone as well as
  all rows pooled (rows x seeds pairs).
- ``ratio_less``: the paired ratio ``order[0] / order[1]`` of ``metric``, tested as log ratios; claimed below
  ``max``. Reported as the geometric-mean ratio with its CI.
- ``monotonic``: per seed, the curve along ``along`` of ``metric`` or of ``effect`` (relative
  ``(lhs - rhs) / lhs * 100``, absolute ``lhs - rhs`` or ratio ``lhs / rhs`` between two values of
  ``effect.over``), averaged over any other axis. The effect is Spearman's rho between ``along`` and the
  value over every (along value, seed) point; its CI and p-value come from one Fisher z statistic (the
  Bonett-Wright variance for Spearman's rho), so they agree. ``direction`` gives the claimed sign. Needs 3
  values of ``along`` and 2 seeds.
- ``correlation``: Pearson's r between the per-joint arrays ``y`` and ``x`` (default ``per_joint_mpjpe`` and
  ``per_joint_speed``) averaged over the selected cells; joints with zero error (the root of a root-relative
  pose) are left out. The sample is the joints, so one seed suffices. CI and p-value by Fisher's z against
  ``min`` (default 0); claimed r > ``min``.

Which test a comparison runs is fixed before its numbers are read (``bench.report.stats``, docs/statistics.md):
a difference or a ratio is tested by the paired t-test of its per-seed pairs when every pair shares initial
weights and batch order, else by Welch's unpaired t-test of the two groups of cells; a trend or a correlation
by one Fisher z statistic. Estimate, interval and p-value always come from that one procedure and agree; each
comparison names its procedure, and a t-test also gives its minimum detectable effect (``mde``). The p-values
of every comparison of every claim in one report are Holm-adjusted together, each distinct hypothesis once,
and the verdict reads the adjusted p (``p_adjusted``). A study of exact counts runs no test.

A comparison reads cells: both sides of its pairs, or every selected cell of a trend or a correlation. If one
of them trained but did not converge (``bench.report.convergence``), the comparison is ``unconverged``; if it
has none, it is ``not run``. A claim's rows are those of the study's grid, so a row the profile does not run
is listed as not run, and the claim says which of its rows ran.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.as_run import plain_number
from bench.report.convergence import unconverged_cells
from bench.report.stats import (
    ALPHA,
    EXACT,
    PAIRED,
    PAIRED_LOG,
    PEARSON,
    SPEARMAN,
    WELCH,
    WELCH_LOG,
    difference_test,
    fisher,
    holm,
    shares_init_and_order,
    spearman,
)
from bench.report.tables import AVERAGE, finished, label_key, norm_value, unique_cells
from bench.report.units import metric_unit
from bench.schema import Claim, Layout

HOLDS, FAILS, INCONCLUSIVE, UNCONVERGED, NOT_RUN = "holds", "fails", "inconclusive", "unconverged", "not run"

PROCEDURES = {
    "ordered": f"{PAIRED} where every pair shares initial weights and batch order, else {WELCH}",
    "less": f"{PAIRED} where every pair shares initial weights and batch order, else {WELCH}",
    "ratio_less": f"{PAIRED_LOG} where every pair shares initial weights and batch order, else {WELCH_LOG}",
    "monotonic": SPEARMAN,
    "correlation": PEARSON,
}
"""The procedure fixed in advance for each claim type; each comparison names the one it ran."""

EFFECT_RULE = (
    "What each test measures, in the unit printed beside it. An order `a < b` (`ordered`, `less`): the mean "
    "over paired cells of b - a (Welch: the mean of the b cells minus that of the a cells; the same number), "
    "so a positive effect is the claimed direction (for an error in mm, how many mm lower a is). A ratio "
    "(`ratio_less`): the geometric mean of a / b, claimed below its limit. A trend (`monotonic`): Spearman's "
    "rho along the axis, its sign the claimed direction. A correlation: Pearson's r over joints. The paper's "
    "effect is the same quantity computed from the paper's printed numbers. MDE, the minimum detectable "
    "effect: the effect a t-test of this n and this spread finds with 80 % power at alpha 0.05 (two-sided), "
    "in the effect's unit (for a ratio, the factor by which the ratio must differ from its limit); a measured "
    "effect below it is one this sample could not tell from noise."
)

VERDICT_RULE = (
    "Which test a comparison runs is fixed in advance (docs/statistics.md): a paired t-test when every pair "
    "of cells shares its initial weights and its batch order (the results record both), otherwise Welch's "
    "unpaired t-test of the two groups; for a trend or a correlation one Fisher z statistic. The p-values of "
    "every comparison of every claim in this report are Holm-adjusted together (each distinct hypothesis "
    "once: a one-row claim's row and its pooled rows, or one pair of arms in two claims, are one test; exact "
    "counts run no test and are left out). A comparison **holds** when the measured effect lies on the "
    "claimed side of its threshold (0 for a difference or a trend, 1 or `max` for a ratio, `min` for a "
    "correlation), its 95 % confidence interval lies entirely on that side and its Holm-adjusted p-value is "
    "below 0.05; it **fails** when the effect, the whole CI and adjusted p < 0.05 all point the other way; "
    "otherwise it is **inconclusive** - always so with fewer than 2 seeds (the pairs of a comparison may pool "
    "several layout rows, but their seeds must number 2 or more), or fewer than 4 joints for a correlation "
    "(its sample is the joints). The CI is that of the unadjusted test, so it clears the threshold exactly "
    "when the unadjusted p is below 0.05. A comparison without finished cells is **not run**. A comparison "
    "that reads any cell whose training did not converge (it stopped at a cap on epochs, updates or wall "
    "time, or its result records no convergence) is **unconverged** whatever its numbers say: they are "
    "shown, with the verdict they alone would give, but a number cut at a cap depends on where the cap was "
    "set, so it neither holds nor fails. A claim made of several comparisons (consecutive pairs of an order, "
    "every layout row of the study's grid) is judged on those that ran: it fails if any fails (a failure on "
    "converged cells stands), else is unconverged if any is unconverged, holds if all hold, and is "
    "inconclusive otherwise; it is not run when none ran, and says which of its rows ran. Its headline "
    "numbers are those of the first failing comparison, else the first unconverged one, else the first "
    "inconclusive one, else the weakest (largest adjusted p) holding one. Studies of deterministic counts "
    "(parameters, FLOPs: `kind: complexity`) train nothing and need no test: there a comparison holds or "
    "fails by the side its effect lies on."
)


@dataclass(frozen=True)
class Judging:
    """What the verdict rule needs of a comparison besides its adjusted p: the effect and CI on the tested
    scale (log for a ratio), the claimed side of ``threshold``, the sample's minimums, the cells read that did
    not converge, and ``undecided``, a reason that leaves it inconclusive before any test. ``hypothesis``
    names the test (kind, quantity, cells), so that two comparisons of one hypothesis count once in Holm."""

    effect: float | None
    ci: tuple[float, float] | None
    sign: int
    hypothesis: Hashable = None
    threshold: float = 0.0
    min_n: int = 2
    seeds: int | None = None
    unconverged: tuple[str, ...] = ()
    shown: Callable[[float], float] | None = None
    undecided: str = ""


@dataclass
class Comparison:
    """One statistical comparison inside a claim (e.g. 'tmt < tmt1' on one layout row)."""

    label: str
    effect: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int
    verdict: str = ""
    reason: str = ""
    paper_effect: float | None = None
    p_adjusted: float | None = None
    mde: float | None = None
    procedure: str = ""
    judging: Judging | None = field(default=None, repr=False, compare=False)


@dataclass
class ClaimResult:
    """A claim's measured effect next to the paper's, with its CI, p-value, sample size and verdict."""

    id: str
    text: str
    test: str
    effect: float | None
    unit: str
    paper_effect: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int
    verdict: str
    detail: str
    components: list[Comparison] = field(default_factory=list)
    procedure: str = ""
    p_adjusted: float | None = None
    mde: float | None = None
    coverage: str = ""
    """Which of the claim's rows in the study's grid ran, when not all did (empty: all ran)."""
    rows_run: tuple[int, int] | None = None
    """(rows that ran, rows of the claim in the study's grid) when not all ran."""

    def rows(self) -> list[dict[str, Any]]:
        """The claim (``comparison`` "claim") and each of its comparisons as CSV rows."""
        rows = []
        for label, k in [("claim", self), *((c.label, c) for c in self.components)]:
            low, high = k.ci if k.ci else (None, None)
            rows.append(
                {
                    "claim": self.id,
                    "comparison": label,
                    "test": self.test,
                    "procedure": k.procedure,
                    "verdict": k.verdict,
                    "effect": k.effect,
                    "unit": self.unit,
                    "paper_effect": k.paper_effect,
                    "ci_low": low,
                    "ci_high": high,
                    "p": k.p_value,
                    "p_adjusted": k.p_adjusted,
                    "mde": k.mde,
                    "n": k.n,
                }
            )
        return rows


@dataclass
class Measured:
    """A claim's comparisons before judging (their p-values wait for the report's Holm adjustment), with the
    claim's unit and the detail that says how it was measured."""

    claim: Claim
    comparisons: list[Comparison]
    unit: str
    detail: str
    coverage: str = ""
    rows_run: tuple[int, int] | None = None


def evaluate_claims(
    results: pd.DataFrame,
    claims: Sequence[Any],
    tables: Sequence[tuple[Layout, pd.DataFrame | None]],
    axes: Sequence[str] | None = None,
    *,
    exact: bool = False,
    grid: pd.DataFrame | None = None,
) -> list[ClaimResult]:
    """Evaluate every claim of a study, with one Holm adjustment over all their comparisons.

    ``tables`` are the study's (layout, build_table result) pairs: a claim uses the layout whose metric it
    reads (else the first) for its rows and the paper-side effect. ``axes`` are the study's grid axes (the
    pairing keys); by default the layout axes. ``grid``: one row of labels per grid point of the study
    (``Study.points``), so that a claim knows its rows that did not run; by default the cells of ``results``.
    ``exact``: the metrics are deterministic counts (parameters, FLOPs), so a claim is decided by the sign
    of its effect, without seeds or tests.
    """
    specs = [c if isinstance(c, Claim) else Claim.model_validate(c) for c in claims]
    grid = unique_cells(results) if grid is None else grid
    measured = []
    for spec in specs:
        layout, table = layout_for(spec, tables)
        paper = paper_frame(table, layout) if table is not None else None
        keys = list(axes) if axes is not None else [a for lay, _ in tables for a in lay.axes]
        keys = [k for k in dict.fromkeys([*keys, spec.along]) if k]
        measured.append(measure_claim(spec, results, layout, keys, paper, grid))
    comparisons = [c for m in measured for c in m.comparisons]
    if exact:  # a count has no sampling error: no interval, no p-value, nothing to adjust
        for c in comparisons:
            c.ci = c.p_value = c.mde = None
            c.procedure = EXACT
    else:
        adjust(comparisons)
    for c in comparisons:
        c.verdict, c.reason = judge_comparison(c, exact=exact)
        if c.verdict == NOT_RUN:
            c.procedure = ""  # no test ran
    return [_combine(m, exact) for m in measured]


def measure_claim(
    claim: Claim,
    results: pd.DataFrame,
    layout: Layout,
    axes: Sequence[str],
    paper: pd.DataFrame | None,
    grid: pd.DataFrame,
) -> Measured:
    """The claim's comparisons, by its test kind (see the module docstring for what each computes)."""
    done = done_cells(results, claim.where)
    if paper is not None:
        paper = select(paper, claim.where)
        if claim.value_metric not in paper.columns:
            paper = None
    tests: dict[str, Callable[..., Measured]] = {
        "ordered": _two_arms,
        "less": _two_arms,
        "ratio_less": _two_arms,
        "monotonic": _monotonic,
        "correlation": _correlation,
    }
    planned = select(grid, claim.where)
    measured = tests[claim.test](claim, done, layout, list(axes), paper, planned)
    measured.coverage, measured.rows_run = _coverage(claim, layout, planned, done)
    return measured


def adjust(comparisons: Sequence[Comparison]) -> None:
    """Holm-adjust the p-values of ``comparisons`` as one family, each distinct hypothesis once: comparisons
    that repeat a test (the same cells, quantity and threshold) share its adjusted p."""
    family: dict[Hashable, float] = {}
    for c in comparisons:
        if c.p_value is not None and c.judging is not None:
            family.setdefault(c.judging.hypothesis, c.p_value)
    adjusted = dict(zip(family, holm(list(family.values())), strict=True))
    for c in comparisons:
        if c.p_value is not None and c.judging is not None:
            c.p_adjusted = adjusted[c.judging.hypothesis]


def judge_comparison(c: Comparison, *, exact: bool = False) -> tuple[str, str]:
    """The verdict of one measured comparison (after :func:`adjust`): not run without cells, else the rule
    of :func:`judge` on its adjusted p."""
    j = c.judging if c.judging is not None else Judging(c.effect, c.ci, 1)
    if j.undecided:
        return unless_unconverged(INCONCLUSIVE, j.undecided, j.unconverged)
    if c.n == 0:
        return NOT_RUN, "no finished cells to compare"
    return judge(
        j.effect,
        j.ci,
        c.p_adjusted,
        c.n,
        j.sign,
        threshold=j.threshold,
        min_n=j.min_n,
        seeds=j.seeds,
        exact=exact,
        unconverged=j.unconverged,
        shown=j.shown,
        raw_p=c.p_value,
    )


def judge(
    effect: float | None,
    ci: tuple[float, float] | None,
    p: float | None,
    n: int,
    sign: int,
    *,
    threshold: float = 0.0,
    min_n: int = 2,
    seeds: int | None = None,
    exact: bool = False,
    unconverged: Sequence[str] = (),
    shown: Callable[[float], float] | None = None,
    raw_p: float | None = None,
) -> tuple[str, str]:
    """The verdict rule (VERDICT_RULE) for one comparison; ``sign`` (+1 / -1) is the claimed side of
    ``threshold``; ``seeds`` (when the sample pairs cells by seed) must be at least 2. ``exact``: the values
    are deterministic counts, so the side of the threshold the effect lies on decides, without a test.
    ``unconverged``: the cells read that trained without converging (see :func:`unless_unconverged`).
    ``shown`` writes the CI in the reported unit (``math.exp`` for a ratio tested as log ratios). ``p`` is
    the p-value that decides; given ``raw_p``, it is the Holm-adjusted one and the reason shows both."""
    if exact:
        verdict, reason = _by_sign(effect, n, sign, threshold)
    else:
        verdict, reason = _by_test(effect, ci, p, n, sign, threshold, min_n, seeds, shown, raw_p)
    return unless_unconverged(verdict, reason, unconverged)


def _by_test(
    effect: float | None,
    ci: tuple[float, float] | None,
    p: float | None,
    n: int,
    sign: int,
    threshold: float,
    min_n: int,
    seeds: int | None,
    shown: Callable[[float], float] | None,
    raw_p: float | None = None,
) -> tuple[str, str]:
    """Seeded measurements: the effect, its whole CI and the test must agree (see ``judge``)."""
    if seeds is not None and seeds < 2:
        return INCONCLUSIVE, f"{seeds} seed{'s' * (seeds != 1)}: at least 2 needed"
    if n < min_n:
        return INCONCLUSIVE, f"n={n}: at least {min_n} needed"
    if effect is None or ci is None or p is None or not all(map(math.isfinite, (effect, *ci, p))):
        return INCONCLUSIVE, "no test possible (effect undefined)"
    side = sign * (effect - threshold)
    lo, hi = sorted((sign * (ci[0] - threshold), sign * (ci[1] - threshold)))
    low, high = map(shown, ci) if shown else ci
    p_text = f"p={p:.3g}" if raw_p is None else f"p={raw_p:.3g}, Holm-adjusted p={p:.3g}"
    ci_text = f"95% CI [{low:.3g}, {high:.3g}], {p_text}"
    if side > 0 and lo > 0 and p < ALPHA:
        return HOLDS, f"claimed direction; {ci_text}"
    if side < 0 and hi < 0 and p < ALPHA:
        return FAILS, f"opposite direction; {ci_text}"
    return INCONCLUSIVE, f"not significant; {ci_text}"


def _by_sign(effect: float | None, n: int, sign: int, threshold: float) -> tuple[str, str]:
    """Deterministic counts: the side of ``threshold`` the effect lies on decides."""
    if n < 1 or effect is None or not math.isfinite(effect):
        return INCONCLUSIVE, "no value to compare"
    side = sign * (effect - threshold)
    if side > 0:
        return HOLDS, "claimed direction (exact counts: no test needed)"
    if side < 0:
        return FAILS, "opposite direction (exact counts)"
    return INCONCLUSIVE, "no difference (exact counts)"


def unless_unconverged(verdict: str, reason: str, unconverged: Sequence[str]) -> tuple[str, str]:
    """UNCONVERGED when the comparison read cells that trained without converging (their numbers depend on
    where a cap cut the run); the reason names them and keeps the verdict the numbers alone give."""
    if not unconverged:
        return verdict, reason
    listed = "; ".join(unconverged[:3]) + (f"; {len(unconverged) - 3} more" if len(unconverged) > 3 else "")
    cells = f"{len(unconverged)} cell{'s' * (len(unconverged) != 1)}"
    return UNCONVERGED, f"{cells} did not converge ({listed}); the numbers alone: {verdict}, {reason}"


def paper_frame(table: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The paper's numbers as a one-seed results frame (seed 0): claims compute the paper's effect the same
    way, pairing on the seed as they do for cells."""
    frame = table
    if layout.per_action:
        frame = frame[frame["action"] == AVERAGE].drop(columns="action")
    elif not layout.columns:
        frame = frame.drop(columns="metric")
    return frame.assign(seed=0).rename(columns={"paper": layout.value_metric})


# --- paired comparisons ---------------------------------------------------------------------------------


def paired(frame: pd.DataFrame, metric: str, over: str, a: Any, b: Any, axes: Sequence[str]) -> pd.DataFrame:
    """Cells with over=a joined to cells with over=b that agree on the other axes and the seed.

    Columns: the pairing keys, ``a`` and ``b`` (the two metric values), ``a_cell`` and ``b_cell`` (the two
    cells' index labels in ``frame``); pairs missing a value are dropped.
    """
    keys = [k for k in axes if k != over and k in frame.columns] + ["seed"]
    if over not in frame.columns or metric not in frame.columns:
        return pd.DataFrame(columns=[*keys, "a", "b", "a_cell", "b_cell"])
    labels = frame[over].map(norm_value)
    values = pd.to_numeric(frame[metric], errors="coerce")
    index = frame.index.to_series()
    # each side's values from its own rows only: a column assigned to an empty frame would take the whole
    # Series (and its index) instead of none of it
    on_a, on_b = labels == norm_value(a), labels == norm_value(b)
    left = frame.loc[on_a, keys].assign(a=values[on_a], a_cell=index[on_a])
    right = frame.loc[on_b, keys].assign(b=values[on_b], b_cell=index[on_b])
    return left.merge(right, on=keys).dropna(subset=["a", "b"])


def _arms(
    done: pd.DataFrame, pairs: pd.DataFrame, value: Callable[[np.ndarray], np.ndarray] = np.asarray
) -> tuple[bool, np.ndarray, np.ndarray]:
    """The test of ``pairs``: (paired?, b values, a values) after ``value`` (identity, or log). Paired, the
    arrays run pair by pair; unpaired, each holds the distinct cells of its side once (a cell may pair with
    several when an axis is left out of the pairing)."""
    if shares_init_and_order(done, pairs):
        return True, value(pairs["b"].to_numpy(float)), value(pairs["a"].to_numpy(float))
    b = pairs.drop_duplicates("b_cell")["b"].to_numpy(float)
    a = pairs.drop_duplicates("a_cell")["a"].to_numpy(float)
    return False, value(b), value(a)


def _two_arms(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    planned: pd.DataFrame,
) -> Measured:
    """``ordered`` / ``less`` and ``ratio_less``: one test of two arms per pair of ``order``, so one function.
    An order tests the difference b - a of each consecutive pair, claimed above 0. A ratio tests its one
    pair's positive cells on the log scale, log a - log b, claimed below log(``max``), and reports the
    effect, CI and MDE exponentiated: a geometric-mean ratio."""
    ratio = claim.test == "ratio_less"
    limit = float(claim.max) if ratio else 0.0  # max is required for ratio_less by the schema
    null = math.log(limit) if ratio else 0.0  # the threshold on the tested scale
    comps: list[Comparison] = []
    kept = 0  # cells in the pairs tested
    for a, b in itertools.pairwise(claim.order):
        pairs = paired(done, claim.metric, claim.over, a, b, axes)
        if ratio:
            pairs = pairs[(pairs["a"] > 0) & (pairs["b"] > 0)]
        kept += 2 * len(pairs)
        paper_pairs = paired(paper, claim.metric, claim.over, a, b, axes) if paper is not None else None
        rows = _planned_rows(planned, claim, layout, a, b)
        name = f"{a} / {b} < {limit:g}" if ratio else f"{a} < {b}"
        for label, grp, pgrp in _row_groups(claim, layout, pairs, paper_pairs, name, rows):
            is_paired, b_values, a_values = _arms(done, grp, np.log if ratio else np.asarray)
            x, y = (a_values, b_values) if ratio else (b_values, a_values)
            est = difference_test(x, y, paired=is_paired, null=null)  # log a - log b, or b - a
            # the test's identity for Holm: what it measures and which pairs of cells it reads
            cells = tuple(sorted(zip(grp["a_cell"].tolist(), grp["b_cell"].tolist(), strict=True)))
            hypothesis = ("ratio" if ratio else "difference", claim.metric, limit, cells)
            read = pd.unique(grp[["a_cell", "b_cell"]].to_numpy().ravel())  # the cells on either side
            judging = Judging(
                est.effect,
                est.ci,
                -1 if ratio else 1,
                hypothesis,
                threshold=null,
                seeds=grp["seed"].nunique(),
                unconverged=tuple(unconverged_cells(done.loc[read], axes)),
                shown=math.exp if ratio else None,
            )
            effect, ci, mde, procedure, paper_effect = est.effect, est.ci, est.mde, est.procedure, None
            if pgrp is not None and len(pgrp) and ratio:
                paper_effect = math.exp(
                    float(np.log(pgrp["a"].astype(float) / pgrp["b"].astype(float)).mean())
                )
            elif pgrp is not None and len(pgrp):
                paper_effect = float((pgrp["b"] - pgrp["a"]).mean())
            if ratio:  # back from the log scale
                effect = math.exp(effect) if effect is not None else None
                ci = (math.exp(ci[0]), math.exp(ci[1])) if ci else None
                mde = math.exp(mde) if mde is not None else None
                procedure = PAIRED_LOG if is_paired else WELCH_LOG
            comps.append(
                Comparison(
                    label,
                    effect,
                    ci,
                    est.p,
                    est.n,
                    paper_effect=paper_effect,
                    mde=mde,
                    procedure=procedure,
                    judging=judging,
                )
            )
    if not ratio:
        scale = layout.paper_scale if layout.value_metric == claim.value_metric else 1.0
        unit = metric_unit(claim.value_metric, scale) or claim.metric
        return Measured(claim, comps, unit, f"difference b - a of {claim.metric} ({unit}), claimed > 0")
    lhs, rhs = claim.order
    labels = done[claim.over].map(norm_value) if claim.over in done.columns else pd.Series(dtype=object)
    dropped = int(labels.isin({norm_value(lhs), norm_value(rhs)}).sum()) - kept
    note = f"geometric-mean ratio {lhs} / {rhs} of {claim.metric} over paired cells (t-test on log values)"
    if dropped > 0:
        note += f"; {dropped} cells without a partner or a positive value left out"
    return Measured(claim, comps, "ratio", note)


def _planned_rows(
    planned: pd.DataFrame, claim: Claim, layout: Layout, a: Any, b: Any
) -> list[dict[str, Any]]:
    """The study's rows (labels of the layout rows other than ``over``) that hold both compared values, in
    grid order."""
    rows = [r for r in layout.rows if r != claim.over and r in planned.columns]
    if claim.over not in planned.columns or not rows:
        return []
    sides = []
    for value in (a, b):
        side = planned[planned[claim.over].map(norm_value) == norm_value(value)]
        sides.append({label_key(v): dict(zip(rows, v, strict=True)) for v in side[rows].to_numpy().tolist()})
    return [labels for key, labels in sides[0].items() if key in sides[1]]


def _row_groups(
    claim: Claim,
    layout: Layout,
    pairs: pd.DataFrame,
    paper_pairs: pd.DataFrame | None,
    label: str,
    planned: list[dict[str, Any]],
) -> list[tuple[str, pd.DataFrame, pd.DataFrame | None]]:
    """(label, pairs, paper pairs) per layout row when ``per_row`` (the ``planned`` rows of the study's grid,
    then any other row with pairs; a row without pairs has an empty group), then all rows pooled."""
    rows = [r for r in layout.rows if r != claim.over and r in pairs.columns]
    groups = []
    if claim.per_row and rows:
        pair_keys = [label_key(v) for v in pairs[rows].to_numpy().tolist()]
        named = {label_key([labels.get(r) for r in rows]): labels for labels in planned}
        for key, values in zip(pair_keys, pairs[rows].to_numpy().tolist(), strict=True):
            named.setdefault(key, dict(zip(rows, values, strict=True)))
        varying = [r for i, r in enumerate(rows) if len({k[i] for k in named}) > 1] or rows
        for key, labels in named.items():
            where = ", ".join(f"{r}={plain_number(labels.get(r))}" for r in varying)
            grp = pairs.loc[np.array([k == key for k in pair_keys], dtype=bool)]
            groups.append((f"{label} @ {where}", grp, _same_row(paper_pairs, labels)))
    groups.append((f"{label} (all rows)" if claim.per_row and rows else label, pairs, paper_pairs))
    return groups


def _same_row(pairs: pd.DataFrame | None, named: dict[str, Any]) -> pd.DataFrame | None:
    if pairs is None or not all(r in pairs.columns for r in named):
        return None
    mask = pd.Series(True, index=pairs.index)
    for r, v in named.items():
        mask &= pairs[r].map(norm_value) == norm_value(v)
    return pairs[mask]


# --- trends and correlations ----------------------------------------------------------------------------


def trend_curves(frame: pd.DataFrame | None, claim: Claim, axes: Sequence[str]) -> pd.DataFrame:
    """Seeds x ``along`` values table of the claimed quantity (metric or effect), columns sorted by value."""
    if frame is None or claim.along not in frame.columns:
        return pd.DataFrame()
    eff = claim.effect
    if eff is not None:
        points = paired(frame, eff.metric, eff.over, eff.lhs, eff.rhs, axes)
        a, b = points["a"], points["b"]
        value = {"relative": (a - b) / a * 100.0, "absolute": a - b, "ratio": a / b}[eff.kind]
    elif claim.metric in frame.columns:
        points = frame
        value = pd.to_numeric(frame[claim.metric], errors="coerce")
    else:
        return pd.DataFrame()
    if points.empty:
        return pd.DataFrame()
    points = points.assign(_value=value, _x=points[claim.along].map(norm_value))
    points = points[pd.to_numeric(points["_x"], errors="coerce").notna()].astype({"_x": float})
    return points.groupby(["seed", "_x"])["_value"].mean().unstack("_x")  # grouped sorted: columns ascend


def _monotonic(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    planned: pd.DataFrame,
) -> Measured:
    curves = trend_curves(done, claim, axes)
    complete = curves.dropna()
    n = len(complete)
    x = complete.columns.to_numpy(float)
    paper_curve = trend_curves(paper, claim, axes).dropna()
    paper_rho = None
    if len(paper_curve):
        paper_rho = spearman(paper_curve.columns.to_numpy(float), paper_curve.iloc[0].to_numpy(float))
    effect = ci = p = None
    points = n * len(x)
    if n and len(x) >= 3:
        effect = spearman(np.tile(x, n), complete.to_numpy(float).ravel())
        if effect is not None and points > 3:
            ci, p = fisher(effect, points, 0.0, spearman=True)
    eff = claim.effect
    read = select(done, {eff.over: [eff.lhs, eff.rhs]}) if eff is not None else done
    undecided = ""
    if n and len(x) < 3:
        undecided = f"{len(x)} values of {claim.along}: at least 3 needed for a trend"
    elif not n and not curves.empty:
        undecided = f"no seed has a value at every {claim.along}"
    what = _trend_quantity(claim)
    judging = Judging(
        effect,
        ci,
        claim.sign,
        ("trend", what, claim.along, tuple(read.index)),
        seeds=n,
        unconverged=tuple(unconverged_cells(read, axes)),
        undecided=undecided,
    )
    direction = claim.direction  # required for monotonic by the schema
    comp = Comparison(
        f"{what} {direction} along {claim.along}",
        effect,
        ci,
        p,
        points,
        paper_effect=paper_rho,
        procedure=SPEARMAN,
        judging=judging,
    )
    detail = (
        f"Spearman rho of {what} vs {claim.along} over every (value, seed) point, 95 % CI and p from Fisher's "
        f"z with the Bonett-Wright variance; n = points, from {n} seeds with a complete curve "
        f"({len(curves) - n} incomplete); {_curve_text(complete, paper_curve)}"
    )
    return Measured(claim, [comp], "Spearman rho", detail)


def _correlation(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    planned: pd.DataFrame,
) -> Measured:
    xs, ys = _stack(done, claim.x), _stack(done, claim.y)
    limit = claim.min if claim.min is not None else 0.0
    effect = ci = p = None
    n, per_cell = 0, []
    if len(xs) and xs.shape == ys.shape:
        x, y = xs.mean(axis=0), ys.mean(axis=0)
        keep = (y != 0) & np.isfinite(x) & np.isfinite(y)
        n = int(keep.sum())
        if n >= 4 and np.ptp(x[keep]) > 0 and np.ptp(y[keep]) > 0:
            effect = float(stats.pearsonr(x[keep], y[keep]).statistic)
            ci, p = fisher(effect, n, limit)
        per_cell = [
            float(stats.pearsonr(a[keep], b[keep]).statistic)
            for a, b in zip(xs, ys, strict=True)
            if n >= 2 and np.ptp(a[keep]) > 0 and np.ptp(b[keep]) > 0
        ]
    undecided = "" if n or done.empty else f"no per-joint {claim.y} and {claim.x} of one length in the cells"
    judging = Judging(
        effect,
        ci,
        1,
        ("correlation", claim.y, claim.x, limit, tuple(done.index)),
        threshold=limit,
        min_n=4,
        unconverged=tuple(unconverged_cells(done, axes)),
        undecided=undecided,
    )
    label = f"r({claim.y}, {claim.x}) > {limit:g}"
    comp = Comparison(label, effect, ci, p, n, procedure=PEARSON, judging=judging)
    cells = ", ".join(f"{r:.2f}" for r in per_cell) or "none"
    detail = (
        f"Pearson r over {n} joints (zero-error joints left out) of {claim.y} vs {claim.x}, averaged over "
        f"{len(xs)} cells; r per cell: {cells}"
    )
    return Measured(claim, [comp], "Pearson r", detail)


# --- helpers --------------------------------------------------------------------------------------------


def layout_for(
    claim: Claim, tables: Sequence[tuple[Layout, pd.DataFrame | None]]
) -> tuple[Layout, pd.DataFrame | None]:
    """The (layout, table) whose metric the claim reads, else the first."""
    for layout, table in tables:
        if layout.value_metric == claim.value_metric:
            return layout, table
    return tables[0]


def _combine(measured: Measured, exact: bool) -> ClaimResult:
    """The claim's verdict from its judged comparisons (VERDICT_RULE), headed by the comparison that decides."""
    claim, comps = measured.claim, measured.comparisons
    ran = [c for c in comps if c.verdict != NOT_RUN]
    verdicts = [c.verdict for c in ran]
    first = next((v for v in (FAILS, UNCONVERGED, INCONCLUSIVE) if v in verdicts), None)
    if not ran:
        verdict, head = NOT_RUN, comps[0]
    elif first is not None:
        verdict, head = first, ran[verdicts.index(first)]
    else:
        verdict = HOLDS
        head = max(ran, key=lambda c: c.p_adjusted if c.p_adjusted is not None else 1.0)
    procedures = list(dict.fromkeys(c.procedure for c in ran if c.procedure))
    detail = f"{head.label}: {head.reason}. {measured.detail}"
    if measured.coverage:
        detail += f". {measured.coverage[0].upper()}{measured.coverage[1:]}"
    return ClaimResult(
        id=claim.id,
        text=claim.text,
        test=claim.test,
        effect=head.effect,
        unit=measured.unit,
        paper_effect=head.paper_effect,
        ci=head.ci,
        p_value=head.p_value,
        n=head.n,
        verdict=verdict,
        detail=detail,
        components=comps,
        procedure="; ".join(procedures) or (EXACT if exact else PROCEDURES[claim.test]),
        p_adjusted=head.p_adjusted,
        mde=head.mde,
        coverage=measured.coverage,
        rows_run=measured.rows_run,
    )


def _coverage(
    claim: Claim, layout: Layout, planned: pd.DataFrame, done: pd.DataFrame
) -> tuple[str, tuple[int, int] | None]:
    """Which of the claim's rows ran, when not all did, in words and as (rows run, rows): its rows are the
    distinct layout rows (and values of ``along``) of the study's grid points that it selects; a row ran when
    it has a finished cell. ("", None) when every row ran."""
    compared = {claim.over, claim.effect.over if claim.effect is not None else None}
    keys = [k for k in dict.fromkeys([*layout.rows, claim.along]) if k and k not in compared]
    keys = [k for k in keys if k in planned.columns]
    arms = {}
    if claim.order is not None and claim.over is not None:
        arms = {claim.over: list(claim.order)}
    elif claim.effect is not None:
        arms = {claim.effect.over: [claim.effect.lhs, claim.effect.rhs]}
    planned = select(planned, arms)
    if not keys or planned.empty:
        return "", None
    rows: dict[tuple, dict[str, Any]] = {}
    for values in planned[keys].to_numpy().tolist():
        rows.setdefault(label_key(values), dict(zip(keys, values, strict=True)))
    read = select(done, arms)
    ran = (
        {label_key(v) for v in read[keys].to_numpy().tolist()}
        if all(k in read.columns for k in keys)
        else set()
    )
    if all(key in ran for key in rows):
        return "", None
    varying = [k for i, k in enumerate(keys) if len({key[i] for key in rows}) > 1] or keys

    def listed(which: list[tuple]) -> str:
        return "; ".join(", ".join(f"{k}={plain_number(rows[key][k])}" for k in varying) for key in which)

    done_rows = [key for key in rows if key in ran]
    missing = [key for key in rows if key not in ran]
    counts = (len(done_rows), len(rows))
    if not done_rows:
        return f"none of its {len(rows)} row{'s' * (len(rows) != 1)} ran: {listed(missing)}", counts
    return (
        f"run on {len(done_rows)} of {len(rows)} rows: {listed(done_rows)}; not run: {listed(missing)}",
        counts,
    )


def done_cells(results: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    """The finished cells (each once) whose labels match ``where``."""
    return select(finished(results), where)


def select(frame: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    """Rows whose label ``axis`` equals the value (or one of the values) given for it in ``where``."""
    for axis, wanted in where.items():
        if axis not in frame.columns:
            return frame.iloc[0:0]
        allowed = {norm_value(v) for v in (wanted if isinstance(wanted, (list, tuple)) else [wanted])}
        frame = frame[frame[axis].map(norm_value).isin(allowed)]
    return frame


def _stack(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.empty((0, 0))
    arrays = [np.asarray(v, dtype=float) for v in frame[column] if isinstance(v, (list, tuple, np.ndarray))]
    if not arrays or len({a.shape for a in arrays}) != 1:
        return np.empty((0, 0))
    return np.stack(arrays)


def _trend_quantity(claim: Claim) -> str:
    eff = claim.effect
    if eff is None:
        return str(claim.metric)
    formula = {"relative": "({l} - {r}) / {l} %", "absolute": "{l} - {r}", "ratio": "{l} / {r}"}[eff.kind]
    return f"{eff.metric} " + formula.format(l=eff.lhs, r=eff.rhs)


def _curve_text(curves: pd.DataFrame, paper_curve: pd.DataFrame) -> str:
    """The complete curves' mean at each value (the paper's beside it), or that no seed has a whole curve."""
    if curves.empty:
        return "no complete curve"
    paper = paper_curve.iloc[0] if len(paper_curve) else pd.Series(dtype=float)
    parts = []
    for x in curves.columns:
        text = f"{x:g}: {curves[x].mean():.3g}"
        if x in paper.index and pd.notna(paper[x]):
            text += f" (paper {paper[x]:.3g})"
        parts.append(text)
    return "seed-mean per value: " + "; ".join(parts)
