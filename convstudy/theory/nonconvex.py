"""Closed forms for nonconvex SGD: Ghadimi & Lan's bound and Kramers' escape rate.

**Ghadimi & Lan (2013), SIAM J. Optim. 23(4), 2341-2368, Theorem 2.1(a).** For an L-smooth f
(gradient L-Lipschitz) and an unbiased gradient oracle with E||G(w) - grad f(w)||^2 <= sigma^2,
SGD w_{k+1} = w_k - gamma_k G(w_k) with gamma_k < 2/L, output w_R with
P(R = k) proportional to 2 gamma_k - L gamma_k^2 (k = 1..N) satisfies::

    (1/L) E||grad f(w_R)||^2 <= (D_f^2 + sigma^2 sum_k gamma_k^2) / sum_k (2 gamma_k - L gamma_k^2),

with D_f^2 = 2 (f(w_1) - f*) / L. For a constant step gamma over K steps R is uniform on the K
iterates before each update, so E||grad f(w_R)||^2 = (1/K) sum_{k=0}^{K-1} E||grad f(w_k)||^2
and the bound reads (:func:`ghadimi_lan_bound`)::

    B(K) = (2 (f(w_0) - f*) + L sigma^2 K gamma^2) / (K gamma (2 - L gamma)).

With gamma = c / sqrt(K), sqrt(K) B(K) = (2 (f(w_0) - f*) / c + L sigma^2 c) / (2 - L c / sqrt K),
which falls to its limit (f(w_0) - f*) / c + L sigma^2 c / 2: the O(1/sqrt(K)) rate of their
Corollary 2.2 with its explicit constant.

**Kramers (1940), Physica 7, 284.** Overdamped Langevin dynamics dw = -f'(w) dt + sqrt(2T) dW
leave a minimum x_l over a barrier Delta F = f(x_m) - f(x_l) at the rate (:func:`kramers_rate`)::

    r = sqrt(f''(x_l) |f''(x_m)|) / (2 pi) * exp(-Delta F / T),

to leading order in T / Delta F. SGD with step eta and minibatch gradient noise of variance
s^2 / b is the Euler-Maruyama scheme of these dynamics with time step eta and temperature
T = eta s^2 / (2 b) (:func:`sgd_temperature`), so the fraction of runs that have escaped after
K steps (a return over the higher barrier neglected) is 1 - exp(-eta K r)
(:func:`escaped_fraction`).

**Constants along a run.** A tanh network has no global L or sigma^2 (both grow with the
weights); :func:`hessian_norm` and :func:`oracle_variance` measure them at given iterates, and
their largest values over a run stand in for the theorem's constants on the region it visits.
:func:`hessian_norm` uses a problem's exact ``hessian`` method where it has one (the networks'
is the Gauss-Newton term plus the residual-weighted curvature, Bishop 2006 sec. 5.4) and central
differences of the gradient otherwise; :func:`oracle_variance` likewise uses a problem's
``gradient_variance`` method (the networks' skips the (R, N, d) per-sample gradients) and
centres ``sample_grads`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ghadimi_lan_bound",
    "geometric_strata",
    "sgd_temperature",
    "kramers_rate",
    "escaped_fraction",
    "oracle_variance",
    "hessian_norm",
]


def _positive(value: float, name: str, owner: str, *, zero: bool = False) -> float:
    value = float(value)
    if not (value >= 0 if zero else value > 0) or not math.isfinite(value):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(
            f"The {name!r} parameter of {owner} must be finite and {bound}. Got {value}."
        )
    return value


def ghadimi_lan_bound(K: float, step: float, L: float, sigma2: float, gap: float) -> float:
    """B(K): Ghadimi & Lan's (Thm 2.1a) bound on E||grad f(w_R)||^2 for a constant step.

    ``K`` steps of size ``step`` (gamma < 2/L), smoothness ``L``, oracle variance ``sigma2``
    and ``gap`` = f(w_0) - f*; formula in the module docstring.
    """
    owner = "ghadimi_lan_bound"
    K, step, L = (_positive(v, n, owner) for v, n in ((K, "K"), (step, "step"), (L, "L")))
    sigma2, gap = (
        _positive(sigma2, "sigma2", owner, zero=True),
        _positive(gap, "gap", owner, zero=True),
    )
    if L * step >= 2:
        raise ValueError(f"ghadimi_lan_bound needs step < 2/L; got step * L = {step * L:.3g}.")
    return (2 * gap + L * sigma2 * K * step**2) / (K * step * (2 - L * step))


def geometric_strata(K: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Record steps and weights estimating (1/K) sum_{k=0}^{K-1} g_k from about n values.

    The iterates 0..K-1 are cut at 0 and the rounded geometric grid 1..K (n points); each
    stratum [e_i, e_{i+1}) is represented by its midpoint step with weight (e_{i+1} - e_i) / K
    (every step while K ln K < n - 1, so the estimate is exact there, and the early steps
    of longer runs, where g_k changes fastest, in strata one step wide). Returns (midpoints,
    weights summing to 1).
    """
    K, n = int(K), int(n)
    if K < 1 or n < 2:
        raise ValueError(f"geometric_strata needs K >= 1 and n >= 2. Got K = {K}, n = {n}.")
    grid = np.round(np.geomspace(1, K, n)).astype(np.int64)
    edges = np.unique(np.concatenate([[0], grid, [K]]))
    return (edges[:-1] + edges[1:] - 1) // 2, np.diff(edges) / K


