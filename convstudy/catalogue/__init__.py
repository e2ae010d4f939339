"""The catalogue of the course's convergence claims and of the checks that measure them.

Data only, fixed before any run. ``CLAIMS`` holds what each of the eight claims says (source: the
course slides "Training Neural Networks: Optimization"). Each study's checks are specified in a
module of this package named after the study (``convstudy.catalogue.<study>``, a tuple
``SPECS`` of :class:`~convstudy.catalogue.spec.CheckSpec`): statement, source with exact
constants, the theory's prediction and how it is computed, the tolerance and why, the fit window
and why, and the broken variant that must fail the check. :func:`all_specs` lists them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from .spec import CheckSpec

__all__ = ["Claim", "CLAIMS", "claim_topic", "CheckSpec", "all_specs"]


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


def all_specs() -> dict[str, CheckSpec]:
    """Every check specified in the catalogue, by (pattern) id; ids are unique."""
    out: dict[str, CheckSpec] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "spec" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.id in out:
                raise ValueError(f"Check id {spec.id!r} is specified twice in the catalogue.")
            out[spec.id] = spec
    return out
