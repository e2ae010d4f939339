"""Iteration complexity in closed form: what theory predicts for iterations (and samples) to eps.

- :func:`gd_contraction`: the per-step contraction factor rho of f - f* for gradient descent with
  a fixed step on a quadratic (asymptotically, near w*, on any C^2 strongly convex problem), and
  :func:`iterations_per_efold` = 1 / ln(1/rho), the slope of iterations-to-eps against ln(1/eps).
- :func:`local_hessian`: the Hessian at w* of the linear-model problems, whose eigenvalues
  (:func:`local_spectrum`) give rho; :func:`gd_rate` collects them for a problem and a step.
- :func:`max_sample_smoothness`, :func:`expected_smoothness` and :func:`tuned_inverse_time_k0`:
  the shift k0 of a "tuned" 1/k schedule eta_k = 1/(mu (k + k0)) for minibatches of size b
  (:func:`minibatch_k0` for a problem).
- :func:`inverse_time_model_iterations`: iterations to eps predicted by the variance + bias model
  of SGD with that schedule (whose coefficients
  :func:`convstudy.stats.fits.fit_inverse_time_model` fits to curves), and
  :func:`inverse_time_variance_share`, the share of the variance term in that model, and
  :func:`inverse_time_variance_constant`, its coefficient c_b in closed form.

The measurements these predictions are compared with are in :mod:`convstudy.stats`.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .._validation import check_array, check_scalar
from ..problems import LeastSquares, Logistic
from ..problems.base import Problem

__all__ = [
    "gd_contraction",
    "iterations_per_efold",
    "local_hessian",
    "local_spectrum",
    "gd_rate",
    "max_sample_smoothness",
    "expected_smoothness",
    "tuned_inverse_time_k0",
    "minibatch_k0",
    "inverse_time_model_iterations",
    "inverse_time_variance_share",
    "inverse_time_variance_constant",
]


def gd_contraction(eigenvalues, step: float) -> float:
    """Per-step contraction factor rho of f - f* for gradient descent with a fixed step.

    On a quadratic f(w) = f* + (w - w*)' H (w - w*) / 2, gradient descent gives
    e_{k+1} = (I - step H) e_k, so each eigen-component of the error is multiplied by
    (1 - step lambda_i) per step and its share of f - f* by (1 - step lambda_i)^2. Asymptotically
    the slowest component dominates::

        rho = max_i (1 - step lambda_i)^2.

    With step = 1/L this is (1 - mu/L)^2 = (1 - 1/kappa)^2; with the optimal fixed step
    2/(L + mu) both extreme components contract by (kappa - 1)/(kappa + 1), so
    rho = ((kappa - 1)/(kappa + 1))^2 (Nesterov 2004, Thm 2.1.15; Polyak 1987, Sec. 1.4).
    rho > 1 (a step above 2/L) means divergence. For a non-quadratic C^2 problem, pass the
    eigenvalues of the Hessian at w* (:func:`local_hessian`): rho is then the asymptotic rate.
    """
    owner = "gd_contraction"
    eig = check_array(eigenvalues, "eigenvalues", owner, ndim=(0, 1))
    step = check_scalar(step, "step", owner, low=0.0)
    return float(np.max((1.0 - step * np.atleast_1d(eig)) ** 2))


def iterations_per_efold(rho: float) -> float:
    """1 / ln(1/rho): iterations per unit of ln(1/eps) for a method with f - f* ~ C rho^k.

    If f_k - f* = C rho^k then the iterations to reach eps are K(eps) = (ln C + ln(1/eps)) /
    ln(1/rho): linear in ln(1/eps) with this slope. ``inf`` for rho >= 1, 0 for rho = 0.
    """
    rho = check_scalar(rho, "rho", "iterations_per_efold", low=0.0, closed="left")
    if rho >= 1.0:
        return float("inf")
    if rho == 0.0:
        return 0.0
    return float(1.0 / np.log(1.0 / rho))


def local_hessian(problem: Problem) -> np.ndarray:
    """The Hessian of f at the certified optimum w* of a linear-model problem, (d, d).

    Least squares (``quadratic``, ``ridge``, :class:`LeastSquares`): X'X/N + lam I (constant).
    L2-logistic regression: X' diag(s (1 - s)) X / N + lam I with s = sigmoid(X w*) (the
    logistic loss's curvature at the margin x_i . w*, identical for either label).
    """
    if isinstance(problem, LeastSquares):
        return problem.X.T @ problem.X / problem.n_samples + problem.lam * np.eye(problem.dim)
    if isinstance(problem, Logistic):
        s = special.expit(problem.X @ problem.w_star)
        curvature = s * (1.0 - s)
        H = (problem.X.T * curvature) @ problem.X / problem.n_samples
        return H + problem.lam * np.eye(problem.dim)
    raise TypeError(
        f"The 'problem' parameter of local_hessian must be a LeastSquares or Logistic problem. "
        f"Got {type(problem).__name__} instead."
    )


def local_spectrum(problem: Problem) -> np.ndarray:
    """Eigenvalues of :func:`local_hessian` in ascending order: mu_local = first, L_local = last.

    For a quadratic they are the spectrum of X'X/N + lam I; :func:`gd_contraction` of them is the
    asymptotic per-step contraction factor of gradient descent with a given step.
    """
    return np.linalg.eigvalsh(local_hessian(problem))


def max_sample_smoothness(problem: Problem) -> float:
    """L_max = max_i L_i, the largest smoothness constant of one sample's divergence div_i.

    Least squares: Hess div_i = x_i x_i' + lam I, so L_i = ||x_i||^2 + lam. Logistic: the
    loss's second derivative is at most 1/4, so L_i = ||x_i||^2 / 4 + lam.
    """
    if isinstance(problem, (LeastSquares, Logistic)):
        scale = 0.25 if isinstance(problem, Logistic) else 1.0
        sq = np.einsum("nd,nd->n", problem.X, problem.X)
        return float(scale * sq.max() + problem.lam)
    raise TypeError(
        f"The 'problem' parameter of max_sample_smoothness must be a LeastSquares or Logistic "
        f"problem. Got {type(problem).__name__} instead."
    )


def expected_smoothness(
    L: float,
    L_max: float,
    batch_size: int,
    *,
    n_samples: int | None = None,
    replacement: bool = True,
) -> float:
    """Expected smoothness L_b of the b-sample gradient g_b (Gower et al. 2019, ICML).

    L_b is the constant in E||g_b(w) - g_b(w*)||^2 <= 2 L_b (f(w) - f*). For b indices drawn
    independently (with replacement), E||g_b - g_b*||^2 = (1 - 1/b)||grad f - grad f*||^2 +
    (1/b) E_i||grad div_i - grad div_i*||^2, and co-coercivity of each convex L_i-smooth div_i
    bounds the two terms by 2 L (f - f*) and 2 L_max (f - f*)::

        L_b = L + (L_max - L) / b                                  (with replacement),
        L_b = N (b - 1) / (b (N - 1)) L + (N - b) / (b (N - 1)) L_max  (without, "b-nice").

    L_1 = L_max (one sample) and L_N = L (full batch, without replacement).
    """
    owner = "expected_smoothness"
    L = check_scalar(L, "L", owner, low=0.0)
    L_max = check_scalar(L_max, "L_max", owner, low=0.0)
    if L_max < L:
        raise ValueError(
            f"The 'L_max' parameter of {owner} must be >= L={L:g} (a sample is at least as "
            f"curved as the average). Got {L_max!r} instead."
        )
    b = check_scalar(batch_size, "batch_size", owner, kind=int, low=1, closed="left")
    if replacement:
        return L + (L_max - L) / b
    if n_samples is None:
        raise ValueError(f"{owner} needs 'n_samples' when replacement=False.")
    N = check_scalar(n_samples, "n_samples", owner, kind=int, low=b, closed="left")
    if N == 1:
        return L_max
    return N * (b - 1) / (b * (N - 1)) * L + (N - b) / (b * (N - 1)) * L_max


def tuned_inverse_time_k0(mu: float, L_b: float) -> float:
    """Shift k0 of the 1/k schedule eta_k = 1/(mu (k + k0)) tuned to minibatch smoothness L_b.

    k0 = max(1, L_b / mu) is the smallest shift with eta_0 = 1/(mu k0) <= 1/L_b: the first
    step is at most 1/L_b, twice the constant-step bound 1/(2 L_b) of Gower et al. (2019,
    Thm 3.1), a deliberately large start, since the bias the schedule leaves behind,
    B (k0/(k + k0))^2 in f, grows like k0^2 (:func:`inverse_time_model_iterations`). The numerator
    1/mu is the classical choice (Bottou, Curtis & Nocedal 2018, Thm 4.7 with beta = 1/mu, the
    edge of its condition beta > 1/mu; on a quadratic it still gives E f(w_k) - f* = O(1/k),
    the slowest eigen-direction's bias decaying like k^-2).
    """
    owner = "tuned_inverse_time_k0"
    mu = check_scalar(mu, "mu", owner, low=0.0)
    L_b = check_scalar(L_b, "L_b", owner, low=0.0)
    return float(max(1.0, L_b / mu))


def minibatch_k0(problem: Problem, batch_size: int) -> float:
    """Shift k0_b of the tuned 1/k schedule for minibatches of ``batch_size`` i.i.d. samples.

    k0_b = :func:`tuned_inverse_time_k0` (mu, L_b) with L_b = :func:`expected_smoothness`
    (L, L_max, b) drawn with replacement (Gower et al. 2019): L_b = L + (L_max - L)/b, so
    eta_0 = 1/(mu k0_b) = 1/L_b whenever L_b >= mu.
    """
    L_b = expected_smoothness(problem.L, max_sample_smoothness(problem), batch_size)
    return tuned_inverse_time_k0(problem.mu, L_b)


def inverse_time_model_iterations(c, B, k0: float, eps) -> np.ndarray:
    """Iterations K at which c/(K + k0) + B (k0/(K + k0))^2 = eps, clipped at 0.

    The model is that of :func:`convstudy.stats.fits.fit_inverse_time_model`; broadcasts over c,
    B and eps.

    With u = 1/(K + k0): B k0^2 u^2 + c u - eps = 0, whose positive root is
    u = 2 eps / (c + sqrt(c^2 + 4 B k0^2 eps)) (the stable form of the quadratic formula, valid
    for B = 0 too).
    """
    c, B, eps = np.asarray(c, float), np.asarray(B, float), np.asarray(eps, float)
    k0 = check_scalar(k0, "k0", "inverse_time_model_iterations", low=0.0, closed="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        u = 2.0 * eps / (c + np.sqrt(c * c + 4.0 * np.maximum(B, 0.0) * k0 * k0 * eps))
        return np.maximum(1.0 / u - k0, 0.0)


def inverse_time_variance_share(c: float, B: float, k0: float, k: float) -> float:
    """Share of the variance term in f ~ c/(k + k0) + B (k0/(k + k0))^2 at step k.

    c/(k + k0) / (c/(k + k0) + max(B, 0) (k0/(k + k0))^2), the model of
    :func:`inverse_time_model_iterations`: 1 when the bias coefficient B is <= 0, 1/2 where the
    two terms are equal. A run whose share at its last step is >= 1/2 has its variance
    coefficient c pinned down by its tail (Bottou, Curtis & Nocedal 2018, Sec. 4.2).
    """
    owner = "inverse_time_variance_share"
    k0 = check_scalar(k0, "k0", owner, low=0.0, closed="left")
    k = check_scalar(k, "k", owner, low=0.0, closed="left")
    variance = c / (k + k0)
    return float(variance / (variance + max(B, 0.0) * (k0 / (k + k0)) ** 2))


def gd_rate(problem: Problem, step: float) -> dict[str, float]:
    """Gradient descent's asymptotic rate on a linear-model problem with a fixed step.

    As table columns: ``mu_local`` and ``L_local``, the extreme eigenvalues of the Hessian at w*
    (:func:`local_spectrum`); ``rho_theory`` = :func:`gd_contraction` of that spectrum, the
    per-step contraction of f - f*; ``slope_theory`` = :func:`iterations_per_efold` (rho), the
    iterations per e-fold of eps (inf for a step above 2/L_local: divergence).
    """
    eig = local_spectrum(problem)
    rho = gd_contraction(eig, step)
    return {"mu_local": float(eig[0]), "L_local": float(eig[-1]), "rho_theory": rho,
            "slope_theory": iterations_per_efold(rho)}  # fmt: skip


def inverse_time_variance_constant(
    problem: Problem, numerator: float, batch_size: int = 1
) -> float:
    """Exact asymptotic constant c_b of E f(w_k) - f* ~ c_b/k for SGD with eta_k = a/(k + k0).

    Near w* the error's component e_i along the i-th eigenvector of the Hessian H at w*
    (eigenvalue lambda_i) follows e_{k+1} = (1 - eta_k lambda_i) e_k - eta_k xi_k with gradient
    noise xi of variance sigma_i^2 / b (b i.i.d. samples; sigma_i^2 = u_i' Sigma u_i with Sigma
    the covariance of one sample's gradient at w*, where the mean gradient vanishes). For
    2 a lambda_i > 1 the recursion gives E e_i^2 ~ a^2 sigma_i^2 / (b (2 a lambda_i - 1) k), and
    f - f* ~ sum_i lambda_i e_i^2 / 2, so::

        c_b = (a^2 / (2 b)) sum_i lambda_i sigma_i^2 / (2 a lambda_i - 1).

    The noise's dependence on w - w* adds O(1/k^2). With a = 1/mu (Bottou, Curtis & Nocedal
    2018, Thm 4.7 at beta = 1/mu, where its own constant nu is infinite) every 2 a lambda_i >= 2.
    """
    owner = "inverse_time_variance_constant"
    a = check_scalar(numerator, "numerator", owner, low=0.0)
    b = check_scalar(batch_size, "batch_size", owner, kind=int, low=1, closed="left")
    lam, U = np.linalg.eigh(local_hessian(problem))
    if 2.0 * a * lam[0] <= 1.0:
        raise ValueError(
            f"{owner} needs 2 a lambda_min > 1 (a = {a:g}, lambda_min = {lam[0]:g}): the "
            "variance then decays more slowly than 1/k."
        )
    g = problem.sample_grads(problem.w_star[None, :], np.arange(problem.n_samples)[None, :])[0]
    sigma2 = ((g @ U) ** 2).mean(axis=0)  # the mean gradient at w* is 0
    return float(a * a / (2 * b) * np.sum(lam * sigma2 / (2 * a * lam - 1)))
