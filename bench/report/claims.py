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

For the paired tests the p-value is a two-sided one-sample t-test of the paired differences (the paired
t-test) and the CI that test's t-interval of the mean; for trends and correlations both come from one Fisher z
statistic. Estimate, interval and p-value therefore always come from one procedure and agree
(``PROCEDURES`` names each test's, and the reports print it).

A comparison reads cells: both sides of its pairs, or every selected cell of a trend or a correlation. If one
of them trained but did not converge (``bench.report.convergence``), the comparison is ``unconverged``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.convergence import unconverged_cells
from bench.report.tables import AVERAGE, norm_value, unique_cells
from bench.report.units import metric_unit
from bench.schema import Claim, Layout

ALPHA = 0.05
CONFIDENCE = 0.95
HOLDS, FAILS, INCONCLUSIVE, UNCONVERGED = "holds", "fails", "inconclusive", "unconverged"

PROCEDURES = {
    "ordered": "paired t-test (two-sided) and its t-interval",
    "less": "paired t-test (two-sided) and its t-interval",
    "ratio_less": "paired t-test of log ratios (two-sided) and its t-interval, exponentiated",
    "monotonic": "Spearman's rho over (value, seed) points; Fisher z with the Bonett-Wright variance",
    "correlation": "Pearson's r over joints; Fisher z",
}
"""The one procedure behind each test's estimate, 95 % interval and p-value."""
EXACT = "exact counts: the side of the threshold decides (no test)"

EFFECT_RULE = (
    "What each test measures, in the unit printed beside it. An order `a < b` (`ordered`, `less`): the mean "
    "over paired cells of b - a, so a positive effect is the claimed direction (for an error in mm, how many "
    "mm lower a is). A ratio (`ratio_less`): the geometric mean of a / b, claimed below its limit. A trend "
    "(`monotonic`): Spearman's rho along the axis, its sign the claimed direction. A correlation: Pearson's r "
    "over joints. The paper's effect is the same quantity computed from the paper's printed numbers."
)

VERDICT_RULE = (
    "A comparison **holds** when the measured effect lies on the claimed side of its threshold (0 for a "
    "difference or a trend, 1 or `max` for a ratio, `min` for a correlation), its 95 % confidence interval "
    "lies entirely on that side and the test's two-sided p-value is below 0.05; it **fails** when the "
    "effect, the whole CI and p < 0.05 all point the other way; otherwise it is **inconclusive** - always "
    "so with fewer than 2 seeds (the pairs of a comparison may pool several layout rows, but their seeds "
    "must number 2 or more), or fewer than 4 joints for a correlation (its sample is the joints). For a "
    "paired difference or ratio the CI is the t-interval of the same paired t-test, and for a trend or a "
    "correlation CI and p come from one Fisher z statistic, so CI and p always agree. A comparison that "
    "reads any cell whose training did not converge (it stopped at a cap on epochs, updates or wall time, or "
    "its result records no convergence) is **unconverged** whatever its numbers say: they are shown, with "
    "the verdict they alone would give, but a number cut at a cap depends on where the cap was set, so it "
    "neither holds nor fails. A claim made of several comparisons (consecutive pairs of an order, every "
    "layout row) fails if any comparison fails (a failure on converged cells stands), else is unconverged "
    "if any comparison is unconverged, holds if all hold, and is inconclusive otherwise; its headline "
    "numbers are those of the first failing comparison, else the first unconverged one, else the first "
    "inconclusive one, else the weakest (largest p) holding one. Studies of deterministic counts "
    "(parameters, FLOPs: `kind: complexity`) train nothing and need no test: there a comparison holds or "
    "fails by the side its effect lies on."
)


@dataclass
class Comparison:
    """One statistical comparison inside a claim (e.g. 'tmt < tmt1' on one layout row)."""

    label: str
    effect: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int
    verdict: str
    reason: str
    paper_effect: float | None = None


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
                    "procedure": self.procedure,
                    "verdict": k.verdict,
                    "effect": k.effect,
                    "unit": self.unit,
                    "paper_effect": k.paper_effect,
                    "ci_low": low,
                    "ci_high": high,
                    "p": k.p_value,
                    "n": k.n,
                }
            )
        return rows


def evaluate_claims(
    results: pd.DataFrame,
    claims: Sequence[Any],
    tables: Sequence[tuple[Layout, pd.DataFrame | None]],
    axes: Sequence[str] | None = None,
    *,
    exact: bool = False,
) -> list[ClaimResult]:
    """Evaluate every claim of a study.

    ``tables`` are the study's (layout, build_table result) pairs: a claim uses the layout whose metric it
    reads (else the first) for its rows and the paper-side effect. ``axes`` are the study's grid axes (the
    pairing keys); by default the layout axes. ``exact``: the metrics are deterministic counts (parameters,
    FLOPs), so a claim is decided by the sign of its effect, without seeds or tests.
    """
    specs = [c if isinstance(c, Claim) else Claim.model_validate(c) for c in claims]
    out = []
    for spec in specs:
        layout, table = layout_for(spec, tables)
        paper = paper_frame(table, layout) if table is not None else None
        keys = list(axes) if axes is not None else [a for lay, _ in tables for a in lay.axes]
        keys = [k for k in dict.fromkeys([*keys, spec.along]) if k]
        out.append(evaluate_claim(spec, results, layout, keys, paper, exact=exact))
    return out


