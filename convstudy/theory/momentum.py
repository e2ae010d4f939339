"""Momentum on a quadratic: optimal constant tunings, spectral radii and iteration counts.

On f(w) = 1/2 (w - w*)' H (w - w*) with the eigenvalues of H in [mu, L], kappa = L / mu:

- gradient descent, lr = 2/(L + mu): the error contracts by (kappa - 1)/(kappa + 1) per step,
  the best constant step (Nesterov 2004, Introductory Lectures on Convex Optimization,
  Thm 2.1.15): about kappa ln(1/eps) / 2 steps to shrink the error by eps;
- heavy ball, lr = 4/(sqrt L + sqrt mu)^2, momentum = ((sqrt kappa - 1)/(sqrt kappa + 1))^2: the
  error contracts by (sqrt kappa - 1)/(sqrt kappa + 1), the best rate of any two-step linear
  method (Polyak 1964, "Some methods of speeding up the convergence of iteration methods";
  Lessard, Recht & Packard 2016, SIAM J. Optim. 26(1), sec. 3.2);
- Nesterov's constant step scheme III (Nesterov 2004, (2.2.22)), lr = 1/L, momentum =
  (sqrt kappa - 1)/(sqrt kappa + 1): f - f* <= (1 - 1/sqrt kappa)^k (f(x_0) - f* +
  mu/2 ||x_0 - x*||^2) (Thm 2.2.3).

So the accelerated methods need ~sqrt(kappa) iterations where gradient descent needs ~kappa.

**torch's Nesterov is Nesterov's scheme.** convstudy.optim follows torch.optim.SGD:
b_t = m b_{t-1} + g_t (b_1 = g_1), w_t = w_{t-1} - lr (g_t + m b_t). Scheme III is
x_{k+1} = y_k - h grad f(y_k), y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k), y_0 = x_0. With
v_k = x_k - x_{k-1} and b = -v / h one checks y_{k+1} = y_k - h (g_k + beta b_{k+1}) and
b_{k+1} = beta b_k + g_k, with the same first step y_1 = y_0 - h (1 + beta) g_0. So torch's
(lr, momentum) = (h, beta) exactly, and torch's iterate w is Nesterov's search point y_k (where
the gradient is evaluated), not x_k. Heavy ball in torch's form is Polyak's
w_{k+1} = w_k - lr g_k + m (w_k - w_{k-1}) with w_{-1} = w_0, for a constant lr.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_option, check_scalar

__all__ = [
    "Tuning",
    "gradient_descent_tuning",
    "heavy_ball_tuning",
    "nesterov_tuning",
    "TUNINGS",
    "spectral_radius",
    "iteration_budget",
    "predicted_iterations",
    "error_multipliers",
    "predicted_hitting_time",
    "update_second_moments",
    "stationary_update_second_moment",
    "tuned_hitting_times",
]


class Tuning(NamedTuple):
    """Constant parameters of a method and the per-step contraction of f - f* they give.

    ``rate`` is the asymptotic factor by which f - f* shrinks per step on a quadratic whose
    Hessian has extreme eigenvalues mu and L (the square of the error's contraction factor).
    ``optimizer`` is the registered convstudy optimizer that runs the method.
    """

    lr: float
    momentum: float
    rate: float
    optimizer: str


def _mu_L(mu: float, L: float, owner: str) -> tuple[float, float]:
    mu = check_scalar(mu, "mu", owner, low=0.0)
    L = check_scalar(L, "L", owner, low=mu, closed="left")
    return mu, L


def gradient_descent_tuning(mu: float, L: float) -> Tuning:
    """Gradient descent with lr = 2/(L + mu), the optimal constant step on a quadratic.

    ||w_k - w*|| <= ((kappa - 1)/(kappa + 1))^k ||w_0 - w*||: the step minimises
    max_i |1 - lr lambda_i| over the spectrum [mu, L] (Nesterov 2004, Thm 2.1.15); f - f*
    contracts by the square, ((kappa - 1)/(kappa + 1))^2, per step.
    """
    mu, L = _mu_L(mu, L, "gradient_descent_tuning")
    rho = (L - mu) / (L + mu)
    return Tuning(lr=2.0 / (L + mu), momentum=0.0, rate=rho**2, optimizer="sgd")


def heavy_ball_tuning(mu: float, L: float) -> Tuning:
    """Polyak's heavy ball, lr = 4/(sqrt L + sqrt mu)^2, momentum = ((sqrt k - 1)/(sqrt k + 1))^2.

    On a quadratic w_{k+1} = w_k - lr grad f(w_k) + m (w_k - w_{k-1}) contracts the error by
    sqrt(m) = (sqrt kappa - 1)/(sqrt kappa + 1) per step asymptotically, the best rate of any
    two-step linear method (Polyak 1964; Polyak 1987, Introduction to Optimization, 3.2.1);
    f - f* by m. At the extreme eigenvalues the iteration matrix has a double root, so the
    transient carries a factor linear in k.
    """
    mu, L = _mu_L(mu, L, "heavy_ball_tuning")
    q = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    lr = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    return Tuning(lr=lr, momentum=q**2, rate=q**2, optimizer="momentum")


def nesterov_tuning(mu: float, L: float) -> Tuning:
    """Nesterov's constant-step scheme: lr = 1/L, momentum = (sqrt kappa - 1)/(sqrt kappa + 1).

    Guarantee (Nesterov 2004, Thm 2.2.3): f(x_k) - f* <= (1 - 1/sqrt kappa)^k (f(x_0) - f* +
    mu/2 ||x_0 - x*||^2). ``rate`` is the exact asymptotic contraction of f - f* on a quadratic
    with eigenvalues in [mu, L], :func:`spectral_radius` squared, close to (1 - 1/sqrt kappa)^2.
    torch's ``SGD(nesterov=True)`` with these (lr, momentum) runs this scheme exactly (see the
    module docstring).
    """
    mu, L = _mu_L(mu, L, "nesterov_tuning")
    m = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    r = spectral_radius(1.0 / L, m, [mu, L], nesterov=True)
    return Tuning(lr=1.0 / L, momentum=m, rate=r**2, optimizer="nesterov")


TUNINGS = {
    "gd": gradient_descent_tuning,
    "heavy_ball": heavy_ball_tuning,
    "nesterov": nesterov_tuning,
}


def spectral_radius(lr: float, momentum: float, eigenvalues, *, nesterov: bool = False) -> float:
    """Asymptotic per-step contraction of the error of (Nesterov) momentum on a quadratic.

    Along an eigenvector with eigenvalue lambda the error obeys e_{k+1} = a e_k - c e_{k-1},
    with a = 1 + m - lr lambda, c = m for heavy ball and a = (1 + m)(1 - lr lambda),
    c = m (1 - lr lambda) for Nesterov in torch's form (Lessard, Recht & Packard 2016,
    sec. 2.2); the rate is the largest modulus of a root of z^2 - a z + c over all
    eigenvalues (m = 0: |1 - lr lambda|).
    """
    owner = "spectral_radius"
    lr = check_scalar(lr, "lr", owner, low=0.0)
    m = check_scalar(momentum, "momentum", owner, low=0.0, closed="left")
    check_option(nesterov, "nesterov", owner, [False, True])
    lam = check_array(eigenvalues, "eigenvalues", owner, ndim=1)
    shrink = 1.0 - lr * lam
    a, c = ((1 + m) * shrink, m * shrink) if nesterov else (1 + m - lr * lam, np.full_like(lam, m))
    disc = np.sqrt((a * a - 4 * c).astype(complex))
    roots = np.abs(np.stack([(a + disc) / 2, (a - disc) / 2]))
    return float(roots.max())


def iteration_budget(rate: float, eps: float, kappa: float, margin: float) -> int:
    """Steps to run so that f - f* <= eps (f_0 - f*) is reached: margin ln(kappa/eps) / -ln(rate).

    For gradient descent this is a guarantee with margin = 1 (plus 20 spare steps):
    f_k - f* <= L/2 rho^{2k} ||e_0||^2 and f_0 - f* >= mu/2 ||e_0||^2, so the relative gap is at
    most kappa rate^k.
    """
    owner = "iteration_budget"
    rate = check_scalar(rate, "rate", owner, low=0.0, high=1.0)
    eps = check_scalar(eps, "eps", owner, low=0.0, high=1.0)
    kappa = check_scalar(kappa, "kappa", owner, low=1.0, closed="left")
    margin = check_scalar(margin, "margin", owner, low=0.0)
    return int(math.ceil(margin * math.log(kappa / eps) / -math.log(rate))) + 20


def predicted_iterations(rate: float, eps: float) -> float:
    """ln(1/eps) / -ln(rate): steps for f - f* to shrink by eps at the asymptotic ``rate``."""
    owner = "predicted_iterations"
    rate = check_scalar(rate, "rate", owner, low=0.0, high=1.0)
    eps = check_scalar(eps, "eps", owner, low=0.0, high=1.0)
    return math.log(1.0 / eps) / -math.log(rate)


def _form(momentum: float, nesterov: bool) -> tuple[float, float]:
    """(c1, c2) of torch's form: w' = w - lr (c1 g + c2 b), b' = m b + g, b_0 = 0."""
    return (1.0 + momentum, momentum**2) if nesterov else (1.0, momentum)


