"""Variance of sample means: exact predictions for sampling a finite population.

The empirical risk of a training set, a minibatch loss and a minibatch gradient are all sample
means of per-sample quantities v_i (divergences div_i(w), or gradients grad div_i(w)) over b
indices drawn from a population of N items. With population mean and variance

    vbar = 1/N sum_i v_i,        sigma^2 = 1/N sum_i (v_i - vbar)^2      (ddof = 0),

the mean of b indices drawn uniformly

- with replacement (i.i.d.) has  E = vbar  and  Var = sigma^2 / b;
- without replacement (a simple random sample) has  E = vbar  and
  Var = (N - b)/(N - 1) * sigma^2 / b,

Cochran (1977), "Sampling Techniques", 3rd ed., Thm 2.1 (unbiased) and Thm 2.2 (variance; there
written S^2 (N - n)/(N n) with S^2 = N sigma^2/(N - 1), which is the same number). The factor
(N - b)/(N - 1) is the finite-population correction (FPC): 1 at b = 1, 0 at b = N. For vectors
the same holds coordinate-wise, so the trace of the covariance, tr Cov = E||mean - vbar||^2,
obeys the same two formulas with sigma^2 = 1/N sum_i ||v_i - vbar||^2.

Estimating these variances from Monte Carlo draws is :mod:`convstudy.stats.variance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_array, check_scalar

__all__ = [
    "population_variance",
    "population_total_variance",
    "finite_population_correction",
    "variance_of_sample_mean",
    "per_sample_values",
    "GaussianLinearModel",
    "segment_means",
]


def population_variance(values) -> float:
    """sigma^2 = 1/N sum_i (v_i - vbar)^2 of a finite population of N scalars (ddof = 0).

    This is var(div) when the population is a training set: the variance of one uniformly drawn
    sample's divergence.
    """
    v = check_array(values, "values", "population_variance", ndim=1)
    if v.size < 1:
        raise ValueError("The 'values' parameter of population_variance must not be empty.")
    return float(np.var(v))


def population_total_variance(vectors) -> float:
    """tr Sigma = 1/N sum_i ||v_i - vbar||^2 of N vectors (N, d), the trace of the covariance.

    This is the total variance of one uniformly drawn sample's gradient, E||g_i - grad f||^2.
    """
    v = check_array(vectors, "vectors", "population_total_variance", ndim=2)
    if v.shape[0] < 1:
        raise ValueError("The 'vectors' parameter of population_total_variance must not be empty.")
    return float(np.sum(np.var(v, axis=0)))


def _check_sizes(sample_size, owner: str) -> np.ndarray:
    b = check_array(sample_size, "sample_size", owner, ndim=(0, 1))
    if np.any(b < 1) or np.any(b != np.round(b)):
        raise ValueError(
            f"The 'sample_size' parameter of {owner} must be integer(s) >= 1. "
            f"Got {np.atleast_1d(b).tolist()[:10]} instead."
        )
    return b


def finite_population_correction(population_size: int, sample_size) -> np.ndarray | float:
    """(N - b)/(N - 1): the factor by which sampling without replacement shrinks sigma^2/b.

    Cochran (1977), Thm 2.2. ``sample_size`` may be an array; each b must lie in [1, N].
    """
    owner = "finite_population_correction"
    n = check_scalar(population_size, "population_size", owner, kind=int, low=2, closed="left")
    b = _check_sizes(sample_size, owner)
    if np.any(b > n):
        raise ValueError(
            f"The 'sample_size' parameter of {owner} must be at most population_size={n} "
            f"(sampling without replacement). Got {np.atleast_1d(b).tolist()[:10]} instead."
        )
    out = (n - b) / (n - 1)
    return float(out) if out.ndim == 0 else out


def variance_of_sample_mean(
    population_var: float,
    sample_size,
    *,
    population_size: int | None = None,
    replace: bool = True,
) -> np.ndarray | float:
    """Variance of the mean of b uniform draws from a population with variance sigma^2.

    ``replace=True``: sigma^2 / b (i.i.d. draws; also the variance of the empirical risk of N
    i.i.d. samples from any distribution with var(div) = sigma^2). ``replace=False``:
    (N - b)/(N - 1) sigma^2 / b with N = ``population_size`` (Cochran 1977, Thm 2.2).
    ``sample_size`` may be an array of b values.
    """
    owner = "variance_of_sample_mean"
    var = check_scalar(population_var, "population_var", owner, low=0.0, closed="left")
    if not isinstance(replace, (bool, np.bool_)):
        raise TypeError(f"The 'replace' parameter of {owner} must be a bool. Got {replace!r}.")
    b = _check_sizes(sample_size, owner)
    if replace:
        out = var / b
    else:
        if population_size is None:
            raise ValueError(
                f"The 'population_size' parameter of {owner} is required when replace=False."
            )
        out = finite_population_correction(population_size, b) * var / b
    out = np.asarray(out, dtype=float)
    return float(out) if out.ndim == 0 else out


def per_sample_values(problem, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite population of a finite-sum problem at w: div_i(w) (N,) and grad div_i(w) (N, d).

    Uniform sampling of an index i makes these the per-sample values whose population variance
    (:func:`population_variance`, :func:`population_total_variance`) the predictions above use:
    var(div) and tr Cov(grad div), the SGD gradient noise of one sample. ``problem`` has
    ``n_samples``, ``sample_losses`` and ``sample_grads`` (a :class:`convstudy.problems.Problem`).
    """
    w = check_array(w, "w", "per_sample_values", ndim=1)
    idx = np.arange(problem.n_samples)[None, :]
    return problem.sample_losses(w[None], idx)[0], problem.sample_grads(w[None], idx)[0]


