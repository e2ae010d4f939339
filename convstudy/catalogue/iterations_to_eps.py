"""Checks of the iterations_to_eps study (claims 2, 3, 4), fixed before the runs.

Claim 2 on batch GD (quadratics with log-spaced spectrum in [1, kappa], L2-logistic regression):
the rate of f - f* per step, divergence above 2/L, the optimal fixed step. Claim 3 on SGD with
eta_k = 1/(mu (k + k0)): iterations to eps ~ 1/eps, and the constant of the O(1/k) term.
Claim 4 on minibatch SGD: the variance term falls like 1/b, iterations fall but samples grow.
Predictions come from :mod:`convstudy.theory.complexity`; broken variants are declared on the
study (``studies/iterations_to_eps.py``).
"""

from __future__ import annotations

from .spec import CheckSpec

__all__ = ["SPECS", "GD_SLOPE", "DIVERGES", "CONVERGES", "OPTIMAL_STEP", "SGD_SLOPE"]
__all__ += ["SGD_CONSTANT", "MINIBATCH_VARIANCE", "MINIBATCH_ITERATIONS"]
__all__ += [
    "GD_WINDOW_CAVEAT",
    "BIAS_CAVEAT",
    "NO_SLOPE_CAVEAT",
    "SHUFFLED_CAVEAT",
]  # caveat texts the study fills with its numbers

GD_SOURCE = (
    "Polyak (1987) Sec. 1.4: on a quadratic a fixed step eta multiplies the error's "
    "eigen-component i by (1 - eta lambda_i) per step, so f - f* contracts by "
    "rho = max_i (1 - eta lambda_i)^2 asymptotically; Nesterov (2004) Thm 2.1.15: at "
    "eta = 2/(L + mu), rho = ((kappa - 1)/(kappa + 1))^2"
)
SGD_SOURCE = (
    "Bottou, Curtis & Nocedal (2018) Thm 4.7 (eta_k = beta/(gamma + k): E f - f* <= "
    "nu/(gamma + k)) and Sec. 4.2 (a b-sample minibatch divides the gradient variance by b); its "
    "nu is infinite at beta = 1/mu, so the constant used is the quadratic's exact asymptotic one "
    "(convstudy.theory.complexity.inverse_time_variance_constant)"
)
GD_TOLERANCE = (
    "the theory's number is the asymptotic rate; over the fit window the faster eigen-directions "
    "(quadratic) or the Hessian's change away from w* (logistic, whose step uses the global L) "
    "move the fitted slope by up to a few percent, while a step off by 10% or the rate of "
    "||w - w*|| in place of f - f* moves it by 10% or more"
)
GD_WINDOW = (
    "eps in [1e-8, 1e-4] on the mean curve's interpolated crossings: four decades below the "
    "start (past the fast eigen-directions' transient), above machine precision"
)