def error_multipliers(
    lr: float, momentum: float, eigenvalues, n_steps: int, *, nesterov: bool = False
) -> np.ndarray:
    """p_i(k), k = 0..n_steps: the exact error e_k = p_i(k) e_0 along eigenvector i, (n+1, d).

    Deterministic (full-batch) heavy ball or Nesterov in torch's form (see the module
    docstring) on a quadratic with Hessian eigenvalues lambda_i: p(0) = 1,
    p(1) = 1 - lr c1 lambda (torch's buffer starts at the first gradient; c1 = 1 + m for
    Nesterov, 1 otherwise), then p(k+1) = a p(k) - c p(k-1) with the a, c of
    :func:`spectral_radius`. Exact, including the transient that the spectral radius omits
    (heavy ball's optimal tuning has a double root at mu and L, so its error carries a factor
    linear in k; Lessard, Recht & Packard 2016, sec. 3.2).
    """
    owner = "error_multipliers"
    lr = check_scalar(lr, "lr", owner, low=0.0)
    m = check_scalar(momentum, "momentum", owner, low=0.0, closed="left")
    lam = check_array(eigenvalues, "eigenvalues", owner, ndim=1)
    n = check_scalar(n_steps, "n_steps", owner, kind=int, low=1, closed="left")
    check_option(nesterov, "nesterov", owner, [False, True])
    shrink = 1.0 - lr * lam
    a, c = ((1 + m) * shrink, m * shrink) if nesterov else (1 + m - lr * lam, np.full_like(lam, m))
    p = np.empty((n + 1, lam.size))
    p[0], p[1] = 1.0, 1.0 - lr * _form(m, nesterov)[0] * lam
    for k in range(1, n):
        p[k + 1] = a * p[k] - c * p[k - 1]
    return p


