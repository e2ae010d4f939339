"""The compiled fast path of :func:`convstudy.engine.simulate` (numba kernels).

The numpy engine advances R replicates in lockstep with whole-array operations, one Python
iteration per update. Here one compiled kernel runs every update between two record points for
all replicates, in parallel over replicates (``numba.prange``): each replicate keeps its
parameters and optimizer state in cache and walks through its own minibatches.

What stays the same as the numpy path (tested to 1e-12 relative in ``tests/test_fast_path.py``):

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
- **Step sizes.** The schedule is evaluated in numpy (``schedule(np.arange(n_steps))``) by the
  engine; per-step factors that depend only on the step count (Adam's bias corrections, Adagrad's
  ``lr_decay``) are computed in numpy with the same expressions as :mod:`convstudy.optim`, since
  every active replicate has made exactly k updates at step k.
- **Update rules.** Each rule of :mod:`convstudy.optim` is written out per coordinate with the
  same operations in the same order (``fastmath=False``), so results agree with the numpy rule to
  rounding; only sums over coordinates and samples add in a different order (the dot products
  use four partial sums).
- **Divergence.** An update that makes a replicate's gradient or new parameters non-finite
  freezes it (``active[r] = False``) and it never moves again. Its parameters and optimizer
  state then hold that last update (the numpy path keeps the previous ones): nothing observes
  them, since every record of a diverged replicate is NaN.

Supported: least squares (:class:`~convstudy.problems.LeastSquares`, ``Quadratic``, ``Ridge``),
:class:`~convstudy.problems.Logistic` and the one-hidden-layer tanh networks (``TanhNetwork``,
``TeacherStudent``) unless a subclass overrides the loss or its gradient; every built-in
optimizer (recognised by the factory that built it, hyper-parameters read from
``Optimizer.hyperparams``), schedule and sampler. Anything else runs on the numpy path.

Kernels are compiled once per machine and cached on disk (``cache=True``); a second process
loads them instead of compiling (:func:`warm_up` reports the time either takes).
"""

from __future__ import annotations

import functools
import threading
import time

import numba
import numpy as np
from numba import njit, prange

from .optim import Optimizer
from .problems.base import Problem
from .problems.linear import LeastSquares, Logistic, _LinearModel
from .problems.networks import _OneHiddenLayerTanh
from .sampling import Sampler, _Stream, block_updates

__all__ = [
    "unsupported_reason",
    "FastStepper",
    "IndexBlocks",
    "compiled_sampling_matches_numpy",
    "warm_up",
    "threading_layer",
    "OPTIMIZER_CODES",
]

# ---- optimizer encoding ---------------------------------------------------------------------
# code -> rule; hp is a float64 vector of 8 hyper-parameters, hp[7] is always weight_decay.
_SGD, _MOMENTUM, _ADAGRAD, _RMSPROP, _ADAM, _RPROP = 0, 1, 2, 3, 4, 5
_N_HP = 8

# The factory that built an optimizer, read from its update function's qualified name.
_FACTORIES = {
    "_make_sgd.<locals>.update": "sgd",
    "adagrad.<locals>.update": "adagrad",
    "rmsprop.<locals>.update": "rmsprop",
    "_make_adam.<locals>.update": "adam",
    "rprop.<locals>.update": "rprop",
}
OPTIMIZER_CODES = {
    "sgd": "sgd",
    "momentum": "sgd",
    "nesterov": "sgd",
    "adagrad": "adagrad",
    "rmsprop": "rmsprop",
    "adam": "adam",
    "amsgrad": "adam",
    "rprop": "rprop",
}


def _factory(optimizer: Optimizer) -> str | None:
    update = optimizer.update
    if getattr(update, "__module__", None) != "convstudy.optim":
        return None
    family = _FACTORIES.get(getattr(update, "__qualname__", ""))
    if family is None or OPTIMIZER_CODES.get(optimizer.name) != family:
        return None
    return family


