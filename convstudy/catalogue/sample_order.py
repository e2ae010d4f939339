"""Checks of claim 5 (sample order), measured by the ``sample_order`` study.

Fixed before the runs. SGD with single samples and eta_k = beta / (k0 + k), beta mu = 2, for 20
epochs on two strongly convex problems whose rows are sorted (``ridge_sorted``: diabetes by
target; ``logistic_sorted``: breast cancer by label), in three orders: cyclic (0..N-1 every
epoch), random reshuffling, and sampling with replacement. Rates are log-log slopes of the mean
curve at epoch ends against k0 + k (the clock of the step size and of the theorems) over epochs
5..20. Each claim check names the study's broken variant that must turn it into
"not reproduced"; both swap the sampler behind two order labels (a sampler bug):

- ``cyclic-for-random``: the runs labelled "reshuffle" run the cyclic order (and vice versa);
- ``replacement-for-reshuffling``: the runs labelled "reshuffle" sample with replacement (and
  vice versa).
"""

from __future__ import annotations

import math

from .spec import CheckSpec

__all__ = ["SPECS", "CYCLIC_WORSE", "RESHUFFLE_BEATS", "RATES", "RATE_PREDICTIONS"]

SOURCE_RR = (
    "Guerbuezbalaban, Ozdaglar & Parrilo (2019), Why random reshuffling beats stochastic "
    "gradient descent (E||w_k - w*||^2 = O(1/k^2) for eta_k = R/k, R large enough); Mishchenko, "
    "Khaled & Richtarik (2020), Random reshuffling: simple analysis with vast improvements"
)
SOURCE_IID = (
    "Bottou, Curtis & Nocedal (2018), Thm 4.7 (with replacement, eta_k = beta / (gamma + k), "
    "beta mu > 1: E[f] - f* <= nu / (gamma + k), tight when the gradient noise at w* is not zero)"
)
SOURCE_IG = (
    "Guerbuezbalaban, Ozdaglar & Parrilo (2015), incremental gradient: O(1/k^2) at epoch ends"
)
RATE_PREDICTIONS = {"cyclic": -2.0, "reshuffle": -2.0, "replacement": -1.0}  # order -> slope
LEVEL = (
    "last-epoch level of a replicate: its time average of f - f* over 33 evenly spaced records "
    "of the last epoch (what a user stopping at a random step of it gets)"
)
RATIO_REASON = (
    "the theory gives the rates, not the constant in front of them: at a finite budget it says "
    "only that the order with the faster rate (or the smaller constant) ends lower, a ratio above "
    "1; a swapped sampler gives a ratio below 1"
)
RATE_WINDOW = (
    "epoch ends of epochs 5..20 against k0 + k: after the first epochs, where the "
    "transient from w0 (decaying like (k0 + k)^(-2 beta mu) = (k0 + k)^-4) still dominates"
)

CYCLIC_WORSE = CheckSpec(
    id="5a-cyclic-worse-{problem}",
    claim=5,
    statement="A fixed cyclic order (sorted data) ends worse than random reshuffling.",
    source=f"course slides; {SOURCE_IG}; {SOURCE_RR}",
    quantity="ratio of last-epoch mean f - f*, cyclic / reshuffle, {problem}",
    prediction="none (an inequality: random order ends lower)",
    bound=(1.0, math.inf),
    bound_reason=RATIO_REASON,
    window=LEVEL,
    broken_variant="cyclic-for-random",
)
RESHUFFLE_BEATS = CheckSpec(
    id="5b-reshuffle-beats-replacement-{problem}",
    claim=5,
    statement="Random reshuffling ends lower than sampling with replacement.",
    source=f"course slides; {SOURCE_RR}; {SOURCE_IID}",
    quantity="ratio of last-epoch mean f - f*, replacement / reshuffle, {problem}",
    prediction="none (an inequality: reshuffling ends lower)",
    bound=(1.0, math.inf),
    bound_reason=RATIO_REASON,
    window=LEVEL,
    broken_variant="replacement-for-reshuffling",
)
RATES = {
    order: CheckSpec(
        id=f"5{letter}-{order}-rate-{{problem}}",
        claim=5,
        statement=statement,
        source=source,
        quantity=f"log-log slope of E[f] - f* at epoch ends against k0 + k, {order}, {{problem}}",
        prediction=f"{RATE_PREDICTIONS[order]:g}: the asymptotic rate of the theorem",
        tolerance=0.10,
        tolerance_reason=(
            "the rate is the theorem's exponent; +-10% separates 1/k^2 from 1/k (and from the "
            "steeper pre-asymptotic decay of the transient)"
        ),
        window=RATE_WINDOW,
        broken_variant="replacement-for-reshuffling",
    )
    for order, letter, statement, source in (
        (
            "reshuffle",
            "c",
            "With 1/k steps random reshuffling converges like 1/k^2.",
            SOURCE_RR,
        ),
        (
            "replacement",
            "d",
            "With 1/k steps sampling with replacement converges like 1/k.",
            SOURCE_IID,
        ),
    )
}

SPECS = (CYCLIC_WORSE, RESHUFFLE_BEATS, *RATES.values())