def evaluate_claim(
    claim: Claim,
    results: pd.DataFrame,
    layout: Layout,
    axes: Sequence[str],
    paper: pd.DataFrame | None = None,
    *,
    exact: bool = False,
) -> ClaimResult:
    """Dispatch on the claim's test kind (see the module docstring for what each computes)."""
    done = done_cells(results, claim.where)
    if paper is not None:
        paper = select(paper, claim.where)
        if claim.value_metric not in paper.columns:
            paper = None
    tests: dict[str, Callable[..., ClaimResult]] = {
        "ordered": _ordered,
        "less": _ordered,
        "ratio_less": _ratio_less,
        "monotonic": _monotonic,
        "correlation": _correlation,
    }
    judge_fn = functools.partial(judge, exact=True) if exact else judge
    result = tests[claim.test](claim, done, layout, list(axes), paper, judge_fn)
    result.procedure = EXACT if exact else PROCEDURES[claim.test]
    if exact:  # a count has no sampling error: no interval, no p-value
        result.ci = result.p_value = None
        result.components = [dataclasses.replace(c, ci=None, p_value=None) for c in result.components]
    return result


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
) -> tuple[str, str]:
    """The verdict rule (VERDICT_RULE) for one comparison; ``sign`` (+1 / -1) is the claimed side of
    ``threshold``; ``seeds`` (when the sample pairs cells by seed) must be at least 2. ``exact``: the values
    are deterministic counts, so the side of the threshold the effect lies on decides, without a test.
    ``unconverged``: the cells read that trained without converging (see :func:`unless_unconverged`).
    ``shown`` writes the CI in the reported unit (``math.exp`` for a ratio tested as log ratios)."""
    if exact:
        verdict, reason = _by_sign(effect, n, sign, threshold)
    else:
        verdict, reason = _by_test(effect, ci, p, n, sign, threshold, min_n, seeds, shown)
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
    ci_text = f"95% CI [{low:.3g}, {high:.3g}], p={p:.3g}"
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


Judge = Callable[..., tuple[str, str]]
"""``judge``, or ``judge`` with ``exact=True`` bound."""


