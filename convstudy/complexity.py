"""Iteration complexity: how many iterations (and samples) a method needs to reach f - f* <= eps.

Theory (what to expect):

- :func:`gd_contraction`: the per-step contraction factor rho of f - f* for gradient descent with
  a fixed step on a quadratic (asymptotically, near w*, on any C^2 strongly convex problem), and
  :func:`iterations_per_efold` = 1 / ln(1/rho), the slope of iterations-to-eps against ln(1/eps).
- :func:`local_hessian`: the Hessian at w* of the linear-model problems, whose eigenvalues give rho.
- :func:`max_sample_smoothness`, :func:`expected_smoothness` and :func:`tuned_inverse_time_k0`:
  the shift k0 of a "tuned" 1/k schedule eta_k = 1/(mu (k + k0)) for minibatches of size b.
- :func:`inverse_time_model_iterations`: iterations to eps predicted by the variance + bias model
  of SGD with that schedule (fitted by :func:`fit_inverse_time_model`).

Measurement (what was observed):

- :func:`crossing_points`: the first x at which curves fall below eps, interpolated between
  recorded points (log-linear in y), so that the record grid does not quantise hitting times.
- :func:`fit_hitting_slope`: the slope of iterations-to-eps of the mean curve against ln(1/eps)
  (linear convergence) or against 1/eps on log-log axes (sublinear), with a bootstrap CI over
  replicates (:func:`convstudy.measures.bootstrap_replicates`).
- :func:`fit_inverse_time_model`: the variance and bias coefficients of SGD curves.

Conventions follow :mod:`convstudy.measures`: diverged replicates are excluded from mean curves
and counted; an eps a curve never reaches gives NaN (censored), never a made-up number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ._validation import check_array, check_option, check_scalar
from .measures import bootstrap_replicates, curve_matrix
from .problems import LeastSquares, Logistic
from .problems.base import Problem

__all__ = [
    "gd_contraction",
    "iterations_per_efold",
    "local_hessian",
    "max_sample_smoothness",
    "expected_smoothness",
    "tuned_inverse_time_k0",
    "crossing_points",
    "nan_ols_slope",
    "bootstrap_crossings",
    "fit_hitting_slope",
    "fit_inverse_time_model",
    "inverse_time_model_iterations",
]


# ---- theory ---------------------------------------------------------------------------------
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
    B (k0/(k + k0))^2 in f, grows like k0^2 (:func:`fit_inverse_time_model`). The numerator
    1/mu is the classical choice (Bottou, Curtis & Nocedal 2018, Thm 4.7 with beta = 1/mu, the
    edge of its condition beta > 1/mu; on a quadratic it still gives E f(w_k) - f* = O(1/k),
    the slowest eigen-direction's bias decaying like k^-2).
    """
    owner = "tuned_inverse_time_k0"
    mu = check_scalar(mu, "mu", owner, low=0.0)
    L_b = check_scalar(L_b, "L_b", owner, low=0.0)
    return float(max(1.0, L_b / mu))


# ---- measurement ----------------------------------------------------------------------------
def crossing_points(xs, curves, eps, *, log_x: bool = False) -> np.ndarray:
    """First x at which each curve falls to eps or below, interpolated; (B, E), NaN if never.

    ``xs`` (S,) increasing record positions, ``curves`` (B, S) values (NaN = diverged, never
    reaches), ``eps`` (E,) targets. With j the first record where y_j <= eps, the crossing is
    interpolated between records j-1 and j linearly in ln y and in x (``log_x=False``: suits
    linear convergence, ln y linear in x) or in ln x (``log_x=True``: power laws); a curve at or
    below eps at its first record crosses there. Unlike a first *recorded* step
    (:func:`convstudy.measures.hitting_times`), this does not round up to the record grid.
    """
    owner = "crossing_points"
    xs = check_array(xs, "xs", owner, ndim=1)
    curves = check_array(curves, "curves", owner, ndim=2, finite=False)
    eps = check_array(eps, "eps", owner, ndim=(0, 1))
    eps = np.atleast_1d(eps)
    if curves.shape[1] != xs.size:
        raise ValueError(
            f"The 'curves' parameter of {owner} must have {xs.size} columns (one per x). "
            f"Got shape {curves.shape} instead."
        )
    if np.any(eps <= 0):
        raise ValueError(f"The 'eps' parameter of {owner} must be > 0. Got {eps.tolist()}.")
    if np.any(np.diff(xs) <= 0):
        raise ValueError(f"The 'xs' parameter of {owner} must be strictly increasing.")
    if log_x and xs[0] < 0:
        raise ValueError(f"The 'xs' parameter of {owner} must be >= 0 with log_x=True.")
    y = np.nan_to_num(curves, nan=np.inf)
    reached = y[:, :, None] <= eps[None, None, :]  # (B, S, E)
    hit = reached.any(axis=1)
    j = reached.argmax(axis=1)  # (B, E)
    jp = np.maximum(j - 1, 0)
    rows = np.arange(y.shape[0])[:, None]
    tiny = np.finfo(float).tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        ly0 = np.log(np.maximum(y[rows, jp], tiny))
        ly1 = np.log(np.maximum(y[rows, j], tiny))
        t = np.clip((ly0 - np.log(eps)[None, :]) / (ly0 - ly1), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 1.0)
    x0, x1 = xs[jp], xs[j]
    if log_x:
        positive = x0 > 0
        with np.errstate(divide="ignore"):
            lx = np.exp(np.log(np.where(positive, x0, 1.0)) * (1 - t) + np.log(x1) * t)
        x = np.where(positive, lx, x0 + t * (x1 - x0))
    else:
        x = x0 + t * (x1 - x0)
    x = np.where(j == 0, xs[0], x)
    return np.where(hit, x, np.nan)


