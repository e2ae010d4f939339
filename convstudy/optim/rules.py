r"""The built-in update rules, each written once (torch.optim conventions), and their factories.

Each rule is a :class:`~convstudy.optim.base.Rule`: a per-coordinate function that the numpy
path evaluates on whole (R, d) arrays and the compiled path inlines in a generated kernel (see
:mod:`convstudy.optim.base`). Each factory validates its keyword-only arguments (torch's names
and defaults) and returns ``RULE.optimizer(name, hyperparams)``; ``hyperparams`` are plain
Python floats and bools, with tuple arguments split into scalars (``betas`` -> ``beta1``,
``beta2``; ``etas`` -> ``eta_minus``, ``eta_plus``; ``step_sizes`` -> ``step_size_min``,
``step_size_max``) so that they fit in one table column each, and
``get_optimizer(opt.name, **opt.hyperparams)`` rebuilds the same optimizer.

**Learning rate.** ``lr`` is not a factory argument: it is the value of the learning-rate
schedule at the current step and is passed to every ``update`` call (:math:`\gamma_t` below).

**Step counting.** The first update of a replicate has :math:`t = 1` (torch's Adam convention)
and leaves ``count == 1``. Bias corrections, Adagrad's ``lr_decay``, SGD's "first momentum step"
and Rprop's step-size initialisation read each replicate's own :math:`t`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._validation import check_scalar
from .base import Optimizer, Rule, register_optimizer, select

__all__ = [
    "SgdState",
    "AdagradState",
    "RmspropState",
    "AdamState",
    "AmsgradState",
    "RpropState",
    "SGD",
    "ADAGRAD",
    "RMSPROP",
    "ADAM",
    "AMSGRAD",
    "RPROP",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "amsgrad",
    "rprop",
]

_INF = float("inf")


class SgdState(NamedTuple):
    """State of :func:`sgd`, :func:`momentum` and :func:`nesterov`.

    ``momentum_buffer`` stays zero when ``momentum == 0`` (torch keeps no buffer then).
    """

    count: np.ndarray  # (R,) int64
    momentum_buffer: np.ndarray  # (R, d)


class AdagradState(NamedTuple):
    """State of :func:`adagrad`: the running sum of squared gradients."""

    count: np.ndarray  # (R,) int64
    sum: np.ndarray  # (R, d)


class RmspropState(NamedTuple):
    """State of :func:`rmsprop`.

    ``grad_avg`` stays zero unless ``centered``; ``momentum_buffer`` stays zero unless
    ``momentum > 0`` (torch allocates them only in those cases).
    """

    count: np.ndarray  # (R,) int64
    square_avg: np.ndarray  # (R, d)
    grad_avg: np.ndarray  # (R, d)
    momentum_buffer: np.ndarray  # (R, d)


class AdamState(NamedTuple):
    """State of :func:`adam` (torch keeps ``max_exp_avg_sq`` only for AMSGrad, as here)."""

    count: np.ndarray  # (R,) int64
    exp_avg: np.ndarray  # (R, d)
    exp_avg_sq: np.ndarray  # (R, d)


class AmsgradState(NamedTuple):
    """State of :func:`amsgrad` and of ``adam(amsgrad=True)``."""

    count: np.ndarray  # (R,) int64
    exp_avg: np.ndarray  # (R, d)
    exp_avg_sq: np.ndarray  # (R, d)
    max_exp_avg_sq: np.ndarray  # (R, d)


class RpropState(NamedTuple):
    """State of :func:`rprop`.

    ``step_size`` is a placeholder (zeros) until the first update of a replicate, which sets it
    to that update's ``lr``.
    """

    count: np.ndarray  # (R,) int64
    prev: np.ndarray  # (R, d)
    step_size: np.ndarray  # (R, d)


# ---- validation helpers ------------------------------------------------------------------------
def _real(value: Any, name: str, owner: str, low: float, high: float, closed: str) -> float:
    return check_scalar(value, name, owner, kind=float, low=low, high=high, closed=closed)


def _nonneg(value: Any, name: str, owner: str) -> float:
    return _real(value, name, owner, 0.0, _INF, "left")


def _positive(value: Any, name: str, owner: str) -> float:
    return _real(value, name, owner, 0.0, _INF, "neither")


def _flag(value: Any, name: str, owner: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"The {name!r} parameter of {owner} must be a bool (True or False). "
            f"Got {value!r} instead."
        )
    return bool(value)


def _pair(value: Any, name: str, owner: str) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)):
        raise TypeError(
            f"The {name!r} parameter of {owner} must be a pair (tuple) of floats. "
            f"Got {value!r} instead."
        )
    if len(value) != 2:
        raise ValueError(
            f"The {name!r} parameter of {owner} must be a pair (tuple) of floats. "
            f"Got {len(value)} values instead."
        )
    return value[0], value[1]


def _betas(betas: Any, owner: str) -> tuple[float, float]:
    b1, b2 = _pair(betas, "betas", owner)
    b1 = _real(b1, "betas[0]", owner, 0.0, 1.0, "left")
    b2 = _real(b2, "betas[1]", owner, 0.0, 1.0, "left")
    return b1, b2


# ---- SGD, heavy ball, Nesterov -----------------------------------------------------------------
def _sgd_update(g, w, t, lr, momentum_buffer, momentum, dampening, nesterov, weight_decay):
    """One coordinate of :func:`sgd` (the math is in its docstring)."""
    if weight_decay != 0.0:
        g = g + weight_decay * w
    if momentum == 0.0:
        return w - lr * g, momentum_buffer
    # torch: the buffer starts at g itself (no dampening on the first step).
    buf = select(t == 1, g, momentum * momentum_buffer + (1.0 - dampening) * g)
    direction = g + momentum * buf if nesterov else buf
    return w - lr * direction, buf


SGD = Rule(
    _sgd_update,
    state=("momentum_buffer",),
    hyperparams=("momentum", "dampening", "nesterov", "weight_decay"),
    state_type=SgdState,
    name="sgd",
)


def sgd(
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum, as ``torch.optim.SGD``.

    With :math:`g_t \leftarrow g_t + \lambda w_{t-1}` when ``weight_decay`` is nonzero and
    :math:`\gamma_t` the step's learning rate:

    .. math::

        b_1 = g_1, \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \quad (t > 1),

        d_t = g_t + \mu b_t \ \text{(Nesterov)} \quad\text{or}\quad d_t = b_t,
        \qquad w_t = w_{t-1} - \gamma_t d_t,

    and simply :math:`w_t = w_{t-1} - \gamma_t g_t` when :math:`\mu = 0`.

    Args:
      momentum: :math:`\mu \ge 0` (default 0; torch sets no upper bound).
      dampening: :math:`\tau \in [0, 1]` (default 0), not applied on the first step.
      nesterov: use the Nesterov direction (default False); requires ``momentum > 0`` and
        ``dampening == 0``, as torch.
      weight_decay: L2 coefficient :math:`\lambda \ge 0` (default 0).

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", USSR Comput.
      Math. and Math. Phys. 4(5), 1964 (heavy ball). Nesterov, "A method for solving the convex
      programming problem with convergence rate O(1/k^2)", Soviet Math. Dokl. 27, 1983.
      Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in
      deep learning", ICML 2013.

    Where implementations disagree:
      torch (and this module) keep :math:`\gamma_t` outside the buffer and start it at
      :math:`b_1 = g_1`; Polyak and Sutskever et al. write
      :math:`v_t = \mu v_{t-1} - \gamma_t g_t`, which is the same trajectory for a constant
      learning rate but not under a schedule. optax's ``trace`` starts the buffer at zero, which
      agrees with torch except that torch skips dampening on the first step. torch's Nesterov
      direction :math:`g_t + \mu b_t` is the "look-ahead free" rewriting of Sutskever et al.'s
      update (gradient at the current iterate, not at :math:`w + \mu v`). The checks on
      ``dampening`` here are ours: torch does not validate it.
    """
    owner = "sgd"
    mu = _nonneg(momentum, "momentum", owner)
    tau = _real(dampening, "dampening", owner, 0.0, 1.0, "both")
    use_nesterov = _flag(nesterov, "nesterov", owner)
    wd = _nonneg(weight_decay, "weight_decay", owner)
    if use_nesterov and (mu <= 0.0 or tau != 0.0):
        raise ValueError(
            "The 'nesterov' parameter of sgd requires momentum > 0 and dampening == 0. "
            f"Got nesterov=True with momentum={mu!r} and dampening={tau!r} instead."
        )
    hp = {"momentum": mu, "dampening": tau, "nesterov": use_nesterov, "weight_decay": wd}
    return SGD.optimizer("sgd", hp)


