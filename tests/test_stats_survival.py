"""Tests of convstudy.stats.survival: time to target between records with censoring, and the
Kaplan-Meier curve and median against a product-limit estimate computed by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from convstudy.stats.survival import kaplan_meier, median_time, survival_table, time_to_target

# 8 times to target, 3 censored (at 3, 6 and 9).
TIMES = np.array([2.0, 3.0, 3.0, 5.0, 6.0, 7.0, 9.0, 10.0])
CENSORED = np.array([False, False, True, False, True, False, True, False])


def _product_limit(times, censored):
    """Kaplan & Meier (1958) by hand: S(t_i) = prod (1 - d_i / n_i) and the Greenwood sum."""
    out, s, g = {}, 1.0, 0.0
    for t in np.unique(times[~censored]):
        n = np.sum(times >= t)  # at risk just before t (censored at t still at risk)
        d = np.sum((times == t) & ~censored)
        s *= 1 - d / n
        g += d / (n * (n - d)) if n > d else np.inf
        out[t] = (s, g)
    return out


def _run_frame(curves, steps, batch=4, diverged=None, method="a"):
    curves = np.asarray(curves, float)
    R, S = curves.shape
    div = np.zeros(R, bool) if diverged is None else np.asarray(diverged)
    return pd.DataFrame(
        {
            "method": method,
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "samples": np.tile(np.asarray(steps) * batch, R),
            "subopt": curves.ravel(),
            "diverged": np.repeat(div, S),
        }
    )


def test_kaplan_meier_matches_hand_product_limit():
    km = kaplan_meier(TIMES, CENSORED)
    hand = _product_limit(TIMES, CENSORED)
    assert list(hand) == [2.0, 3.0, 5.0, 7.0, 10.0]
    np.testing.assert_allclose([v[0] for v in hand.values()], [7 / 8, 6 / 8, 0.6, 0.4, 0.0])
    rows = km.set_index("time")
    for t, (s, g) in hand.items():
        assert rows.loc[t, "survival"] == pytest.approx(s)
        if 0 < s < 1:  # exponential Greenwood band: S^exp(+-z sqrt(g) / ln S)
            z = norm.ppf(0.975)
            half = z * np.sqrt(g) / np.log(s)
            assert rows.loc[t, "ci_low"] == pytest.approx(s ** np.exp(-half), rel=1e-6)
            assert rows.loc[t, "ci_high"] == pytest.approx(s ** np.exp(half), rel=1e-6)
    # Censored times keep S flat and are counted.
    assert rows.loc[6.0, "survival"] == pytest.approx(0.6)
    assert rows["censored"].sum() == 3 and rows["events"].sum() == 5
    assert rows.loc[5.0, "at_risk"] == 5
    np.testing.assert_allclose(km["reached"], 1 - km["survival"])


def test_median_time_hand_case():
    m = median_time(TIMES, CENSORED)
    assert m.value == 7.0  # first t with S(t) <= 1/2: S(5) = 0.6, S(7) = 0.4
    assert m.ci_low <= 7.0 <= m.ci_high and m.n == 8
    # Fewer than half reach the target: the median is inf (censored), not dropped.
    few = median_time([1.0, 9, 9, 9, 9], [False, True, True, True, True])
    assert few.value == np.inf and few.ci_high == np.inf


def test_time_to_target_interpolates_between_records_in_all_units():
    steps = np.array([0, 10, 20, 30])
    rates = np.array([0.5, 0.8])  # y = rate^k: crossing of 1e-3 at k = ln 1e-3 / ln rate
    curves = rates[:, None] ** steps[None, :]
    frame = _run_frame(curves, steps, batch=4)
    ttt = time_to_target(frame, 1e-3, step_time=0.01)
    exact = np.log(1e-3) / np.log(rates)
    assert not ttt["censored"].iloc[0]
    assert ttt["iterations"].iloc[0] == pytest.approx(exact[0])
    assert ttt["samples"].iloc[0] == pytest.approx(4 * exact[0])
    assert ttt["seconds"].iloc[0] == pytest.approx(0.01 * exact[0])
    # rate 0.8 reaches 0.8^30 = 1.2e-3 > 1e-3: censored at the budget.
    assert ttt["censored"].iloc[1] and np.isnan(ttt["iterations"].iloc[1])
    assert ttt["budget_iterations"].iloc[1] == 30 and ttt["budget_samples"].iloc[1] == 120
    # A cumulative wall-clock column is interpolated at the crossing.
    clocked = frame.assign(clock=frame["step"] * 0.5)
    ttt2 = time_to_target(clocked, 1e-3, step_time="clock")
    assert ttt2["seconds"].iloc[0] == pytest.approx(0.5 * exact[0])


def test_time_to_target_censors_diverged_and_groups():
    steps = np.array([0, 1, 2, 3])
    curves = np.array([[1.0, 0.1, 0.01, 0.001], [1.0, 10.0, np.nan, np.nan]])
    frame = pd.concat(
        [
            _run_frame(curves, steps, diverged=[False, True], method="a"),
            _run_frame(curves[:1], steps, method="b"),
        ]
    )
    ttt = time_to_target(frame, [0.1, 0.005], by="method")
    assert list(ttt.columns[:3]) == ["method", "replicate", "target"]
    a = ttt[ttt["method"] == "a"]
    assert a["censored"].tolist() == [False, False, True, True]
    assert a["diverged"].tolist() == [False, False, True, True]
    curves_t, medians = survival_table(ttt, by="method")
    assert set(medians.columns) >= {"method", "target", "median", "ci_low", "ci_high", "n"}
    row = medians[(medians["method"] == "a") & (medians["target"] == 0.1)].iloc[0]
    assert row["n"] == 2 and row["n_censored"] == 1
    assert set(curves_t["method"]) == {"a", "b"}


def test_bad_input_one_line_errors():
    with pytest.raises(ValueError, match="'target' parameter of time_to_target"):
        time_to_target(_run_frame([[1.0, 0.1]], [0, 1]), -1.0)
    with pytest.raises(ValueError, match="lacks column"):
        time_to_target(pd.DataFrame({"replicate": [0]}), 0.1)
    with pytest.raises(ValueError, match="'censored' parameter of kaplan_meier"):
        kaplan_meier([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="'times' parameter of median_time"):
        median_time([1.0, np.nan], [False, True])
    with pytest.raises(ValueError, match="'unit' parameter of survival_table"):
        survival_table(pd.DataFrame(), unit="hours")
    for exc in (ValueError,):
        try:
            kaplan_meier([1.0, -2.0], [False, False])
        except exc as e:
            assert "\n" not in str(e)
