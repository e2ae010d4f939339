"""The compiled fast path of :func:`convstudy.engine.simulate` (numba kernels).

The numpy engine advances R replicates in lockstep with whole-array operations, one Python
iteration per update. Here one compiled kernel runs every update between two record points for
all replicates, in parallel over replicates (``numba.prange``): each replicate keeps its
parameters and optimizer state in cache and walks through its own minibatches.

What stays the same as the numpy path (tested to 1e-12 relative in ``tests/test_fast_path.py``
and, for every registered optimizer, in ``tests/test_parity.py``):

- **Minibatches: the same stream.** Replicate r's batches are the indices that
  :func:`convstudy.sampling.batch_stream` draws from r's generator, in the same order. The
  random samplers are defined by numpy calls on a ``PCG64`` generator: ``permutation(N)``
  (reshuffle) and ``integers(0, N, size)`` (replacement), and the index sequence of a replicate
  does not depend on the block sizes. The kernels reproduce those calls bit for bit: PCG64's
  128-bit LCG with XSL-RR output and its buffered 32-bit draws (numpy
  ``random/src/pcg64/pcg64.h``), the Fisher-Yates shuffle with numpy's masked rejection
  ``random_interval`` (``Generator.shuffle``), and Lemire's bounded integers
  (``buffered_bounded_lemire_uint32`` in ``distributions.c``). They start from each generator's
  state and draw inside the parallel loop, so no index block is stored. This is checked against
  numpy once per process (:func:`compiled_sampling_matches_numpy`); if numpy ever changes these
  algorithms, the engine falls back to drawing (R, T, b) index blocks with the numpy generators
  themselves (:class:`IndexBlocks`, the same ``Sampler.draw`` calls as ``batch_stream``) and
  passing them to the kernels.
- **Update rules: the same function.** An optimizer built from a
  :class:`~convstudy.optim.Rule` (every built-in, and any user rule written the same way) runs
  in a kernel generated for its rule (:func:`step_kernel`): the kernel calls the rule's own
  per-coordinate function, compiled by numba and inlined (``inline="always"``,
  ``fastmath=False``), with its state fields and hyper-parameters passed by name. The numpy path
  evaluates that same function on whole arrays, so the operations and their order are the same;
  only sums over coordinates and samples (the gradient) add in a different order (the dot
  products use four partial sums). The rule's per-step factors (Adam's bias corrections,
  Adagrad's ``lr_decay``) are computed in numpy by the rule's own ``step_factors``, since every
  active replicate has made exactly k updates at step k; the schedule too is evaluated in numpy
  by the engine.
- **Divergence.** An update that makes a replicate's gradient or new parameters non-finite
  freezes it (``active[r] = False``) and it never moves again, so it is marked diverged at the
  same record as on the numpy path. Its parameters and optimizer state then hold that last
  update (the numpy path keeps the previous ones): nothing observes them, since every record of
  a diverged replicate is NaN. (Plain SGD checks at the end of each segment; see
  :func:`_sgd_pairs`.)

Layout of the work: a parallel task owns a pair of replicates advanced alternately, so that
their dependency chains overlap: in the rule's generated kernel (one per problem kind, see
``_KERNEL_SOURCE``) or, for plain SGD with one sample per step on a linear model, in a kernel of
its own that keeps the pair's parameters in local copies (:func:`_sgd_pairs`). A task draws the
indices of up to 2048 samples at a time into a small local buffer (:func:`_fill_indices`) and
then computes those steps. Launches are scheduled dynamically in small chunks of tasks. The
dot products hold their four partial sums in one vector register (:func:`_dot`).

Supported: least squares (:class:`~convstudy.problems.LeastSquares`, ``Quadratic``, ``Ridge``),
:class:`~convstudy.problems.Logistic`, the one-hidden-layer tanh networks (``TanhNetwork``,
``TeacherStudent``) and the softmax MLP classifiers (``MLPClassifier``, ``DigitsMLP``) unless a
subclass overrides the loss or its gradient; every optimizer built
by :meth:`Rule.optimizer <convstudy.optim.Rule.optimizer>` whose rule numba can compile; every
built-in schedule and sampler. Anything else runs on the numpy path.

**Caching.** The fixed kernels (sampling, plain SGD pairs, records) are cached by numba next to
this file (``cache=True``). A rule's kernel is generated as a small module in a cache folder
(:func:`kernel_folder`) whose file name carries a digest of the rule's code, of the files of the
modules it comes from and of this file (plus the numba, numpy and Python versions), and numba
caches its compiled code next to it: a second process loads it instead of compiling, and an edit
to the rule, to its module or to this file gives a new file name, so a stale kernel is never
served (numba alone would not notice an edit to an inlined function in another file).
:func:`warm_up` reports the time the common kernels take to compile or load.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
import time
import types as pytypes
import weakref
from pathlib import Path

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, overload, register_model

from ._cores import thread_limit
from .optim import Optimizer, Rule, RuleInit, RuleUpdate, get_optimizer, select
from .optim.rules import SGD
from .problems.base import Problem
from .problems.classification import MLPClassifier
from .problems.convex import QuarticRegression
from .problems.linear import LeastSquares, Logistic, _LinearModel
from .problems.networks import _OneHiddenLayerTanh
from .sampling import Sampler, _Stream, block_updates

__all__ = [
    "unsupported_reason",
    "FastStepper",
    "IndexBlocks",
    "compiled_sampling_matches_numpy",
    "step_kernel",
    "kernel_folder",
    "kernel_cache_misses",
    "warm_up",
    "threading_layer",
]


# ---- optimizers: rules ----------------------------------------------------------------------
def _rule_of(optimizer: Optimizer) -> tuple[Rule, dict] | None:
    """(rule, every hyper-parameter's value) of an optimizer built by ``Rule.optimizer``."""
    update, init = optimizer.update, optimizer.init
    if not (isinstance(update, RuleUpdate) and isinstance(init, RuleInit)):
        return None
    if init.rule is not update.rule or init.params != update.params:
        return None
    return update.rule, update.params


def _check_hyperparams(optimizer: Optimizer, rule: Rule, params: dict) -> None:
    """Refuse an optimizer whose ``hyperparams`` are not the values its rule runs with (or,
    for those that selected the rule, the values that selected it)."""
    allowed = ", ".join(repr(h) for h in rule.hyperparams) or "none"
    params = {**params, **optimizer.update.selected}
    for key, value in optimizer.hyperparams.items():
        if key not in params:
            raise ValueError(
                f"The hyper-parameter {key!r} of optimizer {optimizer.name!r} is not one that its "
                f"rule {rule.name!r} consumes; the rule takes {allowed}."
            )
        if params[key] != value:
            raise ValueError(
                f"The hyper-parameter {key}={value!r} of optimizer {optimizer.name!r} differs "
                f"from the value its rule {rule.name!r} runs with ({params[key]!r}); build "
                "optimizers with their factory or Rule.optimizer."
            )


@overload(select)
def _select_scalar(cond, a, b):
    """:func:`convstudy.optim.select` inside the kernels: a scalar conditional."""

    def impl(cond, a, b):
        return a if cond else b

    return impl


# ---- problem encoding -----------------------------------------------------------------------
# methods whose numpy definitions the kernels reproduce; overriding any of them opts out
_LINEAR_METHODS = ("batch_grad", "grad", "loss", "sample_grads", "_margins", "_ridge_term")
_NETWORK_METHODS = ("batch_grad", "grad", "loss", "_mean_grad", "_backward", "_forward")
_MLP_METHODS = _NETWORK_METHODS + ("_losses", "_log_softmax_parts")
_QUARTIC_METHODS = ("batch_grad", "grad", "loss", "sample_grads", "sample_losses", "_residuals")


def _same_methods(problem: Problem, base: type, names: tuple[str, ...]) -> bool:
    cls = type(problem)
    return all(getattr(cls, n) is getattr(base, n) for n in names)


def _problem_kind(problem: Problem) -> str | None:
    if isinstance(problem, LeastSquares):
        ok = _same_methods(problem, _LinearModel, _LINEAR_METHODS) and _same_methods(
            problem, LeastSquares, ("_phi", "_dphi")
        )
        return "least_squares" if ok else None
    if isinstance(problem, Logistic):
        ok = _same_methods(problem, _LinearModel, _LINEAR_METHODS) and _same_methods(
            problem, Logistic, ("_phi", "_dphi")
        )
        return "logistic" if ok else None
    if isinstance(problem, _OneHiddenLayerTanh):
        return (
            "tanh_network"
            if _same_methods(problem, _OneHiddenLayerTanh, _NETWORK_METHODS)
            else None
        )
    if isinstance(problem, MLPClassifier):
        return "mlp_classifier" if _same_methods(problem, MLPClassifier, _MLP_METHODS) else None
    if isinstance(problem, QuarticRegression):
        ok = _same_methods(problem, QuarticRegression, _QUARTIC_METHODS)
        return "quartic_regression" if ok else None
    return None


def unsupported_reason(problem: Problem, optimizer: Optimizer, sampler: Sampler) -> str | None:
    """Why the fast path cannot run this combination, or ``None`` when it can.

    Raises ``ValueError`` for a rule-built optimizer whose ``hyperparams`` disagree with the
    values its rule runs with (on either path).
    """
    if _problem_kind(problem) is None:
        return (
            f"problem {type(problem).__name__} ({problem.name!r}) has no compiled kernel; the "
            "fast path covers LeastSquares/Quadratic/Ridge, Logistic, TanhNetwork, "
            "TeacherStudent, MLPClassifier/DigitsMLP and QuarticRegression (without overridden "
            "loss or gradient methods)"
        )
    found = _rule_of(optimizer)
    if found is None:
        return (
            f"optimizer {optimizer.name!r} is not built from an update rule; the fast path runs "
            "optimizers made by convstudy.optim.Rule.optimizer (every built-in is)"
        )
    _check_hyperparams(optimizer, *found)
    if not isinstance(found[0].update, pytypes.FunctionType):
        return f"the update of rule {found[0].name!r} is not a Python function numba can compile"
    if sampler.name not in ("full", "reshuffle", "replacement", "cyclic"):
        return f"sampler {sampler.name!r} is not a built-in sampler"
    if problem.n_samples >= 2**31:
        return "n_samples >= 2**31 does not fit the int32 index blocks"
    return None


# ---- samplers -------------------------------------------------------------------------------
_FULL, _BLOCKS, _RESHUFFLE, _REPLACEMENT, _CYCLIC = 0, 1, 2, 3, 4
_SAMPLER_CODES = {"full": _FULL, "reshuffle": _RESHUFFLE, "replacement": _REPLACEMENT}
_SAMPLER_CODES["cyclic"] = _CYCLIC

# PCG64 constants (numpy random/src/pcg64/pcg64.h); every operand is uint64 so numba keeps
# unsigned 64-bit wrap-around arithmetic.
_U0, _U1 = np.uint64(0), np.uint64(1)
_U32, _U58, _U63, _U64 = np.uint64(32), np.uint64(58), np.uint64(63), np.uint64(64)
_MASK32 = np.uint64(0xFFFFFFFF)
_MULT_HI = np.uint64(2549297995355413924)
_MULT_LO = np.uint64(4865540595714422341)
# a replicate's generator state row: state (hi, lo), inc (hi, lo), has_uint32, uinteger
_N_RNG = 6

# Performance note: helpers inlined into the kernels (inline="always") take and return scalars
# only. Numba reference-counts arrays passed to an inlined helper at every call, which made the
# per-step code several times slower; array work is written out in the kernel itself.


@intrinsic
def _lcg128_step(typingctx, s_hi, s_lo, inc_hi, inc_lo, m_hi, m_lo):
    """(s * m + inc) mod 2^128 on (hi, lo) uint64 halves, in native 128-bit LLVM integers."""
    u64 = types.uint64
    sig = types.UniTuple(u64, 2)(u64, u64, u64, u64, u64, u64)

    def codegen(context, builder, signature, args):
        i128, i64 = ir.IntType(128), ir.IntType(64)
        shift = ir.Constant(i128, 64)

        def join(hi, lo):
            return builder.or_(builder.shl(builder.zext(hi, i128), shift), builder.zext(lo, i128))

        s, inc, m = join(args[0], args[1]), join(args[2], args[3]), join(args[4], args[5])
        new = builder.add(builder.mul(s, m), inc)
        hi = builder.trunc(builder.lshr(new, shift), i64)
        return context.make_tuple(builder, signature.return_type, (hi, builder.trunc(new, i64)))

    return sig, codegen


@njit(inline="always")
def _next_uint32(s_hi, s_lo, inc_hi, inc_lo, has32, spare):
    """numpy's pcg64_next32 on a state held in scalars.

    A 64-bit draw steps the LCG (state = state * M + inc) and outputs XSL-RR of the new state,
    rotr64(hi ^ lo, hi >> 58); its low half is returned and its high half kept (``spare``) for
    the next call. Returns (value, s_hi, s_lo, has32, spare).
    """
    if has32 != _U0:
        return spare, s_hi, s_lo, _U0, spare
    s_hi, s_lo = _lcg128_step(s_hi, s_lo, inc_hi, inc_lo, _MULT_HI, _MULT_LO)
    x = s_hi ^ s_lo
    rot = s_hi >> _U58
    out = (x >> rot) | (x << ((_U64 - rot) & _U63))
    return out & _MASK32, s_hi, s_lo, _U1, out >> _U32


@njit(inline="always")
def _bounded_lemire(rng, s_hi, s_lo, inc_hi, inc_lo, has32, spare):
    """numpy's buffered_bounded_lemire_uint32: uniform on {0..rng}, 0 < rng < 2^32 - 1.

    m = u32 * (rng + 1); redraw while the low half of m is below 2^32 mod (rng + 1); the
    result is the high half. Returns (value, s_hi, s_lo, has32, spare).
    """
    rng_excl = rng + _U1
    u, s_hi, s_lo, has32, spare = _next_uint32(s_hi, s_lo, inc_hi, inc_lo, has32, spare)
    m = u * rng_excl
    leftover = m & _MASK32
    if leftover < rng_excl:
        threshold = (_MASK32 - rng) % rng_excl
        while leftover < threshold:
            u, s_hi, s_lo, has32, spare = _next_uint32(s_hi, s_lo, inc_hi, inc_lo, has32, spare)
            m = u * rng_excl
            leftover = m & _MASK32
    return m >> _U32, s_hi, s_lo, has32, spare


@njit(inline="always")
def _interval_mask(upper):
    """Smallest 2^k - 1 >= upper."""
    mask = upper
    mask |= mask >> np.uint64(1)
    mask |= mask >> np.uint64(2)
    mask |= mask >> np.uint64(4)
    mask |= mask >> np.uint64(8)
    mask |= mask >> np.uint64(16)
    mask |= mask >> _U32
    return mask


@njit(cache=True, nogil=True)
def _shuffle_row(rs, perm, r, n):
    """perm[r] = numpy's ``permutation(n)`` drawn from replicate r's generator state rs[r].

    ``Generator.shuffle`` of arange(n): for i = n-1, ..., 1 swap x[i] and x[j] with
    j = random_interval(i), i.e. 32-bit draws masked to the smallest 2^k - 1 >= i, redrawn
    while > i. Called once per n indices (not inlined).

    Written as one loop over the draws, not a rejection loop per i: a rejected draw (about one
    in four) swaps x[i] with itself and keeps i. The same draws in the same order give the same
    permutation and final state, but the unpredictable branch of the rejection loop is gone,
    which halves the time per index.
    """
    s_hi, s_lo, inc_hi, inc_lo, has32, spare = (
        rs[r, 0], rs[r, 1], rs[r, 2], rs[r, 3], rs[r, 4], rs[r, 5],
    )  # fmt: skip
    for i in range(n):
        perm[r, i] = i
    mask = _interval_mask(np.uint64(max(n - 1, 0)))
    i = n - 1
    while i > 0:
        value, s_hi, s_lo, has32, spare = _next_uint32(s_hi, s_lo, inc_hi, inc_lo, has32, spare)
        value &= mask
        accept = value <= np.uint64(i)
        j = np.int64(value) if accept else i
        tmp = perm[r, j]
        perm[r, j] = perm[r, i]
        perm[r, i] = tmp
        if accept:
            i -= 1
            if np.uint64(i) <= (mask >> _U1):  # keep mask = smallest 2^k - 1 >= i
                mask >>= _U1
    rs[r, 0], rs[r, 1], rs[r, 4], rs[r, 5] = s_hi, s_lo, has32, spare


@njit(cache=True, nogil=True)
def _fill_indices(sampler, r, out, count, rs, perm, pos, idx, row, b, n):
    """out[:count] = replicate r's next ``count`` sample indices (``count`` = m b for m steps).

    ``_BLOCKS`` copies rows row .. row + m - 1 of the numpy-drawn block ``idx[r]``; the other
    samplers draw from r's generator state ``rs[r]`` (held in local variables meanwhile):
    reshuffle walks through successive ``permutation(n)`` (:func:`_shuffle_row`), replacement
    draws ``integers(0, n)`` (no draw when n == 1), cyclic counts 0, 1, ..., n-1, 0, ...
    Called once per block of steps (not inlined: it takes arrays).
    """
    if sampler == _BLOCKS:
        for t in range(count // b):
            for q in range(b):
                out[t * b + q] = idx[r, row + t, q]
        return
    s_hi, s_lo, inc_hi, inc_lo, has32, spare = (
        rs[r, 0], rs[r, 1], rs[r, 2], rs[r, 3], rs[r, 4], rs[r, 5],
    )  # fmt: skip
    p = pos[r]
    for k in range(count):
        if sampler == _REPLACEMENT:
            if n == 1:
                out[k] = 0
            else:
                value, s_hi, s_lo, has32, spare = _bounded_lemire(
                    np.uint64(n - 1), s_hi, s_lo, inc_hi, inc_lo, has32, spare
                )
                out[k] = np.int64(value)
        elif sampler == _RESHUFFLE:
            if p == n:
                rs[r, 0], rs[r, 1], rs[r, 4], rs[r, 5] = s_hi, s_lo, has32, spare
                _shuffle_row(rs, perm, r, n)
                s_hi, s_lo, has32, spare = rs[r, 0], rs[r, 1], rs[r, 4], rs[r, 5]
                p = 0
            out[k] = perm[r, p]
            p += 1
        else:  # cyclic
            out[k] = p
            p = p + 1 if p + 1 < n else 0
    rs[r, 0], rs[r, 1], rs[r, 4], rs[r, 5] = s_hi, s_lo, has32, spare
    pos[r] = p


@njit(cache=True, nogil=True)
def _draw_indices(sampler, rs, perm, pos, n, count):
    """The next ``count`` indices of replicate 0 (to check the streams against numpy)."""
    out = np.empty(count, dtype=np.int64)
    _fill_indices(sampler, 0, out, count, rs, perm, pos, np.zeros((1, 1, 1), np.int32), 0, 1, n)
    return out


_WORK_PER_THREAD = 1 << 21  # multiply-adds (~1 ms) below which a launch runs on one thread
# A tanh, exp or log costs about as much as this many multiply-adds (measured with
# _full_loss_grad on one thread: 0.2 ns per sample and parameter for least squares with d = 32,
# 2.7-4.1 ns for the tanh networks, whose samples each take one tanh per hidden unit).
_MULTIPLY_ADDS_PER_TRANSCENDENTAL = 40
_INDICES_PER_FILL = 2048  # indices drawn per replicate at a time (a thread-local buffer)
_STEPS_PER_LAUNCH = 1 << 16  # updates per kernel launch at most


def _steps_per_fill(b: int) -> int:
    return max(1, _INDICES_PER_FILL // b)


# ---- the kernels ----------------------------------------------------------------------------
_LEAST_SQUARES, _LOGISTIC, _TANH_NETWORK, _MLP_CLASSIFIER, _QUARTIC = 0, 1, 2, 3, 4
_KIND_NAMES = ("least squares", "logistic", "tanh network", "MLP classifier", "quartic")


# ---- the dot product: four partial sums in one 4-lane vector --------------------------------
# Every margin x_i . w sums with four partial sums z_k = sum over j = k (mod 4) of x_j w_j, then
# (z0 + z1) + (z2 + z3). Written with four scalar accumulators, LLVM keeps them scalar (its SLP
# vectorizer does not vectorize loop-carried accumulators), which made the dot product the
# bottleneck of SGD. The intrinsics below hold (z0, z1, z2, z3) in one LLVM <4 x double> and
# compute lane k exactly as z_k: the same multiplications and additions in the same order (no
# fused multiply-add), so the results are the same to the bit, 1.5-2x faster.


class _Vec4Type(types.Type):
    """Four float64 lanes in one LLVM vector register (the partial sums of :func:`_dot`)."""

    def __init__(self):
        super().__init__(name="convstudy.Vec4")


_VEC4 = _Vec4Type()
_LLVM_VEC4 = ir.VectorType(ir.DoubleType(), 4)


@register_model(_Vec4Type)
class _Vec4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _LLVM_VEC4)


def _c_float_array(arr) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.float64 and arr.layout == "C"


def _element_pointer(context, builder, signature, args):
    """Address of element ``args[1]`` (a flat index) of the C-contiguous array ``args[0]``."""
    array = context.make_array(signature.args[0])(context, builder, args[0])
    return builder.gep(array.data, [args[1]], inbounds=True)


@intrinsic
def _zeros4(typingctx):
    """(0.0, 0.0, 0.0, 0.0)."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_LLVM_VEC4, [0.0] * 4)

    return _VEC4(), codegen


@intrinsic
def _load4(typingctx, arr, flat):
    """Elements flat .. flat + 3 of a C-contiguous float64 array (any number of dimensions)."""
    if not _c_float_array(arr):
        return None

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature, args)
        return builder.load(builder.bitcast(pointer, _LLVM_VEC4.as_pointer()), align=8)

    return _VEC4(arr, types.intp), codegen


@intrinsic
def _at(typingctx, arr, flat):
    """Element ``flat`` of a C-contiguous float64 array (any number of dimensions)."""
    if not _c_float_array(arr):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(_element_pointer(context, builder, signature, args))

    return types.float64(arr, types.intp), codegen


@intrinsic
def _add_products4(typingctx, acc, a, b):
    """acc + a * b lane by lane: a multiplication, then an addition (never fused)."""

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], builder.fmul(args[1], args[2]))

    return _VEC4(_VEC4, _VEC4, _VEC4), codegen


@intrinsic
def _lane(typingctx, v, k):
    """Lane k of a vector."""

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], args[1])

    return types.float64(_VEC4, types.intp), codegen


@njit(inline="always")
def _dot(a, a0, b, b0, d):
    """sum_j a[a0 + j] b[b0 + j], j < d (flat indices of C-contiguous arrays), with four partial
    sums: lanes k = 0..3 add the products j = k (mod 4) of the first 4 floor(d / 4), the rest are
    added to lane 0, and the result is (z0 + z1) + (z2 + z3).

    One summation order for every kernel, so the step and record kernels agree to the bit.
    """
    acc = _zeros4()
    j = 0
    while j + 4 <= d:
        acc = _add_products4(acc, _load4(a, a0 + j), _load4(b, b0 + j))
        j += 4
    z0 = _lane(acc, 0)
    while j < d:
        z0 += _at(a, a0 + j) * _at(b, b0 + j)
        j += 1
    return (z0 + _lane(acc, 1)) + (_lane(acc, 2) + _lane(acc, 3))


@njit(inline="always")
def _margin(X, i, w, r, d):
    """x_i . w_r (:func:`_dot`) of the C-contiguous (N, d) data and (R, d) parameters."""
    return _dot(X, i * X.shape[1], w, r * w.shape[1], d)


@njit(inline="always")
def _tanh_add_sample_grad(X, y, i, w, r, h, p_in, off_c, off_a, off_a0, hid, g):
    """Add grad div_i(w_r) of the one-hidden-layer tanh network to ``g``; return the residual
    e = yhat(x_i) - y_i (so div_i = e^2 / 2). Layout as in convstudy.problems.networks."""
    yhat = 0.0
    for u in range(h):
        z = 0.0
        for k in range(p_in):
            z += X[i, k] * w[r, u * p_in + k]
        tu = np.tanh(z + w[r, off_c + u])
        hid[u] = tu
        yhat += tu * w[r, off_a + u]
    e = yhat + w[r, off_a0] - y[i]
    for u in range(h):
        tu = hid[u]
        delta = e * w[r, off_a + u] * (1.0 - tu * tu)
        for k in range(p_in):
            g[u * p_in + k] += delta * X[i, k]
        g[off_c + u] += delta
        g[off_a + u] += e * tu
    g[off_a0] += e
    return e


@njit(inline="always")
def _mlp_add_sample_grad(X, y, i, w, r, h, p_in, n_out, off_b1, off_w2, off_b2, buf, g):
    """Add grad div_i(w_r) of the softmax MLP classifier to ``g``; return div_i(w_r).

    Layout and formulas of convstudy.problems.classification: t = tanh(W1 x + b1), logits
    z = W2 t + b2, div_i = max z + log sum_k exp(z_k - max z) - z_{y_i}; dz = softmax(z) -
    onehot(y_i), delta = (1 - t^2) W2^T dz, and dW2 = dz t^T, db2 = dz, dW1 = delta x^T,
    db1 = delta. The class label is y[i] (a float holding an integer). ``buf`` (at least
    2 h + K floats) holds t in buf[:h], z then dz in buf[h:h + K], W2^T dz then delta in
    buf[h + K:2 h + K].

    The loops run so that the sums of different units interleave (inputs outer, units inner)
    instead of forming one long dependency chain each; each sum still adds its terms in index
    order. Zero inputs (most pixels of the digits) are skipped in the hidden layer's sums:
    adding +0.0 never changes a sum of finite terms, and a replicate whose parameters are not
    finite is frozen anyway.
    """
    off_z, off_d = h, h + n_out
    for u in range(h):
        buf[u] = 0.0
    for k in range(p_in):
        xk = X[i, k]
        if xk != 0.0:
            for u in range(h):
                buf[u] += xk * w[r, u * p_in + k]
    for u in range(h):
        buf[u] = np.tanh(buf[u] + w[r, off_b1 + u])
    for c in range(n_out):
        buf[off_z + c] = 0.0
    for u in range(h):
        tu = buf[u]
        for c in range(n_out):
            buf[off_z + c] += tu * w[r, off_w2 + c * h + u]
    label = int(y[i])
    zmax = -np.inf
    for c in range(n_out):
        z = buf[off_z + c] + w[r, off_b2 + c]
        buf[off_z + c] = z
        if z > zmax:
            zmax = z
    zlab = buf[off_z + label]
    s = 0.0
    for c in range(n_out):
        e = np.exp(buf[off_z + c] - zmax)
        buf[off_z + c] = e
        s += e
    for u in range(h):
        buf[off_d + u] = 0.0
    for c in range(n_out):
        dz = buf[off_z + c] / s
        if c == label:
            dz -= 1.0
        buf[off_z + c] = dz
        g[off_b2 + c] += dz
        for u in range(h):
            g[off_w2 + c * h + u] += dz * buf[u]
            buf[off_d + u] += dz * w[r, off_w2 + c * h + u]
    for u in range(h):
        tu = buf[u]
        delta = (1.0 - tu * tu) * buf[off_d + u]
        g[off_b1 + u] += delta
        for k in range(p_in):
            g[u * p_in + k] += delta * X[i, k]
    return zmax + np.log(s) - zlab


def _batch_grad_of(model: int):
    """The batch gradient of problems of kind ``model`` (``_LEAST_SQUARES``, ...): an inlined
    njit function ``batch_grad(X, y, lam, n_in, width, sampler, b, ibuf, base, w, r, hid, g)``
    that sets g = the gradient at w[r] over one batch: samples ``ibuf[base:base + b]``, or
    0 .. b - 1 (all of them, in order) for the full sampler. g is averaged over the b samples:
      linear models: g = 1/b sum_i phi'(x_i . w, y_i) x_i + lam w, with phi'(z, y) = z - y
      (least squares), (z - y)^3 (quartic) or -y expit(-y z) (logistic; expit(u) =
      1 / (1 + exp(-u)) as in scipy);
      tanh network (layout of convstudy/problems/networks.py): yhat = sum_u a_u
      tanh(v_u . x + c_u) + a0, e = yhat - y, delta_u = e a_u (1 - t_u^2) and per sample
      dV_uk = delta_u x_k, dc_u = delta_u, da_u = e t_u, da0 = e;
      softmax MLP classifier: :func:`_mlp_add_sample_grad`, with K = (d - h (p + 1)) / (h + 1)
      classes (from d = h p + h + K h + K). ``hid`` holds at least d floats.

    ``model`` is a constant of the closure, so numba prunes the other kinds' branches before it
    types them: a rule's least-squares kernel compiled in 5.8 s instead of 9.7 s with every
    kind's gradient code typed (the machine code was already the same).
    """

    @njit(inline="always")
    def batch_grad(X, y, lam, n_in, width, sampler, b, ibuf, base, w, r, hid, g):
        """g = the gradient at w[r] over one batch (:func:`_batch_grad_of`)."""
        d = w.shape[1]
        h, p_in = width, n_in
        off_c, off_a, off_a0 = h * p_in, h * p_in + h, h * p_in + 2 * h
        n_out = (d - h * (p_in + 1)) // (h + 1)
        if model == _TANH_NETWORK or model == _MLP_CLASSIFIER:
            for j in range(d):
                g[j] = 0.0
        for q in range(b):
            i = q if sampler == _FULL else ibuf[base + q]
            if model == _TANH_NETWORK:
                _tanh_add_sample_grad(X, y, i, w, r, h, p_in, off_c, off_a, off_a0, hid, g)
            elif model == _MLP_CLASSIFIER:
                _mlp_add_sample_grad(
                    X, y, i, w, r, h, p_in, n_out, off_c, off_a, off_a + n_out * h, hid, g
                )
            else:
                z = _margin(X, i, w, r, d)
                if model == _LEAST_SQUARES:
                    dphi = z - y[i]
                elif model == _QUARTIC:
                    e = z - y[i]
                    dphi = e * e * e
                else:
                    dphi = -y[i] * (1.0 / (1.0 + np.exp(y[i] * z)))
                if q == 0:
                    for j in range(d):
                        g[j] = dphi * X[i, j]
                else:
                    for j in range(d):
                        g[j] += dphi * X[i, j]
        if b > 1:
            for j in range(d):
                g[j] = g[j] / b
        if lam != 0.0:
            for j in range(d):
                g[j] = g[j] + lam * w[r, j]

    return batch_grad


BATCH_GRADS = tuple(_batch_grad_of(kind) for kind in range(len(_KIND_NAMES)))


# ---- a kernel per rule, generated from it ---------------------------------------------------
# The step kernel of a rule. Each parallel task runs a pair of replicates (the second may be
# missing or frozen), advanced alternately step by step, so that their dependency chains (the
# gradient, the rule's square roots and divisions, the next gradient at the new parameters)
# overlap in the processor; each replicate's own operations are those it would run alone. A
# replicate draws the indices of ``fill`` steps at a time (_fill_indices); then each step
# computes its gradient (``batch_grad_<kind>``: :func:`_batch_grad_of` the kernel's kind), and
# ``step`` takes the step's factors (factors[t] = the rule's step_factors, or lr) and applies
# the rule to every coordinate, in place. A replicate whose gradient or new parameters are not
# all finite is frozen (active = False) and makes no further step or draw. State fields and
# hyper-parameters are passed by name (s_<field>, h_<name>). The module has one kernel per
# problem kind, ``RUNS[kind]``, with that kind's gradient code only, and only the kernels of
# the kinds that run are compiled. (With the four models in one kernel, its register pressure
# made the pair of replicates slower than one replicate per task.)
_KERNEL_SOURCE = '''\
"""Step kernel of the update rule {name!r} ({origin}).

Generated by convstudy._fast from the rule; do not edit (digest {digest}). ``_rule_update``,
the rule's update function, is set on this module before it runs.
"""

import numpy as np
from numba import njit, prange

from convstudy._fast import _FULL, BATCH_GRADS, _fill_indices

rule = njit(inline="always", error_model="numpy")(_rule_update)


@njit(inline="always", error_model="numpy")
def step(w, r, g, c, factors, t{params}):
    """Update c (the replicate's c-th) of replicate r, with gradient g; False if it made w or g
    non-finite."""
    d = w.shape[1]
{factor_lines}
    ok = True
    for j in range(d):
        gj = g[j]
        {outputs} = rule(
            gj, w[r, j], c, {arguments}
        )
        ok &= np.isfinite(gj) & np.isfinite(new_w)
        w[r, j] = new_w
{state_lines}
    return ok


{runs}

RUNS = ({run_names})
'''

# The kernel of one problem kind in the module of _KERNEL_SOURCE.
_RUN_TEMPLATE = """
batch_grad_{kind} = BATCH_GRADS[{kind}]  # {kind_name}


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def run_{kind}(
    X, y, lam, n_in, width, sampler, b, idx, row0, rs, perm, pos, factors, w, count,
    active, fill{params}
):
    n_rep, d = w.shape
    n = X.shape[0]
    n_steps = factors.shape[0]
    for pair in prange((n_rep + 1) // 2):
        ra, rb = 2 * pair, min(2 * pair + 1, n_rep - 1)
        alive_a = active[ra]
        alive_b = rb > ra and active[rb]
        if not (alive_a or alive_b):
            continue
        g_a, g_b = np.empty(d), np.empty(d)
        hid_a, hid_b = np.empty(d + 1), np.empty(d + 1)
        size = 1 if sampler == _FULL else fill * b
        ibuf_a, ibuf_b = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
        c_a, c_b = count[ra], count[rb]
        t0 = 0
        while (alive_a or alive_b) and t0 < n_steps:
            steps = min(fill, n_steps - t0)
            if sampler != _FULL:
                row, count_ = row0 + t0, steps * b
                if alive_a:
                    _fill_indices(sampler, ra, ibuf_a, count_, rs, perm, pos, idx, row, b, n)
                if alive_b:
                    _fill_indices(sampler, rb, ibuf_b, count_, rs, perm, pos, idx, row, b, n)
            for t in range(t0, t0 + steps):
                base = (t - t0) * b
                if alive_a:
                    c_a += 1
                    batch_grad_{kind}(
                        X, y, lam, n_in, width, sampler, b, ibuf_a, base, w, ra, hid_a, g_a
                    )
                    alive_a = step(w, ra, g_a, c_a, factors, t{params})
                if alive_b:
                    c_b += 1
                    batch_grad_{kind}(
                        X, y, lam, n_in, width, sampler, b, ibuf_b, base, w, rb, hid_b, g_b
                    )
                    alive_b = step(w, rb, g_b, c_b, factors, t{params})
            t0 += steps
        count[ra], active[ra] = c_a, alive_a
        if rb > ra:
            count[rb], active[rb] = c_b, alive_b
"""


def _kernel_source(rule: Rule, digest: str) -> str:
    """The generated module of ``rule``'s step kernels (see ``_KERNEL_SOURCE``)."""
    pad = " " * 4
    factors = [f"f_{k}" for k in range(len(rule.factor_names))]
    origin = f"{getattr(rule.update, '__module__', '?')}.{rule.update.__qualname__}"
    names = [f"s_{f}" for f in rule.state] + [f"h_{h}" for h in rule.update_hyperparams]
    params = "".join(f", {v}" for v in names)
    runs = "\n\n".join(
        _RUN_TEMPLATE.format(kind=kind, kind_name=name, params=params)
        for kind, name in enumerate(_KIND_NAMES)
    )
    return _KERNEL_SOURCE.format(
        name=rule.name,
        origin=origin,
        digest=digest,
        params=params,
        factor_lines="\n".join(f"{pad}{f} = factors[t, {k}]" for k, f in enumerate(factors)),
        outputs=", ".join(["new_w", *(f"n_{f}" for f in rule.state)]) + ",",
        arguments=", ".join(
            [*factors, *(f"s_{f}[r, j]" for f in rule.state)]
            + [f"h_{h}" for h in rule.update_hyperparams]
        ),
        state_lines="\n".join(f"{pad}    s_{f}[r, j] = n_{f}" for f in rule.state),
        runs=runs,
        run_names="".join(f"run_{kind}, " for kind in range(len(_KIND_NAMES))),
    )


_LIBRARY_MODULES = ("numpy", "numba", "math", "cmath", "builtins")


def _is_library(obj: object) -> bool:
    name = obj.__name__ if isinstance(obj, pytypes.ModuleType) else None
    name = name or getattr(obj, "__module__", None) or type(obj).__module__
    return name.partition(".")[0] in _LIBRARY_MODULES


def _code_bytes(code: pytypes.CodeType) -> bytes:
    """The code object's instructions, names and constants (nested code included), in a form
    that does not change between processes."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames)).encode()]
    for const in code.co_consts:
        if isinstance(const, pytypes.CodeType):
            parts.append(_code_bytes(const))
        elif isinstance(const, frozenset):
            parts.append(repr(sorted(map(repr, const))).encode())
        else:
            parts.append(repr(const).encode())
    return b"\0".join(parts)


def _global_names(code: pytypes.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, pytypes.CodeType):
            names |= _global_names(const)
    return names


def _module_file_bytes(module_name: str | None) -> bytes:
    file = getattr(sys.modules.get(module_name or ""), "__file__", None)
    return Path(file).read_bytes() if file and os.path.isfile(file) else b""


def _what_numba_compiles(fn: object, seen: set) -> list[bytes]:
    """Bytes that pin down what numba compiles for ``fn``: its code, the values of the globals
    it reads (numba freezes them), its module's file, and the same for the functions (or njit
    functions) it calls, outside numpy and numba."""
    fn = getattr(fn, "py_func", fn)
    if not isinstance(fn, pytypes.FunctionType) or fn in seen:
        return []
    seen.add(fn)
    out = [_code_bytes(fn.__code__), _module_file_bytes(fn.__module__)]
    cells = [c.cell_contents for c in fn.__closure__ or ()]
    names = sorted(_global_names(fn.__code__))
    for name, value in [*enumerate(cells), *((n, fn.__globals__.get(n)) for n in names)]:
        if isinstance(value, (bool, int, float, complex, str, bytes, tuple)):
            out.append(f"{name}={value!r}".encode())
        elif isinstance(value, np.ndarray):
            out.append(f"{name}={value.dtype}{value.shape}".encode() + value.tobytes())
        elif value is None or _is_library(value):
            continue
        elif isinstance(value, pytypes.ModuleType):
            out.append(_module_file_bytes(value.__name__))
        else:
            out += _what_numba_compiles(value, seen)
    return out


def _rule_digest(rule: Rule) -> str:
    """A digest of everything a rule's kernel is compiled from: the rule's code and what it
    calls and reads (:func:`_what_numba_compiles`), its layout (state, factors,
    hyper-parameters), this file (kernel template and inlined helpers) and the versions of
    numba, numpy and Python."""
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(f"{numba.__version__}|{np.__version__}|{sys.version}".encode())
    h.update(repr((rule.state, rule.factor_names, rule.update_hyperparams)).encode())
    for piece in _what_numba_compiles(rule.update, set()):
        h.update(hashlib.sha256(piece).digest())
    return h.hexdigest()


@functools.cache
def kernel_folder() -> Path:
    """Where generated rule kernels are written (numba caches their code beside them).

    ``$NUMBA_CACHE_DIR/convstudy_kernels`` when that variable is set; otherwise
    ``__pycache__/convstudy_kernels`` next to this file, or the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/convstudy/kernels`` when that is not writable; as a
    last resort a temporary folder (kernels then compile in every process).
    """
    candidates = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        candidates.append(Path(os.environ["NUMBA_CACHE_DIR"]) / "convstudy_kernels")
    candidates.append(Path(__file__).resolve().parent / "__pycache__" / "convstudy_kernels")
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    candidates.append(Path(user_cache) / "convstudy" / "kernels")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    return Path(tempfile.mkdtemp(prefix="convstudy_kernels_"))


def _write_source(path: Path, source: str) -> None:
    """Write ``path`` unless it already holds ``source``, atomically; a file another process
    wrote meanwhile is kept (rewriting it would change its time stamp, which numba's cache
    index checks)."""
    if path.is_file() and path.read_text() == source:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(source)
        if path.is_file():  # damaged: replace it
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_KERNELS: dict[str, tuple] = {}  # digest -> the generated kernels (numba dispatchers) by kind
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # rule -> its digest
_GENERATE = threading.Lock()


def step_kernel(rule: Rule, kind: int = _LEAST_SQUARES):
    """The compiled step kernel of ``rule`` for problems of ``kind`` (``_LEAST_SQUARES``, ...),
    a numba dispatcher, generated on first use.

    The kernels' module is written to :func:`kernel_folder` under a name carrying
    :func:`_rule_digest`, and imported with the rule's update function in its globals; numba
    compiles a kernel on its first call, or loads it from its on-disk cache.
    """
    with _GENERATE:
        digest = _DIGESTS.get(rule)
        if digest is None:
            digest = _DIGESTS[rule] = _rule_digest(rule)
        kernels = _KERNELS.get(digest)
        if kernels is None:
            stem = "".join(ch if ch.isalnum() else "_" for ch in rule.name).strip("_") or "rule"
            name = f"convstudy_kernel_{stem}_{digest[:24]}"
            path = kernel_folder() / f"{name}.py"
            _write_source(path, _kernel_source(rule, digest))
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            module._rule_update = rule.update
            sys.modules[name] = module
            spec.loader.exec_module(module)
            kernels = _KERNELS[digest] = module.RUNS
        return kernels[kind]


@njit(cache=True, parallel=True, nogil=True)
def _sgd_pairs(model, X, y, lam, sampler, idx, row0, rs, perm, pos, lrs, w, count, active, fill):
    """Plain SGD with one sample per step on a linear model, two replicates interleaved.

    The most common configuration has its own kernel: w <- w - lr (phi'(x_i . w, y_i) x_i
    + lam w): the SGD rule (:data:`convstudy.optim.rules.SGD`) with no momentum and no weight
    decay, the same operations as its generated kernel with b = 1. Each parallel
    task advances a pair of replicates step by step, so that the two dependency chains (dot
    product, then update, then the next dot product) overlap in the processor; the pair's
    parameters live in a local copy meanwhile. A missing or frozen partner computes on zeros
    and is not written back.

    Divergence is checked once, at the end of the segment: once a coordinate of w or the margin
    x . w is non-finite, every later update keeps w non-finite (inf - inf, 0 * inf and NaN give
    NaN), so the replicate is frozen at the same record as with a per-step check, and a frozen
    replicate's records are NaN either way.
    """
    n_rep, d = w.shape
    n = X.shape[0]
    n_steps = lrs.shape[0]
    for pair in prange((n_rep + 1) // 2):
        ra, rb = 2 * pair, 2 * pair + 1
        live_a = active[ra]
        live_b = rb < n_rep and active[rb]
        if not (live_a or live_b):
            continue
        wa = np.zeros(d)
        wb = np.zeros(d)
        ia = np.zeros(fill, dtype=np.int64)
        ib = np.zeros(fill, dtype=np.int64)
        for j in range(d):
            if live_a:
                wa[j] = w[ra, j]
            if live_b:
                wb[j] = w[rb, j]
        t0 = 0
        while t0 < n_steps:
            m = min(fill, n_steps - t0)
            if sampler != _FULL:
                if live_a:
                    _fill_indices(sampler, ra, ia, m, rs, perm, pos, idx, row0 + t0, 1, n)
                if live_b:
                    _fill_indices(sampler, rb, ib, m, rs, perm, pos, idx, row0 + t0, 1, n)
            for t in range(m):
                i, k = ia[t], ib[t]
                za = _dot(X, i * X.shape[1], wa, 0, d)
                zb = _dot(X, k * X.shape[1], wb, 0, d)
                if model == _LEAST_SQUARES:
                    da = za - y[i]
                    db = zb - y[k]
                else:
                    da = -y[i] * (1.0 / (1.0 + np.exp(y[i] * za)))
                    db = -y[k] * (1.0 / (1.0 + np.exp(y[k] * zb)))
                lr = lrs[t0 + t]
                if lam != 0.0:
                    for j in range(d):
                        wa[j] = wa[j] - lr * (da * X[i, j] + lam * wa[j])
                    for j in range(d):
                        wb[j] = wb[j] - lr * (db * X[k, j] + lam * wb[j])
                else:
                    for j in range(d):
                        wa[j] = wa[j] - lr * (da * X[i, j])
                    for j in range(d):
                        wb[j] = wb[j] - lr * (db * X[k, j])
            t0 += m
        for lane in range(2):
            r = ra if lane == 0 else rb
            if live_a if lane == 0 else live_b:
                ok = True
                for j in range(d):
                    value = wa[j] if lane == 0 else wb[j]
                    ok &= np.isfinite(value)
                    w[r, j] = value
                count[r] += n_steps
                active[r] = ok


@njit(cache=True, parallel=True, nogil=True)
def _full_loss_grad(model, X, y, lam, n_in, width, w, loss, grad_norm_sq):
    """f(w_r) and ||grad f(w_r)||^2 for every replicate, over all N samples (for the records).

    The same quantities as the problems' ``loss`` and ``grad``: least squares
    phi = (z - y)^2 / 2; quartic phi = (z - y)^4 / 4; logistic phi = log(1 + exp(-y z))
    (evaluated as numpy's logaddexp, without overflow); tanh network (yhat - y)^2 / 2; MLP
    classifier the softmax cross-entropy logsumexp(z) - z_y; plus lam ||w||^2 / 2 for linear
    models, averaged over the samples; gradients as in :func:`_batch_grad_of`. Each replicate is
    computed alone, so values never depend on the other replicates.
    """
    n_rep, d = w.shape
    n = X.shape[0]
    h, p_in = width, n_in
    off_c, off_a, off_a0 = h * p_in, h * p_in + h, h * p_in + 2 * h
    n_out = (d - h * (p_in + 1)) // (h + 1)
    for r in prange(n_rep):
        g = np.zeros(d)
        hid = np.empty(d + 1)
        total = 0.0
        for i in range(n):
            if model == _TANH_NETWORK:
                e = _tanh_add_sample_grad(X, y, i, w, r, h, p_in, off_c, off_a, off_a0, hid, g)
                total += 0.5 * e * e
            elif model == _MLP_CLASSIFIER:
                total += _mlp_add_sample_grad(
                    X, y, i, w, r, h, p_in, n_out, off_c, off_a, off_a + n_out * h, hid, g
                )
            else:
                z = _margin(X, i, w, r, d)
                if model == _LEAST_SQUARES:
                    dphi = z - y[i]
                    total += 0.5 * dphi * dphi
                elif model == _QUARTIC:
                    e = z - y[i]
                    total += 0.25 * (e * e) * (e * e)
                    dphi = e * e * e
                else:
                    u = -y[i] * z
                    total += u + np.log1p(np.exp(-u)) if u > 0 else np.log1p(np.exp(u))
                    dphi = -y[i] * (1.0 / (1.0 + np.exp(y[i] * z)))
                for j in range(d):
                    g[j] += dphi * X[i, j]
        ridge = 0.0
        norm = 0.0
        for j in range(d):
            ridge += w[r, j] * w[r, j]
            gj = g[j] / n + lam * w[r, j]
            norm += gj * gj
        loss[r] = total / n + 0.5 * lam * ridge
        grad_norm_sq[r] = norm


def _step_factors(rule: Rule, params: dict, etas: np.ndarray, k0: int) -> np.ndarray:
    """(n, n_factors) per-step factors of updates k0 .. k0 + n - 1: the rule's ``step_factors``
    (or the learning rate) at step numbers t = k0 + 1, ..., with the step sizes ``etas``.

    Every active replicate has made exactly k updates before update k (t = k + 1), so these
    factors are the same for all of them; they are computed by the rule's own numpy code, as on
    the numpy path.
    """
    t = np.arange(k0 + 1, k0 + 1 + etas.shape[0], dtype=np.int64)
    values = rule.factors(t, etas, params)
    out = np.empty((etas.shape[0], len(values)))
    for k, value in enumerate(values):
        out[:, k] = value
    return out


def sample_cost(model: int, d: int, n_in: int, width: int) -> int:
    """Multiply-add equivalents of one sample's loss and gradient: one per parameter, plus
    ``_MULTIPLY_ADDS_PER_TRANSCENDENTAL`` for each tanh, exp or log it takes (logistic: an exp
    and a log; tanh network: a tanh per hidden unit; MLP classifier: those, an exp per class
    and a log)."""
    transcendentals = {_LOGISTIC: 2, _TANH_NETWORK: width}.get(model, 0)
    if model == _MLP_CLASSIFIER:
        transcendentals = width + (d - width * (n_in + 1)) // (width + 1) + 1
    return d + _MULTIPLY_ADDS_PER_TRANSCENDENTAL * transcendentals


# The workqueue threading layer aborts on concurrent parallel launches from several threads
# (e.g. a threaded Dask worker): launches are serialised by this lock.
_LAUNCH = threading.Lock()


# ---- generator states -----------------------------------------------------------------------
def _read_states(rngs: list) -> np.ndarray:
    """(R, 6) uint64 PCG64 states of numpy generators (see ``_N_RNG``)."""
    out = np.empty((len(rngs), _N_RNG), dtype=np.uint64)
    mask = (1 << 64) - 1
    for r, rng in enumerate(rngs):
        st = rng.bit_generator.state
        if st["bit_generator"] != "PCG64":
            raise ValueError(f"compiled sampling needs PCG64 generators, got {st['bit_generator']}")
        s, inc = st["state"]["state"], st["state"]["inc"]
        out[r] = (s >> 64, s & mask, inc >> 64, inc & mask, st["has_uint32"], st["uinteger"])
    return out


def _write_states(rngs: list, states: np.ndarray) -> None:
    """Store compiled generator states back into the numpy generators."""
    for rng, row in zip(rngs, states):
        hi, lo, inc_hi, inc_lo, has32, uint = (int(v) for v in row)
        rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": (hi << 64) | lo, "inc": (inc_hi << 64) | inc_lo},
            "has_uint32": has32,
            "uinteger": uint,
        }


@functools.cache
def compiled_sampling_matches_numpy() -> bool:
    """True when the compiled reshuffle/replacement streams equal numpy's, bit for bit.

    Draws a few permutations and bounded integers (odd counts, so the buffered half-word is
    exercised, and sizes from 1 to above 2^16) from fresh generators both ways and compares the
    indices and the generators' final states. Run once per process.
    """
    for n in (1, 2, 3, 10, 2000, 70_001):
        for seed in (0, 12345):
            ref = np.random.Generator(np.random.PCG64(seed))
            perms = np.concatenate([ref.permutation(n) for _ in range(3)])
            ints = np.concatenate([ref.integers(0, n, size=k) for k in (5, 8, 1)])
            mine = np.random.Generator(np.random.PCG64(seed))
            rs = _read_states([mine])
            perm = np.empty((1, n), dtype=np.int32)
            pos = np.full(1, n, dtype=np.int64)
            got_perms = _draw_indices(_RESHUFFLE, rs, perm, pos, n, 3 * n)
            got_ints = _draw_indices(_REPLACEMENT, rs, perm, pos, n, 14)
            _write_states([mine], rs)
            if not (
                np.array_equal(perms, got_perms)
                and np.array_equal(ints, got_ints)
                and mine.bit_generator.state == ref.bit_generator.state
            ):
                return False
    return True


# ---- numpy-drawn index blocks (fallback) ----------------------------------------------------
class IndexBlocks:
    """Replicate-major (R, T, b) int32 index blocks drawn by the numpy generators themselves.

    Block m holds updates m T .. (m + 1) T - 1, T = ``block_updates(b)``; each replicate's rows
    come from the same ``Sampler.draw(stream, N, b, T)`` call on the same generator as in
    :func:`~convstudy.sampling.batch_stream`, so the batches are identical; only the storage
    order differs. One buffer is reused, so memory stays at R T b indices. Used when
    :func:`compiled_sampling_matches_numpy` is False.
    """

    def __init__(self, sampler: Sampler, rngs: list, n_samples: int, batch_size: int):
        self.sampler, self.n_samples, self.batch_size = sampler, n_samples, batch_size
        self.n_updates = block_updates(batch_size)
        self.streams = [_Stream(rng) for rng in rngs]
        self.buffer = np.empty((len(rngs), self.n_updates, batch_size), dtype=np.int32)
        self.index = -1  # number of the block in the buffer

    def block(self, number: int) -> np.ndarray:
        """The buffer holding block ``number`` (blocks must be requested in order)."""
        if number != self.index:
            if number != self.index + 1:
                raise RuntimeError("index blocks must be drawn in order")
            n, b, t = self.n_samples, self.batch_size, self.n_updates
            for r, stream in enumerate(self.streams):
                self.buffer[r] = self.sampler.draw(stream, n, b, t)
            self.index = number
        return self.buffer


# ---- the stepper ----------------------------------------------------------------------------
class FastStepper:
    """Advance all replicates between record points with the compiled kernels.

    Holds the (R, d) parameters ``w``, the optimizer state (one (R, d) array per state field of
    the rule), the sampler state and per-replicate generator states; the engine records from
    ``w`` and may clear entries of ``active`` (divergence bound), which freezes those replicates
    for the kernels too. ``sampling`` says where the indices come from: ``"compiled"`` (drawn in
    the kernels), ``"numpy blocks"`` (fallback) or ``"none"`` (full batch, cyclic).
    """

    def __init__(
        self,
        problem: Problem,
        optimizer: Optimizer,
        sampler: Sampler,
        batch_size: int,
        w: np.ndarray,
        state,
        etas: np.ndarray,
        sample_rngs: list,
    ):
        reason = unsupported_reason(problem, optimizer, sampler)
        if reason is not None:
            raise ValueError(reason)
        self.kind = _problem_kind(problem)
        self.problem = problem
        self.optimizer = optimizer
        self.rule, self.params = _rule_of(optimizer)
        self.hp = tuple(self.params[h] for h in self.rule.update_hyperparams)
        # plain SGD: the SGD rule with no momentum and no weight decay is w <- w - lr g
        self.plain_sgd = (
            self.rule is SGD
            and self.params["momentum"] == 0.0
            and self.params["weight_decay"] == 0.0
        )
        self.w = np.array(w, dtype=np.float64, order="C")
        n_rep, d = self.w.shape
        n = problem.n_samples
        self.fields = [
            np.array(np.broadcast_to(getattr(state, f), (n_rep, d)), dtype=np.float64, order="C")
            for f in self.rule.state
        ]
        self.count = np.array(state.count, dtype=np.int64)
        self.etas = np.ascontiguousarray(etas, dtype=np.float64)
        self.batch_size = batch_size
        self.rngs = sample_rngs
        self.sampler_code = _SAMPLER_CODES[sampler.name]
        self.idx = np.zeros((1, 1, 1), dtype=np.int32)
        self.rs = np.zeros((n_rep, _N_RNG), dtype=np.uint64)
        self.perm = np.zeros((1, 1), dtype=np.int32)
        self.pos = np.zeros(n_rep, dtype=np.int64)
        self.blocks = None
        self.sampling = "none"
        if sampler.name in ("reshuffle", "replacement"):
            if compiled_sampling_matches_numpy():
                self.sampling = "compiled"
                self.rs = _read_states(sample_rngs)
                if sampler.name == "reshuffle":
                    self.perm = np.empty((n_rep, n), dtype=np.int32)
                    self.pos[:] = n  # no permutation drawn yet
            else:
                self.sampling = "numpy blocks"
                self.sampler_code = _BLOCKS
                self.blocks = IndexBlocks(sampler, sample_rngs, n, batch_size)
        self.b = n if sampler.name == "full" else batch_size
        self.X = np.ascontiguousarray(problem.X, dtype=np.float64)
        self.y = np.ascontiguousarray(problem.y, dtype=np.float64)
        if self.kind == "tanh_network":
            self.model, self.lam = _TANH_NETWORK, 0.0
            self.n_in, self.width = problem.n_inputs, problem.width
        elif self.kind == "mlp_classifier":
            self.model, self.lam = _MLP_CLASSIFIER, 0.0
            self.n_in, self.width = problem.n_inputs, problem.width
        elif self.kind == "quartic_regression":
            self.model, self.lam, self.n_in, self.width = _QUARTIC, 0.0, 0, 0
        else:
            self.model = _LEAST_SQUARES if self.kind == "least_squares" else _LOGISTIC
            self.lam, self.n_in, self.width = float(problem.lam), 0, 0
        self.sample_cost = sample_cost(self.model, d, self.n_in, self.width)
        self.kernel = step_kernel(self.rule, self.model)
        self.kernel_seconds = 0.0

    def _threads(self, tasks: int, updates: int) -> int:
        """Threads for a launch of ``tasks`` parallel tasks running ``updates`` updates each.

        A thread is worth starting only for about ``_WORK_PER_THREAD`` multiply-adds (a
        sample's gradient costs ``sample_cost`` of them): below that, waking and joining
        threads costs more than it saves, and a thread waiting for a core held by another
        process stalls the whole launch (measured in ``benchmarks/contention.py``). Never
        more than the cores this process may use, nor than the limit set by ``--threads`` (1
        in worker processes of a parallel run).
        """
        work = tasks * max(updates, 1) * self.b * self.sample_cost
        wanted = max(1, work // _WORK_PER_THREAD)
        return int(min(wanted, tasks, thread_limit(), numba.config.NUMBA_NUM_THREADS))

    def _launch(self, row0: int, k0: int, k1: int, active: np.ndarray) -> None:
        """Run updates k0 .. k1 - 1 (rows row0.. of the index block, if any) in one kernel."""
        t0 = time.perf_counter()
        pairs = self.plain_sgd and self.b == 1 and self.model in (_LEAST_SQUARES, _LOGISTIC)
        tasks = (self.w.shape[0] + 1) // 2 if pairs else self.w.shape[0]
        threads = self._threads(tasks, k1 - k0)
        # Dynamic scheduling in chunks of ~1/8 of a thread's share: a thread slowed down by
        # another process no longer holds up the launch.
        chunk = max(1, tasks // (8 * threads))
        with _LAUNCH, numba.parallel_chunksize(chunk):
            numba.set_num_threads(threads)
            if pairs:
                _sgd_pairs(
                    self.model, self.X, self.y, self.lam, self.sampler_code, self.idx, row0,
                    self.rs, self.perm, self.pos, self.etas[k0:k1], self.w, self.count,
                    active, _INDICES_PER_FILL,
                )  # fmt: skip
            else:
                factors = _step_factors(self.rule, self.params, self.etas[k0:k1], k0)
                try:
                    self.kernel(
                        self.X, self.y, self.lam, self.n_in, self.width,
                        self.sampler_code, self.b, self.idx, row0, self.rs, self.perm,
                        self.pos, factors, self.w, self.count, active, _steps_per_fill(self.b),
                        *self.fields, *self.hp,
                    )  # fmt: skip
                except TypingError as exc:
                    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
                    raise ValueError(
                        f"The update rule {self.rule.name!r} of optimizer "
                        f"{self.optimizer.name!r} cannot be compiled by numba ({text[:300]}); "
                        "write it with the operations convstudy.optim.base lists, or use "
                        "engine='numpy'."
                    ) from exc
        self.kernel_seconds += time.perf_counter() - t0

    def loss_and_grad_norm_sq(self) -> tuple[np.ndarray, np.ndarray]:
        """f(w_r) and ||grad f(w_r)||^2 of every replicate, compiled (:func:`_full_loss_grad`).

        When every replicate holds the same parameters, bit for bit (the usual start, from the
        problem's initial point or one given w0), they are computed once: a replicate's values
        depend on its parameters alone, so the copies are what each would compute. That is
        half the recording work of a run recorded only at its ends. One row runs on one thread.
        """
        n_rep = self.w.shape[0]
        bits = self.w.view(np.uint64)
        if n_rep > 1 and (bits == bits[0]).all():
            loss, norm = self._full_loss_grad(self.w[:1], threads=1)
            return np.repeat(loss, n_rep), np.repeat(norm, n_rep)
        return self._full_loss_grad(self.w, self._threads(n_rep, self.X.shape[0] // max(self.b, 1)))

    def _full_loss_grad(self, w: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
        loss, norm = np.empty(w.shape[0]), np.empty(w.shape[0])
        with _LAUNCH:
            numba.set_num_threads(threads)
            _full_loss_grad(
                self.model, self.X, self.y, self.lam, self.n_in, self.width, w, loss, norm
            )
        return loss, norm

    def advance(self, k_from: int, k_to: int, active: np.ndarray) -> None:
        """Run updates k_from .. k_to - 1 (``active`` is updated in place).

        At most ``_STEPS_PER_LAUNCH`` updates per kernel launch, so the per-step factors of a
        launch take bounded memory however far apart two records are.
        """
        if self.blocks is None:
            for k in range(k_from, k_to, _STEPS_PER_LAUNCH):
                self._launch(0, k, min(k + _STEPS_PER_LAUNCH, k_to), active)
            return
        k, t = k_from, self.blocks.n_updates
        while k < k_to:
            row0 = k % t
            n = min(k_to - k, t - row0)
            self.idx = self.blocks.block(k // t)
            self._launch(row0, k, k + n, active)
            k += n

    def close(self) -> None:
        self.blocks = None


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the kernels of plain SGD, the records and the
    sampling; return the seconds it took.

    Also runs the once-per-process check of the compiled sampling streams.
    """
    t0 = time.perf_counter()
    rs = _read_states([np.random.Generator(np.random.PCG64(0))])
    X, y, idx = np.zeros((3, 2)), np.ones(3), np.zeros((1, 1, 1), dtype=np.int32)
    perm, pos = np.zeros((1, 3), np.int32), np.zeros(1, dtype=np.int64)
    count, active = np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.bool_)
    sgd = get_optimizer("sgd")
    hp = tuple(sgd.update.params[h] for h in SGD.update_hyperparams)
    step_kernel(SGD, _LEAST_SQUARES)(
        X, y, 0.0, 0, 0, _REPLACEMENT, 1, idx, 0, rs, perm, pos,
        np.full((1, 1), 0.1), np.zeros((1, 2)), count, active, 1, np.zeros((1, 2)), *hp,
    )  # fmt: skip
    _sgd_pairs(
        _LEAST_SQUARES, X, y, 0.0, _REPLACEMENT, idx, 0, rs, perm, pos, np.full(1, 0.1),
        np.zeros((1, 2)), count, active, 1,
    )  # fmt: skip
    _full_loss_grad(_LEAST_SQUARES, X, y, 0.0, 0, 0, np.zeros((1, 2)), np.zeros(1), np.zeros(1))
    compiled_sampling_matches_numpy()
    return time.perf_counter() - t0


def kernel_cache_misses() -> int:
    """How many kernel compilations this process made (numba on-disk cache misses), over the
    fixed kernels and the rule kernels generated so far."""
    kernels = [_sgd_pairs, _full_loss_grad, _fill_indices, _shuffle_row, _draw_indices]
    kernels += [kernel for runs in _KERNELS.values() for kernel in runs]
    return sum(sum(k.stats.cache_misses.values()) for k in kernels)


def threading_layer() -> str:
    """The numba threading layer in use (after a parallel kernel has run)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return "not initialised"
