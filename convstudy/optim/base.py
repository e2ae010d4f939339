r"""Update rules written once, per coordinate, and the optimizers built from them.

An optimizer is a pair of pure functions, as in optax (``optax/_src/base.py``)::

    state = opt.init(w)                        # w: (R, d)
    new_w, new_state = opt.update(g, w, state, lr)

**The (R, d) convention.** Parameters ``w`` and gradients ``g`` are arrays shaped ``(R, d)``: R
replicates (independent runs, e.g. one per seed) advanced in lockstep, each a point in
:math:`\mathbb{R}^d`. The state is a ``NamedTuple`` whose first field ``count`` is an ``int64``
array of shape ``(R,)`` and whose other fields are ``(R, d)`` arrays, so an engine can freeze
diverged replicates by masking every field with ``np.where`` on the first axis.

**A rule is written once** (:class:`Rule`, :func:`rule`): a function of scalars giving one
coordinate's new value and new state from its gradient ``g``, value ``w``, the step number ``t``
(1 at the first update, torch's convention), the step's factors (the learning rate ``lr`` by
default) and its state fields and hyper-parameters, all passed by name::

    @rule(state=("exp_avg",), hyperparams=("beta1", "beta2", "weight_decay"))
    def lion(g, w, t, lr, exp_avg, beta1, beta2, weight_decay):
        c = beta1 * exp_avg + (1.0 - beta1) * g
        return w - lr * (np.sign(c) + weight_decay * w), beta2 * exp_avg + (1.0 - beta2) * g

The numpy path evaluates that function on whole arrays (``g``, ``w`` and the state fields
(R, d), ``t`` (R, 1)); the compiled path (:mod:`convstudy._fast`) generates a kernel that calls
it per coordinate, compiled by numba. Both run the same operations in the same order, so they
agree to rounding. A rule may therefore use only what means the same on arrays and on scalars
inside numba: arithmetic and comparisons, ``np.sqrt``, ``np.sign``, ``np.abs``,
``np.maximum``, ``np.minimum`` (and other numpy ufuncs), Python ``if`` on hyper-parameters
(scalars on both paths) and :func:`select` for a choice that depends on the data or on ``t``.
Per-step factors that depend only on the step number (Adam's bias corrections, Adagrad's
``lr_decay``) are computed by an optional numpy function ``step_factors(t, lr, ...)`` whose
values replace ``lr`` in the rule's arguments.

**Hyper-parameters are declared by name.** :meth:`Rule.optimizer` builds an :class:`Optimizer`
whose ``hyperparams`` are exactly what the rule consumes: a name the rule does not declare, or a
declared one left out, is a ``ValueError``; a declared name that neither the rule's update, its
step factors nor its initial state reads is refused when the rule is defined.

**Weight decay** in the built-in rules is torch's coupled L2 penalty: when ``weight_decay``
(:math:`\lambda`) is nonzero, the gradient is replaced by :math:`g_t + \lambda w_{t-1}` before
anything else (not AdamW's decoupled decay).

``update`` never modifies its inputs; it returns new arrays (the new state may share unchanged
field arrays with the old one).
"""

from __future__ import annotations

import collections
import inspect
import keyword
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_array, check_scalar
from ..registry import Registry

__all__ = [
    "Optimizer",
    "Rule",
    "RuleInit",
    "RuleUpdate",
    "rule",
    "select",
    "OPTIMIZERS",
    "register_optimizer",
    "get_optimizer",
]


class Optimizer(NamedTuple):
    """An optimizer: a name, its resolved hyper-parameters and two pure functions.

    ``init(w)`` takes the (R, d) starting point and returns the initial state.
    ``update(g, w, state, lr)`` takes the (R, d) gradient at ``w``, the state and the step's
    learning rate and returns ``(new_w, new_state)`` without modifying its inputs. Optimizers
    built by :meth:`Rule.optimizer` run on the compiled path too; any other pair of functions
    runs on the numpy path.
    """

    name: str
    hyperparams: dict
    init: Callable[[np.ndarray], NamedTuple]
    update: Callable[[np.ndarray, np.ndarray, NamedTuple, float], tuple[np.ndarray, NamedTuple]]