GD_SLOPE = CheckSpec(
    id="2-gd-slope-{where}-{step}",
    claim=2,
    statement="GD iterations to eps grow like ln(1/eps) at the step's contraction rate "
    "({problem}, eta={rule})",
    source=GD_SOURCE,
    quantity="iterations per e-fold of eps (slope of iterations to eps against ln(1/eps))",
    prediction="1/ln(1/rho), rho = max_i (1 - eta lambda_i)^2 over the eigenvalues of the "
    "Hessian at w* (exact spectrum; theory.complexity.gd_rate) at the design's step eta",
    tolerance=0.05,
    tolerance_reason=GD_TOLERANCE,
    window=GD_WINDOW,
    broken_variant="half_step",
    missing="not reproduced",  # the budget is 30 e-folds at the predicted rate
)
DIVERGES = CheckSpec(
    id="2-gd-diverges-above-2overL",
    claim=2,
    statement="Gradient descent with a step above 2/L diverges",
    source=GD_SOURCE,
    quantity="share of GD runs diverged at eta = 2.1/L, pooled over kappa {kappas} "
    "(exact Clopper-Pearson 95% CI)",
    prediction="1: |1 - eta L| = 1.1 > 1 on the top eigen-direction, along which a random start "
    "has a component with probability 1",
    tolerance=0.10,
    tolerance_reason="a share of R/R has exact 95% CI [0.025^(1/R), 1], inside 1 - 10% from "
    "R = 36 runs on",
    window="200 steps: the top eigen-component grows 1.21^200 ~ 4e16 times",
    broken_variant="half_step",
)
CONVERGES = CheckSpec(
    id="2-gd-converges-below-2overL",
    claim=2,
    statement="Gradient descent with a step below 2/L converges",
    source=GD_SOURCE,
    quantity="share of GD runs diverged at eta = 1.95/L (kappa = 10; exact Clopper-Pearson 95% CI)",
    prediction="0: every |1 - eta lambda_i| <= 0.95 < 1",
    bound=(0.0, 0.1),
    bound_reason="the theory's share is 0, around which a relative band is empty; 0.1 is the "
    "upper limit an exact 95% CI of 0/R runs passes from R = 36 runs on",
    window="the design's budget of 30 e-folds at the predicted rate",
    broken_variant="double_step",
)
OPTIMAL_STEP = CheckSpec(
    id="2-gd-optimal-step",
    claim=2,
    statement="The optimal fixed step for a quadratic is 2/(L+mu)",
    source=GD_SOURCE,
    quantity="min over the other steps (eta L in {steps}) of iterations per e-fold, over "
    "those of eta = 2/(L+mu), kappa = 10 (paired bootstrap)",
    prediction="the same ratio of 1/ln(1/rho(eta)) from the exact spectrum; any value in its "
    "band is > 1, i.e. 2/(L+mu) beats every swept step",
    tolerance=0.05,
    tolerance_reason="a ratio of two slopes fitted over the window of the GD slope checks, "
    "each within their few-percent window bias",
    window=GD_WINDOW,
    broken_variant="half_step",
    missing="not reproduced",
)
SGD_SLOPE = CheckSpec(
    id="3-sgd-iterations-1overeps",
    claim=3,
    statement="SGD with eta_k ~ 1/k on a strongly convex problem needs O(1/eps) iterations",
    source=SGD_SOURCE,
    quantity="log-log slope of iterations to eps against 1/eps (SGD b = 1, i.i.d. sampling, "
    "eta_k = 1/(mu (k + k0)))",
    prediction="1: E f_k - f* = c/(k + k0) + O(k^-2), so K(eps) = c/eps - k0 + O(1)",
    tolerance=0.10,
    tolerance_reason="in the window d ln K / d ln(1/eps) = 1 + k0/K <= 1.02 for the variance "
    "term alone and the (k0/k)^2 bias term adds a few percent at the window's loose end; a "
    "1/sqrt(k) step gives 2 and a constant step never reaches the window's eps",
    window="eps crossed by the mean curve at k >= 50 k0, where the bias term (k0/k)^2 is small "
    "against c/k",
    broken_variant="constant_step",
    missing="not reproduced",
)
SGD_CONSTANT = CheckSpec(
    id="3-sgd-variance-constant",
    claim=3,
    statement="With eta_k = 1/(mu (k + k0)), E f_k - f* = O(1/k) with the theory's constant",
    source=SGD_SOURCE,
    quantity="fitted c of E f_k - f* ~ c/(k + k0) + B (k0/(k + k0))^2 (SGD b = 1, i.i.d.; "
    "bootstrap over replicates)",
    prediction="c_1 = (a^2/2) sum_i lambda_i sigma_i^2 / (2 a lambda_i - 1), a = 1/mu, lambda_i "
    "the Hessian's eigenvalues and sigma_i^2 the per-sample gradient variance at w* along "
    "eigenvector i (exact asymptotic variance of the 1/k recursion)",
    tolerance=0.10,
    tolerance_reason="the recursion reaches its asymptotic constant up to O(k0/k) terms, and "
    "the two-term fit can trade c against B by a few percent; a constant step leaves f at a "
    "noise floor, which c/(k + k0) fits only with a c many times larger",
    window="records at k >= 5 k0 to the end of the run",
    broken_variant="constant_step",
)
MINIBATCH_VARIANCE = CheckSpec(
    id="4-minibatch-variance-1overbk",
    claim=4,
    statement="The minibatch variance term scales like 1/(b k)",
    source=SGD_SOURCE,
    quantity="log-log slope against b of the fitted variance coefficient c_b of "
    "E f_k - f* ~ c_b/(k + k0_b) + B (k0_b/(k + k0_b))^2 (b in {b}: those whose variance term "
    "is >= half of f at the end of the run)",
    prediction="-1: a mean of b i.i.d. sample gradients has covariance Sigma/b, so c_b = c_1/b",
    tolerance=0.10,
    tolerance_reason="each c_b is fitted jointly with the bias coefficient B, which can trade a "
    "few percent of c_b where the bias term still holds up to half of f (large b); a minibatch "
    "whose gradient is one sample's gives slope 0",
    window="records at k >= 5 k0_b to the end of the run",
    broken_variant="no_variance_reduction",
)
MINIBATCH_ITERATIONS = CheckSpec(
    id="4-minibatch-iterations-fall",
    claim=4,
    statement="Larger minibatches need fewer iterations but more samples to reach eps",
    source=SGD_SOURCE,
    quantity="log-log slope of iterations to eps = 0.01 against b (b in {b}); the samples' "
    "slope is 1 + this one",
    prediction="between -1 (the variance term c_1/(b k) alone) and 0: the bias term "
    "B (k0_b/k)^2 does not shrink with b",
    bound=(-1.0, 0.0),
    bound_reason="the iterations to eps of c_1/(b k) + B (k0_b/k)^2 depend on the start through "
    "B, so the theory fixes no number, only that iterations fall (< 0) more slowly than 1/b "
    "(> -1, i.e. samples grow)",
    window="eps = 0.01, reached by every b within its budget K_1/b + 50 k0_b",
    broken_variant="no_variance_reduction",
    missing="not reproduced",  # a b that misses eps within K_1/b + 50 k0_b did not speed up
)

GD_WINDOW_CAVEAT = (
    "GD slopes are fitted over eps in [1e-8, 1e-4], where faster eigen-directions (quadratic) "
    "and the Hessian's change away from w* (logistic, stepped with the global L) still bend the "
    "curve; the asymptotic rate is 1/ln(1/rho)."
)
BIAS_CAVEAT = (
    "Iterations fall more slowly than 1/b and samples grow with b: the bias term B (k0_b/k)^2 "
    "does not shrink with b (at b={:g} it holds {:.0%} of f at the end of the run)."
)
NO_SLOPE_CAVEAT = (
    "{}: no 1/eps slope: fewer than 3 eps are crossed past 50 k0 = {:.0f} iterations within its "
    "{}-step budget (the run ends where the (k0/k)^2 bias term still matters)."
)
SHUFFLED_CAVEAT = (
    "{}: iterations grow like (1/eps)^{:.3g}, faster than 1/k: sampling without replacement is "
    "outside the i.i.d. theory of the SGD checks (not checked)."
)
SPECS = (
    GD_SLOPE,
    DIVERGES,
    CONVERGES,
    OPTIMAL_STEP,
    SGD_SLOPE,
    SGD_CONSTANT,
    MINIBATCH_VARIANCE,
    MINIBATCH_ITERATIONS,
)
