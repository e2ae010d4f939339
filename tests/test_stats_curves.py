"""Tests of convstudy.stats.curves: curve matrices, mean curves, hitting times with censoring
(first recorded crossing and interpolated crossing), plateau levels.

Exact cases (closed-form curves) must hold to rounding error.
"""

import numpy as np
import pytest
from _frames import _curves_frame, _frame

from convstudy.stats.curves import (
    first_crossing,
    hitting_times,
    mean_curve,
    mean_curve_crossings,
    mean_curve_hitting_time,
    time_average,
)
from convstudy.stats.fits import fit_loglog_slope


def test_hitting_times_first_recorded_step_and_censoring():
    steps = np.array([0, 1, 2, 4, 8])
    values = np.array([[1.0, 0.5, 0.2, 0.05, 0.01], [1.0, 0.9, 0.8, 0.7, 0.6]])
    hits = hitting_times(_frame(values, steps), [0.3, 0.01])
    r0 = hits[hits.replicate == 0].set_index("eps")
    assert r0.loc[0.3, "hit"] == 2 and r0.loc[0.01, "hit"] == 8
    r1 = hits[hits.replicate == 1]
    assert r1["censored"].all() and r1["hit"].isna().all()


def test_diverged_replicate_is_censored_and_excluded_from_means():
    steps = np.arange(4)
    values = np.array([[1.0, 0.1, 0.01, 0.001], [1.0, np.nan, np.nan, np.nan]])
    div = np.array([[False] * 4, [False, True, True, True]])
    frame = _frame(values, steps, div)
    hits = hitting_times(frame, 0.05)
    assert hits.loc[hits.replicate == 1, "censored"].item()
    assert hits.loc[hits.replicate == 1, "diverged"].item()
    curve = mean_curve(frame)
    assert (curve["n"] == 1).all() and (curve["n_diverged"] == 1).all()
    np.testing.assert_allclose(curve["mean"], values[0])


def test_mean_curve_hitting_time_ci_contains_point():
    rng = np.random.default_rng(3)
    steps = np.arange(0, 200, 5)
    values = np.exp(-0.05 * steps)[None, :] * np.exp(0.3 * rng.standard_normal((100, 1)))
    out = mean_curve_hitting_time(_frame(values, steps), [1e-1, 1e-9], seed=0)
    first = out.iloc[0]
    assert first["ci_low"] <= first["hit"] <= first["ci_high"]
    assert not first["censored"]
    last = out.iloc[1]
    assert last["censored"] and last["p_censored"] == 1.0 and np.isinf(last["ci_high"])


def test_bad_inputs():
    frame = _frame(np.ones((2, 3)), np.arange(3))
    with pytest.raises(ValueError, match="'eps' parameter of hitting_times"):
        hitting_times(frame, -1)
    with pytest.raises(ValueError, match="lacks column"):
        mean_curve(frame.drop(columns="diverged"))
    with pytest.raises(ValueError, match="'window' parameter of fit_loglog_slope"):
        fit_loglog_slope(frame, window=(1, 1), seed=0)


def test_mean_curve_hitting_time_when_every_replicate_diverged():
    steps = np.arange(3)
    values = np.full((2, 3), np.nan)
    frame = _frame(values, steps, np.ones((2, 3), bool))
    out = mean_curve_hitting_time(frame, [0.1], seed=0)
    assert out["censored"].all() and (out["n"] == 0).all() and (out["n_diverged"] == 2).all()


def test_first_crossing_are_exact_for_exponential_and_power_curves():
    xs = np.array([0.0, 2.0, 5.0, 9.0, 14.0])
    curves = np.exp(-xs)[None] * np.array([[1.0], [2.0]])  # f = C exp(-x), C = 1, 2
    eps = np.exp(-np.array([1.3, 7.7]))
    got = first_crossing(xs, curves, eps, interpolate="linear")
    np.testing.assert_allclose(got, [[1.3, 7.7], [1.3 + np.log(2), 7.7 + np.log(2)]], rtol=1e-12)
    xs = np.array([1.0, 10.0, 100.0, 1000.0])
    got = first_crossing(xs, 5.0 / xs[None], [5 / 37.0, 5 / 512.0], interpolate="log")
    np.testing.assert_allclose(got, [[37.0, 512.0]], rtol=1e-12)