def mean_test(
    values: np.ndarray, null: float = 0.0
) -> tuple[float | None, tuple[float, float] | None, float | None]:
    """Mean, its 95 % t-interval and the two-sided one-sample t-test p-value (against ``null``).

    The interval and the p-value come from the same t-test, so the interval excludes ``null`` exactly when
    p < 0.05: a reader never sees an interval beside a test that disagrees with it (a bootstrap interval over
    3 seeds is far too narrow and did).
    """
    d = np.asarray(values, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return None, None, None
    mean = float(d.mean())
    if len(d) < 2:
        return mean, None, None
    if np.ptp(d) == 0:  # every observation shows the same effect: the t statistic is infinite (or 0/0)
        return mean, (mean, mean), 0.0 if mean != null else 1.0
    with warnings.catch_warnings():  # nearly identical differences: scipy warns, the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_1samp(d, null)
        interval = test.confidence_interval(CONFIDENCE)
    return mean, (float(interval.low), float(interval.high)), float(test.pvalue)


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
    left = frame.loc[labels == norm_value(a), keys].assign(a=values, a_cell=index)
    right = frame.loc[labels == norm_value(b), keys].assign(b=values, b_cell=index)
    return left.merge(right, on=keys).dropna(subset=["a", "b"])


def _unconverged_pairs(done: pd.DataFrame, pairs: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """The cells on either side of ``pairs`` that trained without converging."""
    read = pd.unique(pairs[["a_cell", "b_cell"]].to_numpy().ravel())
    return unconverged_cells(done.loc[read], axes)


def _ordered(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    judge: Judge = judge,
) -> ClaimResult:
    comps: list[Comparison] = []
    for a, b in itertools.pairwise(claim.order):
        pairs = paired(done, claim.metric, claim.over, a, b, axes)
        paper_pairs = paired(paper, claim.metric, claim.over, a, b, axes) if paper is not None else None
        for label, grp, pgrp in _row_groups(claim, layout, pairs, paper_pairs, f"{a} < {b}"):
            d = (grp["b"] - grp["a"]).to_numpy(float)
            effect, ci, p = mean_test(d)
            unconverged = _unconverged_pairs(done, grp, axes)
            verdict, reason = judge(
                effect, ci, p, len(d), 1, seeds=grp["seed"].nunique(), unconverged=unconverged
            )
            paper_effect = float((pgrp["b"] - pgrp["a"]).mean()) if pgrp is not None and len(pgrp) else None
            comps.append(Comparison(label, effect, ci, p, len(d), verdict, reason, paper_effect))
    scale = layout.paper_scale if layout.value_metric == claim.value_metric else 1.0
    unit = metric_unit(claim.value_metric, scale) or claim.metric
    return _combine(claim, comps, unit, f"paired difference b - a of {claim.metric} ({unit}), claimed > 0")


def _ratio_less(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    judge: Judge = judge,
) -> ClaimResult:
    lhs, rhs = claim.order
    limit = float(claim.max)  # required for ratio_less by the schema
    pairs = paired(done, claim.metric, claim.over, lhs, rhs, axes)
    positive = pairs[(pairs["a"] > 0) & (pairs["b"] > 0)]
    paper_pairs = paired(paper, claim.metric, claim.over, lhs, rhs, axes) if paper is not None else None
    comps = []
    for label, grp, pgrp in _row_groups(claim, layout, positive, paper_pairs, f"{lhs} / {rhs} < {limit:g}"):
        logs = np.log(grp["a"].to_numpy(float) / grp["b"].to_numpy(float))
        effect, ci, p = mean_test(logs, null=math.log(limit))
        verdict, reason = judge(
            effect,
            ci,
            p,
            len(logs),
            -1,
            threshold=math.log(limit),
            seeds=grp["seed"].nunique(),
            unconverged=_unconverged_pairs(done, grp, axes),
            shown=math.exp,
        )
        paper_effect = None
        if pgrp is not None and len(pgrp):
            paper_effect = math.exp(float(np.log(pgrp["a"].astype(float) / pgrp["b"].astype(float)).mean()))
        ratio_ci = (math.exp(ci[0]), math.exp(ci[1])) if ci else None
        ratio = math.exp(effect) if effect is not None else None
        comps.append(Comparison(label, ratio, ratio_ci, p, len(logs), verdict, reason, paper_effect))
    labels = done[claim.over].map(norm_value) if claim.over in done.columns else pd.Series(dtype=object)
    dropped = int(labels.isin({norm_value(lhs), norm_value(rhs)}).sum()) - 2 * len(positive)
    note = f"geometric-mean ratio {lhs} / {rhs} of {claim.metric} over paired cells (t-test on log ratios)"
    if dropped > 0:
        note += f"; {dropped} cells without a partner or a positive value left out"
    return _combine(claim, comps, "ratio", note)


def _row_groups(
    claim: Claim,
    layout: Layout,
    pairs: pd.DataFrame,
    paper_pairs: pd.DataFrame | None,
    label: str,
) -> list[tuple[str, pd.DataFrame, pd.DataFrame | None]]:
    """(label, pairs, paper pairs) per layout row when ``per_row``, then all rows pooled."""
    rows = [r for r in layout.rows if r != claim.over and r in pairs.columns]
    varying = [r for r in rows if pairs[r].nunique(dropna=False) > 1] or rows
    groups = []
    if claim.per_row and rows:
        for key, grp in pairs.groupby(rows, sort=False, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            named = dict(zip(rows, key, strict=True))
            where = ", ".join(f"{r}={_shown(named[r])}" for r in varying)
            groups.append((f"{label} @ {where}", grp, _same_row(paper_pairs, named)))
    groups.append((f"{label} (all rows)" if claim.per_row and rows else label, pairs, paper_pairs))
    return groups


def _shown(value: Any) -> str:
    """A row label as the reports print it: 27 rather than the 27.0 of a column with a missing label, and a
    missing one as "-"."""
    number = norm_value(value)
    if number == "":
        return "-"
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(value)


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
    judge: Judge = judge,
) -> ClaimResult:
    curves = trend_curves(done, claim, axes)
    complete = curves.dropna()
    n = len(complete)
    x = complete.columns.to_numpy(float)
    paper_curve = trend_curves(paper, claim, axes).dropna()
    paper_rho = None
    if len(paper_curve):
        paper_rho = _spearman(paper_curve.columns.to_numpy(float), paper_curve.iloc[0].to_numpy(float))
    effect = ci = p = None
    points = n * len(x)
    if n and len(x) >= 3:
        effect = _spearman(np.tile(x, n), complete.to_numpy(float).ravel())
        if effect is not None and points > 3:
            ci, p = _fisher(effect, points, 0.0, spearman=True)
    eff = claim.effect
    read = select(done, {eff.over: [eff.lhs, eff.rhs]}) if eff is not None else done
    unconverged = unconverged_cells(read, axes)
    if n and len(x) < 3:
        reason = f"{len(x)} values of {claim.along}: at least 3 needed for a trend"
        verdict, reason = unless_unconverged(INCONCLUSIVE, reason, unconverged)
    else:
        verdict, reason = judge(effect, ci, p, points, claim.sign, seeds=n, unconverged=unconverged)
    what = _trend_quantity(claim)
    direction = claim.direction  # required for monotonic by the schema
    comp = Comparison(
        f"{what} {direction} along {claim.along}", effect, ci, p, points, verdict, reason, paper_rho
    )
    detail = (
        f"Spearman rho of {what} vs {claim.along} over every (value, seed) point, 95 % CI and p from Fisher's "
        f"z with the Bonett-Wright variance; n = points, from {n} seeds with a complete curve "
        f"({len(curves) - n} incomplete); {_curve_text(complete, paper_curve)}"
    )
    return _combine(claim, [comp], "Spearman rho", detail)


def _correlation(
    claim: Claim,
    done: pd.DataFrame,
    layout: Layout,
    axes: list[str],
    paper: pd.DataFrame | None,
    judge: Judge = judge,
) -> ClaimResult:
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
            ci, p = _fisher(effect, n, limit)
        per_cell = [
            float(stats.pearsonr(a[keep], b[keep]).statistic)
            for a, b in zip(xs, ys, strict=True)
            if n >= 2 and np.ptp(a[keep]) > 0 and np.ptp(b[keep]) > 0
        ]
    unconverged = unconverged_cells(done, axes)
    verdict, reason = judge(effect, ci, p, n, 1, threshold=limit, min_n=4, unconverged=unconverged)
    comp = Comparison(f"r({claim.y}, {claim.x}) > {limit:g}", effect, ci, p, n, verdict, reason)
    cells = ", ".join(f"{r:.2f}" for r in per_cell) or "none"
    detail = (
        f"Pearson r over {n} joints (zero-error joints left out) of {claim.y} vs {claim.x}, averaged over "
        f"{len(xs)} cells; r per cell: {cells}"
    )
    return _combine(claim, [comp], "Pearson r", detail)


# --- helpers --------------------------------------------------------------------------------------------


def layout_for(
    claim: Claim, tables: Sequence[tuple[Layout, pd.DataFrame | None]]
) -> tuple[Layout, pd.DataFrame | None]:
    """The (layout, table) whose metric the claim reads, else the first."""
    for layout, table in tables:
        if layout.value_metric == claim.value_metric:
            return layout, table
    return tables[0]


def _combine(claim: Claim, comps: list[Comparison], unit: str, detail: str) -> ClaimResult:
    verdicts = [c.verdict for c in comps]
    first = next((v for v in (FAILS, UNCONVERGED, INCONCLUSIVE) if v in verdicts), None)
    if first is not None:
        verdict, head = first, comps[verdicts.index(first)]
    else:
        verdict, head = HOLDS, max(comps, key=lambda c: c.p_value if c.p_value is not None else 1.0)
    return ClaimResult(
        id=claim.id,
        text=claim.text,
        test=claim.test,
        effect=head.effect,
        unit=unit,
        paper_effect=head.paper_effect,
        ci=head.ci,
        p_value=head.p_value,
        n=head.n,
        verdict=verdict,
        detail=f"{head.label}: {head.reason}. {detail}",
        components=comps,
    )


def done_cells(results: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    """The finished cells (each once) whose labels match ``where``."""
    done = select(unique_cells(results), where)
    return done[done["status"] == "done"] if "status" in done.columns else done.iloc[0:0]


def select(frame: pd.DataFrame, where: dict[str, Any]) -> pd.DataFrame:
    """Rows whose label ``axis`` equals the value (or one of the values) given for it in ``where``."""
    for axis, wanted in where.items():
        if axis not in frame.columns:
            return frame.iloc[0:0]
        allowed = {norm_value(v) for v in (wanted if isinstance(wanted, (list, tuple)) else [wanted])}
        frame = frame[frame[axis].map(norm_value).isin(allowed)]
    return frame


def _fisher(r: float, n: int, null: float, *, spearman: bool = False) -> tuple[tuple[float, float], float]:
    """95 % CI of a correlation and the two-sided p-value against ``null`` from one Fisher z statistic, so the
    CI clears ``null`` exactly when p < 0.05. Pearson: se = 1 / sqrt(n - 3); Spearman: the Bonett-Wright
    se = sqrt((1 + r^2 / 2) / (n - 3))."""
    se = math.sqrt(((1.0 + r * r / 2.0) if spearman else 1.0) / (n - 3))
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    half = stats.norm.ppf(0.5 + CONFIDENCE / 2) * se
    p = 2.0 * float(stats.norm.sf(abs(z - math.atanh(null)) / se))
    return (math.tanh(z - half), math.tanh(z + half)), p


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


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