def sgd_temperature(step: float, noise_sd: float, batch_size: float) -> float:
    """T = eta s^2 / (2 b): the Langevin temperature of SGD (module docstring)."""
    owner = "sgd_temperature"
    _positive(step, "step", owner), _positive(batch_size, "batch_size", owner)
    return step * _positive(noise_sd, "noise_sd", owner, zero=True) ** 2 / (2 * batch_size)


def kramers_rate(barrier: float, curvature_min: float, curvature_max: float, T: float) -> float:
    """Kramers' escape rate per unit time over ``barrier`` at temperature ``T`` (0 at T = 0).

    ``curvature_min`` = f''(x_l) > 0 at the minimum, ``curvature_max`` = f''(x_m) < 0 at the
    barrier top.
    """
    owner = "kramers_rate"
    barrier, T = _positive(barrier, "barrier", owner), _positive(T, "T", owner, zero=True)
    if not (curvature_min > 0 > curvature_max):
        raise ValueError(
            f"kramers_rate needs f''(x_l) > 0 > f''(x_m); got {curvature_min}, {curvature_max}."
        )
    prefactor = math.sqrt(curvature_min * -curvature_max) / (2 * math.pi)
    return prefactor * math.exp(-barrier / T) if T > 0 else 0.0


def escaped_fraction(rate: float, step: float, n_steps: int) -> float:
    """1 - exp(-eta K r): the share of runs that escaped within K steps of size eta."""
    owner = "escaped_fraction"
    rate = _positive(rate, "rate", owner, zero=True)
    return -math.expm1(
        -_positive(step, "step", owner) * _positive(n_steps, "n_steps", owner) * rate
    )


def oracle_variance(problem, w: np.ndarray) -> np.ndarray:
    """sigma^2(w) = (1/N) sum_i ||grad div_i(w) - grad f(w)||^2 per row of w (R, d): the
    variance of a one-sample gradient drawn with replacement (NaN for a non-finite row; the
    others are computed from the finite rows alone).

    It is ``problem.gradient_variance(w)`` ((R, d) -> (R,)) when the problem has that optional
    method (the tanh networks do: the same quantity block by block from the backward pass,
    without forming the per-sample gradients; rounding analysis in its docstring), and
    otherwise the per-sample gradients ``problem.sample_grads`` (R, N, d), centred on their
    mean."""
    ok = np.all(np.isfinite(w), axis=1)
    out = np.full(w.shape[0], np.nan)
    variance = getattr(problem, "gradient_variance", None)  # optional, like hessian_norm's
    if not ok.any():  # every row diverged (sample_grads need not accept zero rows)
        return out
    if variance is not None:
        out[ok] = variance(w[ok])
        return out
    idx = np.broadcast_to(np.arange(problem.n_samples), (int(ok.sum()), problem.n_samples))
    G = problem.sample_grads(w[ok], idx)
    out[ok] = ((G - G.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    return out


def hessian_norm(problem, w: np.ndarray, rows: int = 8, eps: float = 1e-5) -> np.ndarray:
    """max |eigenvalue| of the Hessian of f at the first ``rows`` finite rows of w (R, d); NaN for
    the other rows (a sup over a run needs only a sample of its replicates).

    The Hessian is ``problem.hessian(w)`` ((R, d) -> (R, d, d), exact) when the problem has that
    optional method (the tanh networks and the double well do), and otherwise central
    differences of ``problem.grad`` with step ``eps`` (2 d gradient calls, then symmetrised;
    error O(eps^2) from truncation plus O(eps_mach / eps) from rounding, ~1e-10 relative at the
    default step on the networks). ``eps`` is unused on the exact path."""
    picked = np.flatnonzero(np.all(np.isfinite(w), axis=1))[:rows]
    hessian = getattr(problem, "hessian", None)  # optional: looked up by name, as observables are
    if hessian is not None:
        H = hessian(w[picked])
    else:
        shifts = eps * np.eye(w.shape[1])
        H = np.stack(
            [
                (problem.grad(w[picked] + e) - problem.grad(w[picked] - e)) / (2 * eps)
                for e in shifts
            ],
            axis=2,
        )
    out = np.full(w.shape[0], np.nan)
    out[picked] = np.abs(np.linalg.eigvalsh((H + H.transpose(0, 2, 1)) / 2)).max(axis=1)
    return out