def test_first_crossing_edge_cases():
    xs = np.array([0.0, 1.0, 2.0])
    curves = np.array([[0.5, 0.1, 0.01], [1.0, 0.9, 0.8], [np.nan, np.nan, np.nan]])
    got = first_crossing(xs, curves, [0.6, 0.05])
    assert got[0, 0] == 0.0  # already below eps at the first record
    assert np.isnan(got[1]).all()  # never reaches: censored
    assert np.isnan(got[2]).all()  # diverged: never reaches
    with pytest.raises(ValueError, match="'eps' parameter of first_crossing"):
        first_crossing(xs, curves, [0.0])
    with pytest.raises(ValueError, match="'curves' parameter of first_crossing"):
        first_crossing(xs, curves[:, :2], [0.1])
    with pytest.raises(ValueError, match="strictly increasing"):
        first_crossing(xs[::-1], curves, [0.1])


def test_mean_curve_crossings_all_diverged():
    frame = _curves_frame(np.arange(3), np.ones((2, 3)), diverged=[True, True])
    point, boots, n, n_div = mean_curve_crossings(frame, [0.5], n_boot=5, seed=0)
    assert np.isnan(point).all() and np.isnan(boots).all() and (n, n_div) == (0, 2)


def test_time_average_over_the_tail_and_diverged_rows():
    steps = np.array([0, 5, 10, 15, 20])
    values = np.array([[9.0, 9.0, 1.0, 2.0, 3.0], [9.0, 9.0, 4.0, np.nan, np.nan]])
    diverged = np.array([[False] * 5, [False, False, False, True, True]])
    out = time_average(_frame(values, steps, diverged), 10)
    assert out["value"].iloc[0] == pytest.approx(2.0)
    assert np.isnan(out["value"].iloc[1]) and out["diverged"].iloc[1]
    assert (out["n_points"] == 3).all()
    with pytest.raises(ValueError, match="start"):
        time_average(_frame(values, steps, diverged), 21)


def test_first_crossing_censoring_and_interpolation():
    """One hitting time: the first record at or below eps, or the crossing interpolated between
    records (log-linear in y); NaN (censored) for a curve that never reaches eps or diverged."""
    xs = np.array([0.0, 10.0, 20.0, 30.0])
    curves = np.array(
        [
            [1.0, 1e-1, 1e-2, 1e-3],  # f = 10^(-x/10): crosses 10^-1.5 at x = 15
            [1.0, 0.9, 0.8, 0.7],  # never reaches: censored
            [1.0, np.nan, np.nan, np.nan],  # diverged: censored
            [1e-4, 1e-5, 1e-6, 1e-7],  # below every eps at the first record
        ]
    )
    eps = [10**-1.5, 1e-3]
    recorded = first_crossing(xs, curves, eps)
    np.testing.assert_array_equal(recorded[0], [20.0, 30.0])
    assert np.isnan(recorded[1:3]).all()
    np.testing.assert_array_equal(recorded[3], [0.0, 0.0])
    linear = first_crossing(xs, curves, eps, interpolate="linear")
    np.testing.assert_allclose(linear[0], [15.0, 30.0], rtol=1e-12)
    assert np.isnan(linear[1:3]).all()
    np.testing.assert_array_equal(linear[3], [0.0, 0.0])
    # log: interpolation in ln x (f = 1/x crosses 1/300 at x = 300)
    xs_log = np.array([1.0, 10.0, 100.0, 1000.0])
    got = first_crossing(xs_log, 1.0 / xs_log[None], [1 / 300.0], interpolate="log")
    np.testing.assert_allclose(got, [[300.0]], rtol=1e-12)
    assert first_crossing(xs_log, 1.0 / xs_log[None], [1 / 300.0])[0, 0] == 1000.0
    with pytest.raises(ValueError, match="'interpolate' parameter of first_crossing"):
        first_crossing(xs, curves, eps, interpolate="cubic")


def test_hitting_times_and_mean_curve_crossings_use_the_one_first_crossing():
    steps = np.array([0, 10, 20, 30])
    values = np.array([[1.0, 1e-1, 1e-2, 1e-3], [1.0, 0.9, 0.8, 0.7]])
    frame = _frame(values, steps)
    hits = hitting_times(frame, [1e-2])
    np.testing.assert_array_equal(hits["hit"].to_numpy(), [20.0, np.nan])
    np.testing.assert_array_equal(hits["censored"].to_numpy(), [False, True])
    point, boots, n, n_div = mean_curve_crossings(frame, [1e-2], seed=0, n_boot=50)
    expected = first_crossing(steps, values.mean(axis=0)[None], [1e-2])[0]
    np.testing.assert_array_equal(point, expected)
    assert boots.shape == (50, 1) and (n, n_div) == (2, 0)
