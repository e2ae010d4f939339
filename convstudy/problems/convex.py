"""Convex but not strongly convex problems with a certified optimum.

:class:`QuarticRegression` is realizable least-fourth-power regression: convex, f* = 0 exactly,
and so flat at the optimum (zero Hessian) that gradient descent converges only sublinearly.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar
from .base import Certificate, Problem, rowwise_matmul

__all__ = ["QuarticRegression"]


class QuarticRegression(Problem):
    r"""Realizable least-fourth-power regression, convex but not strongly convex.

    Data: X (N, d) with i.i.d. N(0, 1) entries, w_true ~ N(0, I_d) and noiseless targets
    y = X w_true, all drawn from ``seed``. Per-sample divergence and objective::

        r_i(w)   = x_i . w - y_i = x_i . (w - w_true)      (residual),
        div_i(w) = r_i^4 / 4,          f(w) = 1/(4N) sum_i r_i^4,
        grad div_i(w) = r_i^3 x_i,        Hess f(w) = 3/N sum_i r_i^2 x_i x_i^T.

    **Optimum.** Every div_i >= 0 and div_i(w_true) = 0, so f* = 0 = f(w_true) exactly; w* =
    w_true is the unique minimiser when X has full column rank (almost surely when N >= d).

    **Not strongly convex.** The Hessian is positive semidefinite everywhere (convexity) but
    vanishes at w*, since every r_i = 0 there: mu = 0. Near w*, f(w* + e) = 1/(4N) sum
    (x_i . e)^4 is a positive-definite quartic form, so f grows like ||e||^4, not ||e||^2.

    **Rate of gradient descent.** With a fixed step eta, e_{k+1} = e_k - eta grad f(w* + e_k)
    and grad f = O(||e||^3), so ||e|| behaves like the solution of e' = -c e^3, i.e.
    ||e_k|| ~ (2 c eta k)^{-1/2}; hence f(w_k) - f* ~ 1/k^2 and ||grad f(w_k)|| ~ k^{-3/2}.
    Iterations to reach f - f* <= eps grow like eps^{-1/2} (sublinear), instead of log(1/eps)
    for a strongly convex problem. (This is faster than the worst-case O(1/k) bound for convex
    L-smooth functions, which this problem does not attain.)

    **Smoothness.** f is not globally L-smooth (its Hessian grows like ||w - w*||^2), so
    ``L`` is ``None``; :meth:`smoothness_on_ball` bounds the Hessian on a ball around w*.
    A step eta <= 2 / L(rho), rho = ||w_0 - w*||, keeps gradient descent in that ball (see
    the method), so that step is safe.

    **SGD.** Every per-sample gradient vanishes at w* (interpolation regime), so constant-step
    SGD has no noise floor on this problem.

    Parameters
    ----------
    n_samples : int, default 1000
        N, number of samples.
    dim : int, default 10
        d, number of parameters.
    seed : int, default 0
        Seed of the data, w_true and the default starting point.
    init_distance : float, default 1.0
        ||w_0 - w*|| for :meth:`initial_point` and :meth:`random_initial_point`. A quartic
        with a fixed step diverges if started too far away, so the start is kept near w*.
    """

    name = "quartic_regression"
    convexity = "convex"

    def __init__(
        self,
        *,
        n_samples: int = 1000,
        dim: int = 10,
        seed: int = 0,
        init_distance: float = 1.0,
    ):
        owner = "QuarticRegression"
        self.n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=1, closed="left")
        self.dim = check_scalar(dim, "dim", owner, kind=int, low=1, closed="left")
        self.seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
        self.init_distance = check_scalar(init_distance, "init_distance", owner, low=0.0)

        data_ss, init_ss = np.random.SeedSequence(self.seed).spawn(2)
        rng = np.random.default_rng(data_ss)
        self.X = rng.standard_normal((self.n_samples, self.dim))
        self.w_true = rng.standard_normal(self.dim)
        # computed exactly as loss() computes x_i . w, so the residuals at w_true are 0 bit-for-bit
        self.y = (self.w_true[None, :] @ self.X.T)[0]
        direction = np.random.default_rng(init_ss).standard_normal(self.dim)
        self._w0 = self.w_true + self.init_distance * direction / np.linalg.norm(direction)

        sq_norms = np.einsum("nd,nd->n", self.X, self.X)
        M = (self.X * sq_norms[:, None]).T @ self.X / self.n_samples
        self._lambda_max_M = float(np.linalg.eigvalsh(M)[-1])
        self._max_fourth = float(np.max(sq_norms**2))
        self.mu = 0.0
        self.L = None
        self.w_star = self.w_true.copy()
        self.f_star = 0.0

    # ---- per-sample quantities -------------------------------------------------------------
    def _residuals(self, w: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xb = self.X[idx]  # (R, b, d)
        return Xb, np.einsum("rbd,rd->rb", Xb, w) - self.y[idx]

    def sample_losses(self, w, idx):
        _, r = self._residuals(w, idx)
        return 0.25 * r**4

    def sample_grads(self, w, idx):
        Xb, r = self._residuals(w, idx)
        return (r**3)[:, :, None] * Xb

    def batch_grad(self, w, idx):
        Xb, r = self._residuals(w, idx)
        return np.einsum("rb,rbd->rd", r**3, Xb) / idx.shape[1]

    # ---- full objective --------------------------------------------------------------------
    def loss(self, w):
        r = rowwise_matmul(w, self.X.T) - self.y  # (R, N)
        return 0.25 * (r**4).mean(axis=1)

    def grad(self, w):
        r = rowwise_matmul(w, self.X.T) - self.y
        return rowwise_matmul(r**3, self.X) / self.n_samples

    # ---- constants -------------------------------------------------------------------------
    def smoothness_on_ball(self, radius: float, *, per_sample: bool = False) -> float:
        """An upper bound on ||Hess f(w)||_2 over the ball ||w - w*|| <= ``radius``.

        With e = w - w* and r_i = x_i . e, Cauchy-Schwarz gives r_i^2 <= ||x_i||^2 radius^2,
        so for every unit vector u (the Hessian is PSD, so its norm is max_u u.Hess u)::

            u.Hess f(w) u = 3/N sum_i r_i^2 (x_i . u)^2 <= 3 radius^2 u.M u,
            ||Hess f(w)|| <= 3 radius^2 lambda_max(M),   M = 1/N sum_i ||x_i||^2 x_i x_i^T.

        (For Gaussian data lambda_max(M) ~ d + 2.) With ``per_sample=True`` the bound holds for
        every single div_i instead, and is attained: ||Hess div_i(w)|| = 3 r_i^2 ||x_i||^2 <=
        3 radius^2 max_i ||x_i||^4 (the constant that limits the step of single-sample SGD).

        Gradient descent with step eta <= 2 / L(rho), started with ||w_0 - w*|| <= rho, never
        leaves the ball: grad f(w) = A e with A = int_0^1 Hess f(w* + t e) dt, and
        0 <= A <= L(rho) I implies e.A e >= ||A e||^2 / L(rho), so
        ||e - eta A e||^2 <= ||e||^2 - (2 eta / L(rho) - eta^2) ||A e||^2 <= ||e||^2.
        """
        radius = check_scalar(
            radius, "radius", "QuarticRegression.smoothness_on_ball", low=0.0, closed="left"
        )
        moment = self._max_fourth if per_sample else self._lambda_max_M
        return 3.0 * radius**2 * moment

    # ---- starting points -------------------------------------------------------------------
    def initial_point(self):
        """w* + init_distance * u, u a fixed unit direction drawn from ``seed``."""
        return self._w0.copy()

    def random_initial_point(self, rng):
        """w* + init_distance * u with u uniform on the unit sphere, drawn from ``rng``."""
        u = rng.standard_normal(self.dim)
        return self.w_star + self.init_distance * u / np.linalg.norm(u)

    # ---- optimum ---------------------------------------------------------------------------
    def certificate(self):
        w = self.w_star[None, :]
        gnorm = float(np.linalg.norm(self.grad(w)[0]))
        gap = float(self.loss(w)[0]) - self.f_star
        return Certificate(
            grad_norm=gnorm,
            gap_bound=gap,
            method="realizable: f(w_true) = 0 = inf f since every div_i >= 0",
        )

    def params(self):
        return {
            **super().params(),
            "seed": self.seed,
            "init_distance": self.init_distance,
        }
