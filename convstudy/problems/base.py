"""The finite-sum problem interface.

A problem is f(w) = 1/N sum_i div_i(w) over N samples and d parameters. Everything is evaluated
for R replicates at once: parameters ``w`` are shaped (R, d) and sample indices ``idx`` are
shaped (R, b), one row of indices per replicate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .._validation import check_array

__all__ = ["Problem", "Certificate", "rowwise_matmul"]


def rowwise_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a (R, n) and b (n, m), computed one row of ``a`` at a time.

    A plain ``a @ b`` lets BLAS pick a kernel (and a summation order) by the number of rows,
    so replicate r's result would change in the last bits with R. Row by row it never does:
    a replicate's numbers are the same alone or among thousands.
    """
    return np.matmul(a[:, None, :], b)[:, 0, :]


@dataclass(frozen=True)
class Certificate:
    """Evidence that ``w_star`` is optimal.

    ``grad_norm`` is ||grad f(w_star)||. For a mu-strongly convex f, the Polyak-Lojasiewicz
    inequality f(w) - f* <= ||grad f(w)||^2 / (2 mu) (Nesterov 2004, Thm 2.1.10) bounds the
    error of ``f_star`` by ``gap_bound``; it is ``None`` when mu is unknown or zero, and then
    ``method`` says how the optimum was established instead.
    """

    grad_norm: float
    gap_bound: float | None
    method: str


class Problem(ABC):
    """A finite-sum objective f(w) = 1/N sum_i div_i(w), vectorised over replicates.

    Subclasses set ``name``, ``n_samples`` (N) and ``dim`` (d) and implement
    :meth:`sample_losses` and :meth:`sample_grads`; everything else has a default built on them
    that subclasses may override for speed. ``mu`` and ``L`` are the strong-convexity and
    smoothness constants of f where known (``None`` otherwise); ``w_star`` and ``f_star`` the
    certified optimum (``f_star`` may be known without a unique ``w_star``).
    """

    name: str = "problem"
    n_samples: int
    dim: int
    mu: float | None = None
    L: float | None = None
    w_star: np.ndarray | None = None
    f_star: float | None = None
    convexity: str = "nonconvex"  # "strongly convex", "convex" or "nonconvex"

    # ---- per-sample quantities -------------------------------------------------------------
    @abstractmethod
    def sample_losses(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """div_i(w_r) for each replicate r and each of its indices: (R, d), (R, b) -> (R, b)."""

    @abstractmethod
    def sample_grads(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """grad div_i(w_r) per replicate and index: (R, d), (R, b) -> (R, b, d)."""

    def batch_grad(self, w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Minibatch gradient 1/b sum_{i in batch_r} grad div_i(w_r): (R, d), (R, b) -> (R, d)."""
        return self.sample_grads(w, idx).mean(axis=1)

    # ---- full objective --------------------------------------------------------------------
    def _all_indices(self, n_rep: int) -> np.ndarray:
        return np.broadcast_to(np.arange(self.n_samples), (n_rep, self.n_samples))

    def loss(self, w: np.ndarray) -> np.ndarray:
        """f(w_r) = 1/N sum_i div_i(w_r) for every replicate: (R, d) -> (R,)."""
        return self.sample_losses(w, self._all_indices(w.shape[0])).mean(axis=1)

    def grad(self, w: np.ndarray) -> np.ndarray:
        """grad f(w_r) for every replicate: (R, d) -> (R, d)."""
        return self.batch_grad(w, self._all_indices(w.shape[0]))

    # ---- starting points -------------------------------------------------------------------
    def initial_point(self) -> np.ndarray:
        """The default deterministic starting point, shaped (d,). Zeros unless overridden."""
        return np.zeros(self.dim)

    def random_initial_point(self, rng: np.random.Generator) -> np.ndarray:
        """A random starting point, shaped (d,), drawn from ``rng`` (for multi-start studies)."""
        return self.initial_point() + rng.standard_normal(self.dim)

    # ---- optimum ---------------------------------------------------------------------------
    def certificate(self) -> Certificate | None:
        """How far ``f_star`` can be from the true minimum; ``None`` without a known optimum."""
        if self.w_star is None:
            return None
        gnorm = float(np.linalg.norm(self.grad(self.w_star[None, :])[0]))
        bound = gnorm**2 / (2 * self.mu) if self.mu else None
        return Certificate(gnorm, bound, "gradient norm at w_star")

    def params(self) -> dict:
        """The settings that define this problem (recorded with every run)."""
        return {"problem": self.name, "n_samples": self.n_samples, "dim": self.dim}

    def validate_point(
        self, w: np.ndarray, name: str = "w", owner: str | None = None
    ) -> np.ndarray:
        """Check that ``w`` is a finite (R, d) array for this problem."""
        return check_array(w, name, owner or self.name, shape=(None, self.dim))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "problem")
        return f"{type(self).__name__}({inner})"
