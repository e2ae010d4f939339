"""Nonconvex problems: one-hidden-layer tanh networks and a noisy tilted double well.

Network parameter layout
------------------------
A one-hidden-layer tanh network with p inputs and h hidden units computes::

    yhat(x) = sum_j a_j tanh(v_j . x + c_j) + a0,      j = 1..h,

and its parameters are one flat vector of length d = h p + 2 h + 1, in this order::

    w = [ V.ravel() (h*p, row j is v_j) | c (h) | a (h) | a0 (1) ].

Arrays of many parameter vectors keep leading axes: ``w`` shaped (R, d) unflattens to
V (R, h, p), c (R, h), a (R, h), a0 (R,). :func:`unflatten` and :func:`flatten` convert, and
both network problems use them (through :class:`_OneHiddenLayerTanh`).

Backpropagation for div_i = (yhat(x_i) - y_i)^2 / 2, with e_i = yhat(x_i) - y_i,
z_ij = v_j . x_i + c_j, t_ij = tanh(z_ij) and delta_ij = e_i a_j (1 - t_ij^2)::

    d div_i / d a_j = e_i t_ij,   d div_i / d a0 = e_i,
    d div_i / d c_j = delta_ij,   d div_i / d V_jk = delta_ij x_ik.

:meth:`_OneHiddenLayerTanh.hessian` is the exact Hessian of f (Gauss-Newton term plus the
residual-weighted curvature of the outputs; formula in its docstring), and
:meth:`_OneHiddenLayerTanh.gradient_variance` the oracle variance 1/N sum_i ||grad div_i -
grad f||^2 from these per-sample gradients without forming them all.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar
from .base import Certificate, Problem

__all__ = [
    "TanhNetwork",
    "TeacherStudent",
    "DoubleWell",
    "flatten",
    "unflatten",
    "n_params",
]


def n_params(n_inputs: int, width: int) -> int:
    """Number of parameters d = width * n_inputs + 2 * width + 1 of the network."""
    return width * n_inputs + 2 * width + 1


def unflatten(
    w: np.ndarray, n_inputs: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split flat parameters (..., d) into views V (..., h, p), c (..., h), a (..., h), a0 (...).

    See the module docstring for the layout. No data is copied.
    """
    p, h = n_inputs, width
    lead = w.shape[:-1]
    V = w[..., : h * p].reshape(*lead, h, p)
    c = w[..., h * p : h * p + h]
    a = w[..., h * p + h : h * p + 2 * h]
    a0 = w[..., h * p + 2 * h]
    return V, c, a, a0


