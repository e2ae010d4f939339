"""Tests of the variance study: its reference moments, its Monte Carlo cells and its outputs."""

import numpy as np
import pandas as pd
import pytest
from convstudy.studies import variance as V

from convstudy.runner import run_study
from convstudy.stats.variance import variance_against_size
from convstudy.study import Scale
from convstudy.theory.sampling_variance import per_sample_values


def _condition(problem: str, point: str = "w_star", size_max: int = 64, base: int = 4) -> dict:
    distance = V.FAR_DISTANCE[problem] if point == "far" else 0.0
    return {"problem": problem, "point": point, "distance": distance, "size_max": size_max} | {
        "size_base": base
    }


def test_reference_for_real_data_is_the_dataset_population():
    training, w_star, dist = V.population("logistic")
    div, grads = per_sample_values(training, w_star)
    ref = V.reference("logistic", w_star, "without_replacement")
    assert dist is None and ref["risk"] == pytest.approx(training.f_star)
    assert ref["var_div"] == pytest.approx(np.var(div))
    assert ref["population_size"] == 569 and not ref["replace"]
    np.testing.assert_allclose(grads.mean(axis=0), 0.0, atol=1e-9)  # w* is stationary
    pred = V.predicted_variance(ref, np.array([1.0, 569.0]))
    np.testing.assert_allclose(pred, [np.var(div), 0.0], atol=1e-15)


def test_reference_for_the_synthetic_training_size_is_the_distribution():
    _, w_star, dist = V.population("gaussian_linear")
    w = V.evaluation_point("gaussian_linear", 2.0)
    assert np.linalg.norm(w - w_star) == pytest.approx(2.0)
    ref = V.reference("gaussian_linear", w, "train_size")
    assert ref["risk"] == pytest.approx(dist.moments(w)["risk"]) and ref["replace"]


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
    with pytest.raises(ValueError, match="'problem'.*'nope'"):
        V.population("nope")


def test_single_draws_are_training_samples():
    """b = 1 without replacement returns one sample's divergence."""
    training, w_star, _ = V.population("logistic")
    div, _ = per_sample_values(training, w_star)
    frame = V.compute(_condition("logistic", size_max=256), 3, np.arange(20))
    single = frame[(frame["design"] == "without_replacement") & (frame["size"] == 1)]
    assert np.all(np.isclose(single["loss"].to_numpy()[:, None], div[None, :]).any(axis=1))


def test_claim_numbers_on_the_synthetic_problem():
    """1500 draws of the synthetic cell: at every size each design's variance is its exact
    prediction within 4 SE, and without replacement the largest minibatch is not var(div)/b."""
    frame = V.compute(_condition("gaussian_linear", size_max=256, base=2), 1, np.arange(1500))
    w = V.evaluation_point("gaussian_linear", 0.0)
    for design in V.DESIGNS:
        part = frame[frame["design"] == design]
        ref = V.reference("gaussian_linear", w, design)
        for key, _, column, kind in V.QUANTITIES.values():
            draws = part.pivot(index="replicate", columns="size", values=column)
            sizes = draws.columns.to_numpy(float)
            pred = V.predicted_variance(ref, sizes, key)
            cols = variance_against_size(draws.to_numpy(), sizes, pred, seed=0, kind=kind)[0]
            se = (cols["ci_high"] - cols["ci_low"]) / (2 * 1.96)
            assert np.all(np.abs(cols["measured"] - cols["predicted"]) <= 4 * se), (design, key)
            if ref["population_size"]:
                assert abs(cols["measured"][-1] - ref[key] / sizes[-1]) > 4 * se[-1]


def test_broken_draws_change_the_designs():
    """The variants' ``draw``: without replacement every segment has distinct indices; weighted
    draws favour large divergences; an unknown draw is refused in one line."""
    div = per_sample_values(*V.population("logistic")[:2])[0]
    rng, sizes = np.random.default_rng(0), np.array([1, 4, 64])
    idx = V._indices(rng, "without", div.size, sizes, div / div.sum())
    assert all(len(set(seg)) == len(seg) for seg in np.split(idx, np.cumsum(sizes)[:-1]))
    heavy = V._indices(rng, "weighted", div.size, np.array([5000]), div / div.sum())
    assert div[heavy].mean() > 2 * div.mean()
    with pytest.raises(ValueError, match="'draw'.*'nope'"):
        V.compute(_condition("logistic") | {"draw": "nope"}, 0, np.arange(2))


def test_conditions_scale():
    full, quick = V.conditions(Scale(False, 10)), V.conditions(Scale(True, 10))
    assert len(full) == 4 and len(quick) == 2
    assert {c["point"] for c in quick} == {"w_star"}
    assert all(c["size_max"] == 512 for c in full)
    assert V.study.labels == ("point",)  # the point's name is presentation; distance the parameter


# ---- the study and its broken variants at quick scale (R = 1000) -------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory, cache):
    return run_study(V.study, quick=True, out=tmp_path_factory.mktemp("reports"), cache_dir=cache)


def test_run_study_quick_writes_tables_figures_and_checks(quick_result):
    folder = quick_result.folder
    for stem in ("variance_by_size", "bias"):
        assert (folder / "tables" / f"{stem}.csv").exists()
    for stem in ("variance_vs_n", "variance_vs_b"):
        assert (folder / "figures" / f"{stem}.png").exists()
    claims = pd.read_csv(folder / "claims.csv")
    assert len(claims) == 9 and set(claims["claim"]) == {1} and claims["id"].is_unique
    assert (claims["n_replicates"] == 1000).all() and claims["prediction"].notna().all()
    # one check per design: the real data's training sets are the with-replacement design
    assert not any(i.startswith("1a") and "logistic" in i for i in claims["id"])
    assert len(quick_result.analysis.findings) == 2 and quick_result.analysis.caveats
    assert len(quick_result.runs) == 2 * len(V.DESIGNS) * 5 * 1000  # 2 cells x designs x sizes x R


def test_quick_verdicts(quick_result):
    """reports/variance/claims.csv (seed 0, 4000 replicates) reproduces all 18 checks. At quick
    scale (1000 replicates, sizes 1..256 by 4) a variance ratio has a CI of about +-9%, so most
    ratio checks are inconclusive against their +-10% band; none may contradict the claim."""
    verdicts = {c.id: c.verdict for c in quick_result.analysis.checks}
    assert "not reproduced" not in verdicts.values()
    assert sum(v == "reproduced" for v in verdicts.values()) >= 2


@pytest.mark.parametrize("variant", sorted(V.VARIANTS))
def test_every_broken_variant_fails_the_checks_naming_it(variant, tmp_path_factory, cache):
    result = run_study(V.study, quick=True, out=None, cache_dir=cache, variant=variant)
    named = [c for c in result.analysis.checks if c.broken_variant == variant]
    assert named or variant == "with-replacement"
    assert all(c.verdict == "not reproduced" for c in named), [(c.id, c.verdict) for c in named]
    if variant == "with-replacement":  # the without-replacement design fails its FPC check too
        assert all(
            c.verdict == "not reproduced" for c in result.analysis.checks if c.id[:2] == "1c"
        )


def test_bias_is_within_its_standard_error(quick_result):
    """The standardized bias pooled over designs and sizes is 0 within 4 standard errors."""
    bias = quick_result.analysis.tables["bias"]
    pooled = bias[bias["design"] == "all"]
    se = (pooled["ci_high"] - pooled["ci_low"]) / (2 * 1.96)
    assert (pooled["mean_standardized_bias"].abs() <= 4 * se).all()
