"""A user problem: least squares on a noisy line of its own, registered as "noisy_line"."""

import numpy as np

from convstudy.problems import LeastSquares, register_problem


def noisy_line(n_samples: int = 200, dim: int = 4, seed: int = 0) -> LeastSquares:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, dim))
    y = X @ np.linspace(1.0, -1.0, dim) + 0.1 * rng.normal(size=n_samples)
    return LeastSquares(X, y, name="noisy_line")


register_problem("noisy_line", noisy_line)