def _encode_optimizer(optimizer: Optimizer) -> tuple[int, np.ndarray]:
    """(rule code, hyper-parameter vector) of a built-in optimizer."""
    family = _factory(optimizer)
    hp = dict(optimizer.hyperparams)
    vec = np.zeros(_N_HP)
    vec[7] = hp.get("weight_decay", 0.0)
    if family == "sgd":
        mu = hp.get("momentum", 0.0)
        vec[0], vec[1] = mu, hp.get("dampening", 0.0)
        vec[2] = float(hp.get("nesterov", optimizer.name == "nesterov"))
        return (_SGD if mu == 0.0 else _MOMENTUM), vec
    if family == "adagrad":
        vec[0], vec[1] = hp["lr_decay"], hp["eps"]
        return _ADAGRAD, vec
    if family == "rmsprop":
        vec[0], vec[1], vec[2], vec[3] = hp["alpha"], hp["eps"], hp["momentum"], hp["centered"]
        return _RMSPROP, vec
    if family == "adam":
        vec[0], vec[1], vec[2] = hp["beta1"], hp["beta2"], hp["eps"]
        vec[3] = float(hp.get("amsgrad", optimizer.name == "amsgrad"))
        vec[4] = float(hp["bias_correction"])
        return _ADAM, vec
    if family == "rprop":
        vec[0], vec[1] = hp["eta_minus"], hp["eta_plus"]
        vec[2], vec[3] = hp["step_size_min"], hp["step_size_max"]
        return _RPROP, vec
    raise ValueError(f"optimizer {optimizer.name!r} has no compiled rule")


# ---- problem encoding -----------------------------------------------------------------------
_LEAST_SQUARES, _LOGISTIC = 0, 1
# methods whose numpy definitions the kernels reproduce; overriding any of them opts out
_LINEAR_METHODS = ("batch_grad", "grad", "loss", "sample_grads", "_margins", "_ridge_term")
_NETWORK_METHODS = ("batch_grad", "grad", "loss", "_mean_grad", "_backward", "_forward")


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
    return None


def unsupported_reason(problem: Problem, optimizer: Optimizer, sampler: Sampler) -> str | None:
    """Why the fast path cannot run this combination, or ``None`` when it can."""
    if _problem_kind(problem) is None:
        return (
            f"problem {type(problem).__name__} ({problem.name!r}) has no compiled kernel; the "
            "fast path covers LeastSquares/Quadratic/Ridge, Logistic, TanhNetwork and "
            "TeacherStudent (without overridden loss or gradient methods)"
        )
    if _factory(optimizer) is None:
        return (
            f"optimizer {optimizer.name!r} is not one built by convstudy.optim's factories; the "
            f"fast path covers {sorted(OPTIMIZER_CODES)}"
        )
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


@njit(inline="always")
def _mul_64x64(a, b):
    """Full 128-bit product (hi, lo) of two uint64 (schoolbook on 32-bit halves)."""
    a_lo, a_hi = a & _MASK32, a >> _U32
    b_lo, b_hi = b & _MASK32, b >> _U32
    t = a_lo * b_lo
    w0 = t & _MASK32
    t = a_hi * b_lo + (t >> _U32)
    w1 = t & _MASK32
    w2 = t >> _U32
    t = a_lo * b_hi + w1
    return a_hi * b_hi + w2 + (t >> _U32), (t << _U32) + w0


@njit(inline="always")
def _pcg64_next64(rs, r):
    """PCG64 (XSL-RR 128/64): state = state * M + inc (mod 2^128), output of the new state."""
    s_hi, s_lo = rs[r, 0], rs[r, 1]
    hi, lo = _mul_64x64(s_lo, _MULT_LO)
    hi = hi + s_hi * _MULT_LO + s_lo * _MULT_HI
    lo2 = lo + rs[r, 3]
    hi = hi + rs[r, 2] + (_U1 if lo2 < lo else _U0)
    rs[r, 0], rs[r, 1] = hi, lo2
    x = hi ^ lo2
    rot = hi >> _U58
    return (x >> rot) | (x << ((_U64 - rot) & _U63))


@njit(inline="always")
def _next_uint32(rs, r):
    """numpy's pcg64_next32: the low half of a 64-bit draw, the high half kept for next time."""
    if rs[r, 4] != _U0:
        rs[r, 4] = _U0
        return rs[r, 5]
    value = _pcg64_next64(rs, r)
    rs[r, 4] = _U1
    rs[r, 5] = value >> _U32
    return value & _MASK32