def select(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b``: ``np.where`` on arrays, a scalar conditional in
    the compiled kernels (registered with numba by :mod:`convstudy._fast`).

    Both ``a`` and ``b`` are evaluated, as with ``np.where``.
    """
    return np.where(cond, a, b)


# ---- rules -------------------------------------------------------------------------------------
_ARGS = ("g", "w", "t")


def _parameter_names(fn: Callable, what: str) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The {what} must be a Python function. Got {fn!r} instead.") from exc
    names = []
    for p in params:
        if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            raise ValueError(
                f"The {what} must take plain positional parameters only. "
                f"Got parameter {p.name!r} of kind {p.kind.description} instead."
            )
        names.append(p.name)
    return names


def _check_names(names: Any, what: str, owner: str) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"The {what!r} parameter of {owner} must be a tuple of names (str). "
            f"Got {names!r} instead."
        )
    names = tuple(names)
    for n in names:
        if not n.isidentifier() or keyword.iskeyword(n) or n in (*_ARGS, "count", "lr"):
            raise ValueError(
                f"The {what!r} parameter of {owner} must hold identifiers other than "
                f"{', '.join(repr(a) for a in (*_ARGS, 'count', 'lr'))}. Got {n!r} instead."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"The {what!r} parameter of {owner} repeats a name. Got {names!r}.")
    return names


class Rule:
    r"""An update rule written once, per coordinate, with its state and hyper-parameters named.

    ``update(g, w, t, *factors, *state, *hyperparams) -> (new_w, *new_state)``:

    - ``g``, ``w``: the coordinate's gradient and value; ``t``: the step number (1 at the first
      update of a replicate);
    - ``factors``: ``lr`` (the step's learning rate), or the values ``step_factors`` returns;
    - ``state``: the state fields, in the order of ``state`` (each starts at 0, or at the value
      of the hyper-parameter ``initial[field]``);
    - ``hyperparams``: any of the declared hyper-parameters, by name, in any order.

    It returns the new value and the new state fields in the order of ``state``. See the module
    docstring for the operations a rule may use.

    ``step_factors(t, lr, *hyperparams)``, optional: numpy code of the step number ``t`` and the
    learning rate only (vectorised over both), returning a tuple of per-step factors that are
    passed to ``update`` in place of ``lr``, under the names ``update`` gives them.

    ``state_type``: the ``NamedTuple`` class of the state (fields ``count`` then ``state``);
    made from the rule's name when not given. ``name``: the rule's name in messages and kernel
    file names (default: the update function's name).
    """

    def __init__(
        self,
        update: Callable[..., tuple],
        *,
        state: tuple[str, ...] = (),
        hyperparams: tuple[str, ...] = (),
        step_factors: Callable[..., tuple] | None = None,
        initial: Mapping[str, str] | None = None,
        state_type: type | None = None,
        name: str | None = None,
    ):
        self.name = name or getattr(update, "__name__", repr(update))
        owner = f"rule {self.name!r}"
        self.state = _check_names(state, "state", owner)
        self.hyperparams = _check_names(hyperparams, "hyperparams", owner)
        clash = set(self.state) & set(self.hyperparams)
        if clash:
            raise ValueError(
                f"The state fields and hyper-parameters of {owner} must have distinct names. "
                f"Got {sorted(clash)!r} in both."
            )
        params = _parameter_names(update, f"update function of {owner}")
        declared = set(self.state) | set(self.hyperparams)
        n_factors = next((k for k, p in enumerate(params[3:]) if p in declared), len(params) - 3)
        self.factor_names = tuple(params[3 : 3 + n_factors])
        after = params[3 + n_factors :]
        self.update_hyperparams = tuple(after[len(self.state) :])
        expected = f"(g, w, t, <factors>, {', '.join(self.state) or '<no state>'}, <hyperparams>)"
        if (
            tuple(params[:3]) != _ARGS
            or not self.factor_names
            or tuple(after[: len(self.state)]) != self.state
            or not set(self.update_hyperparams) <= set(self.hyperparams)
        ):
            raise ValueError(
                f"The update function of {owner} must take {expected} with hyper-parameters "
                f"among {self.hyperparams!r}. Got ({', '.join(params)}) instead."
            )
        self.step_factors = step_factors
        self.factor_hyperparams: tuple[str, ...] = ()
        if step_factors is None:
            if self.factor_names != ("lr",):
                raise ValueError(
                    f"The update function of {owner} takes factors {self.factor_names!r} but the "
                    "rule has no step_factors; without them the only factor is 'lr'."
                )
        else:
            fparams = _parameter_names(step_factors, f"step_factors of {owner}")
            self.factor_hyperparams = tuple(fparams[2:])
            if fparams[:2] != ["t", "lr"] or not set(fparams[2:]) <= set(self.hyperparams):
                raise ValueError(
                    f"The step_factors of {owner} must take (t, lr, <hyperparams>) with "
                    f"hyper-parameters among {self.hyperparams!r}. Got ({', '.join(fparams)})."
                )
        self.initial = dict(initial or {})
        for field, hp in self.initial.items():
            if field not in self.state or hp not in self.hyperparams:
                raise ValueError(
                    f"The 'initial' parameter of {owner} must map state fields "
                    f"{self.state!r} to hyper-parameters {self.hyperparams!r}. "
                    f"Got {field!r}: {hp!r} instead."
                )
        used = set(self.update_hyperparams) | set(self.factor_hyperparams)
        used |= set(self.initial.values())
        unused = [h for h in self.hyperparams if h not in used]
        if unused:
            raise ValueError(
                f"The hyper-parameter {unused[0]!r} of {owner} is read by neither its update, "
                "its step_factors nor its initial state; declare only the hyper-parameters "
                "the rule consumes."
            )
        if state_type is None:
            type_name = "".join(p.title() for p in self.name.split("_") if p) + "State"
            state_type = collections.namedtuple(type_name, ("count", *self.state))
            state_type.__module__ = getattr(update, "__module__", __name__)
        if tuple(getattr(state_type, "_fields", ())) != ("count", *self.state):
            raise ValueError(
                f"The 'state_type' parameter of {owner} must be a NamedTuple with fields "
                f"{('count', *self.state)!r}. Got {state_type!r} instead."
            )
        self.state_type = state_type
        self.update = update

    def __repr__(self) -> str:
        return f"<Rule {self.name} state={self.state} hyperparams={self.hyperparams}>"

    def factors(self, t: Any, lr: Any, params: Mapping[str, Any]) -> tuple:
        """The per-step factors passed to ``update`` for step numbers ``t`` and rates ``lr``."""
        if self.step_factors is None:
            return (lr,)
        out = self.step_factors(t, lr, *(params[h] for h in self.factor_hyperparams))
        out = out if isinstance(out, tuple) else (out,)
        if len(out) != len(self.factor_names):
            raise ValueError(
                f"The step_factors of rule {self.name!r} returned {len(out)} value(s); its update "
                f"takes {len(self.factor_names)} factor(s) {self.factor_names!r}."
            )
        return out

    def evaluate(
        self,
        g: np.ndarray,
        w: np.ndarray,
        t: np.ndarray,
        lr: float,
        fields: tuple[np.ndarray, ...],
        params: Mapping[str, Any],
    ) -> tuple[np.ndarray, ...]:
        """``(new_w, *new_fields)``: the rule on whole (R, d) arrays, ``t`` shaped (R, 1)."""
        out = self.update(
            g,
            w,
            t,
            *self.factors(t, lr, params),
            *fields,
            *(params[h] for h in self.update_hyperparams),
        )
        if not isinstance(out, tuple) or len(out) != 1 + len(self.state):
            raise ValueError(
                f"The update function of rule {self.name!r} must return a tuple "
                f"(new_w, {', '.join(self.state)}) of {1 + len(self.state)} values. "
                f"Got {type(out).__name__} {out!r:.80} instead."
            )
        return tuple(
            x if isinstance(x, np.ndarray) and x.shape == w.shape else np.broadcast_to(x, w.shape)
            for x in out
        )

    def optimizer(
        self,
        name: str,
        hyperparams: Mapping[str, Any],
        *,
        fixed: Mapping[str, Any] | None = None,
        selected_by: tuple[str, ...] = (),
    ) -> Optimizer:
        """An :class:`Optimizer` named ``name`` running this rule.

        ``hyperparams`` (shown in ``Optimizer.hyperparams``, and what
        ``get_optimizer(name, **hyperparams)`` passes back to the factory) and ``fixed`` (values
        the factory fixes, e.g. ``nesterov=True`` for "nesterov") together must give every
        declared hyper-parameter exactly once. ``selected_by`` names the entries of
        ``hyperparams`` with which the factory chose this rule among several and which the rule
        therefore does not take (``amsgrad`` for "adam": AMSGrad's rule keeps a third moment
        buffer that plain Adam would load and store at every step for nothing); they are shown,
        never passed to the rule. Values must be bools or real numbers (made floats). Raises
        ``ValueError`` naming any undeclared or missing hyper-parameter.
        """
        fixed = dict(fixed or {})
        selected = {k: hyperparams[k] for k in selected_by if k in hyperparams}
        given = {**{k: v for k, v in hyperparams.items() if k not in selected}, **fixed}
        allowed = ", ".join(repr(h) for h in self.hyperparams) or "none"
        for key in selected_by:
            if key not in hyperparams or key in self.hyperparams or key in fixed:
                raise ValueError(
                    f"The 'selected_by' entry {key!r} of optimizer {name!r} must be a shown "
                    f"hyper-parameter that its rule {self.name!r} does not take; the rule takes "
                    f"{allowed}."
                )
        for key in [*hyperparams, *fixed]:
            if key not in self.hyperparams and key not in selected:
                raise ValueError(
                    f"The hyper-parameter {key!r} of optimizer {name!r} is not one that its rule "
                    f"{self.name!r} consumes; the rule takes {allowed}."
                )
            if key in hyperparams and key in fixed:
                raise ValueError(
                    f"The hyper-parameter {key!r} of optimizer {name!r} is both given and fixed."
                )
        missing = [h for h in self.hyperparams if h not in given]
        if missing:
            raise ValueError(
                f"The optimizer {name!r} does not set hyper-parameter {missing[0]!r}, which its "
                f"rule {self.name!r} needs; the rule takes {allowed}."
            )
        params = {h: _plain(given[h], h, name) for h in self.hyperparams}
        selected = {k: _plain(v, k, name) for k, v in selected.items()}
        shown = {k: selected[k] if k in selected else params[k] for k in hyperparams}
        return Optimizer(
            name=name,
            hyperparams=shown,
            init=RuleInit(self, params, f"{name}.init"),
            update=RuleUpdate(self, params, f"{name}.update", selected),
        )


def rule(
    *,
    state: tuple[str, ...] = (),
    hyperparams: tuple[str, ...] = (),
    step_factors: Callable[..., tuple] | None = None,
    initial: Mapping[str, str] | None = None,
    state_type: type | None = None,
    name: str | None = None,
) -> Callable[[Callable[..., tuple]], Rule]:
    """Decorator form of :class:`Rule`: ``@rule(state=..., hyperparams=...)`` on the update."""

    def make(update: Callable[..., tuple]) -> Rule:
        return Rule(
            update,
            state=state,
            hyperparams=hyperparams,
            step_factors=step_factors,
            initial=initial,
            state_type=state_type,
            name=name,
        )

    return make


def _plain(value: Any, key: str, name: str) -> bool | float:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(
        f"The hyper-parameter {key!r} of optimizer {name!r} must be a float or a bool. "
        f"Got {value!r} instead."
    )


class RuleInit:
    """``Optimizer.init`` of a rule-built optimizer: count 0 and every state field at its start
    value (0, or the hyper-parameter named in ``Rule.initial``)."""

    __slots__ = ("rule", "params", "owner")

    def __init__(self, rule: Rule, params: dict, owner: str):
        self.rule, self.params, self.owner = rule, params, owner

    def __call__(self, w: Any) -> tuple:
        # Non-finite starting points are allowed: refusing them is the engine's business.
        w = check_array(w, "w", self.owner, ndim=2, finite=False)
        fields = [
            np.full_like(w, self.params[self.rule.initial[f]])
            if f in self.rule.initial
            else np.zeros_like(w)
            for f in self.rule.state
        ]
        return self.rule.state_type(np.zeros(w.shape[0], dtype=np.int64), *fields)


class RuleUpdate:
    """``Optimizer.update`` of a rule-built optimizer: the rule on whole (R, d) arrays.

    The step number of each replicate is its own ``count + 1``, so replicates frozen for a while
    resume exactly where they stopped. ``rule`` and ``params`` (every declared hyper-parameter)
    are what the compiled path reads; ``selected`` holds the shown hyper-parameters that chose
    the rule (``Rule.optimizer``'s ``selected_by``).
    """

    __slots__ = ("rule", "params", "owner", "selected")

    def __init__(self, rule: Rule, params: dict, owner: str, selected: dict | None = None):
        self.rule, self.params, self.owner = rule, params, owner
        self.selected = dict(selected or {})

    def __call__(
        self, g: Any, w: Any, state: tuple, lr: Any
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        g, w, lr = _step_args(g, w, lr, self.owner)
        count = state.count + 1
        fields = tuple(getattr(state, f) for f in self.rule.state)
        out = self.rule.evaluate(g, w, count[:, None], lr, fields, self.params)
        return out[0], self.rule.state_type(count, *out[1:])


def _step_args(g: Any, w: Any, lr: Any, owner: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Check one update's arguments cheaply (this runs at every step)."""
    lr = check_scalar(lr, "lr", owner, kind=float, low=0.0, closed="left")
    g = np.asarray(g)
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(
            f"The 'w' parameter of {owner} must have 2 dimension(s). "
            f"Got an array of shape {w.shape} instead."
        )
    if g.shape != w.shape:
        raise ValueError(
            f"The 'g' parameter of {owner} must have the shape of w, {w.shape}. "
            f"Got shape {g.shape} instead."
        )
    return g, w, lr


# ---- registry ----------------------------------------------------------------------------------
OPTIMIZERS: Registry[Callable[..., Optimizer]] = Registry("optimizer", "get_optimizer")
register_optimizer = OPTIMIZERS.register

# Tuple arguments and the scalar names they are split into in ``Optimizer.hyperparams``.
_SPLIT = {
    "betas": ("beta1", "beta2"),
    "etas": ("eta_minus", "eta_plus"),
    "step_sizes": ("step_size_min", "step_size_max"),
}


def get_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build the optimizer registered as ``name`` (or named by an import path
    ``"module:factory"``) with the given keyword hyper-parameters.

    Besides each factory's own keywords, the split scalar names used in
    ``Optimizer.hyperparams`` are accepted (``beta1``/``beta2`` for ``betas``,
    ``eta_minus``/``eta_plus`` for ``etas``, ``step_size_min``/``step_size_max`` for
    ``step_sizes``; a missing half takes the factory default), so
    ``get_optimizer(opt.name, **opt.hyperparams)`` rebuilds ``opt``.
    """
    factory = OPTIMIZERS.get(name)
    params = inspect.signature(factory).parameters
    kwargs = dict(hyperparams)
    for packed, (first, second) in _SPLIT.items():
        if packed not in params or (first not in kwargs and second not in kwargs):
            continue
        if packed in kwargs:
            raise ValueError(
                f"The {packed!r} parameter of get_optimizer cannot be combined with "
                f"{first!r}/{second!r}. Got {packed}={kwargs[packed]!r} and "
                f"{first}={kwargs.get(first)!r}, {second}={kwargs.get(second)!r} instead."
            )
        default = params[packed].default
        kwargs[packed] = (kwargs.pop(first, default[0]), kwargs.pop(second, default[1]))
    return factory(**kwargs)
