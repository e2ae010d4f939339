"""The catalogue of the course's convergence claims: what each claim says and where it comes from.

Data only (no computation): the claims are fixed before any run, and studies, the claims table
and the report refer to them by number. Source: the course slides "Training Neural Networks:
Optimization"; theory references with exact constants are given per check in the studies.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Claim", "CLAIMS", "claim_topic"]


@dataclass(frozen=True)
class Claim:
    """One claim of the course: its number, a one-line topic and its full statement."""

    number: int
    topic: str
    statement: str


CLAIMS: dict[int, Claim] = {
    c.number: c
    for c in (
        Claim(
            1,
            "Empirical risk is unbiased; its variance is var/N, a minibatch's var/b",
            "The empirical risk is an unbiased estimate of the expected divergence with variance "
            "var(div)/N; one sample's divergence has variance var(div), a minibatch's "
            "var(div)/b (times (N-b)/(N-1) without replacement); the same for gradients.",
        ),
        Claim(
            2,
            "Batch gradient descent converges linearly on strongly convex problems",
            "Iterations to f(w) - f* <= eps grow like log(1/eps) at a rate set by the condition "
            "number; a step above 2/L diverges; 2/(L + mu) is the optimal fixed step.",
        ),
        Claim(
            3,
            "SGD needs shrinking steps (Robbins-Monro); 1/k steps give O(1/k)",
            "A constant step stalls at a noise floor growing with the step; eta ~ 1/k on a "
            "strongly convex problem gives E[f] - f* = O(1/k); eta ~ 1/sqrt(k) on a convex one "
            "O(1/sqrt(k)).",
        ),
        Claim(
            4,
            "Minibatch SGD: O(1/sqrt(bk) + 1/k) per iteration",
            "Minibatches lower the variance per iteration but are worse per sample processed; "
            "they win in wall-clock time through vector processing.",
        ),
        Claim(
            5,
            "Random order beats cyclic order; reshuffling beats replacement",
            "Inputs must be presented in random order: a fixed cyclic order chases the latest "
            "sample; random reshuffling beats sampling with replacement.",
        ),
        Claim(
            6,
            "Momentum and Nesterov: iterations scale like sqrt(kappa), not kappa",
            "Momentum and Nesterov cancel oscillation across steep directions: on an "
            "ill-conditioned quadratic iterations scale like sqrt(kappa) instead of kappa; they "
            "also smooth the variance of SGD steps.",
        ),
        Claim(
            7,
            "RMSprop and Adam normalise each parameter's step",
            "RMSprop and Adam divide each parameter's step by a running RMS of its derivatives "
            "(Adam with bias-corrected moments); they help most when curvature differs strongly "
            "by direction; RPROP uses only the sign of the derivative.",
        ),
        Claim(
            8,
            "Nonconvex: noisy SGD escapes poor minima; min E|grad|^2 ~ 1/sqrt(K)",
            "Noisy SGD steps can escape poor local optima; with a 1/sqrt(K) step the smallest "
            "expected squared gradient norm falls like 1/sqrt(K) (Ghadimi & Lan 2013).",
        ),
    )
}


def claim_topic(number: int) -> str:
    """The one-line topic of claim ``number`` ('' for a number outside the catalogue)."""
    claim = CLAIMS.get(number)
    return claim.topic if claim else ""