def predicted_hitting_time(
    lr: float,
    momentum: float,
    eigenvalues,
    eps,
    *,
    n_steps: int,
    weights=None,
    nesterov: bool = False,
    steps=None,
) -> float | np.ndarray:
    """First step at which the expected relative error sum_i w_i p_i(k)^2 / sum_i w_i <= eps.

    ``weights`` w_i = E[u_i^2] are the start's second moments in the Hessian's eigenbasis
    (u = V'(w_0 - w*); default 1: an isotropic start), so the ratio is
    E||w_k - w*||^2 / E||w_0 - w*||^2 exactly (:func:`error_multipliers`); weights lambda_i
    E[u_i^2] give E(f - f*) instead. ``steps`` (sorted) are the steps at which the error is
    read, as on a run's record grid (default: every step up to ``n_steps``). Returns inf if
    the target is not reached by ``n_steps``; an array of ``eps`` gives an array of steps.
    """
    owner = "predicted_hitting_time"
    targets = check_array(eps, "eps", owner, ndim=(0, 1))
    if np.any(targets <= 0) or np.any(targets >= 1):
        raise ValueError(f"The 'eps' parameter of {owner} must lie in (0, 1). Got {eps!r}.")
    p = error_multipliers(lr, momentum, eigenvalues, n_steps, nesterov=nesterov)
    w = np.ones(p.shape[1]) if weights is None else check_array(weights, "weights", owner)
    if w.shape != (p.shape[1],) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"The 'weights' parameter of {owner} must be {p.shape[1]} values >= 0.")
    grid = np.arange(n_steps + 1) if steps is None else np.asarray(steps, dtype=int)
    grid = grid[grid <= n_steps]
    rel = (p[grid] ** 2 @ w) / w.sum()
    hits = [
        float(grid[np.argmax(rel <= e)]) if (rel <= e).any() else math.inf for e in targets.flat
    ]
    return hits[0] if targets.ndim == 0 else np.array(hits)


