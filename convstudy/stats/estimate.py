"""One estimate type, seeds derived from the run seed, and the bootstrap over replicates.

- :class:`Estimate`: a measured value with its confidence interval, the number of replicates
  behind it and a short description of the interval's method. Every measure of
  :mod:`convstudy.stats` returns one, and :meth:`convstudy.claims.Check.from_estimate` turns it
  into a check.
- :func:`derived_seed`: the seed of one bootstrap, hashed from the run seed and names, so that a
  study never writes a seed constant.
- :func:`bootstrap`: the percentile bootstrap over replicates (Efron & Tibshirani 1993, ch. 6
  and 13): whole replicates (rows) are resampled, so the dependence along a trajectory is kept.
- :func:`percentile_interval`: the percentile interval of bootstrap values.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar

__all__ = [
    "Estimate",
    "derived_seed",
    "percentile_interval",
    "resample_weights",
    "bootstrap",
    "bootstrap_method",
]


@dataclass(frozen=True)
class Estimate:
    """A measured ``value`` with its ``level`` confidence interval [``ci_low``, ``ci_high``].

    ``n`` counts the replicates (or trials) behind the value and ``method`` names how the
    interval was obtained, e.g. ``"Student t"`` or ``"percentile bootstrap over replicates,
    2000 resamples"``. NaN bounds mean that no interval could be computed.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    method: str
    level: float = 0.95

    def covers(self, x: float) -> bool:
        """Whether ``x`` lies in the closed interval [ci_low, ci_high] (False for a NaN bound)."""
        return bool(self.ci_low <= x <= self.ci_high)

    @property
    def width(self) -> float:
        """ci_high - ci_low."""
        return self.ci_high - self.ci_low

    def as_row(self, prefix: str = "") -> dict:
        """``{prefix}estimate, {prefix}ci_low, {prefix}ci_high, {prefix}n`` table columns."""
        return {
            f"{prefix}estimate": self.value,
            f"{prefix}ci_low": self.ci_low,
            f"{prefix}ci_high": self.ci_high,
            f"{prefix}n": self.n,
        }


def derived_seed(run_seed: int, *tags: str | int) -> int:
    """A stable 63-bit seed from the run seed and string or integer tags.

    The first 8 bytes of the BLAKE2b digest of ``run_seed`` and the typed tags (joined by a unit
    separator, so ``("ab", "c")`` and ``("a", "bc")`` differ, and so do ``3`` and ``"3"``), with
    the top bit cleared. It does not depend on the process or the Python hash seed, e.g.
    ``derived_seed(scale.seed, "gd-rate", problem)``.
    """
    owner = "derived_seed"
    run_seed = check_scalar(run_seed, "run_seed", owner, kind=int, low=0, closed="left")
    for i, tag in enumerate(tags):
        if isinstance(tag, bool) or not isinstance(tag, (str, int, np.integer)):
            raise TypeError(
                f"The 'tags[{i}]' parameter of {owner} must be a str or an int. "
                f"Got {type(tag).__name__} instead."
            )
    typed = (f"s:{t}" if isinstance(t, str) else f"i:{int(t)}" for t in tags)
    text = "\x1f".join([str(int(run_seed)), *typed])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def percentile_interval(
    boots: np.ndarray, level: float = 0.95, *, axis: int = 0, discrete: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (q_{(1-level)/2}, q_{(1+level)/2}) of bootstrap values along ``axis``.

    NaN values are ignored (the interval is NaN when every value is). ``discrete=True`` takes
    order statistics (the lower one at the low end, the higher one at the high end) instead of
    interpolating, so that the ends are bootstrap values: suits hitting times, which are record
    steps and may be inf.
    """
    level = check_scalar(level, "level", "percentile_interval", low=0.0, high=1.0)
    qs = [0.5 - level / 2, 0.5 + level / 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: a NaN interval
        if discrete:
            low = np.nanquantile(boots, qs[0], axis=axis, method="lower")
            high = np.nanquantile(boots, qs[1], axis=axis, method="higher")
            return low, high
        low, high = np.nanquantile(boots, qs, axis=axis)
    return low, high


def resample_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) weights of n items in ``n_boot`` bootstrap resamples: how often each item
    is drawn among n uniform draws with replacement, divided by n (each row a multinomial(n,
    1/n) count over n, summing to 1). The draws are n_boot x n uniform integers counted with
    one ``bincount``: the same distribution as ``rng.multinomial``, 7x faster at n = 4000
    and 1000 resamples (measured 26 ms against 188 ms)."""
    draws = rng.integers(0, n, size=(n_boot, n))
    draws += n * np.arange(n_boot)[:, None]  # row b's items are counted in bins b n .. b n + n
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n) / n


def bootstrap(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int | np.random.Generator,
    n_boot: int = 1000,
) -> np.ndarray:
    """Statistic of B bootstrap means: resample the replicates (rows) of ``values`` (R,) or (R, S).

    Replicate weights are multinomial counts / R (:func:`resample_weights`), so the B
    resampled means cost one (B, R) @ (R, ...) product; ``statistic`` maps those means (B,) or
    (B, S) to (B, ...). ``seed`` seeds the resampling (an int, e.g. from :func:`derived_seed`,
    or a Generator to draw several bootstraps from one stream). Returns the B statistics.
    """
    n_boot = check_scalar(n_boot, "n_boot", "bootstrap", kind=int, low=1, closed="left")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = values.shape[0]
    return statistic(resample_weights(rng, n, n_boot) @ values)


def bootstrap_method(n_boot: int) -> str:
    """The ``method`` text of a percentile bootstrap over replicates with ``n_boot`` resamples."""
    return f"percentile bootstrap over replicates, {n_boot} resamples"
