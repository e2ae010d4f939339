"""Known-answer tests of convstudy.theory.sampling_variance: variances of sample means.

Exact cases enumerate every possible sample, so the predictions must hold to rounding error;
Monte Carlo cases use a fixed seed and a tolerance of 4 standard errors of the measured number.
"""

import itertools

import numpy as np
import pytest

from convstudy.stats.variance import variance_ci
from convstudy.theory.sampling_variance import (
    finite_population_correction,
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


def test_per_sample_values_are_the_problems_per_sample_losses_and_gradients():
    """Brute force over the samples: tr Cov of one sample's gradient, and the mean of div_i is f."""
    from convstudy.problems import get_problem
    from convstudy.theory.sampling_variance import per_sample_values

    problem = get_problem("quadratic", dim=3, condition_number=5.0, noise=1.0, n_samples=40)
    w = problem.w_star + 0.1
    div, grads = per_sample_values(problem, w)
    G = np.array([problem.sample_grads(w[None], np.array([[i]]))[0, 0] for i in range(40)])
    np.testing.assert_allclose(grads, G, rtol=1e-12)
    assert div.mean() == pytest.approx(problem.loss(w[None])[0])
    assert population_total_variance(grads) == pytest.approx(np.trace(np.cov(G.T, ddof=0)))
    with pytest.raises(ValueError, match="'w' parameter of per_sample_values"):
        per_sample_values(problem, np.ones((2, 3)))


def test_gaussian_linear_model_moments_match_monte_carlo():
    """Closed-form risk, var(div) and tr Cov(grad div) against 400k draws, within 4 SE."""
    from convstudy.theory.sampling_variance import GaussianLinearModel

    rng = np.random.default_rng(0)
    dist = GaussianLinearModel(np.logspace(0.0, 1.0, 10), 1.0, rng.standard_normal(10))
    w = dist.w_true + 0.3
    exact = dist.moments(w)
    X, y = dist.draw(np.random.default_rng(0), 400_000)
    res = X @ w - y
    div = 0.5 * res**2
    sq = np.sum((res[:, None] * X - exact["mean_grad"]) ** 2, axis=1)
    assert abs(div.mean() - exact["risk"]) <= 4 * div.std() / np.sqrt(div.size)
    var, lo, hi = variance_ci(div)
    assert abs(var - exact["var_div"]) <= 4 * (hi - lo) / (2 * 1.96)
    assert abs(sq.mean() - exact["trace_cov"]) <= 4 * sq.std() / np.sqrt(sq.size)
    g_mean = (res[:, None] * X).mean(axis=0)
    np.testing.assert_allclose(
        g_mean, exact["mean_grad"], atol=0.05 * np.abs(exact["mean_grad"]).max()
    )
    # fresh training sets of sizes 1, 2, 4 drawn one after the other from one stream
    risks, sqdev = dist.fresh_estimates(np.random.default_rng(5), w, np.array([1, 2, 4]))
    X, y = dist.draw(np.random.default_rng(5), 7)
    r = X @ w - y
    np.testing.assert_allclose(risks, [0.5 * r[0] ** 2, 0.25 * r[1:3] @ r[1:3], r[3:] @ r[3:] / 8])
    g = (r[3:, None] * X[3:]).mean(axis=0) - exact["mean_grad"]
    assert sqdev[2] == pytest.approx(g @ g)


def test_segment_means_are_means_over_each_segment():
    from convstudy.theory.sampling_variance import segment_means

    rng = np.random.default_rng(1)
    values, vectors = rng.normal(size=20), rng.normal(size=(20, 3))
    sizes = np.array([1, 2, 4])
    idx = rng.integers(0, 20, size=(5, 7))
    means, sqnorms = segment_means(idx, sizes, values, vectors)
    for r in range(5):
        for j, (start, b) in enumerate(zip([0, 1, 3], sizes)):
            seg = idx[r, start : start + b]
            assert means[r, j] == pytest.approx(values[seg].mean())
            assert sqnorms[r, j] == pytest.approx(np.sum(vectors[seg].mean(axis=0) ** 2))
