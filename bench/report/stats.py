"""The statistics behind every claim, fixed before any result is read (docs/statistics.md).

Each claim type has one procedure, chosen by the design of the experiment and never by its outcome:

- a difference (``ordered``, ``less``): the paired t-test of the per-seed differences when every pair of cells
  shares its initial weights and its batch order (:func:`shares_init_and_order`), else Welch's unpaired
  t-test of the two groups of cells;
- a ratio (``ratio_less``): the same two tests on log values, against the log of the claimed limit;
- a trend (``monotonic``): Spearman's rho with a Fisher z interval (the Bonett-Wright variance);
- a correlation over joints: Pearson's r with a Fisher z interval.

Estimate, 95 % interval and p-value always come from one procedure, so the interval clears the null exactly
when p < 0.05. The p-values of one report are Holm-adjusted together (:func:`holm`), and a t-test also
reports its minimum detectable effect (:func:`paired_mde`, :func:`welch_mde`): what it would find with 80 %
power at the spread and sample size it measured.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

ALPHA = 0.05
CONFIDENCE = 0.95
POWER = 0.8
"""The power at which the minimum detectable effect is found."""

PAIRED = "paired t-test (two-sided) and its t-interval"
WELCH = "Welch's unpaired t-test (two-sided) and its Welch-Satterthwaite t-interval"
PAIRED_LOG = "paired t-test of log ratios (two-sided) and its t-interval, exponentiated"
WELCH_LOG = (
    "Welch's unpaired t-test of log values (two-sided) and its Welch-Satterthwaite t-interval, exponentiated"
)
SPEARMAN = "Spearman's rho over (value, seed) points; Fisher z with the Bonett-Wright variance"
PEARSON = "Pearson's r over joints; Fisher z"
EXACT = "exact counts: the side of the threshold decides (no test)"
SHORT = {
    PAIRED: "paired t",
    WELCH: "Welch t",
    PAIRED_LOG: "paired t, logs",
    WELCH_LOG: "Welch t, logs",
    SPEARMAN: "Spearman, Fisher z",
    PEARSON: "Pearson, Fisher z",
    EXACT: "exact",
}
"""Each procedure's name in the reports' comparison tables (the CSVs carry the full name)."""

FINGERPRINTS = ("fingerprints.initial_weights", "fingerprints.batch_order")
"""The result fields that say which initial weights and which batch order a cell trained from."""


@dataclass(frozen=True)
class Estimate:
    """One test's estimate, its 95 % interval and two-sided p-value (None where the sample allows none), its
    sample size and minimum detectable effect, and the procedure that gave them."""

    effect: float | None
    ci: tuple[float, float] | None
    p: float | None
    n: int
    mde: float | None
    procedure: str


# --- pairing --------------------------------------------------------------------------------------------


def shares_init_and_order(cells: pd.DataFrame, pairs: pd.DataFrame) -> bool:
    """Whether every pair of ``pairs`` (index labels of ``cells`` in ``a_cell`` / ``b_cell``) joins two cells
    that recorded the same initial weights and the same batch order.

    Only then do the two cells of a seed differ in the compared arm alone, so that their difference cancels
    the seed's share of the variance and a paired test is valid; a seed number by itself does not promise it
    (two arms may draw from the generator differently). A cell without the record (every result written
    before the trainer kept it) pairs with nothing.
    """
    if pairs.empty or not all(f in cells.columns for f in FINGERPRINTS):
        return False
    a = cells.loc[pairs["a_cell"], list(FINGERPRINTS)].to_numpy(dtype=object)
    b = cells.loc[pairs["b_cell"], list(FINGERPRINTS)].to_numpy(dtype=object)
    recorded = all(isinstance(v, str) and v for v in np.concatenate([a.ravel(), b.ravel()]))
    return recorded and bool((a == b).all())


# --- the tests ------------------------------------------------------------------------------------------


def difference_test(x: np.ndarray, y: np.ndarray, *, paired: bool, null: float = 0.0) -> Estimate:
    """The mean difference x - y against ``null``: per pair (``paired``: x[i] and y[i] are one seed's two
    cells) or between the two groups' means (Welch), with its minimum detectable effect."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if paired:
        d = x - y
        d = d[np.isfinite(d)]
        effect, ci, p = mean_test(d, null)
        return Estimate(effect, ci, p, len(d), paired_mde(d), PAIRED)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    effect, ci, p = welch_test(x, y, null)
    return Estimate(effect, ci, p, min(len(x), len(y)), welch_mde(x, y), WELCH)


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


def welch_test(
    x: np.ndarray, y: np.ndarray, null: float = 0.0
) -> tuple[float | None, tuple[float, float] | None, float | None]:
    """mean(x) - mean(y), its 95 % Welch-Satterthwaite t-interval and Welch's two-sided p-value against
    ``null``: one procedure for both, as in :func:`mean_test`."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return None, None, None
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return diff, None, None
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread on either side: the t statistic is infinite (or 0/0)
        return diff, (diff, diff), 0.0 if diff != null else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_ind(x - null, y, equal_var=False)  # shifting x tests the difference against null
        interval = test.confidence_interval(CONFIDENCE)
    return diff, (float(interval.low) + null, float(interval.high) + null), float(test.pvalue)


def fisher(r: float, n: int, null: float, *, spearman: bool = False) -> tuple[tuple[float, float], float]:
    """95 % CI of a correlation and the two-sided p-value against ``null`` from one Fisher z statistic, so the
    CI clears ``null`` exactly when p < 0.05. Pearson: se = 1 / sqrt(n - 3); Spearman: the Bonett-Wright
    se = sqrt((1 + r^2 / 2) / (n - 3))."""
    se = math.sqrt(((1.0 + r * r / 2.0) if spearman else 1.0) / (n - 3))
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    half = stats.norm.ppf(0.5 + CONFIDENCE / 2) * se
    p = 2.0 * float(stats.norm.sf(abs(z - math.atanh(null)) / se))
    return (math.tanh(z - half), math.tanh(z + half)), p


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho, None when ``y`` has no spread (no ranks to correlate)."""
    if len(x) < 2 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


# --- power and multiplicity -----------------------------------------------------------------------------


def paired_mde(differences: np.ndarray) -> float | None:
    """The mean difference a two-sided paired t-test at ``ALPHA`` detects with ``POWER``, at the standard
    deviation and number of these differences (None with fewer than 2)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return None
    sd = float(np.std(d, ddof=1))
    size = TTestPower().solve_power(effect_size=None, nobs=len(d), alpha=ALPHA, power=POWER)
    return float(size) * sd


def welch_mde(x: np.ndarray, y: np.ndarray) -> float | None:
    """The difference of means a two-sided two-sample t-test at ``ALPHA`` detects with ``POWER``, at the
    pooled standard deviation and the group sizes of ``x`` and ``y`` (None with fewer than 2 in a group).
    statsmodels' power of the pooled-variance test stands in for Welch's, which has no closed form."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return None
    pooled = math.sqrt(((n1 - 1) * np.var(x, ddof=1) + (n2 - 1) * np.var(y, ddof=1)) / (n1 + n2 - 2))
    size = TTestIndPower().solve_power(effect_size=None, nobs1=n1, ratio=n2 / n1, alpha=ALPHA, power=POWER)
    return float(size) * pooled


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (each compared with ``ALPHA`` afterwards): it
    keeps the chance of any false "holds" or "fails" in the family at most ``ALPHA``."""
    if not len(p_values):
        return []
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]