def momentum(
    *, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0
) -> Optimizer:
    r"""Heavy-ball momentum (Polyak 1964): :func:`sgd` with ``momentum=0.9``, named "momentum".

    .. math::

        b_1 = g_1, \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t, \qquad
        w_t = w_{t-1} - \gamma_t b_t.

    Args:
      momentum: :math:`\mu \ge 0` (default 0.9, the customary value; torch's SGD default is 0).
      dampening: :math:`\tau \in [0, 1]` (default 0).
      weight_decay: L2 coefficient :math:`\lambda \ge 0` (default 0).

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.

    Where implementations disagree: see :func:`sgd` (learning rate outside the buffer, buffer
    started at :math:`g_1`). For a constant :math:`\gamma` this is Polyak's
    :math:`w_{t+1} = w_t - \gamma g_t + \mu (w_t - w_{t-1})`.
    """
    owner = "momentum"
    mu = _nonneg(momentum, "momentum", owner)
    tau = _real(dampening, "dampening", owner, 0.0, 1.0, "both")
    wd = _nonneg(weight_decay, "weight_decay", owner)
    hp = {"momentum": mu, "dampening": tau, "weight_decay": wd}
    return SGD.optimizer("momentum", hp, fixed={"nesterov": False})


def nesterov(*, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    r"""Nesterov momentum in torch's form: :func:`sgd` with ``nesterov=True``, named "nesterov".

    .. math::

        b_1 = g_1, \qquad b_t = \mu b_{t-1} + g_t, \qquad
        w_t = w_{t-1} - \gamma_t (g_t + \mu b_t).

    Args:
      momentum: :math:`\mu > 0` (default 0.9); torch refuses Nesterov without momentum.
      weight_decay: L2 coefficient :math:`\lambda \ge 0` (default 0).

    References:
      Nesterov, Soviet Math. Dokl. 27, 1983; Sutskever, Martens, Dahl & Hinton, ICML 2013.

    Where implementations disagree: torch evaluates the gradient at the current iterate and
    looks ahead through :math:`g_t + \mu b_t` (a reparameterisation of Sutskever et al.'s
    :math:`v_t = \mu v_{t-1} - \gamma \nabla f(w_{t-1} + \mu v_{t-1})`); optax's
    ``trace(nesterov=True)`` uses the same direction with a buffer started at zero, which gives
    the same iterates when there is no dampening. Dampening is always 0 here (torch requires it).
    """
    owner = "nesterov"
    mu = _positive(momentum, "momentum", owner)
    wd = _nonneg(weight_decay, "weight_decay", owner)
    hp = {"momentum": mu, "weight_decay": wd}
    return SGD.optimizer("nesterov", hp, fixed={"dampening": 0.0, "nesterov": True})


# ---- Adagrad -----------------------------------------------------------------------------------
def _adagrad_factors(t, lr, lr_decay):
    """Adagrad's decayed learning rate at step t."""
    return (lr / (1.0 + (t - 1) * lr_decay),)


def _adagrad_update(g, w, t, clr, sum, eps, weight_decay):
    """One coordinate of :func:`adagrad`; ``clr`` is the decayed learning rate and ``sum``
    the accumulator (torch's state name)."""
    if weight_decay != 0.0:
        g = g + weight_decay * w
    s = sum + g * g
    return w - clr * g / (np.sqrt(s) + eps), s


ADAGRAD = Rule(
    _adagrad_update,
    state=("sum",),
    hyperparams=("lr_decay", "initial_accumulator_value", "eps", "weight_decay"),
    step_factors=_adagrad_factors,
    initial={"sum": "initial_accumulator_value"},
    state_type=AdagradState,
    name="adagrad",
)


def adagrad(
    *,
    lr_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    weight_decay: float = 0.0,
) -> Optimizer:
    r"""Adagrad, as ``torch.optim.Adagrad``.

    With :math:`g_t \leftarrow g_t + \lambda w_{t-1}` when ``weight_decay`` is nonzero:

    .. math::

        \tilde\gamma_t = \frac{\gamma_t}{1 + (t - 1)\,\eta}, \qquad
        S_t = S_{t-1} + g_t^2 \quad (S_0 = s_0), \qquad
        w_t = w_{t-1} - \tilde\gamma_t \frac{g_t}{\sqrt{S_t} + \epsilon}.

    Args:
      lr_decay: :math:`\eta \ge 0` (default 0). It multiplies the schedule's learning rate, so a
        decaying schedule and ``lr_decay > 0`` compound (as in torch with an LR scheduler).
      initial_accumulator_value: :math:`s_0 \ge 0` (default 0).
      eps: :math:`\epsilon > 0` (default 1e-10), added after the square root.
      weight_decay: L2 coefficient :math:`\lambda \ge 0` (default 0).

    References:
      Duchi, Hazan & Singer, "Adaptive subgradient methods for online learning and stochastic
      optimization", JMLR 12, 2011.

    Where implementations disagree:
      optax's ``adagrad`` defaults to ``initial_accumulator_value=0.1`` and ``eps=1e-7`` and puts
      :math:`\epsilon` inside the square root, :math:`g / \sqrt{S + \epsilon}` (and 0 where
      :math:`S = 0`); Keras also starts the accumulator at 0.1. torch accepts ``eps = 0``; we
      require ``eps > 0``.
    """
    owner = "adagrad"
    eta = _nonneg(lr_decay, "lr_decay", owner)
    s0 = _nonneg(initial_accumulator_value, "initial_accumulator_value", owner)
    eps = _positive(eps, "eps", owner)
    wd = _nonneg(weight_decay, "weight_decay", owner)
    hp = {"lr_decay": eta, "initial_accumulator_value": s0, "eps": eps, "weight_decay": wd}
    return ADAGRAD.optimizer("adagrad", hp)


# ---- RMSprop -----------------------------------------------------------------------------------
def _rmsprop_update(
    g, w, t, lr, square_avg, grad_avg, momentum_buffer, alpha, eps, momentum, centered,
    weight_decay,
):  # fmt: skip
    """One coordinate of :func:`rmsprop` (the math is in its docstring)."""
    if weight_decay != 0.0:
        g = g + weight_decay * w
    v = alpha * square_avg + (1.0 - alpha) * (g * g)
    gbar = grad_avg
    if centered:
        gbar = alpha * gbar + (1.0 - alpha) * g
        denom = np.sqrt(np.maximum(v - gbar * gbar, 0.0)) + eps
    else:
        denom = np.sqrt(v) + eps
    if momentum > 0.0:
        buf = momentum * momentum_buffer + g / denom
        return w - lr * buf, v, gbar, buf
    return w - lr * (g / denom), v, gbar, momentum_buffer


RMSPROP = Rule(
    _rmsprop_update,
    state=("square_avg", "grad_avg", "momentum_buffer"),
    hyperparams=("alpha", "eps", "momentum", "centered", "weight_decay"),
    state_type=RmspropState,
    name="rmsprop",
)


def rmsprop(
    *,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    r"""RMSprop, as ``torch.optim.RMSprop`` (no bias correction).

    With :math:`g_t \leftarrow g_t + \lambda w_{t-1}` when ``weight_decay`` is nonzero and all
    averages starting at 0:

    .. math::

        v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \qquad
        \bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t \ \text{(centered only)},

        D_t = \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)} \quad\text{or}\quad
        D_t = \sqrt{v_t} + \epsilon,

        b_t = \mu b_{t-1} + g_t / D_t, \quad w_t = w_{t-1} - \gamma_t b_t
        \quad\text{if } \mu > 0, \quad\text{else}\quad w_t = w_{t-1} - \gamma_t g_t / D_t.

    Args:
      alpha: smoothing constant :math:`\alpha \in [0, 1)` (default 0.99). torch only checks
        :math:`\alpha \ge 0`; :math:`\alpha \ge 1` never updates (or breaks) :math:`v`.
      eps: :math:`\epsilon > 0` (default 1e-8), added after the square root. torch accepts 0.
      momentum: :math:`\mu \ge 0` (default 0). The buffer starts at 0 (unlike SGD's).
      centered: divide by an estimate of the standard deviation instead of the root mean
        square (Graves 2013) (default False).
      weight_decay: L2 coefficient :math:`\lambda \ge 0` (default 0).

    References:
      Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine
      Learning, 2012. Graves, "Generating sequences with recurrent neural networks",
      arXiv:1308.0850, 2013 (centered variant).

    Where implementations disagree:
      torch adds :math:`\epsilon` after the square root; TensorFlow's ``RMSProp`` and optax's
      ``rmsprop`` add it inside, :math:`g / \sqrt{v + \epsilon}`. optax and Keras default to
      :math:`\alpha = 0.9`. Deviation from torch: in the centered variant, a variance estimate
      :math:`v_t - \bar g_t^2` made slightly negative by rounding (possible after many nearly
      constant gradients, although it is :math:`\ge 0` in exact arithmetic) is clipped at 0
      here, where torch would return NaN and our engine would wrongly flag a divergence.
    """
    owner = "rmsprop"
    a = _real(alpha, "alpha", owner, 0.0, 1.0, "left")
    eps = _positive(eps, "eps", owner)
    mu = _nonneg(momentum, "momentum", owner)
    is_centered = _flag(centered, "centered", owner)
    wd = _nonneg(weight_decay, "weight_decay", owner)
    hp = {"alpha": a, "eps": eps, "momentum": mu, "centered": is_centered, "weight_decay": wd}
    return RMSPROP.optimizer("rmsprop", hp)


# ---- Adam and AMSGrad --------------------------------------------------------------------------
def _adam_factors(t, lr, beta1, beta2, bias_correction):
    """(step, inv_c2): lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t), or (lr, 1) without
    correction. The second is a reciprocal so that each coordinate multiplies by it where
    torch divides by sqrt(1 - beta2^t): one division per coordinate fewer, a result within
    an ulp of torch's."""
    if bias_correction:
        return lr / (1.0 - np.power(beta1, t)), 1.0 / np.sqrt(1.0 - np.power(beta2, t))
    return lr, 1.0


def _adam_update(g, w, t, step, inv_c2, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay):
    """One coordinate of :func:`adam`; ``step`` and ``inv_c2`` are the bias corrections
    (multiplying by ``inv_c2 = 1`` without correction is exact)."""
    if weight_decay != 0.0:
        g = g + weight_decay * w
    m = beta1 * exp_avg + (1.0 - beta1) * g
    v = beta2 * exp_avg_sq + (1.0 - beta2) * (g * g)
    return w - step * (m / (np.sqrt(v) * inv_c2 + eps)), m, v


def _amsgrad_update(
    g, w, t, step, inv_c2, exp_avg, exp_avg_sq, max_exp_avg_sq, beta1, beta2, eps, weight_decay
):  # fmt: skip
    """One coordinate of :func:`amsgrad`: :func:`adam`'s moments, and the step divides by the
    running maximum of v. As torch, the max is taken over the *uncorrected* v, then divided by
    sqrt(1 - b2^t)."""
    if weight_decay != 0.0:
        g = g + weight_decay * w
    m = beta1 * exp_avg + (1.0 - beta1) * g
    v = beta2 * exp_avg_sq + (1.0 - beta2) * (g * g)
    vmax = np.maximum(max_exp_avg_sq, v)
    return w - step * (m / (np.sqrt(vmax) * inv_c2 + eps)), m, v, vmax


_ADAM_HYPERPARAMS = ("beta1", "beta2", "eps", "weight_decay", "bias_correction")
# Two rules: plain Adam would otherwise load and store AMSGrad's third buffer at every step
# (12-17% of a compiled Adam step on least squares, d = 32).
ADAM = Rule(
    _adam_update,
    state=("exp_avg", "exp_avg_sq"),
    hyperparams=_ADAM_HYPERPARAMS,
    step_factors=_adam_factors,
    state_type=AdamState,
    name="adam",
)
AMSGRAD = Rule(
    _amsgrad_update,
    state=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    hyperparams=_ADAM_HYPERPARAMS,
    step_factors=_adam_factors,
    state_type=AmsgradState,
    name="amsgrad",
)


def _adam_hyperparams(
    owner: str, betas: Any, eps: Any, weight_decay: Any, bias_correction: Any
) -> dict:
    b1, b2 = _betas(betas, owner)
    return {
        "beta1": b1,
        "beta2": b2,
        "eps": _positive(eps, "eps", owner),
        "weight_decay": _nonneg(weight_decay, "weight_decay", owner),
        "bias_correction": _flag(bias_correction, "bias_correction", owner),
    }


def adam(
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    amsgrad: bool = False,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
) -> Optimizer:
    r"""Adam, as ``torch.optim.Adam`` (Kingma & Ba's Algorithm 1), optionally AMSGrad.

    With :math:`g_t \leftarrow g_t + \lambda w_{t-1}` when ``weight_decay`` is nonzero,
    :math:`m_0 = v_0 = \hat v^{\max}_0 = 0` and :math:`t = 1, 2, \dots`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,

        u_t = v_t \quad\text{or, with AMSGrad,}\quad
        u_t = v^{\max}_t = \max(v^{\max}_{t-1}, v_t),

        w_t = w_{t-1} - \frac{\gamma_t}{1 - \beta_1^t}\,
        \frac{m_t}{\sqrt{u_t} / \sqrt{1 - \beta_2^t} + \epsilon}.

    With ``bias_correction=False`` both corrections are dropped:
    :math:`w_t = w_{t-1} - \gamma_t m_t / (\sqrt{u_t} + \epsilon)`. With correction the first
    step moves each coordinate by :math:`\gamma_1 |g_1| / (|g_1| + \epsilon) \approx \gamma_1`;
    without it by :math:`\gamma_1 (1 - \beta_1) |g_1| / (\sqrt{1 - \beta_2}\,|g_1| + \epsilon)`,
    i.e. :math:`(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.16` times larger with the default betas
    (and smaller when :math:`1 - \beta_1 < \sqrt{1 - \beta_2}`), which is Kingma & Ba's
    Section 3 argument for the correction.

    Args:
      betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)` (default (0.9, 0.999)).
      eps: :math:`\epsilon > 0` (default 1e-8), added after the bias-corrected square root.
        torch accepts ``eps = 0``; we do not.
      amsgrad: use AMSGrad (default False); see :func:`amsgrad`.
      weight_decay: L2 coefficient :math:`\lambda \ge 0` added to the gradient (default 0;
        this is Adam with L2, not AdamW).
      bias_correction: divide by :math:`1 - \beta_1^t` and :math:`\sqrt{1 - \beta_2^t}`
        (default True). ``False`` is our addition, not in torch, for studying the correction.

    References:
      Kingma & Ba, "Adam: A method for stochastic optimization", ICLR 2015.
      Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018 (AMSGrad).

    Where implementations disagree:
      torch and optax follow Algorithm 1 (:math:`\epsilon` outside the square root, after the
      bias correction). TensorFlow 1's ``AdamOptimizer`` and Keras use the paper's "efficient"
      form, :math:`\gamma \sqrt{1-\beta_2^t}/(1-\beta_1^t) \cdot m_t/(\sqrt{v_t} + \hat\epsilon)`,
      in which :math:`\hat\epsilon` is not bias-corrected, so the same ``eps`` means a different
      thing. optax also offers ``eps_root`` inside the square root (0 by default). For AMSGrad,
      see :func:`amsgrad`.
    """
    hp = _adam_hyperparams("adam", betas, eps, weight_decay, bias_correction)
    hp["amsgrad"] = _flag(amsgrad, "amsgrad", "adam")
    return (AMSGRAD if hp["amsgrad"] else ADAM).optimizer("adam", hp, selected_by=("amsgrad",))


def amsgrad(
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
) -> Optimizer:
    r"""AMSGrad as torch implements it: ``adam(amsgrad=True)``, named "amsgrad".

    .. math::

        v^{\max}_t = \max(v^{\max}_{t-1}, v_t), \qquad
        w_t = w_{t-1} - \frac{\gamma_t}{1 - \beta_1^t}\,
        \frac{m_t}{\sqrt{v^{\max}_t} / \sqrt{1 - \beta_2^t} + \epsilon},

    with :math:`m_t, v_t` as in :func:`adam` and :math:`v^{\max}_0 = 0`. The maximum is taken
    over the *uncorrected* :math:`v_t` and then divided by the current step's correction.

    Args:
      betas, eps, weight_decay, bias_correction: as in :func:`adam`.

    References:
      Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018.

    Where implementations disagree:
      Reddi et al.'s Algorithm 2 has no bias correction at all (and a decaying
      :math:`\beta_{1,t}`); torch corrects both moments and keeps the max of the uncorrected
      :math:`v`; optax's ``amsgrad`` keeps the max of the *bias-corrected*
      :math:`\hat v_t = v_t / (1 - \beta_2^t)`, which differs from torch whenever the max is
      attained at an earlier step.
    """
    hp = _adam_hyperparams("amsgrad", betas, eps, weight_decay, bias_correction)
    return AMSGRAD.optimizer("amsgrad", hp)


# ---- Rprop -------------------------------------------------------------------------------------
def _rprop_update(g, w, t, lr, prev, step_size, eta_minus, eta_plus, step_size_min, step_size_max):
    """One coordinate of :func:`rprop` (the math is in its docstring)."""
    step = select(t == 1, lr, step_size)
    s = np.sign(g * prev)
    factor = select(s > 0, eta_plus, select(s < 0, eta_minus, 1.0))
    step = np.minimum(np.maximum(step * factor, step_size_min), step_size_max)
    g_eff = select(s < 0, 0.0, g)
    return w - step * np.sign(g_eff), g_eff, step


RPROP = Rule(
    _rprop_update,
    state=("prev", "step_size"),
    hyperparams=("eta_minus", "eta_plus", "step_size_min", "step_size_max"),
    state_type=RpropState,
    name="rprop",
)


def rprop(
    *,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
) -> Optimizer:
    r"""Resilient backpropagation, as ``torch.optim.Rprop``.

    Per coordinate, with :math:`g^{\rm prev}_0 = 0` and :math:`\Delta_0 = \gamma_1` (the learning
    rate passed to the *first* update):

    .. math::

        s_t = \operatorname{sign}(g_t\, g^{\rm prev}_{t-1}), \qquad
        \Delta_t = \operatorname{clip}\big(\Delta_{t-1} \cdot
        \{\eta_+ \text{ if } s_t > 0;\ \eta_- \text{ if } s_t < 0;\ 1 \text{ otherwise}\},
        \ \Delta_{\min}, \Delta_{\max}\big),

        \tilde g_t = 0 \text{ where } s_t < 0 \text{, else } g_t, \qquad
        w_t = w_{t-1} - \Delta_t \operatorname{sign}(\tilde g_t), \qquad
        g^{\rm prev}_t = \tilde g_t.

    The clip also applies on the first step, so a first learning rate above :math:`\Delta_{\max}`
    gives :math:`\Delta_1 = \Delta_{\max}`. After a sign change the coordinate does not move and
    its next step keeps :math:`\Delta` (since :math:`g^{\rm prev} = 0`).

    **The learning rate matters only at the first update.** torch stores ``step_size`` (filled
    with ``lr``) when the state is created, at the first ``step()``, and never reads ``lr`` again,
    so an LR scheduler has no effect on Rprop after step 1; likewise here ``lr`` is read only for
    replicates whose ``count`` is 0 and is ignored afterwards: the step sizes evolve on their own.

    Args:
      etas: :math:`(\eta_-, \eta_+)` with :math:`0 < \eta_- < 1 < \eta_+` (default (0.5, 1.2)).
      step_sizes: :math:`(\Delta_{\min}, \Delta_{\max})` with
        :math:`0 < \Delta_{\min} \le \Delta_{\max}` (default (1e-6, 50)). torch does not check
        them; we refuse :math:`\Delta_{\min} = 0`, which can freeze a coordinate forever.

    References:
      Riedmiller & Braun, "A direct adaptive method for faster backpropagation learning: the
      RPROP algorithm", IEEE ICNN 1993.

    Where implementations disagree:
      Riedmiller & Braun's original rule *backtracks* after a sign change (undoes the previous
      weight step); torch does not, and instead zeroes the stored gradient, which is the variant
      Igel & Hüsken (2000) call iRprop-. The paper's initial step is :math:`\Delta_0 = 0.1`;
      torch uses ``lr`` (default 1e-2). Rprop takes no weight decay in torch, nor here.
    """
    owner = "rprop"
    eta_minus, eta_plus = _pair(etas, "etas", owner)
    eta_minus = _real(eta_minus, "etas[0]", owner, 0.0, 1.0, "neither")
    eta_plus = _real(eta_plus, "etas[1]", owner, 1.0, _INF, "neither")
    smin, smax = _pair(step_sizes, "step_sizes", owner)
    smin = _positive(smin, "step_sizes[0]", owner)
    smax = _real(smax, "step_sizes[1]", owner, smin, _INF, "left")
    hp = {
        "eta_minus": eta_minus,
        "eta_plus": eta_plus,
        "step_size_min": smin,
        "step_size_max": smax,
    }
    return RPROP.optimizer("rprop", hp)


for _factory in (sgd, momentum, nesterov, adagrad, rmsprop, adam, amsgrad, rprop):
    register_optimizer(_factory.__name__, _factory)
