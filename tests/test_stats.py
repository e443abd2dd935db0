"""The statistics fixed in advance (bench.report.stats): Holm's adjustment, the minimum detectable effect and
Welch's test against numbers worked by hand, and the rule that decides when cells pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.stats import (
    PAIRED,
    WELCH,
    difference_test,
    holm,
    paired_mde,
    shares_init_and_order,
    welch_mde,
    welch_test,
)


def test_holm_multiplies_the_kth_smallest_p_by_the_number_left_and_never_lowers_a_later_one():
    # 0.01, 0.04, 0.03 (m = 3), sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the 0.06
    # before it (a step-down adjustment never falls). In the input's order: 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # 0.001, 0.02, 0.019, 0.5 (m = 4): 0.001 x 4 = 0.004; 0.019 x 3 = 0.057; 0.02 x 2 = 0.04 -> 0.057; 0.5 x 1
    assert holm([0.001, 0.02, 0.019, 0.5]) == pytest.approx([0.004, 0.057, 0.057, 0.5])
    # 0.0351 twice: 0.0351 x 2 = 0.0702 for both; each alone stays 0.0351
    assert holm([0.0351, 0.0351]) == pytest.approx([0.0702, 0.0702])
    assert holm([0.0351]) == pytest.approx([0.0351])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # 0.6 x 2 = 1.2: a probability stops at 1
    assert holm([]) == []


def _power(effect_size: float, df: int, noncentrality_per_unit: float) -> float:
    """Two-sided power at alpha 0.05 of a t-test with ``df`` degrees of freedom whose statistic, for a true
    standardised effect d, is noncentral t with noncentrality d x ``noncentrality_per_unit``."""
    crit = stats.t.ppf(0.975, df)
    nc = effect_size * noncentrality_per_unit
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def test_paired_mde_is_the_mean_difference_found_with_80_percent_power():
    # d = 1, 2, 3: sd 1, n 3, 2 df. The test rejects when |t| > t(0.975, 2) = 4.3027; a true mean difference
    # delta makes t noncentral with 2 df and noncentrality delta x sqrt(3) / sd. Power 0.8 needs
    # delta / sd = 3.2640 (noncentrality 5.6535), so the MDE is 3.2640 x 1 mm.
    mde = paired_mde(np.array([1.0, 2.0, 3.0]))
    assert mde == pytest.approx(3.2640, abs=2e-4)
    assert _power(mde, 2, np.sqrt(3)) == pytest.approx(0.8, abs=1e-4)  # scipy's noncentral t agrees
    assert paired_mde(np.array([2.0, 4.0, 6.0])) == pytest.approx(2 * 3.2640, abs=4e-4)  # twice the spread
    assert paired_mde(np.array([5.0, 5.0, 5.0])) == 0.0  # no spread: any difference shows
    assert paired_mde(np.array([1.0])) is None  # one pair has no spread to measure


def test_welch_mde_is_the_difference_of_means_found_with_80_percent_power_at_the_pooled_sd():
    # x = 1, 2, 3 and y = 4, 5, 6: both sd 1, pooled sd 1, n 3 + 3, 4 df; critical t(0.975, 4) = 2.7764;
    # noncentrality d x sqrt(3 x 3 / 6) = d x 1.2247. Power 0.8 at d = 3.0709, so the MDE is 3.0709 x 1.
    mde = welch_mde(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
    assert mde == pytest.approx(3.0709, abs=2e-4)
    assert _power(mde, 4, np.sqrt(1.5)) == pytest.approx(0.8, abs=1e-4)
    # y = 5, 6: n 3 + 2 (ratio 2 / 3), 3 df; variances 1 and 0.5, pooled sd sqrt((2 x 1 + 1 x 0.5) / 3) =
    # 0.91287; noncentrality d x sqrt(3 x 2 / 5); power 0.8 at d = 3.8851: the MDE is 3.8851 x 0.91287 = 3.5466
    uneven = welch_mde(np.array([1.0, 2.0, 3.0]), np.array([5.0, 6.0]))
    assert uneven == pytest.approx(3.5466, abs=3e-4)
    assert _power(uneven / np.sqrt(2.5 / 3), 3, np.sqrt(6 / 5)) == pytest.approx(0.8, abs=1e-4)
    assert welch_mde(np.array([1.0, 2.0]), np.array([3.0])) is None


def test_paired_and_welch_tests_of_one_sample_worked_by_hand():
    """tmt 10, 12, 14 and baseline 11, 14, 17 (one value per seed): the same 2 mm effect, two tests."""
    tmt, base = np.array([10.0, 12.0, 14.0]), np.array([11.0, 14.0, 17.0])
    # paired: d = 1, 2, 3, mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641 with 2 df: p = 0.07418
    paired = difference_test(base, tmt, paired=True)
    assert (paired.effect, paired.n, paired.procedure) == (2.0, 3, PAIRED)
    assert paired.p == pytest.approx(2 * stats.t.sf(2 * np.sqrt(3), 2)) == pytest.approx(0.07418, abs=1e-5)
    assert paired.mde == pytest.approx(3.2640, abs=2e-4)  # sd of the differences: 1
    # Welch: means 14 and 12, variances 9 and 4, se = sqrt(9 / 3 + 4 / 3) = 2.0817, t = 0.96077, df =
    # (13 / 3)^2 / (3^2 / 2 + (4 / 3)^2 / 2) = 3.4845: p = 0.3985
    welch = difference_test(base, tmt, paired=False)
    assert (welch.effect, welch.n, welch.procedure) == (2.0, 3, WELCH)
    assert welch.p == pytest.approx(2 * stats.t.sf(0.96077, 3.4845), abs=1e-4)
    assert welch.p == pytest.approx(0.3985, abs=1e-4)
    half = stats.t.ppf(0.975, 3.4845) * np.sqrt(13 / 3)
    assert welch.ci == pytest.approx((2 - half, 2 + half), abs=1e-3)
    # pooled sd sqrt((9 + 4) / 2) = 2.5495; MDE 3.0709 x 2.5495 = 7.829
    assert welch.mde == pytest.approx(7.829, abs=2e-3)


def test_welch_against_a_null_other_than_zero_and_without_spread():
    """A ratio is tested on logs against log(limit): the interval moves with the null, the p-value is the
    test of the shifted difference."""
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])
    diff, ci, p = welch_test(x, y, null=1.0)
    assert diff == 1.0 and p == pytest.approx(1.0)  # the difference is exactly the null
    _, zero_ci, _ = welch_test(x, y)
    assert ci == pytest.approx(zero_ci)  # the interval of the difference does not depend on the null
    assert welch_test(np.array([2.0, 2.0]), np.array([1.0, 1.0])) == (1.0, (1.0, 1.0), 0.0)
    assert welch_test(np.array([2.0, 2.0]), np.array([2.0, 2.0])) == (0.0, (0.0, 0.0), 1.0)
    assert welch_test(np.array([2.0]), np.array([1.0, 3.0])) == (0.0, None, None)
    assert welch_test(np.array([]), np.array([1.0])) == (None, None, None)


def _cells(fingerprints: list[tuple[str, str] | None]) -> pd.DataFrame:
    """Cells 0-2 (one arm) and 3-5 (the other, cell i + 3 at cell i's seed); None: no record."""
    names = ("fingerprints.initial_weights", "fingerprints.batch_order")
    rows = [dict(zip(names, record, strict=True)) if record else {} for record in fingerprints]
    return pd.DataFrame(rows, index=range(len(fingerprints)))


PAIRS = pd.DataFrame({"a_cell": [0, 1, 2], "b_cell": [3, 4, 5]})
SAME = [("aa", "bb"), ("cc", "dd"), ("ee", "ff")]


def test_cells_pair_only_when_every_pair_shares_initial_weights_and_batch_order():
    assert shares_init_and_order(_cells(SAME + SAME), PAIRS)
    other_order = [*SAME, SAME[0], SAME[1], ("ee", "f0")]
    assert not shares_init_and_order(_cells(other_order), PAIRS)  # one pair's batch order differs
    other_init = [*SAME, ("a0", "bb"), SAME[1], SAME[2]]
    assert not shares_init_and_order(_cells(other_init), PAIRS)  # one pair's initial weights differ
    assert not shares_init_and_order(_cells([*SAME, SAME[0], SAME[1], None]), PAIRS)  # one record missing
    assert not shares_init_and_order(pd.DataFrame(index=range(6)), PAIRS)  # results from before the record
    assert not shares_init_and_order(_cells([("", "")] * 6), PAIRS)  # an empty record is no record
    assert not shares_init_and_order(_cells(SAME + SAME), PAIRS.iloc[0:0])  # no pair
