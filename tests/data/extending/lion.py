"""A user optimizer: Lion (Chen et al. 2023), registered as "lion"."""

from typing import NamedTuple

import numpy as np

from convstudy.optim import Optimizer, register_optimizer

SCALE = 1.0  # the tests edit this line to check that an edit recomputes the cells


class LionState(NamedTuple):
    count: np.ndarray
    exp_avg: np.ndarray


def lion(*, beta1: float = 0.9, beta2: float = 0.99) -> Optimizer:
    def init(w):
        return LionState(np.zeros(w.shape[0], dtype=np.int64), np.zeros_like(w))

    def update(g, w, state, lr):
        c = beta1 * state.exp_avg + (1 - beta1) * g
        m = beta2 * state.exp_avg + (1 - beta2) * g
        return w - SCALE * lr * np.sign(c), LionState(state.count + 1, m)

    return Optimizer("lion", {"beta1": beta1, "beta2": beta2}, init, update)


register_optimizer("lion", lion)
