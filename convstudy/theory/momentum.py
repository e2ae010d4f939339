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
