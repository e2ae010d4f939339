"""Tests of convstudy.stats.variance: the sample-variance interval, the joint bootstrap of
variances and mean squares, and the slope of a variance against the sample size.

Exact cases must hold to rounding error; Monte Carlo cases use a fixed seed and a tolerance of 4
standard errors of the measured number.
"""

import numpy as np
import pytest

from convstudy.stats.variance import (
    bootstrap_dispersion,
    bootstrap_mean_squares,
    bootstrap_sample_variances,
    fit_variance_slope,
    variance_ci,
)
from convstudy.theory.sampling_variance import finite_population_correction


def test_variance_ci_coverage_and_formula():
    rng = np.random.default_rng(5)
    x = rng.exponential(2.0, size=(4000, 200))  # true variance 4, skewed
    s2, lo, hi = variance_ci(x, axis=0)
    np.testing.assert_allclose(s2, x.var(axis=0, ddof=1))
    coverage = np.mean((lo <= 4.0) & (4.0 <= hi))
    # 200 intervals at nominal 95%: binomial sd 1.5%; allow 4 sd
    assert abs(coverage - 0.95) < 0.06
    with pytest.raises(ValueError, match="'method' parameter of variance_ci"):
        variance_ci(x, method="exact")


def test_bootstrap_variance_is_shift_invariant_and_matches_asymptotic_se():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 2)) * [1.0, 3.0]
    boots = bootstrap_sample_variances(x, n_boot=1000, seed=1)
    shifted = bootstrap_sample_variances(x + 1e8, n_boot=1000, seed=1)
    np.testing.assert_allclose(shifted, boots, rtol=1e-6)
    var, lo, hi = variance_ci(x)
    asymptotic_se = (hi - lo) / (2 * 1.959964)
    np.testing.assert_allclose(boots.std(axis=0, ddof=1), asymptotic_se, rtol=0.1)
    # the bootstrap distribution is centred on the sample variance (up to its (R-1)/R shrinkage)
    np.testing.assert_allclose(boots.mean(axis=0), var, rtol=0.01)


def test_bootstrap_mean_squares_and_joint_resampling():
    rng = np.random.default_rng(6)
    q = rng.exponential(size=(2000, 3))
    boots = bootstrap_mean_squares(q, n_boot=1000, seed=2)
    np.testing.assert_allclose(boots.mean(axis=0), q.mean(axis=0), rtol=0.01)
    np.testing.assert_allclose(
        boots.std(axis=0, ddof=1), q.std(axis=0, ddof=1) / np.sqrt(2000), rtol=0.1
    )
    # joint: both halves come from the same resamples, so equal columns give equal statistics
    v_boot, q_boot = bootstrap_dispersion(q[:, :1], q[:, :1] ** 2, n_boot=50, seed=3)
    m_boot = bootstrap_mean_squares(q[:, :1] ** 2, n_boot=50, seed=3)
    np.testing.assert_allclose(q_boot, m_boot)
    assert v_boot.shape == (50, 1)
    with pytest.raises(ValueError, match="'squares'.*as many rows"):
        bootstrap_dispersion(q, q[:10], seed=0)
    with pytest.raises(ValueError, match="'squares'.*>= 0"):
        bootstrap_mean_squares(-q, seed=0)


def test_loglog_slope_exact_and_fpc_corrected():
    sizes = 2.0 ** np.arange(8)
    exact = 3.0 / sizes
    fit = fit_variance_slope(sizes, exact, np.tile(exact, (10, 1)), n=10)
    assert fit.estimate.value == pytest.approx(-1.0)
    assert fit.estimate.ci_low == pytest.approx(-1.0) and fit.estimate.ci_high == pytest.approx(
        -1.0
    )
    fpc = finite_population_correction(200, sizes)
    without = fpc * exact
    raw = fit_variance_slope(sizes, without, np.tile(without, (10, 1)), n=10)
    corrected = fit_variance_slope(sizes, without, np.tile(without, (10, 1)), n=10, correction=fpc)
    assert raw.estimate.value < -1.05  # the FPC bends the raw slope below -1 near b ~ N
    assert corrected.estimate.value == pytest.approx(-1.0)


def test_fit_variance_slope_on_monte_carlo_means():
    """Means of n standard normals have variance 1/n: the fitted slope's CI covers -1."""
    rng = np.random.default_rng(8)
    sizes = 2 ** np.arange(7)
    means = np.stack([rng.standard_normal((3000, n)).mean(axis=1) for n in sizes], axis=1)
    var, _, _ = variance_ci(means)
    boots = bootstrap_sample_variances(means, n_boot=1000, seed=0)
    fit = fit_variance_slope(sizes, var, boots, n=means.shape[0])
    assert fit.estimate.ci_low <= -1.0 <= fit.estimate.ci_high
    assert fit.estimate.ci_high - fit.estimate.ci_low < 0.08
    assert fit.details["n_sizes"] == 7 and fit.details["size_max"] == 64
    assert fit.estimate.n == 3000


def test_loglog_slope_needs_two_positive_sizes():
    with pytest.raises(ValueError, match="at least 2 sizes"):
        fit_variance_slope([1.0, 2.0], [1.0, 0.0], np.ones((5, 2)), n=5)
