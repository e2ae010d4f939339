import numpy as np
import pandas as pd
import pytest

from convstudy import measures as M


def _frame(values, steps, diverged=None):
    """A tidy frame from a (R, S) matrix of values recorded at ``steps``."""
    R, S = values.shape
    diverged = np.zeros((R, S), bool) if diverged is None else diverged
    return pd.DataFrame({
        "replicate": np.repeat(np.arange(R), S),
        "step": np.tile(steps, R),
        "subopt": values.ravel(),
        "diverged": diverged.ravel(),
    })


def test_hitting_times_first_recorded_step_and_censoring():
    steps = np.array([0, 1, 2, 4, 8])
    values = np.array([[1.0, 0.5, 0.2, 0.05, 0.01],
                       [1.0, 0.9, 0.8, 0.7, 0.6]])
    hits = M.hitting_times(_frame(values, steps), [0.3, 0.01])
    r0 = hits[hits.replicate == 0].set_index("eps")
    assert r0.loc[0.3, "hit"] == 2 and r0.loc[0.01, "hit"] == 8
    r1 = hits[hits.replicate == 1]
    assert r1["censored"].all() and r1["hit"].isna().all()


def test_diverged_replicate_is_censored_and_excluded_from_means():
    steps = np.arange(4)
    values = np.array([[1.0, 0.1, 0.01, 0.001], [1.0, np.nan, np.nan, np.nan]])
    div = np.array([[False] * 4, [False, True, True, True]])
    frame = _frame(values, steps, div)
    hits = M.hitting_times(frame, 0.05)
    assert hits.loc[hits.replicate == 1, "censored"].item()
    assert hits.loc[hits.replicate == 1, "diverged"].item()
    curve = M.mean_curve(frame)
    assert (curve["n"] == 1).all() and (curve["n_diverged"] == 1).all()
    np.testing.assert_allclose(curve["mean"], values[0])


def test_loglog_slope_recovers_a_power_law_with_noise():
    rng = np.random.default_rng(0)
    steps = np.unique(np.geomspace(1, 1e4, 40).astype(int))
    R = 300
    noise = np.exp(0.3 * rng.standard_normal((R, steps.size)))
    values = 5.0 * steps[None, :] ** -1.0 * noise
    fit = M.fit_loglog_slope(_frame(values, steps), window=(10, 1e4), seed=1)
    assert fit["ci_low"] <= -1.0 <= fit["ci_high"]
    assert fit["ci_high"] - fit["ci_low"] < 0.05
    assert fit["n"] == R and fit["n_diverged"] == 0


def test_bootstrap_ci_covers_truth_at_nominal_rate():
    """Over 100 independent data sets, the 95% slope CI covers the true slope ~95% of the time."""
    steps = np.unique(np.geomspace(1, 1e3, 20).astype(int))
    covered = 0
    n_sets = 100
    for s in range(n_sets):
        rng = np.random.default_rng(100 + s)
        # replicate-level random slope: the mean curve's slope is -0.5 in expectation of logs
        values = steps[None, :] ** -0.5 * np.exp(0.5 * rng.standard_normal((50, 1)))
        values = values * np.exp(0.2 * rng.standard_normal((50, steps.size)))
        fit = M.fit_loglog_slope(_frame(values, steps), n_boot=400, seed=s)
        covered += fit["ci_low"] <= -0.5 <= fit["ci_high"]
    # binomial(100, 0.95): P(X < 87) < 0.2%
    assert covered >= 87


def test_linear_rate_recovers_geometric_decay():
    steps = np.arange(0, 50, 2)
    values = np.tile(3.0 * 0.9**steps, (5, 1)) * np.linspace(1, 2, 5)[:, None]
    fit = M.fit_linear_rate(_frame(values, steps))
    assert fit["rate"] == pytest.approx(0.9, rel=1e-10)


def test_mean_curve_hitting_time_ci_contains_point():
    rng = np.random.default_rng(3)
    steps = np.arange(0, 200, 5)
    values = np.exp(-0.05 * steps)[None, :] * np.exp(0.3 * rng.standard_normal((100, 1)))
    out = M.mean_curve_hitting_time(_frame(values, steps), [1e-1, 1e-9])
    first = out.iloc[0]
    assert first["ci_low"] <= first["hit"] <= first["ci_high"]
    assert not first["censored"]
    last = out.iloc[1]
    assert last["censored"] and last["p_censored"] == 1.0 and np.isinf(last["ci_high"])


def test_variance_ci_coverage_and_formula():
    rng = np.random.default_rng(5)
    x = rng.exponential(2.0, size=(4000, 200))  # true variance 4, skewed
    s2, lo, hi = M.variance_ci(x, axis=0)
    np.testing.assert_allclose(s2, x.var(axis=0, ddof=1))
    coverage = np.mean((lo <= 4.0) & (4.0 <= hi))
    # 200 intervals at nominal 95%: binomial sd 1.5%; allow 4 sd
    assert abs(coverage - 0.95) < 0.06
    with pytest.raises(ValueError, match="'method' parameter of variance_ci"):
        M.variance_ci(x, method="exact")


def test_bad_inputs():
    frame = _frame(np.ones((2, 3)), np.arange(3))
    with pytest.raises(ValueError, match="'eps' parameter of hitting_times"):
        M.hitting_times(frame, -1)
    with pytest.raises(ValueError, match="lacks column"):
        M.mean_curve(frame.drop(columns="diverged"))
    with pytest.raises(ValueError, match="'window' parameter of fit_loglog_slope"):
        M.fit_loglog_slope(frame, window=(1, 1))


def test_mean_curve_hitting_time_when_every_replicate_diverged():
    steps = np.arange(3)
    values = np.full((2, 3), np.nan)
    frame = _frame(values, steps, np.ones((2, 3), bool))
    out = M.mean_curve_hitting_time(frame, [0.1])
    assert out["censored"].all() and (out["n"] == 0).all() and (out["n_diverged"] == 2).all()