@njit(inline="always")
def _random_interval(rs, r, upper):
    """numpy's random_interval: uniform on {0..upper} by masked rejection (upper < 2^32)."""
    if upper == _U0:
        return _U0
    mask = upper
    mask |= mask >> np.uint64(1)
    mask |= mask >> np.uint64(2)
    mask |= mask >> np.uint64(4)
    mask |= mask >> np.uint64(8)
    mask |= mask >> np.uint64(16)
    mask |= mask >> _U32
    value = _next_uint32(rs, r) & mask
    while value > upper:
        value = _next_uint32(rs, r) & mask
    return value


@njit(inline="always")
def _bounded_lemire(rs, r, rng):
    """numpy's buffered_bounded_lemire_uint32: uniform on {0..rng}, 0 < rng < 2^32 - 1."""
    rng_excl = rng + _U1
    m = _next_uint32(rs, r) * rng_excl
    leftover = m & _MASK32
    if leftover < rng_excl:
        threshold = (_MASK32 - rng) % rng_excl
        while leftover < threshold:
            m = _next_uint32(rs, r) * rng_excl
            leftover = m & _MASK32
    return m >> _U32


@njit(inline="always")
def _next_index(sampler, rs, perm, pos, r, n):
    """Replicate r's next sample index under a random or cyclic sampler.

    reshuffle: successive ``permutation(n)`` (a shuffle of arange(n): for i = n-1..1 swap x[i]
    with x[random_interval(i)]); replacement: ``integers(0, n)`` (no draw when n == 1);
    cyclic: 0, 1, ..., n-1, 0, ...
    """
    if sampler == _REPLACEMENT:
        if n == 1:
            return np.int64(0)
        return np.int64(_bounded_lemire(rs, r, np.uint64(n - 1)))
    p = pos[r]
    if sampler == _RESHUFFLE:
        if p == n:
            for i in range(n):
                perm[r, i] = i
            for i in range(n - 1, 0, -1):
                j = np.int64(_random_interval(rs, r, np.uint64(i)))
                tmp = perm[r, j]
                perm[r, j] = perm[r, i]
                perm[r, i] = tmp
            p = 0
        pos[r] = p + 1
        return np.int64(perm[r, p])
    pos[r] = p + 1 if p + 1 < n else 0
    return np.int64(p)


@njit(inline="always")
def _sample(sampler, q, idx, r, row, rs, perm, pos, n):
    """Index of the q-th sample of replicate r's current batch."""
    if sampler == _FULL:
        return np.int64(q)
    if sampler == _BLOCKS:
        return np.int64(idx[r, row, q])
    return _next_index(sampler, rs, perm, pos, r, n)


@njit(cache=True, nogil=True)
def _draw_indices(sampler, rs, perm, pos, n, count):
    """The next ``count`` indices of replicate 0 (for checking the stream against numpy)."""
    out = np.empty(count, dtype=np.int64)
    for k in range(count):
        out[k] = _next_index(sampler, rs, perm, pos, 0, n)
    return out


