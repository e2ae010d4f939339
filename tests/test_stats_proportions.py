"""Tests of convstudy.stats.proportions: Wilson, Clopper-Pearson and Newcombe intervals against
published known answers, and their coverage."""

import math

import numpy as np
import pytest
from scipy import stats

from convstudy.stats.proportions import proportion_ci, proportion_difference_ci


def _triple(e):
    """(value, ci_low, ci_high) of an Estimate."""
    return e.value, e.ci_low, e.ci_high


def test_proportion_ci_known_answers():
    # Newcombe (1998a), Stat. Med. 17, 857-872, Table I: 81/263, Wilson score 0.2553-0.3662
    p, lo, hi = _triple(proportion_ci(81, 263))
    assert p == pytest.approx(81 / 263)
    assert (lo, hi) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    # Clopper-Pearson for 0/20: upper bound 1 - 0.025^(1/20)
    p, lo, hi = _triple(proportion_ci(0, 20, method="exact"))
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 20))


@pytest.mark.parametrize(
    "counts, expected",
    [
        # Newcombe (1998b), Stat. Med. 17, 873-890, Table II, method 10 (hybrid score)
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
    ],
)
def test_proportion_difference_ci_matches_newcombe(counts, expected):
    d, lo, hi = _triple(proportion_difference_ci(*counts))
    assert d == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (lo, hi) == pytest.approx(expected, abs=5e-5)


def test_proportion_difference_ci_coverage():
    # two binomials with p = 0.3 and 0.1, n = 40 each: coverage of the true 0.2 near 95%
    rng = np.random.default_rng(7)
    k1 = rng.binomial(40, 0.3, size=400)
    k2 = rng.binomial(40, 0.1, size=400)
    covered = sum(
        lo <= 0.2 <= hi
        for lo, hi in (_triple(proportion_difference_ci(a, 40, b, 40))[1:] for a, b in zip(k1, k2))
    )
    # binomial(400, 0.95) lies in [367, 392] with probability > 0.99
    assert 367 <= covered <= 392
    assert stats.binom.cdf(366, 400, 0.95) < 0.005


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((3, 0), ValueError, "trials"),
        ((5, 4), ValueError, "successes"),
        ((1.5, 4), TypeError, "successes"),
    ],
)
def test_proportion_ci_rejects_bad_counts(args, error, match):
    with pytest.raises(error, match=match):
        _triple(proportion_ci(*args))


def test_proportion_difference_ci_names_the_bad_argument():
    with pytest.raises(ValueError, match="successes_2"):
        _triple(proportion_difference_ci(1, 4, 9, 4))


def test_proportion_ci_is_wilson():
    share, lo, hi = _triple(proportion_ci(0, 200))
    z = stats.norm.ppf(0.975)
    assert share == 0 and lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(z**2 / (200 + z**2), rel=1e-9)
    k, n = 13, 200
    centre = (k + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(k * (n - k) / n + z**2 / 4)
    assert _triple(proportion_ci(k, n))[1:] == pytest.approx(
        (centre - half, centre + half), rel=1e-9
    )
    assert all(math.isnan(v) for v in _triple(proportion_ci(0, 0)))
    with pytest.raises(ValueError, match="successes"):
        _triple(proportion_ci(5, 4))
    with pytest.raises(TypeError, match="trials"):
        _triple(proportion_ci(1, 2.5))
