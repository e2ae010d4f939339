r"""Closed forms for adaptive methods: Adam's bias correction, Reddi et al.'s counterexample.

- :func:`bias_step_ratio`: for a constant gradient g (eps negligible) Adam's moment estimates
  are m_k = (1 - b1^k) g and v_k = (1 - b2^k) g^2, so the uncorrected step lr m_k / sqrt(v_k)
  is (1 - b1^k) / sqrt(1 - b2^k) times the corrected one, lr sign(g) (Kingma & Ba 2015, Sec. 3).
  With the default betas (0.9, 0.999) the ratio exceeds 1 at every k: the uncorrected early
  steps are *larger*, since 1 - b1 > sqrt(1 - b2).
- :func:`bias_progress_ratio`: to first order in the step (f(w_k) ~ f(w_0) + g.(w_k - w_0)) and
  for a constant gradient, the progress f(w_0) - f(w_k) without correction is the mean of the
  step ratios r_1..r_k times the corrected progress (each corrected step is lr sign(g)).
- :func:`reddi_drift`: on the stochastic counterexample of Reddi, Kale & Kumar (2018, Thm 3),
  f_t(x) = C x with probability p, else -x, the expected slope is p C - (1 - p) = delta.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar

__all__ = ["bias_step_ratio", "bias_progress_ratio", "reddi_drift"]


def bias_step_ratio(k, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
    """Uncorrected / corrected Adam step for a constant gradient: (1 - b1^k) / sqrt(1 - b2^k).

    ``k`` >= 1 (scalar or array of step counts); tends to 1 as k grows.
    """
    owner = "bias_step_ratio"
    check_scalar(beta1, "beta1", owner, low=0.0, high=1.0, closed="left")
    check_scalar(beta2, "beta2", owner, low=0.0, high=1.0)
    k = np.asarray(k, dtype=float)
    if np.any(k < 1):
        raise ValueError(f"The 'k' parameter of {owner} must be >= 1. Got {k.min()!r} instead.")
    return (1.0 - beta1**k) / np.sqrt(1.0 - beta2**k)


def bias_progress_ratio(k, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
    """First-order progress ratio uncorrected / corrected after k steps of a constant gradient:
    (1/k) sum_{j<=k} (1 - b1^j) / sqrt(1 - b2^j) (module docstring); ``k`` integers >= 1."""
    k = np.asarray(k)
    if np.any(k < 1) or np.any(k != np.round(k)):
        raise ValueError(
            f"The 'k' parameter of bias_progress_ratio must be integers >= 1. Got {k!r}."
        )
    cum = np.cumsum(bias_step_ratio(np.arange(1, int(np.max(k)) + 1), beta1, beta2))
    return cum[k.astype(int) - 1] / k


def reddi_drift(C: float, p: float) -> float:
    """E[f_t'(x)] = p C - (1 - p) of Reddi et al.'s online problem (> 0: optimum x* = -1)."""
    check_scalar(p, "p", "reddi_drift", low=0.0, high=1.0)
    return float(p * C - (1.0 - p))
