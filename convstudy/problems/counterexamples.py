r"""Counterexamples: problems built to make an optimizer fail.

:class:`AdamCounterexample` is the stochastic linear problem of Reddi, Kale & Kumar (2018,
Sec. 3, Theorem 3): for any :math:`\beta_1 < \sqrt{\beta_2}` a large enough slope C makes
Adam fail to converge to the optimum of the feasible interval (it drifts towards the worst
point), while AMSGrad (and SGD) approach the optimum.

The problem is *constrained* to the interval [-1, 1]; the engine has no projection, so run it
with a loop that applies :meth:`AdamCounterexample.project` after every update.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar
from .base import Certificate, Problem

__all__ = ["AdamCounterexample"]


class AdamCounterexample(Problem):
    r"""The stochastic counterexample to Adam of Reddi, Kale & Kumar (2018), as a finite sum.

    One parameter x in the feasible set F = [-1, 1] and N samples, of which the first
    ``n_large`` have a large positive slope C and the others slope -1::

        div_i(x) = C x   (i < n_large),      div_i(x) = -x   (otherwise),

        f(x) = 1/N sum_i div_i(x) = delta x,   delta = (n_large (C + 1) - N) / N > 0.

    Drawing one sample uniformly with replacement gives exactly the online losses of the paper:
    f_t(x) = C x with probability p = n_large / N, and -x otherwise. Since delta > 0, the
    minimiser over F is x* = -1 with f* = -delta, while the frequent gradients (-1) push x
    towards +1. With N = C + 1 and n_large = 1 + delta this is the paper's Theorem 3
    construction (p = (1 + delta)/(C + 1)); its synthetic experiment (Sec. 5: 1010 x with
    probability 0.01, else -10 x) is C = 101, N = 100, n_large = 1 after dividing by 10 (Adam
    is invariant to that scaling up to eps). The cyclic sampler over N = 3, n_large = 1 gives
    the deterministic online example of their Theorem 1 (C x once every three steps).

    The objective is linear, so ``mu = L = 0`` (convex, not strongly convex); ``w_star`` and
    ``f_star`` are the optimum *on F* (f is unbounded below on the real line). Use
    :meth:`project` after every update.

    Parameters
    ----------
    C : float, default 100
        The large slope, > 1.
    n_samples : int, default 101
        N >= 2.
    n_large : int, default 2
        Number of samples with slope C, in [1, N); delta must come out > 0, i.e.
        n_large (C + 1) > N. The defaults give delta = 1 (Theorem 3 with delta = 1).

    References
    ----------
    Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018, Sec. 3
    (Theorems 1-3) and Sec. 5 (synthetic experiments).
    """

    name = "adam_counterexample"
    convexity = "convex"
    lower = -1.0
    upper = 1.0

    def __init__(self, *, C: float = 100.0, n_samples: int = 101, n_large: int = 2):
        owner = "AdamCounterexample"
        self.C = check_scalar(C, "C", owner, low=1.0)
        self.n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=2, closed="left")
        self.n_large = check_scalar(
            n_large, "n_large", owner, kind=int, low=1, high=self.n_samples, closed="left"
        )
        self.delta = (self.n_large * (self.C + 1.0) - self.n_samples) / self.n_samples
        if self.delta <= 0:
            raise ValueError(
                f"The parameters of {owner} must make the mean slope delta = "
                f"(n_large (C + 1) - N) / N positive, so that x* = -1. Got C={self.C!r}, "
                f"n_samples={self.n_samples!r}, n_large={self.n_large!r} (delta={self.delta:g})."
            )
        self.dim = 1
        self.p_large = self.n_large / self.n_samples
        self._slope = np.where(np.arange(self.n_samples) < self.n_large, self.C, -1.0)
        self.mu = 0.0
        self.L = 0.0
        self.w_star = np.array([self.lower])
        self.f_star = -self.delta

    # ---- per-sample quantities -------------------------------------------------------------
    def sample_losses(self, w, idx):
        return self._slope[idx] * w[:, :1]

    def sample_grads(self, w, idx):
        return self._slope[idx][:, :, None]

    def batch_grad(self, w, idx):
        return self._slope[idx].mean(axis=1, keepdims=True)

    # ---- full objective --------------------------------------------------------------------
    def loss(self, w):
        return self.delta * w[:, 0]

    def grad(self, w):
        return np.full_like(w, self.delta, dtype=float)

    # ---- the feasible set ------------------------------------------------------------------
    def project(self, w: np.ndarray) -> np.ndarray:
        """Euclidean projection onto F = [-1, 1]: ``clip(w, -1, 1)``."""
        return np.clip(w, self.lower, self.upper)

    def initial_point(self):
        """x0 = 0, the centre of F."""
        return np.zeros(1)

    def random_initial_point(self, rng):
        """x0 ~ Uniform(F)."""
        return rng.uniform(self.lower, self.upper, size=1)

    def certificate(self):
        return Certificate(
            grad_norm=abs(self.delta),
            gap_bound=0.0,
            method="linear objective delta * x with delta > 0: minimised at the left end of F",
        )

    def params(self):
        return {**super().params(), "C": self.C, "n_large": self.n_large}