@dataclass(frozen=True)
class GaussianLinearModel:
    """The data distribution x ~ N(0, diag(lambda)), y = x . w_true + noise z, z ~ N(0, 1).

    With div(w) = (x . w - y)^2 / 2 and e = w - w_true, the residual r = x . e - noise z is
    N(0, s^2) with s^2 = e' Sigma e + noise^2, so the risk is F(w) = s^2 / 2 and
    var(div) = var(r^2) / 4 = s^4 / 2. The gradient r x has mean Sigma e and, by Isserlis'
    theorem E[(a.x)^2 x x'] = (a' Sigma a) Sigma + 2 Sigma a a' Sigma, covariance
    s^2 Sigma + Sigma e e' Sigma, so tr Cov(grad div) = s^2 tr Sigma + ||Sigma e||^2. A diagonal
    Sigma loses no generality: every quantity here is invariant under rotations of x.
    """

    eigenvalues: np.ndarray
    noise: float
    w_true: np.ndarray

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n i.i.d. samples (X (n, d), y (n,)) from ``rng``."""
        z = rng.standard_normal((n, self.eigenvalues.size + 1))
        X = z[:, :-1] * np.sqrt(self.eigenvalues)
        return X, X @ self.w_true + self.noise * z[:, -1]

    def moments(self, w: np.ndarray) -> dict:
        """Exact ``risk`` F(w), ``var_div``, ``trace_cov`` = tr Cov(grad div) and ``mean_grad``
        E grad div at w."""
        w = check_array(w, "w", "GaussianLinearModel.moments", shape=(self.eigenvalues.size,))
        sigma_e = self.eigenvalues * (w - self.w_true)
        s2 = float((w - self.w_true) @ sigma_e) + self.noise**2
        trace = s2 * float(self.eigenvalues.sum()) + float(sigma_e @ sigma_e)
        return {"risk": s2 / 2, "var_div": s2**2 / 2, "trace_cov": trace, "mean_grad": sigma_e}

    def fresh_estimates(
        self, rng, w: np.ndarray, sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Empirical risk (S,) and ||grad - E grad||^2 (S,) of fresh training sets of each size
        in ``sizes`` (S,), drawn one after the other in one call to :meth:`draw`."""
        X, y = self.draw(rng, int(np.sum(sizes)))
        res, starts = X @ w - y, np.cumsum(sizes) - sizes
        grads = np.add.reduceat(res[:, None] * X, starts, axis=0) / np.asarray(sizes)[:, None]
        sqdev = np.sum((grads - self.moments(w)["mean_grad"]) ** 2, axis=1)
        return 0.5 * np.add.reduceat(res**2, starts) / sizes, sqdev


def segment_means(idx: np.ndarray, sizes, values: np.ndarray, vectors: np.ndarray):
    """Monte Carlo draws of the sample means above: for each replicate (row of ``idx``, which
    holds index segments of lengths ``sizes`` one after the other), the mean of ``values`` (N,)
    and the squared norm of the mean of ``vectors`` (N, d) over each segment.

    With ``vectors`` centred at their population mean the second is ||g - E g||^2, whose mean is
    tr Cov(g). Returns two (R, S) arrays. Rows are reduced in blocks of about 2e6 gathered
    numbers, each on its own, so a row's numbers do not depend on the rows beside it.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    means, sqnorms = np.empty((2, idx.shape[0], sizes.size))
    for j, (b, end) in enumerate(zip(sizes, np.cumsum(sizes))):
        block = max(1, 2_000_000 // (int(b) * vectors.shape[1]))
        for start in range(0, idx.shape[0], block):
            rows = idx[start : start + block, end - b : end]
            means[start : start + block, j] = values[rows].sum(axis=1) / b
            dev = vectors[rows].sum(axis=1) / b
            sqnorms[start : start + block, j] = np.einsum("rd,rd->r", dev, dev)
    return means, sqnorms
