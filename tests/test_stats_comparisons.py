"""Tests of convstudy.stats.comparisons: performance profiles, probability of improvement, IQM
and ranking with ties, on hand-made tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from convstudy.stats.comparisons import (
    interquartile_mean,
    iqm,
    normalise_scores,
    pair_estimate,
    performance_profile,
    probability_of_improvement,
    rank_with_ties,
    ranking_table,
)


def _scores(table: dict, replicates: int = 1, noise: float = 0.0, seed: int = 0):
    """A score frame from {problem: {method: value}}, ``replicates`` rows per cell."""
    rng = np.random.default_rng(seed)
    rows = []
    for p, by_method in table.items():
        for m, v in by_method.items():
            for r in range(replicates):
                rows.append({"problem": p, "method": m, "replicate": r,
                             "score": v * (1 + noise * rng.standard_normal())})  # fmt: skip
    return pd.DataFrame(rows)


# Dolan-More hand table: times (lower is better); C fails on p3.
HAND = {
    "p1": {"A": 1.0, "B": 2.0, "C": 4.0},
    "p2": {"A": 3.0, "B": 1.0, "C": 1.5},
    "p3": {"A": 2.0, "B": 2.0, "C": np.nan},
}


def test_performance_profile_hand_table():
    prof = performance_profile(_scores(HAND), seed=1, taus=[1, 1.5, 2, 3, 4], n_boot=50)
    rho = prof.pivot(index="tau", columns="method", values="rho")
    # ratios: A = (1, 3, 1), B = (2, 1, 1), C = (4, 1.5, inf)
    np.testing.assert_allclose(rho["A"], [2 / 3, 2 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(rho["B"], [2 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(rho["C"], [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3])
    # One replicate per cell: resampling changes nothing, the band is the point.
    np.testing.assert_allclose(prof["ci_low"], prof["rho"])
    np.testing.assert_allclose(prof["ci_high"], prof["rho"])
    assert (prof["n_problems"] == 3).all()


def test_performance_profile_bands_cover_and_are_seeded():
    frame = _scores(HAND | {"p3": {"A": 2.0, "B": 2.0, "C": 3.0}}, replicates=16, noise=0.3)
    a = performance_profile(frame, seed=7, n_boot=200)
    b = performance_profile(frame, seed=7, n_boot=200)
    pd.testing.assert_frame_equal(a, b)
    assert (a["ci_low"] <= a["rho"] + 1e-12).all() and (a["rho"] <= a["ci_high"] + 1e-12).all()
    assert a["tau"].min() == 1.0
    # rho_s is non-decreasing in tau and ends at 1 for every method at the largest ratio.
    for _, g in a.groupby("method"):
        assert np.all(np.diff(g["rho"]) >= 0) and g["rho"].iloc[-1] == 1.0


def test_probability_of_improvement_always_wins_and_identical():
    rng = np.random.default_rng(3)
    rows = []
    for p in ["p1", "p2", "p3"]:
        for _ in range(32):
            rows += [
                {"problem": p, "method": "A", "score": 1 + rng.random()},  # in (1, 2)
                {"problem": p, "method": "B", "score": 5 + rng.random()},  # in (5, 6)
                {"problem": p, "method": "C", "score": 5 + rng.random()},  # same law as B
            ]
    poi = probability_of_improvement(pd.DataFrame(rows), seed=11, n_boot=400)
    ab = pair_estimate(poi, "A", "B")
    assert ab.value == 1.0 and ab.ci_low == 1.0 and ab.ci_high == 1.0
    assert pair_estimate(poi, "B", "A").value == 0.0
    bc = pair_estimate(poi, "B", "C")
    assert bc.covers(0.5) and bc.ci_low < 0.5 < bc.ci_high
    # P(A > B) + P(B > A) = 1 for every pair.
    merged = poi.merge(poi, left_on=["method_a", "method_b"], right_on=["method_b", "method_a"])
    np.testing.assert_allclose(merged["probability_x"] + merged["probability_y"], 1.0)
    assert len(poi) == 6


def test_probability_of_improvement_failures_and_direction():
    frame = pd.DataFrame(
        {
            "problem": ["p"] * 4,
            "method": ["A", "A", "B", "B"],
            "score": [1.0, np.nan, np.nan, np.nan],
        }  # fmt: skip
    )  # A: one success, one failure; B: two failures (worse than any finite, tie each other)
    poi = probability_of_improvement(frame, seed=0, n_boot=20)
    assert pair_estimate(poi, "A", "B").value == pytest.approx(0.75)
    # Higher is better flips the comparison of finite scores.
    up = _scores({"p": {"A": 2.0, "B": 1.0}}, replicates=3)
    assert pair_estimate(probability_of_improvement(up, seed=0, lower_is_better=False,
                                                    n_boot=20), "A", "B").value == 1.0  # fmt: skip


def test_iqm_known_sample():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # middle 4 of 1..8: 3,4,5,6
    assert iqm([0, 0, 1, 2, 3, 100, 100, -50]) == pytest.approx(1.5)  # mean of 0, 1, 2, 3
    frame = pd.DataFrame(
        {
            "problem": np.repeat(["p1", "p2"], 4),
            "method": "A",
            "normalised": [1, 2, 3, 4, 5, 6, 7, 8.0],
        }  # fmt: skip
    )
    out = interquartile_mean(frame, seed=2, n_boot=300)
    row = out.iloc[0]
    assert row["iqm"] == pytest.approx(4.5) and row["n_runs"] == 8 and row["n_problems"] == 2
    assert row["ci_low"] <= 4.5 <= row["ci_high"]


def test_normalise_scores():
    frame = _scores({"p": {"A": 2.0, "B": 4.0, "C": np.nan}})
    ratio = normalise_scores(frame, how="ratio")["normalised"].tolist()
    assert ratio == [1.0, 0.5, 0.0]
    minmax = normalise_scores(frame, how="minmax")["normalised"].tolist()
    assert minmax == [1.0, 0.0, 0.0]


def test_rank_with_ties_overlap_and_chain():
    table = pd.DataFrame(
        {
            "method": ["A", "B", "C", "D"],
            "iqm": [0.9, 0.85, 0.5, 0.3],
            "ci_low": [0.8, 0.75, 0.4, 0.1],
            "ci_high": [1.0, 0.95, 0.6, 0.38],
        }  # fmt: skip
    )
    ranked = rank_with_ties(table)
    assert ranked["method"].tolist() == ["A", "B", "C", "D"]
    assert ranked["rank"].tolist() == [1, 1, 3, 4]  # A, B overlap; C, D disjoint
    assert ranked["tied_with"].tolist() == ["B", "A", "", ""]
    # A chain of overlaps ties all three (A~B, B~C, A and C disjoint).
    chain = pd.DataFrame(
        {
            "method": ["A", "B", "C"],
            "iqm": [11, 9.5, 7],
            "ci_low": [10, 8, 5],
            "ci_high": [12, 11, 9],
        }  # fmt: skip
    )
    assert rank_with_ties(chain)["rank"].tolist() == [1, 1, 1]
    # Lower is better reverses the order.
    assert rank_with_ties(table, higher_is_better=False)["method"].tolist()[0] == "D"


def test_ranking_table_end_to_end():
    frame = _scores(
        {f"p{i}": {"fast": 1.0, "fast2": 1.02, "slow": 3.0} for i in range(4)},
        replicates=12,
        noise=0.1,
    )
    ranked = ranking_table(frame, seed=5, n_boot=300)
    assert list(ranked.columns[:2]) == ["rank", "method"]
    ranks = dict(zip(ranked["method"], ranked["rank"]))
    assert ranks["fast"] == ranks["fast2"] == 1 and ranks["slow"] == 3


def test_bad_input_one_line_errors():
    incomplete = _scores({"p1": {"A": 1.0, "B": 2.0}, "p2": {"A": 1.0}})
    with pytest.raises(ValueError, match="every method on every problem. Missing: B on p2"):
        performance_profile(incomplete, seed=0)
    with pytest.raises(ValueError, match="lacks column"):
        probability_of_improvement(pd.DataFrame({"problem": [1]}), seed=0)
    with pytest.raises(TypeError, match="'seed' parameter"):
        performance_profile(_scores(HAND), seed=None)
    with pytest.raises(ValueError, match="must be > 0"):
        performance_profile(_scores({"p": {"A": -1.0, "B": 1.0}}), seed=0)
    with pytest.raises(ValueError, match="'taus' parameter"):
        performance_profile(_scores(HAND), seed=0, taus=[0.5])
    with pytest.raises(ValueError, match="at least 2 methods"):
        probability_of_improvement(_scores({"p": {"A": 1.0}}), seed=0)
    with pytest.raises(ValueError, match="must not be empty"):
        interquartile_mean(pd.DataFrame(columns=["problem", "method", "normalised"]), seed=0)
    with pytest.raises(ValueError, match="'how' parameter"):
        normalise_scores(_scores(HAND), how="z")
    try:
        performance_profile(incomplete, seed=0)
    except ValueError as e:
        assert "\n" not in str(e)
