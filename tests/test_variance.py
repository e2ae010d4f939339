"""Known-answer tests of the variance estimators in convstudy.variance.

Exact cases enumerate every possible sample, so the predictions must hold to rounding error;
Monte Carlo cases use a fixed seed and a tolerance of 4 standard errors of the measured number.
"""

import itertools

import numpy as np
import pytest

from convstudy.measures import variance_ci
from convstudy.variance import (
    bootstrap_dispersion,
    bootstrap_mean_squares,
    bootstrap_sample_variances,
    finite_population_correction,
    loglog_slope_ci,
    population_total_variance,
    population_variance,
    variance_of_sample_mean,
)

POPULATION = np.array([0.3, 1.7, 2.0, 4.5, 0.1, 9.0])  # skewed, N = 6


def _enumerated_means(values: np.ndarray, b: int, replace: bool) -> np.ndarray:
    """The means of every equally likely sample of b indices (ordered tuples with replacement)."""
    n = values.shape[0]
    draws = (
        itertools.product(range(n), repeat=b) if replace else itertools.combinations(range(n), b)
    )
    return np.array([values[list(d)].mean(axis=0) for d in draws])


def test_population_moments_known_values():
    assert population_variance([1.0, 2.0, 3.0, 4.0]) == pytest.approx(1.25)
    square = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]
    assert population_total_variance(square) == pytest.approx(2.0)


@pytest.mark.parametrize("b", range(1, 7))
def test_without_replacement_matches_exact_enumeration(b):
    means = _enumerated_means(POPULATION, b, replace=False)
    sigma2 = population_variance(POPULATION)
    assert means.mean() == pytest.approx(POPULATION.mean(), abs=1e-12)  # unbiased (Thm 2.1)
    predicted = variance_of_sample_mean(sigma2, b, population_size=6, replace=False)
    assert np.var(means) == pytest.approx(predicted, abs=1e-12)  # Cochran Thm 2.2


@pytest.mark.parametrize("b", [1, 2, 3])
def test_with_replacement_matches_exact_enumeration(b):
    means = _enumerated_means(POPULATION, b, replace=True)
    assert means.mean() == pytest.approx(POPULATION.mean(), abs=1e-12)
    predicted = variance_of_sample_mean(population_variance(POPULATION), b)
    assert np.var(means) == pytest.approx(predicted, rel=1e-12)


def test_trace_of_covariance_follows_the_same_law():
    vectors = np.random.default_rng(3).exponential(size=(7, 3))
    for b in (2, 4):
        means = _enumerated_means(vectors, b, replace=False)
        trace = float(np.sum(np.var(means, axis=0)))
        predicted = variance_of_sample_mean(
            population_total_variance(vectors), b, population_size=7, replace=False
        )
        assert trace == pytest.approx(predicted, rel=1e-12)


def test_finite_population_correction_values():
    assert finite_population_correction(10, 1) == 1.0
    assert finite_population_correction(10, 10) == 0.0
    assert finite_population_correction(569, 512) == pytest.approx(57 / 568)
    np.testing.assert_allclose(finite_population_correction(5, [1, 3, 5]), [1.0, 0.5, 0.0])


@pytest.mark.parametrize("replace", [True, False])
def test_monte_carlo_minibatch_variance_within_standard_errors(replace):
    """20000 minibatches of b = 10 from N = 40: measured variance within 4 SE of the formula,
    and the other design's formula (FPC on or off, 23% apart) is rejected."""
    rng = np.random.default_rng(11)
    population = rng.exponential(size=40)
    sigma2 = population_variance(population)
    draws = population[np.stack([rng.choice(40, 10, replace=replace) for _ in range(20_000)])].mean(
        axis=1
    )
    var, lo, hi = variance_ci(draws)
    se = (hi - lo) / (2 * 1.959964)
    right = variance_of_sample_mean(sigma2, 10, population_size=40, replace=replace)
    wrong = variance_of_sample_mean(sigma2, 10, population_size=40, replace=not replace)
    assert abs(var - right) <= 4 * se
    assert abs(var - wrong) > 4 * se


def test_validation_messages_name_the_argument():
    with pytest.raises(ValueError, match="'sample_size'.*at most population_size=5"):
        finite_population_correction(5, 6)
    with pytest.raises(ValueError, match="'sample_size'.*integer"):
        finite_population_correction(5, 1.5)
    with pytest.raises(ValueError, match="'sample_size'"):
        variance_of_sample_mean(1.0, 0)
    with pytest.raises(ValueError, match="'population_size'"):
        finite_population_correction(1, 1)
    with pytest.raises(ValueError, match="'population_size'.*required"):
        variance_of_sample_mean(1.0, 2, replace=False)
    with pytest.raises(TypeError, match="'replace'"):
        variance_of_sample_mean(1.0, 2, replace="no")
    with pytest.raises(ValueError, match="'population_var'"):
        variance_of_sample_mean(-1.0, 2)
    with pytest.raises(ValueError, match="'values'.*empty"):
        population_variance([])


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
        bootstrap_dispersion(q, q[:10])
    with pytest.raises(ValueError, match="'squares'.*>= 0"):
        bootstrap_mean_squares(-q)


def test_loglog_slope_exact_and_fpc_corrected():
    sizes = 2.0 ** np.arange(8)
    exact = 3.0 / sizes
    fit = loglog_slope_ci(sizes, exact, np.tile(exact, (10, 1)))
    assert fit["slope"] == pytest.approx(-1.0)
    assert fit["ci_low"] == pytest.approx(-1.0) and fit["ci_high"] == pytest.approx(-1.0)
    fpc = finite_population_correction(200, sizes)
    without = fpc * exact
    raw = loglog_slope_ci(sizes, without, np.tile(without, (10, 1)))
    corrected = loglog_slope_ci(sizes, without, np.tile(without, (10, 1)), correction=fpc)
    assert raw["slope"] < -1.05  # the FPC bends the raw slope below -1 near b ~ N
    assert corrected["slope"] == pytest.approx(-1.0)


def test_loglog_slope_ci_on_monte_carlo_means():
    """Means of n standard normals have variance 1/n: the fitted slope's CI covers -1."""
    rng = np.random.default_rng(8)
    sizes = 2 ** np.arange(7)
    means = np.stack([rng.standard_normal((3000, n)).mean(axis=1) for n in sizes], axis=1)
    var, _, _ = variance_ci(means)
    fit = loglog_slope_ci(sizes, var, bootstrap_sample_variances(means, n_boot=1000, seed=0))
    assert fit["ci_low"] <= -1.0 <= fit["ci_high"]
    assert fit["ci_high"] - fit["ci_low"] < 0.08
    assert fit["n_sizes"] == 7 and fit["size_max"] == 64


def test_loglog_slope_needs_two_positive_sizes():
    with pytest.raises(ValueError, match="at least 2 sizes"):
        loglog_slope_ci([1.0, 2.0], [1.0, 0.0], np.ones((5, 2)))