def flatten(V: np.ndarray, c: np.ndarray, a: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unflatten`: V (..., h, p), c (..., h), a (..., h), a0 (...) -> (..., d)."""
    V, c, a, a0 = (np.asarray(t, dtype=float) for t in (V, c, a, a0))
    lead = V.shape[:-2]
    return np.concatenate(
        [V.reshape(*lead, -1), c, a, a0[..., None]],
        axis=-1,
    )


_CHUNK_ELEMENTS = 2**16  # gradient_variance's (rows, N, h) work arrays: 512 KB of float64


def _torch_default_init(rng: np.random.Generator, n_inputs: int, width: int) -> np.ndarray:
    """PyTorch's nn.Linear default: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    b1, b2 = 1.0 / np.sqrt(n_inputs), 1.0 / np.sqrt(width)
    return flatten(
        rng.uniform(-b1, b1, (width, n_inputs)),
        rng.uniform(-b1, b1, width),
        rng.uniform(-b2, b2, width),
        rng.uniform(-b2, b2),
    )


class _OneHiddenLayerTanh(Problem):
    """Squared-loss regression with a one-hidden-layer tanh network (layout: module docstring).

    f(w) = 1/N sum_i (yhat_w(x_i) - y_i)^2 / 2. Subclasses build ``X`` (N, p) and ``y`` (N,)
    and call :meth:`_setup`. ``initial_point`` is a PyTorch-style default initialisation drawn
    once from the problem's seed; ``random_initial_point`` draws the same distribution.
    """

    convexity = "nonconvex"
    X: np.ndarray
    y: np.ndarray
    n_inputs: int
    width: int

    def _setup(self, X: np.ndarray, y: np.ndarray, width: int, init_rng) -> None:
        self.X, self.y = X, y
        self.n_samples, self.n_inputs = X.shape
        self.width = width
        self.dim = n_params(self.n_inputs, width)
        self._w0 = _torch_default_init(init_rng, self.n_inputs, width)

    def unflatten(self, w: np.ndarray):
        """V (..., h, p), c (..., h), a (..., h), a0 (...) views of flat parameters (..., d)."""
        return unflatten(w, self.n_inputs, self.width)

    def predict(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Network outputs: w (R, d) and inputs X (R, b, p) or (N, p) -> (R, b) or (R, N)."""
        return self._forward(w, X)[1]

    # ---- forward / backward ----------------------------------------------------------------
    def _forward(self, w, Xb):
        """Hidden activations t (R, b, h) and outputs yhat (R, b); Xb may broadcast over R."""
        V, c, a, a0 = self.unflatten(w)
        t = Xb @ np.swapaxes(V, -1, -2)  # z, then tanh(z) in place: (R, b, h)
        t += c[:, None, :]
        np.tanh(t, out=t)
        return t, np.einsum("rbh,rh->rb", t, a) + a0[:, None]

    def _backward(self, w, Xb, yb):
        """Residuals e (R, b), activations t (R, b, h) and delta = e a (1 - t^2) (R, b, h)."""
        t, yhat = self._forward(w, Xb)
        e = yhat - yb
        a = self.unflatten(w)[2]
        delta = e[:, :, None] * a[:, None, :] * (1.0 - t * t)
        return e, t, delta

    def _mean_grad(self, w, Xb, yb):
        e, t, delta = self._backward(w, Xb, yb)
        b = e.shape[1]
        gV = np.swapaxes(delta, 1, 2) @ Xb / b  # (R, h, p); Xb may be (N, p)
        return flatten(gV, delta.mean(axis=1), np.einsum("rb,rbh->rh", e, t) / b, e.mean(axis=1))

    # ---- Problem interface -----------------------------------------------------------------
    def sample_losses(self, w, idx):
        _, yhat = self._forward(w, self.X[idx])
        return 0.5 * (yhat - self.y[idx]) ** 2

    def sample_grads(self, w, idx):
        Xb = self.X[idx]
        e, t, delta = self._backward(w, Xb, self.y[idx])
        R, b = e.shape
        gV = (delta[:, :, :, None] * Xb[:, :, None, :]).reshape(R, b, -1)
        return np.concatenate([gV, delta, e[:, :, None] * t, e[:, :, None]], axis=2)

    def batch_grad(self, w, idx):
        return self._mean_grad(w, self.X[idx], self.y[idx])

    def loss(self, w):
        _, yhat = self._forward(w, self.X)
        return 0.5 * ((yhat - self.y) ** 2).mean(axis=1)

    def grad(self, w):
        return self._mean_grad(w, self.X, self.y)

    def hessian(self, w: np.ndarray) -> np.ndarray:
        """Exact Hessian of f at every row of w: (R, d) -> (R, d, d), symmetric.

        For the squared loss div_i = e_i^2 / 2 with e_i = yhat_i - y_i, the chain rule gives
        (Bishop, Pattern Recognition and Machine Learning, 2006, sec. 5.4 "The Hessian matrix";
        sec. 5.4.2 keeps only the first, outer-product term)::

            H = 1/N sum_i [ J_i J_i^T + e_i Hess(yhat_i) ],

        the Gauss-Newton (outer-product) term plus the residual-weighted curvature of the
        outputs. With z_ij = v_j . x_i + c_j, t_ij = tanh(z_ij), s_ij = tanh'(z_ij) = 1 - t_ij^2
        and tanh''(z_ij) = -2 t_ij s_ij, the output gradient J_i (layout of the module docstring)
        has entries::

            d yhat_i / d V_jk = a_j s_ij x_ik,   d yhat_i / d c_j = a_j s_ij,
            d yhat_i / d a_j  = t_ij,            d yhat_i / d a0  = 1.

        Hess(yhat_i) is sparse. Writing u_i = [x_i, 1] for the inputs of unit j's weights
        (v_j, c_j), its only non-zero blocks are, per hidden unit j::

            (v_j, c_j) x (v_j, c_j):  a_j tanh''(z_ij) u_i u_i^T,
            a_j x (v_j, c_j):          s_ij u_i^T     (and its transpose);

        there is no coupling between different units, and a0 enters linearly. Vectorised:
        one (d, N) x (N, d) product for the Gauss-Newton term and one (h, N) x (N, (p+1)^2)
        product for the curvature blocks per row; the result is symmetrised (exactly, in
        floating point) so that ``eigvalsh`` sees the same matrix from either triangle.
        """
        N, p, h = self.n_samples, self.n_inputs, self.width
        R, X = w.shape[0], self.X
        t, yhat = self._forward(w, X)  # (R, N, h), (R, N)
        e = yhat - self.y  # (R, N)
        a = self.unflatten(w)[2]  # (R, h)
        s = 1.0 - t * t  # tanh'(z)
        g = a[:, None, :] * s  # d yhat_i / d z_ij, (R, N, h)
        J = np.concatenate(
            [
                (g[:, :, :, None] * X[None, :, None, :]).reshape(R, N, h * p),
                g,
                t,
                np.ones((R, N, 1)),
            ],
            axis=2,
        )  # (R, N, d)
        H = np.swapaxes(J, 1, 2) @ J / N  # Gauss-Newton term
        U = np.concatenate([X, np.ones((N, 1))], axis=1)  # u_i = [x_i, 1], (N, p + 1)
        UU = (U[:, :, None] * U[:, None, :]).reshape(N, (p + 1) ** 2)
        curv = np.swapaxes(e[:, :, None] * g * (-2.0 * t), 1, 2)  # e_i a_j tanh''(z_ij), (R, h, N)
        block = (curv @ UU).reshape(R, h, p + 1, p + 1) / N
        cross = np.swapaxes(e[:, :, None] * s, 1, 2) @ U / N  # (R, h, p + 1)
        vc = np.concatenate([np.arange(h * p).reshape(h, p), h * p + np.arange(h)[:, None]], 1)
        ai = (h * p + h + np.arange(h))[:, None]  # (h, 1): index of a_j
        H[:, vc[:, :, None], vc[:, None, :]] += block  # units' index sets are disjoint
        H[:, ai, vc] += cross
        H[:, vc, ai] += cross
        return (H + np.swapaxes(H, 1, 2)) / 2

    def gradient_variance(self, w: np.ndarray) -> np.ndarray:
        """Oracle variance sigma^2(w) = 1/N sum_i ||grad div_i(w) - grad f(w)||^2 at every row
        of w: (R, d) -> (R,), without forming the (R, N, d) per-sample gradients.

        The per-sample gradient (module docstring) is g_i = [delta_ij x_i (V), delta_ij (c),
        e_i t_ij (a), e_i (a0)], so ||g_i - grad f||^2 splits over the blocks and sigma^2 is a
        sum of per-coordinate variances over the N samples. The c, a and a0 blocks are one
        number per sample and hidden unit, and are centred directly (two passes over (R, N, h)
        arrays)::

            1/N sum_i [ sum_j (delta_ij - cbar_j)^2 + sum_j (e_i t_ij - abar_j)^2 + (e_i - ebar)^2 ]

        with cbar, abar, ebar the means over i (the c, a, a0 blocks of grad f). The V block of
        unit j, delta_ij x_i in R^p, would need the (R, N, h, p) tensor centred; it uses the
        expanded form E||Y||^2 - ||E Y||^2 instead::

            1/N sum_i ||delta_ij x_i - G_j||^2 = S_j - ||G_j||^2,
            S_j = 1/N sum_i delta_ij^2 ||x_i||^2,   G_j = 1/N sum_i delta_ij x_i.

        **Rounding.** The expanded form cancels (Chan, Golub & LeVeque, "Algorithms for
        computing the sample variance: analysis and recommendations", Amer. Statist. 37(3),
        1983): its error is about eps_mach (S_j + ||G_j||^2), i.e. eps_mach (1 + r_j)/(1 - r_j)
        relative to the block's variance, with r_j = ||G_j||^2 / S_j. Here r_j is bounded by
        the inputs alone: ||G_j||^2 = delta^T X X^T delta / N^2 and S_j = delta^T D delta / N
        (D = diag ||x_i||^2), so by the Rayleigh quotient r_j <= rho = lambda_max(1/N sum_i
        x_i x_i^T / ||x_i||^2) < 1 whatever the weights. For the default data rho = 0.27
        (TeacherStudent, p = 4) and 0.51 (TanhNetwork, p = 2): the V block is good to about
        3 eps_mach relative at any w. (With p = 1, rho = 1 and the bound is void.) The other
        blocks can have r near 1 -- all per-sample gradients pointing the same way, as with
        residuals e_i of one sign far from the data, or saturated units (t_ij = +-1) -- and
        are the ones centred directly, so the result is a few eps_mach relative throughout
        (measured against the centred (R, N, d) computation: < 1e-14 at random points and
        along SGD runs; tests/test_problems_nonlinear.py). Cost: one forward and backward
        pass, O(R N h p), taken over chunks of rows whose (rows, N, h) work arrays are 512 KB
        (16 rows at N = 500, h = 8; 32 at h = 4) and stay in a core's L2 cache: measured 1.5
        to 2 times as fast as all rows at once for R = 256 replicates, and no slower at 64.
        """
        rows = max(1, _CHUNK_ELEMENTS // (self.n_samples * self.width))
        chunks = [self._gradient_variance(w[i : i + rows]) for i in range(0, w.shape[0], rows)]
        return np.concatenate([np.empty(0), *chunks])

    def _gradient_variance(self, w: np.ndarray) -> np.ndarray:
        """:meth:`gradient_variance` for one chunk of rows."""
        N, X = self.n_samples, self.X
        e, t, delta = self._backward(w, X, self.y)  # (R, N), (R, N, h), (R, N, h): c block
        mean = np.full(N, 1.0 / N)  # mean over samples as a product: (N,) @ (R, N, h)
        buf = np.multiply(t, e[:, :, None], out=t)  # a block, e_i t_ij
        buf -= (mean @ buf)[:, None, :]
        total = np.einsum("rnh,rnh->r", buf, buf)
        centred = e - (e @ mean)[:, None]  # a0 block
        total += np.einsum("rn,rn->r", centred, centred)
        G = np.swapaxes(delta, 1, 2) @ X / N  # (R, h, p)
        S = np.swapaxes(np.multiply(delta, delta, out=buf), 1, 2) @ np.einsum("ik,ik->i", X, X)
        delta -= (mean @ delta)[:, None, :]
        total += np.einsum("rnh,rnh->r", delta, delta)
        return (total + S.sum(axis=1)) / N - np.einsum("rhk,rhk->r", G, G)

    # ---- starting points -------------------------------------------------------------------
    def initial_point(self):
        """A fixed PyTorch-default initialisation (U(+-1/sqrt(fan_in))) drawn from ``seed``."""
        return self._w0.copy()

    def random_initial_point(self, rng):
        """A fresh PyTorch-default initialisation drawn from ``rng``."""
        return _torch_default_init(rng, self.n_inputs, self.width)


class TanhNetwork(_OneHiddenLayerTanh):
    """Regression of a wiggly target with a one-hidden-layer tanh network (nonconvex).

    Data: x_i ~ N(0, I_p) and y_i = sin(3 x_i1) + 0.5 x_i2^2 + noise * eps_i, eps_i ~ N(0, 1)
    (the x_i2^2 term only when p >= 2). Model and loss (layout in the module docstring)::

        yhat(x) = sum_j a_j tanh(v_j . x + c_j) + a0,    div_i(w) = (yhat(x_i) - y_i)^2 / 2.

    The oscillating target is hard to fit with few tanh units, so f has many stationary points
    at different levels. f* is unknown (``f_star = None``, ``w_star = None``): measure
    convergence by the squared gradient norm, e.g. the claim that with a 1/sqrt(K) step
    min_k E||grad f(w_k)||^2 falls like 1/sqrt(K) (Ghadimi & Lan 2013).

    Parameters
    ----------
    n_samples : int, default 500
    n_inputs : int, default 2
        Input dimension p.
    width : int, default 8
        Hidden units h; the number of parameters is d = h p + 2 h + 1 (33 by default).
    noise : float, default 0.1
        Standard deviation of the label noise.
    seed : int, default 0
        Seed of the data and of :meth:`initial_point`.
    """

    name = "tanh_network"

    def __init__(
        self,
        *,
        n_samples: int = 500,
        n_inputs: int = 2,
        width: int = 8,
        noise: float = 0.1,
        seed: int = 0,
    ):
        owner = "TanhNetwork"
        n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=1, closed="left")
        n_inputs = check_scalar(n_inputs, "n_inputs", owner, kind=int, low=1, closed="left")
        width = check_scalar(width, "width", owner, kind=int, low=1, closed="left")
        self.noise = check_scalar(noise, "noise", owner, low=0.0, closed="left")
        self.seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
        data_ss, init_ss = np.random.SeedSequence(self.seed).spawn(2)
        rng = np.random.default_rng(data_ss)
        X = rng.standard_normal((n_samples, n_inputs))
        y = np.sin(3.0 * X[:, 0])
        if n_inputs >= 2:
            y = y + 0.5 * X[:, 1] ** 2
        y = y + self.noise * rng.standard_normal(n_samples)
        self._setup(X, y, width, np.random.default_rng(init_ss))
        self.w_star = None
        self.f_star = None

    def params(self):
        return {
            **super().params(),
            "n_inputs": self.n_inputs,
            "width": self.width,
            "noise": self.noise,
            "seed": self.seed,
        }


class TeacherStudent(_OneHiddenLayerTanh):
    """Realizable teacher-student regression: f* = 0 exactly, nonconvex landscape.

    A teacher network with the student's architecture (layout in the module docstring) is
    drawn from ``seed``: rows v_j ~ N(0, I_p / p) (pre-activations of unit variance),
    c_j ~ N(0, 0.5^2), a_j = +-U(0.5, 1.5) (every hidden unit matters), a0 ~ N(0, 0.1^2).
    Inputs x_i ~ N(0, I_p) and labels are the teacher's outputs, without noise::

        y_i = teacher(x_i),    div_i(w) = (student_w(x_i) - y_i)^2 / 2.

    **Optimum.** Every div_i >= 0 and every div_i(w_teacher) = 0, so f* = 0 = f(w_teacher)
    and ``w_star`` is the teacher's parameter vector. The minimiser is *not* unique: permuting
    hidden units, or flipping the signs of (v_j, c_j, a_j) together (tanh is odd), gives the
    same function, so there are at least h! 2^h global minima. Distance to ``w_star`` is
    therefore meaningless; measure f - f* (and ||grad f||). Because every per-sample gradient
    vanishes at a global minimum, constant-step SGD has no noise floor there.

    Parameters
    ----------
    n_samples : int, default 500
    n_inputs : int, default 4
        Input dimension p.
    width : int, default 4
        Hidden units h of teacher and student; d = h p + 2 h + 1 (25 by default).
    seed : int, default 0
        Seed of the data, the teacher and :meth:`initial_point`.
    """

    name = "teacher_student"

    def __init__(
        self,
        *,
        n_samples: int = 500,
        n_inputs: int = 4,
        width: int = 4,
        seed: int = 0,
    ):
        owner = "TeacherStudent"
        n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=1, closed="left")
        n_inputs = check_scalar(n_inputs, "n_inputs", owner, kind=int, low=1, closed="left")
        width = check_scalar(width, "width", owner, kind=int, low=1, closed="left")
        self.seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
        data_ss, teacher_ss, init_ss = np.random.SeedSequence(self.seed).spawn(3)
        rng = np.random.default_rng(teacher_ss)
        teacher = flatten(
            rng.standard_normal((width, n_inputs)) / np.sqrt(n_inputs),
            0.5 * rng.standard_normal(width),
            rng.choice([-1.0, 1.0], width) * rng.uniform(0.5, 1.5, width),
            0.1 * rng.standard_normal(),
        )
        X = np.random.default_rng(data_ss).standard_normal((n_samples, n_inputs))
        self._setup(X, np.zeros(n_samples), width, np.random.default_rng(init_ss))
        # labels through the same code path as loss(), so f(w_teacher) is 0 bit-for-bit
        self.y = self.predict(teacher[None, :], X)[0]
        self.w_star = teacher
        self.f_star = 0.0

    def certificate(self):
        w = self.w_star[None, :]
        return Certificate(
            grad_norm=float(np.linalg.norm(self.grad(w)[0])),
            gap_bound=float(self.loss(w)[0]) - self.f_star,
            method="realizable: f(w_teacher) = 0 and every div_i >= 0",
        )

    def params(self):
        return {
            **super().params(),
            "n_inputs": self.n_inputs,
            "width": self.width,
            "seed": self.seed,
        }


_TILT_MAX = 8.0 / (3.0 * np.sqrt(3.0))  # |tilt| below this keeps three stationary points


class DoubleWell(Problem):
    """A noisy tilted double well: a poor local minimum and a deeper global one.

    For each of the d coordinates (independent, f is a sum over coordinates)::

        div_i(w) = sum_k (w_k^2 - 1)^2 + (tilt + noise * z_ik) w_k,
        f(w)     = sum_k (w_k^2 - 1)^2 + tilt * w_k,

    where z_ik are drawn from ``seed`` and standardised per coordinate to mean 0 and variance
    1 over the N samples, so f is exactly the tilted double well and the per-sample gradient
    d div_i / d w_k = 4 w_k^3 - 4 w_k + tilt + noise * z_ik has mean f'(w_k) and variance
    noise^2 (independent of w): SGD steps carry real noise of known size.

    **Stationary points.** f'(x) = 4 x^3 - 4 x + tilt has three real roots for
    0 < tilt < 8 / (3 sqrt 3) ~ 1.54: the global minimum x_g < -1 (the tilt lowers the left
    well), a local maximum x_m near 0 and a poor local minimum 0 < x_l < 1, with
    f(x_g) < f(x_l). They are computed with ``numpy.roots`` and polished by Newton steps.
    ``w_star`` = (x_g, ..., x_g) and ``f_star`` = d * f1(x_g) (f1 the one-coordinate well).
    ``n_samples`` must be at least 2 (the z_ik are standardised).
    :meth:`initial_point` starts in the poor minimum, for escape studies;
    :meth:`in_good_basin` says which replicates have reached the global basin.

    Parameters
    ----------
    n_samples : int, default 200
    dim : int, default 1
        d, number of independent coordinates.
    tilt : float, default 0.3
        Linear tilt, in (0, 8 / (3 sqrt 3)); the barrier to escape the poor minimum shrinks
        as the tilt grows.
    noise : float, default 2.0
        Standard deviation s of the per-sample gradient noise.
    seed : int, default 0
        Seed of the z_ik.
    """

    name = "double_well"
    convexity = "nonconvex"

    def __init__(
        self,
        *,
        n_samples: int = 200,
        dim: int = 1,
        tilt: float = 0.3,
        noise: float = 2.0,
        seed: int = 0,
    ):
        owner = "DoubleWell"
        self.n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=2, closed="left")
        self.dim = check_scalar(dim, "dim", owner, kind=int, low=1, closed="left")
        self.tilt = check_scalar(tilt, "tilt", owner, low=0.0, high=_TILT_MAX)
        self.noise = check_scalar(noise, "noise", owner, low=0.0, closed="left")
        self.seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")

        z = np.random.default_rng(self.seed).standard_normal((self.n_samples, self.dim))
        z = z - z.mean(axis=0)
        z = z / z.std(axis=0)
        self.z = z - z.mean(axis=0)  # second pass: mean 0 to rounding (~1e-17)
        self._slope = self.tilt + self.noise * self.z  # (N, d): per-sample linear coefficient

        self.x_global, self.x_max, self.x_local = self._stationary_points(self.tilt)
        self.w_star = np.full(self.dim, self.x_global)
        # d * f1(x_g), evaluated on the stored objective (its z has mean 0 only to rounding)
        self.f_star = float(self.loss(self.w_star[None, :])[0])
        self.mu = None
        self.L = None

    # ---- the one-coordinate well -----------------------------------------------------------
    def _f1(self, x):
        return (x * x - 1.0) ** 2 + self.tilt * x

    @staticmethod
    def _stationary_points(tilt: float) -> tuple[float, float, float]:
        """Real roots of 4 x^3 - 4 x + tilt, ascending, polished by Newton's method."""
        roots = np.sort(np.roots([4.0, 0.0, -4.0, tilt]).real)
        for _ in range(3):
            roots = roots - (4 * roots**3 - 4 * roots + tilt) / (12 * roots**2 - 4)
        return float(roots[0]), float(roots[1]), float(roots[2])

    # ---- per-sample quantities -------------------------------------------------------------
    def sample_losses(self, w, idx):
        well = ((w * w - 1.0) ** 2).sum(axis=1)  # (R,)
        return well[:, None] + np.einsum("rbd,rd->rb", self._slope[idx], w)

    def sample_grads(self, w, idx):
        return (4.0 * w**3 - 4.0 * w)[:, None, :] + self._slope[idx]

    def batch_grad(self, w, idx):
        return 4.0 * w**3 - 4.0 * w + self._slope[idx].mean(axis=1)

    # ---- full objective --------------------------------------------------------------------
    def loss(self, w):
        return ((w * w - 1.0) ** 2).sum(axis=1) + w @ self._slope.mean(axis=0)

    def grad(self, w):
        return 4.0 * w**3 - 4.0 * w + self._slope.mean(axis=0)

    def hessian(self, w: np.ndarray) -> np.ndarray:
        """Exact Hessian of f: diag(12 w_k^2 - 4) per row, (R, d) -> (R, d, d) (the linear
        tilt and noise terms have none)."""
        H = np.zeros((w.shape[0], self.dim, self.dim))
        k = np.arange(self.dim)
        H[:, k, k] = 12.0 * w * w - 4.0
        return H

    # ---- minima and basins -----------------------------------------------------------------
    def local_minima(self) -> tuple[np.ndarray, np.ndarray]:
        """(poor local minimum, global minimum), each shaped (d,): every coordinate at x_l / x_g."""
        return np.full(self.dim, self.x_local), np.full(self.dim, self.x_global)

    def in_good_basin(self, w: np.ndarray) -> np.ndarray:
        """(R,) bool: every coordinate of w_r lies past the local maximum, on the global side."""
        w = self.validate_point(w, owner="DoubleWell.in_good_basin")
        return np.all(w < self.x_max, axis=1)

    def initial_point(self):
        """The poor local minimum (x_l, ..., x_l): the start of an escape study."""
        return np.full(self.dim, self.x_local)

    def random_initial_point(self, rng):
        """Uniform on [-1.5, 1.5]^d, which covers both wells."""
        return rng.uniform(-1.5, 1.5, self.dim)

    # ---- optimum ---------------------------------------------------------------------------
    def certificate(self):
        """Gradient norm at w*, and a gap bound from local strong convexity around x_g.

        On I = [x_g - 0.1, x_g + 0.1] (inside the convex region |x| > 1/sqrt 3, as x_g < -1)
        f1'' >= m = 12 (|x_g| - 0.1)^2 - 4 > 0. If |f1'(x_g)| / m < 0.1 the true root lies in
        I and f1(x_g) - min f1 <= f1'(x_g)^2 / (2 m); summed over the d coordinates. The root
        is global because f has only this and the poorer local minimum.
        """
        g = self.grad(self.w_star[None, :])[0]
        m = 12.0 * (abs(self.x_global) - 0.1) ** 2 - 4.0
        bound = float(np.sum(g * g) / (2 * m)) if np.max(np.abs(g)) / m < 0.1 else None
        return Certificate(
            grad_norm=float(np.linalg.norm(g)),
            gap_bound=bound,
            method="closed form: roots of the cubic f1'(x) = 4 x^3 - 4 x + tilt per coordinate",
        )

    def params(self):
        return {
            **super().params(),
            "tilt": self.tilt,
            "noise": self.noise,
            "seed": self.seed,
        }
