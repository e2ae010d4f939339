"""A user optimizer: Lion (Chen et al. 2023), written as a per-coordinate rule (so it runs on the
compiled path) and registered as "lion"."""

import numpy as np

from convstudy.optim import register_optimizer, rule

SCALE = 1.0  # the tests edit this line to check that an edit recomputes the cells


@rule(state=("exp_avg",), hyperparams=("beta1", "beta2"))
def lion_rule(g, w, t, lr, exp_avg, beta1, beta2):
    c = beta1 * exp_avg + (1.0 - beta1) * g
    return w - SCALE * lr * np.sign(c), beta2 * exp_avg + (1.0 - beta2) * g


def lion(*, beta1: float = 0.9, beta2: float = 0.99):
    return lion_rule.optimizer("lion", {"beta1": beta1, "beta2": beta2})


register_optimizer("lion", lion)
