"""Tests of studies/variance.py: its reference moments, its Monte Carlo cells and its outputs."""

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import variance as V

from convstudy.runner import run_study
from convstudy.stats.means import mean_sem_ci
from convstudy.stats.variance import bootstrap_dispersion, fit_variance_slope, variance_ci
from convstudy.study import Scale
from convstudy.theory.sampling_variance import finite_population_correction, population_variance


def _condition(problem: str, point: str = "w_star", size_max: int = 64, base: int = 4) -> dict:
    distance = V.FAR_DISTANCE[problem] if point == "far" else 0.0
    return {
        "problem": problem,
        "point": point,
        "distance": distance,
        "size_max": size_max,
        "size_base": base,
    }


def test_gaussian_linear_moments_match_monte_carlo():
    """Closed-form risk, var(div) and tr Cov(grad div) against 400k draws, within 4 SE."""
    dist = V.population("gaussian_linear").distribution
    w = V.evaluation_point(V.population("gaussian_linear"), 1.0)
    exact = dist.moments(w)
    X, y = dist.draw(np.random.default_rng(0), 400_000)
    res = X @ w - y
    div = 0.5 * res**2
    sq = np.sum((res[:, None] * X - exact["mean_grad"]) ** 2, axis=1)
    risk, risk_se = div.mean(), div.std() / np.sqrt(div.size)
    var, lo, hi = variance_ci(div)
    trace, trace_se = sq.mean(), sq.std() / np.sqrt(sq.size)
    assert abs(risk - exact["risk"]) <= 4 * risk_se
    assert abs(var - exact["var_div"]) <= 4 * (hi - lo) / (2 * 1.96)
    assert abs(trace - exact["trace_cov"]) <= 4 * trace_se
    g_mean = (res[:, None] * X).mean(axis=0)
    np.testing.assert_allclose(
        g_mean, exact["mean_grad"], atol=0.05 * np.abs(exact["mean_grad"]).max()
    )


def test_reference_for_real_data_is_the_dataset_population():
    pop = V.population("logistic")
    w = pop.w_star
    div, grads = V.per_sample(pop, w)
    ref = V.reference(pop, w, "without_replacement")
    assert ref["risk"] == pytest.approx(pop.training.f_star)
    assert ref["var_div"] == pytest.approx(np.var(div))
    assert ref["population_size"] == 569 and not ref["replace"]
    np.testing.assert_allclose(grads.mean(axis=0), 0.0, atol=1e-9)  # w* is stationary
    pred = V.predicted_variance(ref, np.array([1.0, 569.0]), "var_div")
    np.testing.assert_allclose(pred, [np.var(div), 0.0], atol=1e-15)


@pytest.mark.parametrize("problem", ["gaussian_linear", "logistic"])
def test_compute_does_not_depend_on_chunking(problem):
    cond = _condition(problem, "far")
    whole = V.compute(cond, 7, np.arange(12))
    parts = pd.concat([V.compute(cond, 7, np.arange(5)), V.compute(cond, 7, np.arange(5, 12))])
    key = ["design", "size", "replicate"]
    whole = whole.sort_values(key).reset_index(drop=True)
    parts = parts.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, parts)
    assert set(whole["design"]) == set(V.DESIGNS)
    assert sorted(whole["size"].unique()) == [1, 4, 16, 64]
    assert len(whole) == 12 * 4 * len(V.DESIGNS)


def test_compute_rejects_sizes_beyond_the_training_set():
    with pytest.raises(ValueError, match="'size_max'.*569"):
        V.compute(_condition("logistic", size_max=1024), 0, np.arange(2))


def test_single_draws_are_training_samples():
    """b = 1 without replacement returns one sample's divergence; b = N - 1 nearly the mean."""
    pop = V.population("logistic")
    div, _ = V.per_sample(pop, pop.w_star)
    frame = V.compute(_condition("logistic", size_max=256), 3, np.arange(20))
    single = frame[(frame["design"] == "without_replacement") & (frame["size"] == 1)]
    assert np.all(np.isclose(single["loss"].to_numpy()[:, None], div[None, :]).any(axis=1))


def test_claim_numbers_on_the_synthetic_problem():
    """1500 draws of the synthetic cell: the slopes' CIs lie in [-1.1, -0.9], and without
    replacement the largest minibatch matches the FPC formula (not var(div)/b)."""
    cond = _condition("gaussian_linear", size_max=256, base=2)
    frame = V.compute(cond, 1, np.arange(1500))
    pop = V.population("gaussian_linear")
    w = V.evaluation_point(pop, 0.0)
    for design in ("train_size", "with_replacement", "without_replacement"):
        part = frame[frame["design"] == design]
        losses = part.pivot(index="replicate", columns="size", values="loss")
        sq = part.pivot(index="replicate", columns="size", values="grad_sqdev")
        sizes = losses.columns.to_numpy(float)
        var, lo, hi = variance_ci(losses.to_numpy())
        trace = mean_sem_ci(sq.to_numpy())[0]
        boots_l, boots_g = bootstrap_dispersion(losses.to_numpy(), sq.to_numpy(), seed=0)
        corr = finite_population_correction(1000, sizes) if design.startswith("without") else None
        for est, boots in ((var, boots_l), (trace, boots_g)):
            fit = fit_variance_slope(sizes, est, boots, n=1500, correction=corr).estimate
            assert -1.1 <= fit.ci_low and fit.ci_high <= -0.9, (design, fit)
        ref = V.reference(pop, w, design)
        pred = V.predicted_variance(ref, sizes, "var_div")
        se = (hi[-1] - lo[-1]) / (2 * 1.96)
        assert abs(var[-1] - pred[-1]) <= 4 * se
        if corr is not None:
            assert abs(var[-1] - ref["var_div"] / sizes[-1]) > 4 * se
    assert population_variance(V.per_sample(pop, w)[0]) > 0


def test_run_study_quick_writes_tables_figures_and_checks(tmp_path):
    result = run_study(V.study, quick=True, replicates=8, out=tmp_path)
    folder = tmp_path / "variance"
    for stem in ("variance_by_size", "slopes", "single_sample", "bias"):
        assert (folder / "tables" / f"{stem}.csv").exists()
    for stem in ("variance_vs_n", "variance_vs_b", "distributions"):
        assert (folder / "figures" / f"{stem}.png").exists()
    claims = pd.read_csv(folder / "claims.csv")
    assert len(claims) >= 4 and set(claims["claim"]) == {1}
    assert claims["id"].is_unique
    assert {"1a", "1b", "1c", "1d", "1e"} <= {i.split("-")[0] for i in claims["id"]}
    assert (claims["n_replicates"] == 8).all()
    slopes = result.analysis.tables["slopes"]
    assert {"slope", "ci_low", "ci_high", "expected"} <= set(slopes.columns)
    assert result.analysis.findings
    assert len(result.runs) == 2 * len(V.DESIGNS) * 5 * 8  # 2 cells x designs x 5 sizes x R


def test_conditions_scale():
    full = V.conditions(Scale(False, 10))
    quick = V.conditions(Scale(True, 10))
    assert len(full) == 4 and len(quick) == 2
    assert {c["point"] for c in quick} == {"w_star"}
    assert all(c["size_max"] == 512 for c in full)