def _sgd_moment_model(X, residuals, lr, momentum, nesterov, owner):
    """A, G, D, F and the noise covariance Q(S) = Q0 + Q1(S) of one-sample SGD at w* + e."""
    X = check_array(X, "X", owner, ndim=2)
    r = check_array(residuals, "residuals", owner, shape=(X.shape[0],))
    lr = check_scalar(lr, "lr", owner, low=0.0)
    m = check_scalar(momentum, "momentum", owner, low=0.0, high=1.0, closed="left")
    check_option(nesterov, "nesterov", owner, [False, True])
    n, d = X.shape
    if np.linalg.norm(X.T @ r) > 1e-8 * max(np.linalg.norm(X) * np.linalg.norm(r), 1.0):
        raise ValueError(f"The 'residuals' of {owner} must be those at w* (X' r = 0).")
    H, eye, (c1, c2) = X.T @ X / n, np.eye(d), _form(m, nesterov)
    A = np.block([[eye - lr * c1 * H, -lr * c2 * eye], [H, m * eye]])
    G = np.vstack([-lr * c1 * eye, eye])
    D, F = np.hstack([-lr * c1 * H, -lr * c2 * eye]), -lr * c1 * eye
    Q0 = X.T @ (X * r[:, None] ** 2) / n

    def q1(S: np.ndarray) -> np.ndarray:
        return X.T @ (X * np.einsum("ij,jk,ik->i", X, S, X)[:, None]) / n - H @ S @ H

    return A, G, D, F, Q0, q1, d


