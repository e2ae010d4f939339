"""The engine's own tests, on the numpy path (the reference): rates, determinism, divergence,
argument checking and the record grid.

Statistical checks use fixed seeds and compare measured numbers (a fitted rate or slope and its
bootstrap CI) with the theory's value; the numbers are produced by the runs, not written here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from convstudy import simulate
from convstudy.engine import record_steps, replicate_generators
from convstudy.problems import DoubleWell, Problem, Quadratic
from convstudy.schedules import inverse_time
from convstudy.stats.curves import hitting_times
from convstudy.stats.fits import fit_linear_rate, fit_loglog_slope, ols_slope

NUMPY = {"engine": "numpy"}


# ---- (a) batch gradient descent converges linearly ----------------------------------------------
@pytest.fixture(scope="module")
def gradient_descent():
    """GD with step 1/L on a mu-strongly convex quadratic, 200 random starts, every step recorded.

    For f(w) = f* + (w - w*)' H (w - w*) / 2 and w_{k+1} = w_k - H (w_k - w*) / L, the error
    along the eigenvector of eigenvalue lambda is multiplied by (1 - lambda/L) per step, so
    f - f* = sum_i lambda_i (1 - lambda_i/L)^(2k) e_i^2 / 2: once the slowest direction
    (lambda = mu) dominates, f - f* contracts by exactly (1 - mu/L)^2 per step (Nesterov 2004,
    Thm 2.1.15 bounds it by that factor). GD is deterministic: replicates differ by w0 only.
    """
    problem = Quadratic(dim=10, condition_number=10.0, mu=1.0, noise=1.0, n_samples=200, seed=0)
    frame = simulate(
        problem, "sgd", 1.0 / problem.L, n_steps=150, sampler="full",
        batch_size=problem.n_samples, n_replicates=200, seed=3, record="all", w0="random",
        **NUMPY,
    )  # fmt: skip
    return problem, frame


def test_gradient_descent_contracts_f_minus_fstar_by_one_minus_mu_over_L_squared(
    gradient_descent,
):
    problem, frame = gradient_descent
    # window: after the faster directions have died out (their weight relative to the slowest
    # falls like ((1 - lambda_2/L) / (1 - mu/L))^(2k), < 0.01 at k = 40 here) and before
    # f - f* reaches rounding (about 1e-14 at k = 150)
    fit = fit_linear_rate(frame, window=(40, 120), n_boot=300, seed=0)
    expected_log_rate = 2 * np.log1p(-problem.mu / problem.L)  # per step, on log(f - f*)
    assert fit.estimate.n == 200 and fit.details["n_diverged"] == 0
    assert abs(fit.estimate.value / expected_log_rate - 1) < 0.10
    assert fit.estimate.ci_low < fit.estimate.value < fit.estimate.ci_high
    assert abs(fit.details["rate"].value / (1 - problem.mu / problem.L) ** 2 - 1) < 0.10


def test_gradient_descent_iterations_to_eps_grow_like_log_one_over_eps(gradient_descent):
    problem, frame = gradient_descent
    eps = np.logspace(-4, -10, 7)
    hits = hitting_times(frame, eps)
    assert not hits["censored"].any()
    mean_hit = hits.groupby("eps")["hit"].mean()
    log_inv_eps = np.log(1 / mean_hit.index.to_numpy())
    slope = float(ols_slope(log_inv_eps, mean_hit.to_numpy()))
    residual = mean_hit.to_numpy() - np.polyval(
        np.polyfit(log_inv_eps, mean_hit.to_numpy(), 1), log_inv_eps
    )
    # k(eps) = log(1/eps) / (-log rate) + const: linear in log(1/eps) with that slope
    expected = -1 / (2 * np.log1p(-problem.mu / problem.L))
    assert abs(slope / expected - 1) < 0.10
    assert np.max(np.abs(residual)) < 1.0  # straight to within one iteration


# ---- (b) SGD with eta_k = 1/(mu (k + k0)) converges like 1/k ---------------------------------
def test_sgd_with_inverse_time_steps_converges_like_one_over_k():
    """Bottou, Curtis & Nocedal (2018) Thm 4.7: E[f(w_k)] - f* = O(1/k) with eta_k ~ 1/k and
    i.i.d. sampling. Started at w* (no bias term), E[f] - f* ~ sigma^2 k / (2 mu (k + k0)^2):
    its log-log slope is -1 + O(k0/k)."""
    k0 = 20  # eta_0 = 1/(mu k0) = 0.05, below 1 / max ||x_i||^2 for stability
    problem = Quadratic(dim=5, condition_number=4.0, mu=1.0, noise=1.0, n_samples=1000, seed=1)
    frame = simulate(
        problem, "sgd", inverse_time(1 / (problem.mu * k0), k0), n_steps=20_000,
        sampler="replacement", n_replicates=200, seed=4, w0=problem.w_star, **NUMPY,
    )  # fmt: skip
    fit = fit_loglog_slope(frame, window=(20 * k0, 20_000), n_boot=300, seed=0)
    assert fit.estimate.n == 200 and fit.details["n_diverged"] == 0
    assert -1.15 <= fit.estimate.ci_low <= fit.estimate.value <= fit.estimate.ci_high <= -0.85


# ---- (c) a replicate's trajectory does not depend on the others ---------------------------------
class RowwiseQuadratic(Problem):
    """f(w) = 1/N sum_i ||w - c_i||^2 / 2, every method computed row by row (no BLAS product
    whose summation order could depend on how many replicates are evaluated together)."""

    name = "rowwise_quadratic"

    def __init__(self):
        self.n_samples, self.dim = 30, 3
        self.c = np.random.default_rng(0).standard_normal((30, 3))
        self.w_star = self.c.mean(axis=0)
        self.f_star = float(self.loss(self.w_star[None])[0])
        self.mu = self.L = 1.0

    def sample_losses(self, w, idx):
        diff = w[:, None, :] - self.c[idx]
        return 0.5 * np.einsum("rbd,rbd->rb", diff, diff)

    def sample_grads(self, w, idx):
        return w[:, None, :] - self.c[idx]


@pytest.mark.parametrize("sampler", ["reshuffle", "replacement", "full"])
def test_replicate_alone_among_many_and_chunked_is_identical(sampler):
    problem = RowwiseQuadratic()
    b = problem.n_samples if sampler == "full" else 2
    kw = dict(
        n_steps=300, sampler=sampler, batch_size=b, seed=7, w0="random", record_iterates=True,
        **NUMPY,
    )  # fmt: skip
    together = simulate(problem, "momentum", 0.05, n_replicates=9, **kw)
    chunks = pd.concat(
        [simulate(problem, "momentum", 0.05, replicates=ids, **kw) for ids in ([4, 0], [8, 1, 7])]
        + [simulate(problem, "momentum", 0.05, replicates=[r], **kw) for r in (2, 3, 5, 6)]
    )
    chunks = chunks.sort_values(["replicate", "step"], ignore_index=True)
    pd.testing.assert_frame_equal(chunks, together, check_exact=True)


def test_built_in_problem_iterates_do_not_depend_on_the_other_replicates():
    problem = Quadratic(dim=4, n_samples=50, seed=2)
    kw = dict(n_steps=200, batch_size=3, seed=1, w0="random", record_iterates=True, **NUMPY)
    together = simulate(problem, "adam", 0.01, n_replicates=6, **kw)
    alone = simulate(problem, "adam", 0.01, replicates=[4], **kw)
    cols = [f"w_{j}" for j in range(problem.dim)]
    np.testing.assert_array_equal(
        alone[cols].to_numpy(), together[together.replicate == 4][cols].to_numpy()
    )


def test_replicate_streams_are_the_spawned_children_of_the_seed():
    sampling, init = replicate_generators(11, [0, 3])
    for r, (s, i) in zip([0, 3], zip(sampling, init)):
        child_s, child_i = np.random.SeedSequence(11, spawn_key=(r,)).spawn(2)
        assert s.bit_generator.state == np.random.PCG64(child_s).state
        assert i.bit_generator.state == np.random.PCG64(child_i).state


# ---- (d) a diverging replicate is data, the others finish ---------------------------------------
def test_a_diverging_replicate_is_marked_and_the_others_finish():
    """Gradient descent with step 0.1 on the double well f(w) = (w^2 - 1)^2 + 0.3 w: from
    w0 = 1.5 it settles in a well (f'' < 20 there, so 0.1 f'' < 2); from w0 = 30 the cubic
    gradient 4 w^3 overshoots further each step and overflows."""
    problem = DoubleWell(n_samples=50, dim=1, tilt=0.3, noise=0.5, seed=0)
    starts = np.array([[1.5], [30.0], [-0.5], [-40.0], [0.2]])
    frame = simulate(
        problem, "sgd", 0.1, n_steps=200, sampler="full", batch_size=problem.n_samples,
        n_replicates=5, w0=starts, record="all", record_iterates=True, **NUMPY,
    )  # fmt: skip
    last = frame[frame.step == 200].set_index("replicate")
    assert last["diverged"].tolist() == [False, True, False, True, False]
    bad = frame[frame.replicate.isin([1, 3]) & frame.diverged]
    assert len(bad) > 150  # diverged within a few steps and stays diverged
    assert bad[["loss", "subopt", "grad_norm_sq", "w_0"]].isna().all().all()
    # once diverged, always diverged
    for _, rows in frame.groupby("replicate"):
        flags = rows.sort_values("step")["diverged"].to_numpy()
        assert np.all(np.diff(flags.astype(int)) >= 0)
    good = last.loc[[0, 2, 4]]
    assert np.isfinite(good[["loss", "grad_norm_sq", "w_0"]].to_numpy()).all()
    assert (good["grad_norm_sq"] < 1e-12).all()  # converged to stationary points


def test_divergence_bound_marks_a_replicate_that_grows_too_far():
    problem = Quadratic(dim=3, n_samples=40, seed=0)
    starts = np.stack([problem.w_star + 1e-3, problem.w_star + 10.0])
    frame = simulate(
        problem, "sgd", 2.5 / problem.L, n_steps=60, sampler="full",
        batch_size=problem.n_samples, n_replicates=2, w0=starts, divergence_bound=1e4,
        record="all", **NUMPY,
    )  # fmt: skip
    first = frame[frame.diverged].groupby("replicate")["step"].min()
    # f - f* grows by (1.5)^2 per step along the top direction: the far start crosses 1e4 first
    assert first.loc[1] < first.loc[0]
    at = frame[(frame.step == first.loc[1] - 1) & (frame.replicate == 1)]
    assert float(at["subopt"].iloc[0]) <= 1e4


# ---- (e) bad arguments name themselves ----------------------------------------------------------
SMALL = Quadratic(dim=3, n_samples=20, seed=0)
BAD_CALLS = {
    "zero step": (dict(schedule=0.0), ValueError, "schedule"),
    "negative step": (dict(schedule=-0.1), ValueError, "schedule"),
    "schedule name": (dict(schedule="constant"), TypeError, "schedule"),
    "batch 0": (dict(batch_size=0), ValueError, "batch_size"),
    "batch > N": (dict(batch_size=21), ValueError, "batch_size"),
    "full with b != N": (dict(sampler="full", batch_size=5), ValueError, "batch_size"),
    "unknown optimizer": (dict(optimizer="sgdd"), ValueError, "optimizer"),
    "optimizer type": (dict(optimizer=3), TypeError, "optimizer"),
    "unknown sampler": (dict(sampler="shuffle"), ValueError, "sampler"),
    "w0 shape": (dict(w0=np.zeros(4)), ValueError, "w0"),
    "w0 replicates": (dict(w0=np.zeros((3, 3))), ValueError, "w0"),
    "w0 non-finite": (dict(w0=np.array([0.0, np.nan, 1.0])), ValueError, "w0"),
    "w0 name": (dict(w0="randm"), ValueError, "w0"),
    "negative steps": (dict(n_steps=-1), ValueError, "n_steps"),
    "no replicates": (dict(n_replicates=0), ValueError, "n_replicates"),
    "engine": (dict(engine="cuda"), ValueError, "engine"),
    "record": (dict(record="every"), ValueError, "record"),
    "record past end": (dict(record=[0, 11]), ValueError, "record"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_argument_raises_naming_it(case):
    override, error, name = BAD_CALLS[case]
    kwargs = dict(optimizer="sgd", schedule=0.1, n_steps=10, n_replicates=2, **NUMPY)
    kwargs.update(override)
    with pytest.raises(error) as info:
        simulate(SMALL, kwargs.pop("optimizer"), kwargs.pop("schedule"), **kwargs)
    assert f"'{name}'" in str(info.value)


# ---- (f) the record grid ------------------------------------------------------------------------
def test_log_grid_includes_zero_and_the_last_step_and_all_records_every_step():
    grid = record_steps(10_000, "log", n_records=30)
    assert grid[0] == 0 and grid[-1] == 10_000 and np.all(np.diff(grid) > 0)
    assert len(grid) <= 31
    frame = simulate(SMALL, "sgd", 0.05, n_steps=37, batch_size=4, n_replicates=3, **NUMPY)
    assert set(frame.step) == set(record_steps(37)) and {0, 37} <= set(frame.step)
    every = simulate(
        SMALL, "sgd", 0.05, n_steps=37, batch_size=4, n_replicates=3, record="all", **NUMPY
    )
    assert every.groupby("replicate")["step"].apply(list).tolist() == [list(range(38))] * 3
    assert (every["samples"] == every["step"] * 4).all()


def test_frame_has_one_row_per_replicate_and_recorded_step():
    """Recording never grows past the recording grid, however many steps are run."""
    frame = simulate(SMALL, "sgd", 0.01, n_steps=20_000, n_replicates=4, n_records=25, **NUMPY)
    assert len(frame) == 4 * len(record_steps(20_000, "log", 25))
    assert list(frame.columns) == [
        "replicate", "step", "samples", "loss", "subopt", "grad_norm_sq", "diverged"
    ]  # fmt: skip