def nan_ols_slope(x, y) -> np.ndarray:
    """Least-squares slope of each row of y (B, S) against x (S,), ignoring NaN entries.

    A row with fewer than 2 finite points gets NaN.
    """
    x = np.asarray(x, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m = np.isfinite(y)
    n = m.sum(axis=1)
    xm = np.where(m, x[None, :], 0.0)
    ym = np.where(m, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xbar = xm.sum(axis=1) / n
        ybar = ym.sum(axis=1) / n
        xc = np.where(m, x[None, :] - xbar[:, None], 0.0)
        sxx = (xc * xc).sum(axis=1)
        slope = (xc * (ym - ybar[:, None] * m)).sum(axis=1) / sxx
    return np.where((n >= 2) & (sxx > 0), slope, np.nan)


def bootstrap_crossings(
    frame: pd.DataFrame,
    eps,
    *,
    y: str = "subopt",
    x: str = "step",
    log_x: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Crossings of the mean curve and of bootstrap mean curves: (point (E,), boots (B, E), n,
    n_diverged).

    The mean is over non-diverged replicates; bootstrap mean curves resample them
    (:func:`convstudy.measures.bootstrap_replicates`). NaN marks an eps never reached. With
    fewer than 1 non-diverged replicate everything is NaN.
    """
    eps = np.atleast_1d(check_array(eps, "eps", "bootstrap_crossings", ndim=(0, 1)))
    xs, Y, diverged = curve_matrix(frame, y, x)
    Y = Y[~diverged]
    if Y.shape[0] == 0:
        nan = np.full(eps.size, np.nan)
        return nan, np.full((n_boot, eps.size), np.nan), 0, int(diverged.sum())
    point = crossing_points(xs, Y.mean(axis=0)[None], eps, log_x=log_x)[0]
    boots = bootstrap_replicates(
        Y, lambda c: crossing_points(xs, c, eps, log_x=log_x), n_boot=n_boot, seed=seed
    )
    return point, boots, int(Y.shape[0]), int(diverged.sum())


def fit_hitting_slope(
    frame: pd.DataFrame,
    eps,
    *,
    scale: str = "linear",
    y: str = "subopt",
    x: str = "step",
    window: tuple[float, float] | None = None,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Slope of the mean curve's iterations-to-eps against ln(1/eps), with a bootstrap CI.

    K(eps) is where the mean of ``y`` over non-diverged replicates crosses eps
    (:func:`crossing_points`). ``scale="linear"`` fits K = a + s ln(1/eps): for linear
    convergence f - f* ~ C rho^k the slope is s = 1/ln(1/rho) (:func:`iterations_per_efold`).
    ``scale="loglog"`` fits ln K = a + s ln(1/eps): for f - f* ~ C / k^p, s = 1/p (s = 1 for SGD
    with a 1/k step on a strongly convex problem, Bottou et al. 2018, Thm 4.7).

    Only the eps whose point-estimate crossing lies in ``window`` = (x_min, x_max) (default:
    all reached) enter the fit; they are reported as ``eps_low``, ``eps_high`` and ``n_eps``.
    The CI is a percentile bootstrap over replicates (each bootstrap mean curve gives its own
    crossings; an eps a bootstrap curve never reaches is left out of that bootstrap's fit, and
    ``p_incomplete`` is the share of bootstraps where that happened). ``slope`` is NaN when
    fewer than 3 eps are usable (or fewer than 2 replicates did not diverge).
    """
    owner = "fit_hitting_slope"
    check_option(scale, "scale", owner, ["linear", "loglog"])
    check_scalar(level, "level", owner, low=0.0, high=1.0)
    eps = np.atleast_1d(check_array(eps, "eps", owner, ndim=(0, 1)))
    log_x = scale == "loglog"
    point, boots, n, n_div = bootstrap_crossings(
        frame, eps, y=y, x=x, log_x=log_x, n_boot=n_boot, seed=seed
    )
    keep = np.isfinite(point)
    if window is not None:
        keep &= (point >= window[0]) & (point <= window[1])
    if log_x:
        keep &= point > 0
    result = {
        "slope": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "se": np.nan,
        "intercept": np.nan,
        "eps_low": float(eps[keep].min()) if keep.any() else np.nan,
        "eps_high": float(eps[keep].max()) if keep.any() else np.nan,
        "n_eps": int(keep.sum()),
        "p_incomplete": np.nan,
        "n": n,
        "n_diverged": n_div,
    }
    if keep.sum() < 3 or n < 2:
        return result
    u = np.log(1.0 / eps[keep])

    def transform(k):
        if not log_x:
            return k
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.where(k > 0, k, np.nan))

    v = transform(point[keep])
    slope = float(nan_ols_slope(u, v[None])[0])
    kept_boots = transform(boots[:, keep])
    slopes = nan_ols_slope(u, kept_boots)
    q = np.nanquantile(slopes, [0.5 - level / 2, 0.5 + level / 2])
    result.update(
        slope=slope,
        ci_low=float(q[0]),
        ci_high=float(q[1]),
        se=float(np.nanstd(slopes, ddof=1)),
        intercept=float(np.mean(v) - slope * np.mean(u)),
        p_incomplete=float(np.isnan(kept_boots).any(axis=1).mean()),
    )
    return result


def fit_inverse_time_model(steps, curves, k0: float, *, k_min: float = 0.0) -> np.ndarray:
    """Variance and bias coefficients (c, B) of SGD curves under eta_k = 1/(mu (k + k0)).

    Model (quadratic, minibatch of b i.i.d. samples; Bottou et al. 2018, Sec. 4.2)::

        E f(w_k) - f* ~ c / (k + k0) + B (k0 / (k + k0))^2.

    Each eigen-component lambda of the error is multiplied by 1 - (lambda/mu)/(j + k0) at step j,
    so its noise-free part decays like (k0/(k + k0))^(lambda/mu): the slowest one (lambda = mu)
    leaves the bias term B (k0/(k+k0))^2 in f, the others decay faster. Its noise part settles
    at sigma_lambda^2 / (b mu^2 (2 lambda/mu - 1)(k + k0)), so c = c_1 / b: the variance term of
    a minibatch of b samples is 1/b that of one sample (it scales like 1/(b k)).

    Fitted by least squares on relative residuals, sum_k ((model_k - f_k) / f_k)^2 (every
    decade weighs the same), over records with k >= ``k_min`` and f_k > 0. ``curves`` (R, S)
    may be bootstrap mean curves; returns (R, 2) rows (c, B), NaN where < 2 points are usable.
    """
    owner = "fit_inverse_time_model"
    steps = check_array(steps, "steps", owner, ndim=1)
    curves = np.atleast_2d(check_array(curves, "curves", owner, ndim=(1, 2), finite=False))
    k0 = check_scalar(k0, "k0", owner, low=0.0)
    sel = steps >= k_min
    k, f = steps[sel], curves[:, sel]
    ok = np.isfinite(f) & (f > 0)
    features = np.stack([1.0 / (k + k0), (k0 / (k + k0)) ** 2], axis=-1)  # (S, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.where(ok[:, :, None], features[None] / f[:, :, None], 0.0)  # (R, S, 2)
    AtA = np.einsum("rsi,rsj->rij", A, A)
    Atb = A.sum(axis=1)
    out = np.full((curves.shape[0], 2), np.nan)
    good = (ok.sum(axis=1) >= 2) & (np.abs(np.linalg.det(AtA)) > 0)
    if good.any():
        out[good] = np.linalg.solve(AtA[good], Atb[good][:, :, None])[:, :, 0]
    return out


def inverse_time_model_iterations(c, B, k0: float, eps) -> np.ndarray:
    """Iterations K at which c/(K + k0) + B (k0/(K + k0))^2 = eps (model of
    :func:`fit_inverse_time_model`), clipped at 0; broadcasts over c, B and eps.

    With u = 1/(K + k0): B k0^2 u^2 + c u - eps = 0, whose positive root is
    u = 2 eps / (c + sqrt(c^2 + 4 B k0^2 eps)) (the stable form of the quadratic formula, valid
    for B = 0 too).
    """
    c, B, eps = np.asarray(c, float), np.asarray(B, float), np.asarray(eps, float)
    k0 = check_scalar(k0, "k0", "inverse_time_model_iterations", low=0.0, closed="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        u = 2.0 * eps / (c + np.sqrt(c * c + 4.0 * np.maximum(B, 0.0) * k0 * k0 * eps))
        return np.maximum(1.0 / u - k0, 0.0)