# ---- update rules ---------------------------------------------------------------------------
@njit(inline="always")
def _optimizer_step(code, hp, g, w, r, count, s1, s2, s3, lr, aux):
    """Apply one update of rule ``code`` to replicate r in place; False if anything non-finite.

    ``g`` holds the problem's gradient; weight decay is added here, as in :mod:`convstudy.optim`.
    ``lr`` is the step's factor (eta_k; Adagrad's eta_k / (1 + k lr_decay); Adam's
    eta_k / (1 - beta1^(k+1)) with bias correction) and ``aux`` Adam's sqrt(1 - beta2^(k+1)).
    State rows: sgd (s1 = momentum_buffer); adagrad (s1 = sum); rmsprop (s1 = square_avg,
    s2 = grad_avg, s3 = momentum_buffer); adam (s1 = exp_avg, s2 = exp_avg_sq,
    s3 = max_exp_avg_sq); rprop (s1 = prev, s2 = step_size).
    """
    d = g.shape[0]
    ok = True
    wd = hp[7]
    c = count[r]
    if code == _SGD:
        for j in range(d):
            gj = g[j]
            if wd != 0.0:
                gj = gj + wd * w[r, j]
            new = w[r, j] - lr * gj
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    elif code == _MOMENTUM:
        mu, tau, nest = hp[0], hp[1], hp[2] > 0.5
        for j in range(d):
            gj = g[j]
            if wd != 0.0:
                gj = gj + wd * w[r, j]
            buf = gj if c == 0 else mu * s1[r, j] + (1.0 - tau) * gj
            s1[r, j] = buf
            new = w[r, j] - lr * (gj + mu * buf if nest else buf)
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    elif code == _ADAGRAD:
        eps = hp[1]
        for j in range(d):
            gj = g[j]
            if wd != 0.0:
                gj = gj + wd * w[r, j]
            s = s1[r, j] + gj * gj
            s1[r, j] = s
            new = w[r, j] - lr * gj / (np.sqrt(s) + eps)
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    elif code == _RMSPROP:
        a, eps, mu, centered = hp[0], hp[1], hp[2], hp[3] > 0.5
        for j in range(d):
            gj = g[j]
            if wd != 0.0:
                gj = gj + wd * w[r, j]
            v = a * s1[r, j] + (1.0 - a) * (gj * gj)
            s1[r, j] = v
            if centered:
                gbar = a * s2[r, j] + (1.0 - a) * gj
                s2[r, j] = gbar
                denom = np.sqrt(max(v - gbar * gbar, 0.0)) + eps
            else:
                denom = np.sqrt(v) + eps
            if mu > 0.0:
                buf = mu * s3[r, j] + gj / denom
                s3[r, j] = buf
                new = w[r, j] - lr * buf
            else:
                new = w[r, j] - lr * (gj / denom)
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    elif code == _ADAM:
        b1, b2, eps, ams, correct = hp[0], hp[1], hp[2], hp[3] > 0.5, hp[4] > 0.5
        for j in range(d):
            gj = g[j]
            if wd != 0.0:
                gj = gj + wd * w[r, j]
            m = b1 * s1[r, j] + (1.0 - b1) * gj
            v = b2 * s2[r, j] + (1.0 - b2) * (gj * gj)
            s1[r, j] = m
            s2[r, j] = v
            second = v
            if ams:
                second = max(s3[r, j], v)
                s3[r, j] = second
            if correct:
                new = w[r, j] - lr * (m / (np.sqrt(second) / aux + eps))
            else:
                new = w[r, j] - lr * (m / (np.sqrt(second) + eps))
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    else:  # _RPROP: the learning rate only seeds the step sizes at the first update
        eta_minus, eta_plus, smin, smax = hp[0], hp[1], hp[2], hp[3]
        for j in range(d):
            gj = g[j]
            step = lr if c == 0 else s2[r, j]
            s = np.sign(gj * s1[r, j])
            if s > 0:
                step = step * eta_plus
            elif s < 0:
                step = step * eta_minus
            step = min(max(step, smin), smax)
            g_eff = 0.0 if s < 0 else gj
            new = w[r, j] - step * np.sign(g_eff)
            s1[r, j] = g_eff
            s2[r, j] = step
            ok &= np.isfinite(g[j]) & np.isfinite(new)
            w[r, j] = new
    count[r] = c + 1
    return ok


def _step_factors(code: int, hp: np.ndarray, etas: np.ndarray, k0: int) -> np.ndarray:
    """(n, 2) per-step (lr, aux) for updates k0 .. k0 + n - 1, as :mod:`convstudy.optim` has them.

    Every active replicate has made exactly k updates before update k (count = k + 1 after it),
    so the count-dependent factors are the same for all of them.
    """
    out = np.empty((etas.shape[0], 2))
    out[:, 0] = etas
    out[:, 1] = 1.0
    count = np.arange(k0 + 1, k0 + 1 + etas.shape[0], dtype=np.int64)
    if code == _ADAGRAD:
        out[:, 0] = etas / (1.0 + (count - 1) * float(hp[0]))
    elif code == _ADAM and hp[4] > 0.5:
        bc1 = 1.0 - np.power(float(hp[0]), count)
        out[:, 0] = etas / bc1
        out[:, 1] = np.sqrt(1.0 - np.power(float(hp[1]), count))
    return out


