"""Optimizers: update rules written once, per coordinate, and the registry of their factories.

- :mod:`convstudy.optim.base`: :class:`Optimizer`, :class:`Rule` (a rule and the optimizers built
  from it, on the numpy path), :func:`select`, the registry and :func:`get_optimizer`;
- :mod:`convstudy.optim.rules`: the built-in rules (SGD with momentum and Nesterov, Adagrad,
  RMSprop, Adam/AMSGrad, Rprop) and their torch-named factories.

The compiled kernels are generated from the same rules by :mod:`convstudy._fast`.
"""

from .base import (
    OPTIMIZERS,
    Optimizer,
    Rule,
    RuleInit,
    RuleUpdate,
    get_optimizer,
    register_optimizer,
    rule,
    select,
)
from .rules import (
    AdagradState,
    AdamState,
    AmsgradState,
    RmspropState,
    RpropState,
    SgdState,
    adagrad,
    adam,
    amsgrad,
    momentum,
    nesterov,
    rmsprop,
    rprop,
    sgd,
)

__all__ = [
    "Optimizer",
    "Rule",
    "RuleInit",
    "RuleUpdate",
    "rule",
    "select",
    "SgdState",
    "AdagradState",
    "RmspropState",
    "AdamState",
    "AmsgradState",
    "RpropState",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "amsgrad",
    "rprop",
    "OPTIMIZERS",
    "register_optimizer",
    "get_optimizer",
]
