"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2), written
once as a per-coordinate rule: it runs on the numpy path and, compiled, on the fast path.
Registered as "lion": ``simulate(problem, "lion", 1e-4)``, or ``"lion"`` in a study's conditions.
"""

import numpy as np

from convstudy.optim import Optimizer, register_optimizer, rule


@rule(state=("exp_avg",), hyperparams=("beta1", "beta2", "weight_decay"))
def lion_rule(g, w, t, lr, exp_avg, beta1, beta2, weight_decay):
    """c = b1 m + (1 - b1) g;  w <- w - lr (sign(c) + wd w);  m <- b2 m + (1 - b2) g."""
    c = beta1 * exp_avg + (1.0 - beta1) * g
    return w - lr * (np.sign(c) + weight_decay * w), beta2 * exp_avg + (1.0 - beta2) * g


def lion(*, beta1: float = 0.9, beta2: float = 0.99, weight_decay: float = 0.0) -> Optimizer:
    """Lion with the paper's defaults; ``weight_decay`` is decoupled (not added to g)."""
    hp = {"beta1": beta1, "beta2": beta2, "weight_decay": weight_decay}
    return lion_rule.optimizer("lion", hp)


register_optimizer("lion", lion)
