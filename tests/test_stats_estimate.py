"""Tests of convstudy.stats.estimate (Estimate, derived seeds, the bootstrap over replicates,
percentile intervals) and of Check.from_estimate."""

import math
import subprocess
import sys

import numpy as np
import pytest

from convstudy.claims import Check
from convstudy.stats.estimate import Estimate, bootstrap, derived_seed, percentile_interval

ESTIMATE = Estimate(0.5, 0.25, 1.0, 40, "Student t")


def test_estimate_covers_width_and_row():
    assert ESTIMATE.level == 0.95
    assert ESTIMATE.covers(0.25) and ESTIMATE.covers(1.0) and ESTIMATE.covers(0.7)
    assert not ESTIMATE.covers(1.01) and not ESTIMATE.covers(0.2)
    assert ESTIMATE.width == 0.75
    assert ESTIMATE.as_row() == {"estimate": 0.5, "ci_low": 0.25, "ci_high": 1.0, "n": 40}
    assert ESTIMATE.as_row("slope_") == {
        "slope_estimate": 0.5,
        "slope_ci_low": 0.25,
        "slope_ci_high": 1.0,
        "slope_n": 40,
    }
    nan = Estimate(1.0, math.nan, math.nan, 0, "none")
    assert not nan.covers(1.0) and math.isnan(nan.width)
    with pytest.raises(AttributeError):
        ESTIMATE.value = 2.0  # frozen


def test_derived_seed_is_a_stable_63_bit_hash_of_seed_and_tags():
    # literal values: the seed must not change across processes, platforms or versions
    assert derived_seed(0, "gd-rate", "quadratic") == 5898287569517075545
    assert derived_seed(0, 3) == 2610777542118990009
    assert derived_seed(0, "3") == 7366247635271179691  # an int and its text differ
    assert derived_seed(0, "ab", "c") != derived_seed(0, "a", "bc")
    assert derived_seed(1, "gd-rate", "quadratic") != derived_seed(0, "gd-rate", "quadratic")
    assert 0 <= derived_seed(12345, "x") < 2**63
    # another interpreter (another hash seed) gives the same number
    code = (
        "from convstudy.stats.estimate import derived_seed; "
        "print(derived_seed(0, 'gd-rate', 'quadratic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 5898287569517075545


def test_derived_seed_rejects_bad_input():
    with pytest.raises(ValueError, match="'run_seed' parameter of derived_seed"):
        derived_seed(-1, "a")
    with pytest.raises(TypeError, match="'tags\\[1\\]' parameter of derived_seed"):
        derived_seed(0, "a", 1.5)


def test_bootstrap_resamples_whole_replicates_reproducibly():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((50, 3)) + np.arange(3)
    boots = bootstrap(values, lambda means: means, seed=7, n_boot=4000)
    assert boots.shape == (4000, 3)
    np.testing.assert_array_equal(boots, bootstrap(values, lambda m: m, seed=7, n_boot=4000))
    # the bootstrap SE of a mean is s sqrt((n - 1)/n) / sqrt(n); its Monte Carlo error is about
    # SE / sqrt(2 B)
    se = values.std(axis=0, ddof=0) / np.sqrt(50)
    np.testing.assert_array_less(np.abs(boots.std(axis=0, ddof=1) - se), 4 * se / np.sqrt(8000))
    # a replicate is kept whole: the difference of two columns of one row resamples with it
    paired = bootstrap(np.column_stack([values[:, 0], values[:, 0] + 1]), lambda m: m, seed=1)
    np.testing.assert_allclose(paired[:, 1] - paired[:, 0], 1.0)
    with pytest.raises(TypeError, match="seed"):
        bootstrap(values, lambda m: m)  # the seed is required
    with pytest.raises(ValueError, match="'n_boot' parameter of bootstrap"):
        bootstrap(values, lambda m: m, seed=0, n_boot=0)


def test_percentile_interval_plain_discrete_and_nan():
    boots = np.arange(1.0, 101.0)
    low, high = percentile_interval(boots, 0.9)
    assert (low, high) == pytest.approx(np.quantile(boots, [0.05, 0.95]))
    low, high = percentile_interval(np.append(boots, np.nan), 0.9)  # NaN ignored
    assert (low, high) == pytest.approx(np.quantile(boots, [0.05, 0.95]))
    low, high = percentile_interval(np.append(boots, np.inf), 0.5, discrete=True)
    assert low in boots and high in boots  # order statistics, no interpolation
    low, high = percentile_interval(np.full(5, np.nan))
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="'level' parameter of percentile_interval"):
        percentile_interval(boots, 1.5)


def test_check_from_estimate_takes_value_interval_and_n():
    check = Check.from_estimate(
        ESTIMATE,
        id="0-test",
        claim=1,
        statement="s",
        source="src",
        quantity="q",
        expected="in [0, 2]",
        expected_low=0.0,
        expected_high=2.0,
        notes="n",
    )
    assert (check.estimate, check.ci_low, check.ci_high, check.n_replicates) == (0.5, 0.25, 1.0, 40)
    assert check.verdict == "reproduced" and check.id == "0-test" and check.notes == "n"
    with pytest.raises(TypeError, match="from the Estimate"):
        Check.from_estimate(
            ESTIMATE, id="x", claim=1, statement="s", source="", quantity="", expected="",
            expected_low=0.0, expected_high=1.0, n_replicates=3,
        )  # fmt: skip


def test_resample_weights_are_multinomial_counts_over_n():
    from convstudy.stats.estimate import resample_weights

    n, n_boot = 50, 4000
    w = resample_weights(np.random.default_rng(3), n, n_boot)
    counts = w * n
    assert w.shape == (n_boot, n)
    np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-12)  # whole counts
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)  # n draws per resample
    # a multinomial(n, 1/n) count has mean 1 and variance 1 - 1/n; the sample variance of
    # B n counts has standard error about sqrt((mu4 - sigma^4) / (B n)), mu4 - sigma^4 ~ 3
    se = np.sqrt(3 / counts.size)
    assert abs(counts.var() - (1 - 1 / n)) < 4 * se
    # and two items' counts covary by -1/n (they share the n draws)
    cov = np.cov(counts[:, 0], counts[:, 1])[0, 1]
    assert abs(cov - (-1 / n)) < 4 * np.sqrt(1 / n_boot)
