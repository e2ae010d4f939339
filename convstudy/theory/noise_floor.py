"""The noise floor of constant-step SGD on least squares, in closed form.

With a constant step eta, SGD does not converge: E[f(w_k)] - f* settles at a level that grows with
eta (Bottou, Curtis & Nocedal 2018, Thm 4.6: the bound eta L M / (2 c mu) is proportional to eta).
:class:`LeastSquaresSGDMoments` gives the **exact** first and second moments of SGD with
minibatches drawn with replacement on a least-squares problem: the expected suboptimality curve
under any schedule, the stationary noise floor for a constant step, its first-order
approximation eta tr(Sigma) / (4 b), and the largest step for which the second moment stays
bounded. :func:`sgd_moments` caches it per problem and :func:`expected_suboptimality_curve`
gives the exact curve of a schedule from a starting point; :func:`plateau_prediction` what a
time-averaged plateau measured over a window of a constant-step run should equal. Schedules
of eta_k: :func:`inverse_time_offset` (the k0 of eta_k = beta / (k0 + k) for a chosen beta mu) and
:func:`step_size_sums` (the Robbins-Monro partial sums). Measuring a plateau from runs is
:func:`convstudy.stats.curves.time_average` and :func:`convstudy.stats.fits.fit_power_law`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .._validation import check_array, check_scalar
from ..problems.linear import LeastSquares

__all__ = [
    "LeastSquaresSGDMoments",
    "sgd_moments",
    "expected_suboptimality_curve",
    "plateau_prediction",
    "inverse_time_offset",
    "step_size_sums",
]


def _symmetric_basis(d: int) -> np.ndarray:
    """Orthonormal basis (d*d, d(d+1)/2) of the row-major vectorised symmetric d x d matrices."""
    cols = []
    for a in range(d):
        for b in range(a, d):
            v = np.zeros((d, d))
            if a == b:
                v[a, a] = 1.0
            else:
                v[a, b] = v[b, a] = np.sqrt(0.5)
            cols.append(v.ravel())
    return np.array(cols).T


@dataclass(frozen=True)
class LeastSquaresSGDMoments:
    r"""Exact moments of minibatch SGD with replacement on least squares.

    Problem: f(w) = 1/(2N) ||X w - y||^2 + lam/2 ||w||^2 (a :class:`LeastSquares`, which includes
    ``quadratic`` and ``ridge``), per-sample gradients g_i(w) = A_i e + xi_i with e = w - w*,
    A_i = x_i x_i^T + lam I and xi_i = g_i(w*) (mean zero over i). SGD draws b indices
    uniformly with replacement at every step (``sampler="replacement"``) and updates
    e' = (I - eta A_B) e - eta xi_B, where A_B, xi_B are batch means. Taking expectations over
    the batch, independent of e, the mean m = E[e] and second moment P = E[e e^T] obey exactly::

        m' = (I - eta H) m,                         H = E[A_i] (the Hessian of f),
        P' = P - eta (H P + P H) + eta^2 (H P H + V(P) / b)
             + eta^2 / b (Sigma + C(m) + C(m)^T),

    with V(P) = E[x x^T P x x^T] - H0 P H0 (H0 = X^T X / N), Sigma = E[xi xi^T] the gradient
    noise covariance at w*, and C(m) = E[(x_i . m) x_i xi_i^T] (zero once m = 0). Since f is
    quadratic with grad f(w*) = 0, E[f(w_k)] - f* = tr(H P_k) / 2 exactly.

    Constant step: the stationary P solves eta (H P + P H) - eta^2 (H P H + V(P)/b) =
    eta^2 Sigma / b, and to first order in eta, E[f] - f* = eta tr(Sigma) / (4 b): the noise floor
    is proportional to eta (cf. Bottou, Curtis & Nocedal 2018, Thm 4.6, which bounds it by
    eta L M / (2 mu)). The second moment stays bounded iff the spectral radius of the linear map
    P -> E[(I - eta A_B) P (I - eta A_B)] is below 1, which holds exactly for eta below
    :meth:`mean_square_step_limit` (never above 2/L, the limit of gradient descent).

    Build with :meth:`from_problem`. Cost: O(N d^4) once, then O(d^4) per step.
    """

    hessian: np.ndarray
    noise_cov: np.ndarray
    batch_size: int
    _k1: np.ndarray  # vec(H P + P H) = k1 vec(P)
    _k2: np.ndarray  # vec(H P H + V(P)/b) = k2 vec(P)
    _cross: np.ndarray  # vec(C(m) + C(m)^T) = m @ cross

    @classmethod
    def from_problem(cls, problem: LeastSquares, batch_size: int = 1) -> LeastSquaresSGDMoments:
        """The exact moment recursion of SGD with ``batch_size`` on a least-squares ``problem``."""
        owner = "LeastSquaresSGDMoments"
        if not isinstance(problem, LeastSquares):
            raise TypeError(
                f"The 'problem' parameter of {owner} must be a LeastSquares problem "
                f"(quadratic, ridge, or LeastSquares on any data). Got {problem!r} instead."
            )
        b = check_scalar(
            batch_size, "batch_size", owner, kind=int, low=1, high=problem.n_samples, closed="both"
        )
        X, n, d = problem.X, problem.n_samples, problem.dim
        eye = np.eye(d)
        H0 = X.T @ X / n
        H = H0 + problem.lam * eye
        xi = problem.sample_grads(problem.w_star[None, :], np.arange(n)[None, :])[0]  # (N, d)
        sigma = xi.T @ xi / n
        outer = np.einsum("na,nb->nab", X, X).reshape(n, d * d)
        m4 = outer.T @ outer / n  # E[(x x^T) kron (x x^T)]
        k1 = np.kron(H, eye) + np.kron(eye, H)
        k2 = np.kron(H, H) + (m4 - np.kron(H0, H0)) / b
        t3 = np.einsum("nc,na,nb->cab", X, X, xi) / n  # C(m)_ab = sum_c m_c t3[c, a, b]
        cross = (t3 + t3.transpose(0, 2, 1)).reshape(d, d * d)
        return cls(H, sigma, b, k1, k2, cross)

    @property
    def dim(self) -> int:
        return self.hessian.shape[0]

    def transition(self, eta: float) -> np.ndarray:
        """The (d^2, d^2) matrix of P -> E[(I - eta A_B) P (I - eta A_B)] on row-major vec(P)."""
        return np.eye(self.dim**2) - eta * self._k1 + eta**2 * self._k2

    def expected_suboptimality(self, etas, w0_error, steps=None) -> np.ndarray:
        """Exact E[f(w_k)] - f* for step sizes ``etas`` (eta_0 .. eta_{K-1}) from w0 = w* + e0.

        ``w0_error`` is e0 = w0 - w*, shaped (d,). Returns the values at ``steps`` (default:
        every k = 0..K), in the order of ``steps``.
        """
        owner = "LeastSquaresSGDMoments.expected_suboptimality"
        etas = check_array(etas, "etas", owner, ndim=1)
        e0 = check_array(w0_error, "w0_error", owner, shape=(self.dim,))
        n_steps = etas.size
        steps = np.arange(n_steps + 1) if steps is None else np.asarray(steps, dtype=np.int64)
        if steps.size and (steps.min() < 0 or steps.max() > n_steps):
            raise ValueError(
                f"The 'steps' parameter of {owner} must lie in [0, {n_steps}]. "
                f"Got steps from {steps.min()} to {steps.max()} instead."
            )
        wanted = set(steps.tolist())
        h_vec = self.hessian.ravel() / 2
        noise_vec = self.noise_cov.ravel() / self.batch_size
        cross = self._cross / self.batch_size
        m, p = e0.copy(), np.outer(e0, e0).ravel()
        values = {}
        for k in range(n_steps + 1):
            if k in wanted:
                values[k] = float(h_vec @ p)
            if k == n_steps:
                break
            eta = etas[k]
            p = p - eta * (self._k1 @ p) + eta**2 * (self._k2 @ p + noise_vec + m @ cross)
            m = m - eta * (self.hessian @ m)
        return np.array([values[int(k)] for k in steps])

    def stationary_suboptimality(self, eta: float) -> float:
        """Exact noise floor lim_k E[f(w_k)] - f* for a constant step ``eta`` (inf if unstable)."""
        eta = check_scalar(eta, "eta", "LeastSquaresSGDMoments.stationary_suboptimality", low=0.0)
        if eta >= self.mean_square_step_limit():
            return float("inf")
        basis = _symmetric_basis(self.dim)
        lhs = basis.T @ (eta * self._k1 - eta**2 * self._k2) @ basis
        rhs = basis.T @ (eta**2 * self.noise_cov.ravel() / self.batch_size)
        p = basis @ np.linalg.solve(lhs, rhs)
        return float(self.hessian.ravel() @ p / 2)

    def first_order_floor(self, eta: float) -> float:
        """The noise floor to first order in eta: eta tr(Sigma) / (4 b)."""
        eta = check_scalar(eta, "eta", "LeastSquaresSGDMoments.first_order_floor", low=0.0)
        return float(eta * np.trace(self.noise_cov) / (4 * self.batch_size))

    def spectral_radius(self, eta: float) -> float:
        """Spectral radius of :meth:`transition` restricted to symmetric matrices."""
        basis = _symmetric_basis(self.dim)
        return float(np.max(np.abs(np.linalg.eigvalsh(basis.T @ self.transition(eta) @ basis))))

    def mean_square_step_limit(self, rtol: float = 1e-10) -> float:
        """The largest constant step for which E[||w_k - w*||^2] stays bounded.

        The transition is symmetric on symmetric matrices and its largest eigenvalue is a convex
        function of eta that equals 1 at eta = 0 and falls below 1 for small eta (H is positive
        definite), so the stable steps form an interval (0, eta_c); eta_c <= 2/L, with equality
        as b -> infinity. Found by bisection to relative tolerance ``rtol``. (Requires a
        strongly convex problem: with mu = 0 the map has eigenvalue 1 at every eta.)
        """
        lam_max = float(np.linalg.eigvalsh(self.hessian)[-1])
        lo, hi = 0.0, 2.0 / lam_max
        if self.spectral_radius(hi * (1 - rtol)) < 1.0:
            return hi
        while hi - lo > rtol * hi:
            mid = 0.5 * (lo + hi)
            if self.spectral_radius(mid) < 1.0:
                lo = mid
            else:
                hi = mid
        return lo


@functools.lru_cache(maxsize=16)
def sgd_moments(problem: LeastSquares, batch_size: int = 1) -> LeastSquaresSGDMoments:
    """:meth:`LeastSquaresSGDMoments.from_problem`, cached per problem object (O(N d^4) once)."""
    return LeastSquaresSGDMoments.from_problem(problem, batch_size)


def expected_suboptimality_curve(
    problem: LeastSquares, etas, steps=None, *, w0=None, batch_size: int = 1
) -> np.ndarray:
    """Exact E[f(w_k)] - f* at ``steps`` of SGD with replacement, steps ``etas``, from ``w0``.

    ``w0`` defaults to ``problem.initial_point()`` (the engine's default start); the moment
    recursion is :meth:`LeastSquaresSGDMoments.expected_suboptimality` of :func:`sgd_moments`.
    """
    start = problem.initial_point() if w0 is None else np.asarray(w0, dtype=float)
    moments = sgd_moments(problem, batch_size)
    return moments.expected_suboptimality(etas, start - problem.w_star, steps)


def plateau_prediction(problem: LeastSquares, eta: float, window, *, batch_size: int = 1) -> dict:
    """Exact predictions for the plateau of constant-step SGD (with replacement) from the default
    start, time-averaged over the recorded steps ``window`` (increasing, e.g. [K/2, K]).

    Returns ``exact_window_mean`` (the mean of the exact E[f(w_k)] - f* over ``window``: what
    the measured time average estimates), ``exact_stationary`` (the noise floor,
    :meth:`LeastSquaresSGDMoments.stationary_suboptimality`), ``first_order`` (eta tr(Sigma) /
    (4 b)) and ``transient_share_at_window_start`` (exact value at window[0] / floor - 1: the
    transient from w0 not yet decayed when the window starts).
    """
    window = check_array(window, "window", "plateau_prediction", ndim=1)
    etas = np.full(int(window[-1]), float(eta))
    exact = expected_suboptimality_curve(problem, etas, window, batch_size=batch_size)
    moments = sgd_moments(problem, batch_size)
    floor = moments.stationary_suboptimality(eta)
    return {
        "exact_window_mean": float(exact.mean()),
        "exact_stationary": floor,
        "first_order": moments.first_order_floor(eta),
        "transient_share_at_window_start": float(exact[0] / floor - 1.0),
    }


def inverse_time_offset(eta0: float, mu: float, beta_mu: float = 2.0) -> float:
    """The k0 for which eta_k = eta0 k0 / (k0 + k) = beta / (k0 + k) has beta mu = ``beta_mu``.

    Bottou, Curtis & Nocedal (2018), Thm 4.7: with eta_k = beta / (gamma + k) and beta > 1/mu,
    E[f(w_k)] - f* = O(1/k); with beta mu < 1/2 the rate degrades to k^(-2 beta mu)
    (Nemirovski, Juditsky, Lan & Shapiro 2009, Sec. 1). k0 = beta_mu / (mu eta0).
    """
    owner = "inverse_time_offset"
    eta0 = check_scalar(eta0, "eta0", owner, low=0.0)
    mu = check_scalar(mu, "mu", owner, low=0.0)
    return check_scalar(beta_mu, "beta_mu", owner, low=0.0) / (mu * eta0)


def step_size_sums(etas) -> tuple[np.ndarray, np.ndarray]:
    """Partial sums (S1_k, S2_k) = (sum_{j<=k} eta_j, sum_{j<=k} eta_j^2) of a step sequence.

    Robbins & Monro (1951): SGD converges with S1 -> inf (the steps reach any distance) and S2
    bounded (the injected noise has finite total variance); a constant step has S2 -> inf (a
    noise floor), a summable one (exponential, step decay, cosine) a bounded S1 (it stops).
    """
    etas = check_array(etas, "etas", "step_size_sums", ndim=1)
    return np.cumsum(etas), np.cumsum(etas**2)
