"""A user problem: least squares on data of your own, registered as "noisy_line".

Built on convstudy's LeastSquares, so mu, L, w* and f* are certified and it runs on the compiled
path. Any subclass of convstudy.problems.Problem works too (on the numpy path).
"""

import numpy as np

from convstudy.problems import LeastSquares, register_problem


@register_problem("noisy_line")
def noisy_line(n_samples: int = 500, dim: int = 8, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, dim)) * np.geomspace(1.0, 0.1, dim)  # ill-conditioned
    y = X @ np.ones(dim) + noise * rng.normal(size=n_samples)
    return LeastSquares(X, y, name="noisy_line")