def update_second_moments(
    X, residuals, lr: float, momentum: float, n_steps: int, *, nesterov: bool = False
) -> np.ndarray:
    """E||w_k - w_{k-1}||^2 for k = 1..n_steps of one-sample SGD (momentum) started at w*.

    f(w) = 1/(2N) ||X w - y||^2, residuals r = y - X w* (so X' r = 0); each step draws one
    index uniformly with replacement, g = x_i (x_i' w - y_i) = H e + zeta with e = w - w*,
    E[zeta | e] = 0 and Cov(zeta | e) = Q0 + Q1(E ee'), Q0 = 1/N sum_i r_i^2 x_i x_i',
    Q1(S) = 1/N sum_i (x_i' S x_i) x_i x_i' - H S H. The state z = (e, b) (b torch's buffer,
    b_0 = 0) obeys z' = A z + G zeta, and the update w' - w = D z + F zeta, so the second
    moments M = E zz' follow M' = A M A' + G Q(S) G' exactly (E z = 0 throughout), and
    E||w' - w||^2 = tr(D M D') + tr(F Q(S) F') (Polyak 1987, Introduction to Optimization,
    ch. 4, for the linear recursion; the state-dependent noise keeps it closed).
    """
    owner = "update_second_moments"
    n = check_scalar(n_steps, "n_steps", owner, kind=int, low=1, closed="left")
    A, G, D, F, Q0, q1, d = _sgd_moment_model(X, residuals, lr, momentum, nesterov, owner)
    M, out = np.zeros((2 * d, 2 * d)), np.empty(n)
    for k in range(n):
        Q = Q0 + q1(M[:d, :d])
        out[k] = np.trace(D @ M @ D.T) + np.trace(F @ Q @ F.T)
        M = A @ M @ A.T + G @ Q @ G.T
    return out


def stationary_update_second_moment(
    X, residuals, lr: float, momentum: float, *, nesterov: bool = False
) -> float:
    """The limit of :func:`update_second_moments`: E||w' - w||^2 under the stationary law.

    M solves the Lyapunov-type equation M = A M A' + G (Q0 + Q1(S)) G' (S its top-left block),
    linear in M: (I - A (x) A - (G (x) G) (K'K/N - H (x) H) P) vec M = vec(G Q0 G'), K the rows
    vec(x_i x_i'), P the selection of S. Raises if the solution is not a covariance (no
    stationary law: the second moments grow).
    """
    owner = "stationary_update_second_moment"
    A, G, D, F, Q0, q1, d = _sgd_moment_model(X, residuals, lr, momentum, nesterov, owner)
    X = np.asarray(X, dtype=float)
    K = np.einsum("ij,ik->ijk", X, X).reshape(X.shape[0], d * d)
    H = X.T @ X / X.shape[0]
    P = np.zeros((d * d, 4 * d * d))
    P[np.arange(d * d), (np.arange(d)[:, None] * 2 * d + np.arange(d)[None, :]).ravel()] = 1.0
    op = np.kron(A, A) + np.kron(G, G) @ (K.T @ K / X.shape[0] - np.kron(H, H)) @ P
    M = np.linalg.solve(np.eye(op.shape[0]) - op, (G @ Q0 @ G.T).ravel()).reshape(A.shape)
    S = M[:d, :d]
    if np.linalg.eigvalsh((M + M.T) / 2).min() < -1e-9 * np.abs(M).max():
        raise ValueError(f"{owner}: the second moments of this recursion do not converge.")
    return float(np.trace(D @ M @ D.T) + np.trace(F @ (Q0 + q1(S)) @ F.T))


def tuned_hitting_times(
    method: str, eigenvalues, eps, *, n_steps: int, weights=None, steps=None
) -> tuple[np.ndarray, np.ndarray]:
    """(exact, spectral) steps of ``method`` (a key of :data:`TUNINGS`), tuned for the extreme
    ``eigenvalues`` mu and L, to shrink the expected error by each ``eps``.

    exact: :func:`predicted_hitting_time` (transient included; ``weights``, ``steps`` as there);
    spectral: :func:`predicted_iterations` of the tuning's asymptotic rate alone.
    """
    lam = check_array(eigenvalues, "eigenvalues", "tuned_hitting_times", ndim=1)
    check_option(method, "method", "tuned_hitting_times", list(TUNINGS))
    t = TUNINGS[method](float(lam.min()), float(lam.max()))
    targets = np.atleast_1d(np.asarray(eps, dtype=float))
    exact = predicted_hitting_time(
        t.lr,
        t.momentum,
        lam,
        targets,
        n_steps=n_steps,
        weights=weights,
        nesterov=method == "nesterov",
        steps=steps,
    )
    return exact, np.array([predicted_iterations(t.rate, e) for e in targets])