# ---- gradients ------------------------------------------------------------------------------
@njit(inline="always")
def _dot_row(X, i, w, r, d):
    """x_i . w_r with four partial sums (independent add chains)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    j = 0
    while j + 4 <= d:
        s0 += X[i, j] * w[r, j]
        s1 += X[i, j + 1] * w[r, j + 1]
        s2 += X[i, j + 2] * w[r, j + 2]
        s3 += X[i, j + 3] * w[r, j + 3]
        j += 4
    while j < d:
        s0 += X[i, j] * w[r, j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, parallel=True, nogil=True)
def _linear_run(
    X, y, lam, link, sampler, b, idx, row0, rs, perm, pos, factors, code, hp, w, count,
    s1, s2, s3, active,
):  # fmt: skip
    """Run len(factors) updates of every active replicate of a linear model.

    Gradient g = 1/b sum_i phi'(x_i . w, y_i) x_i + lam w with phi'(z, y) = z - y (least
    squares) or -y expit(-y z) (logistic, expit(u) = 1 / (1 + exp(-u)) as in scipy).
    """
    n_rep, d = w.shape
    n = X.shape[0]
    for r in prange(n_rep):
        if not active[r]:
            continue
        g = np.empty(d)
        for t in range(factors.shape[0]):
            for q in range(b):
                i = _sample(sampler, q, idx, r, row0 + t, rs, perm, pos, n)
                z = _dot_row(X, i, w, r, d)
                if link == _LEAST_SQUARES:
                    c = z - y[i]
                else:
                    c = -y[i] * (1.0 / (1.0 + np.exp(y[i] * z)))
                if q == 0:
                    for j in range(d):
                        g[j] = c * X[i, j]
                else:
                    for j in range(d):
                        g[j] += c * X[i, j]
            if b > 1:
                for j in range(d):
                    g[j] = g[j] / b
            if lam != 0.0:
                for j in range(d):
                    g[j] = g[j] + lam * w[r, j]
            if not _optimizer_step(
                code, hp, g, w, r, count, s1, s2, s3, factors[t, 0], factors[t, 1]
            ):
                active[r] = False
                break


@njit(cache=True, parallel=True, nogil=True)
def _network_run(
    X, y, n_in, width, sampler, b, idx, row0, rs, perm, pos, factors, code, hp, w, count,
    s1, s2, s3, active,
):  # fmt: skip
    """Run len(factors) updates of every active replicate of a one-hidden-layer tanh network.

    Layout and backpropagation as in :mod:`convstudy.problems.networks`: yhat = sum_u a_u
    tanh(v_u . x + c_u) + a0, e = yhat - y, delta_u = e a_u (1 - t_u^2); per sample
    dV_uk = delta_u x_k, dc_u = delta_u, da_u = e t_u, da0 = e, averaged over the batch.
    """
    n_rep, d = w.shape
    n = X.shape[0]
    p, h = n_in, width
    off_c, off_a, off_a0 = h * p, h * p + h, h * p + 2 * h
    for r in prange(n_rep):
        if not active[r]:
            continue
        g = np.empty(d)
        hid = np.empty(h)
        for t in range(factors.shape[0]):
            for j in range(d):
                g[j] = 0.0
            for q in range(b):
                i = _sample(sampler, q, idx, r, row0 + t, rs, perm, pos, n)
                yhat = 0.0
                for u in range(h):
                    z = 0.0
                    for k in range(p):
                        z += X[i, k] * w[r, u * p + k]
                    tu = np.tanh(z + w[r, off_c + u])
                    hid[u] = tu
                    yhat += tu * w[r, off_a + u]
                e = yhat + w[r, off_a0] - y[i]
                for u in range(h):
                    tu = hid[u]
                    delta = e * w[r, off_a + u] * (1.0 - tu * tu)
                    for k in range(p):
                        g[u * p + k] += delta * X[i, k]
                    g[off_c + u] += delta
                    g[off_a + u] += e * tu
                g[off_a0] += e
            for j in range(d):
                g[j] = g[j] / b
            if not _optimizer_step(
                code, hp, g, w, r, count, s1, s2, s3, factors[t, 0], factors[t, 1]
            ):
                active[r] = False
                break


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

    Holds the (R, d) parameters ``w``, the optimizer state, the sampler state and per-replicate
    generator states; the engine records from ``w`` and may clear entries of ``active``
    (divergence bound), which freezes those replicates for the kernels too.
    ``sampling`` says where the indices come from: ``"compiled"`` (drawn in the kernels),
    ``"numpy blocks"`` (fallback) or ``"none"`` (full batch, cyclic).
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
        self.code, self.hp = _encode_optimizer(optimizer)
        self.w = np.array(w, dtype=np.float64, order="C")
        n_rep, d = self.w.shape
        n = problem.n_samples
        fields = [np.array(f, dtype=np.float64, order="C") for f in list(state)[1:]]
        while len(fields) < 3:
            fields.append(np.zeros((n_rep, d)))
        self.s1, self.s2, self.s3 = fields[:3]
        self.count = np.array(state.count, dtype=np.int64)
        self.etas = np.ascontiguousarray(etas, dtype=np.float64)
        self.batch_size = batch_size
        self.rngs = sample_rngs
        self.sampler_code = _SAMPLER_CODES[sampler.name]
        self.idx = np.zeros((1, 1, 1), dtype=np.int32)
        self.rs = np.zeros((1, _N_RNG), dtype=np.uint64)
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
        self.kernel_seconds = 0.0

    def _launch(self, row0: int, k0: int, k1: int, active: np.ndarray) -> None:
        p = self.problem
        factors = _step_factors(self.code, self.hp, self.etas[k0:k1], k0)
        tail = (
            self.sampler_code, self.b, self.idx, row0, self.rs, self.perm, self.pos, factors,
            self.code, self.hp, self.w, self.count, self.s1, self.s2, self.s3, active,
        )  # fmt: skip
        t0 = time.perf_counter()
        with _LAUNCH:
            if self.kind == "tanh_network":
                _network_run(self.X, self.y, p.n_inputs, p.width, *tail)
            else:
                link = _LEAST_SQUARES if self.kind == "least_squares" else _LOGISTIC
                _linear_run(self.X, self.y, float(p.lam), link, *tail)
        self.kernel_seconds += time.perf_counter() - t0

    def advance(self, k_from: int, k_to: int, active: np.ndarray) -> None:
        """Run updates k_from .. k_to - 1 (``active`` is updated in place)."""
        if self.blocks is None:
            if k_to > k_from:
                self._launch(0, k_from, k_to, active)
            return
        k, t = k_from, self.blocks.n_updates
        while k < k_to:
            row0 = k % t
            n = min(k_to - k, t - row0)
            self.idx = self.blocks.block(k // t)
            self._launch(row0, k, k + n, active)
            k += n

    def sync_generators(self) -> None:
        """Write the compiled generator states back into the numpy generators."""
        if self.sampling == "compiled":
            _write_states(self.rngs, self.rs)

    def close(self) -> None:
        self.blocks = None


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel; return the seconds it took.

    Also runs the once-per-process check of the compiled sampling streams.
    """
    t0 = time.perf_counter()
    X, y = np.zeros((3, 2)), np.ones(3)
    rs = _read_states([np.random.Generator(np.random.PCG64(0))])
    tail = (
        _REPLACEMENT, 1, np.zeros((1, 1, 1), dtype=np.int32), 0, rs, np.zeros((1, 3), np.int32),
        np.zeros(1, dtype=np.int64), np.full((1, 2), 0.1), _SGD, np.zeros(_N_HP),
    )  # fmt: skip

    def state(d):
        return (
            np.zeros((1, d)), np.zeros(1, dtype=np.int64), np.zeros((1, d)), np.zeros((1, d)),
            np.zeros((1, d)), np.ones(1, dtype=np.bool_),
        )  # fmt: skip

    _linear_run(X, y, 0.0, _LEAST_SQUARES, *tail, *state(2))
    _network_run(np.zeros((3, 1)), y, 1, 1, *tail, *state(4))
    compiled_sampling_matches_numpy()
    return time.perf_counter() - t0


def threading_layer() -> str:
    """The numba threading layer in use (after a parallel kernel has run)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return "not initialised"
