"""Tests of convstudy.stats.means: Student-t means and ratios of means with bootstrap CIs."""

import math

import numpy as np
import pytest
from scipy import stats

from convstudy.stats.means import mean_ci, mean_sem_ci, ratio_of_means


def test_ratio_of_means_point_and_coverage():
    a, b = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, np.nan])
    assert ratio_of_means(a, b, seed=0).value == pytest.approx(4.0 / 1.5)
    assert ratio_of_means(a, b, seed=0).n == 2
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(100):
        num, den = rng.exponential(3.0, 200), rng.exponential(1.0, 200)
        r = ratio_of_means(num, den, n_boot=300, seed=i)
        covered += r.ci_low <= 3.0 <= r.ci_high
    # 95% nominal: with 100 trials coverage below 87 has probability < 1e-3 under Binomial
    assert covered >= 87
    with pytest.raises(ValueError, match="denominator"):
        ratio_of_means(a, -b[:2], seed=0)


def test_mean_ci_is_the_student_t_interval():
    x = np.array([1.0, 2.0, 4.0, 7.0, np.nan])  # NaN ignored
    est = mean_ci(x)
    finite = x[:4]
    half = stats.t.ppf(0.975, 3) * finite.std(ddof=1) / 2.0
    assert est.value == pytest.approx(3.5)
    assert (est.ci_low, est.ci_high) == pytest.approx((3.5 - half, 3.5 + half), rel=1e-12)
    assert est.n == 4 and est.method == "Student t" and est.level == 0.95
    narrow = mean_ci(finite, level=0.5)
    assert narrow.width < est.width and narrow.level == 0.5
    one = mean_ci([2.0])
    assert one.value == 2.0 and math.isnan(one.ci_low) and one.n == 1


def test_mean_sem_ci_is_the_array_form():
    values = np.random.default_rng(0).standard_normal((30, 4))
    mean, sem, low, high, n = mean_sem_ci(values)
    np.testing.assert_allclose(sem, values.std(axis=0, ddof=1) / np.sqrt(30))
    est = mean_ci(values[:, 2])
    assert (mean[2], low[2], high[2], n[2]) == pytest.approx(
        (est.value, est.ci_low, est.ci_high, est.n)
    )
