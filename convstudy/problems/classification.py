"""Nonconvex classification: a one-hidden-layer tanh MLP with softmax cross-entropy.

Model
-----
With p inputs, h hidden units and K classes the network computes, for an input x::

    t_j(x)  = tanh(W1_j . x + b1_j),                j = 1..h   (hidden layer)
    z_k(x)  = W2_k . t(x) + b2_k,                   k = 1..K   (logits)
    div_i(w) = logsumexp_k z_k(x_i) - z_{y_i}(x_i)             (softmax cross-entropy)

and f(w) = 1/N sum_i div_i(w) over the N training samples (no regulariser). The hidden layer
is tanh rather than ReLU: f is then smooth everywhere, so finite-difference gradient checks and
the smoothness-based step-size theory apply at every point, and the compiled kernel shares the
tanh network's structure (:mod:`convstudy.problems.networks`).

Parameter layout
----------------
One flat vector of length d = h p + h + K h + K, in this order::

    w = [ W1.ravel() (h*p, row j is W1_j) | b1 (h) | W2.ravel() (K*h, row k is W2_k) | b2 (K) ].

Arrays of many parameter vectors keep leading axes: ``w`` shaped (R, d) unflattens to
W1 (R, h, p), b1 (R, h), W2 (R, K, h), b2 (R, K) (:func:`unflatten`, :func:`flatten`).

Backpropagation
---------------
With softmax probabilities P_k = exp(z_k) / sum_l exp(z_l), dz_k = P_k - [k = y_i] and
delta_j = (1 - t_j^2) sum_k W2_kj dz_k::

    d div_i / d b2_k = dz_k,      d div_i / d W2_kj = dz_k t_j,
    d div_i / d b1_j = delta_j,   d div_i / d W1_jm = delta_j x_im.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_array, check_scalar
from .base import Problem

__all__ = ["MLPClassifier", "DigitsMLP", "load_digits_split", "flatten", "unflatten", "n_params"]


def n_params(n_inputs: int, width: int, n_classes: int) -> int:
    """Number of parameters d = h p + h + K h + K of the classifier."""
    return width * n_inputs + width + n_classes * width + n_classes


def unflatten(w: np.ndarray, n_inputs: int, width: int, n_classes: int):
    """Views W1 (..., h, p), b1 (..., h), W2 (..., K, h), b2 (..., K) of flat w (..., d)."""
    p, h, k = n_inputs, width, n_classes
    lead = w.shape[:-1]
    W1 = w[..., : h * p].reshape(*lead, h, p)
    b1 = w[..., h * p : h * p + h]
    W2 = w[..., h * p + h : h * p + h + k * h].reshape(*lead, k, h)
    b2 = w[..., h * p + h + k * h : h * p + h + k * h + k]
    return W1, b1, W2, b2


def flatten(W1, b1, W2, b2) -> np.ndarray:
    """Inverse of :func:`unflatten`: W1 (..., h, p), b1, W2 (..., K, h), b2 -> (..., d)."""
    W1, b1, W2, b2 = (np.asarray(t, dtype=float) for t in (W1, b1, W2, b2))
    lead = W1.shape[:-2]
    return np.concatenate([W1.reshape(*lead, -1), b1, W2.reshape(*lead, -1), b2], axis=-1)


def _torch_default_init(rng: np.random.Generator, p: int, h: int, k: int) -> np.ndarray:
    """PyTorch's nn.Linear default: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    b1, b2 = 1.0 / np.sqrt(p), 1.0 / np.sqrt(h)
    return flatten(
        rng.uniform(-b1, b1, (h, p)),
        rng.uniform(-b1, b1, h),
        rng.uniform(-b2, b2, (k, h)),
        rng.uniform(-b2, b2, k),
    )


class MLPClassifier(Problem):
    """Softmax cross-entropy of a one-hidden-layer tanh MLP on given data (see the module
    docstring for the model, the layout and the gradients).

    f(w) = 1/N sum_i [logsumexp_k z_k(x_i) - z_{y_i}(x_i)] on the training set; the test set
    gives :meth:`test_loss` and :meth:`test_accuracy`, recorded by a simulation through
    ``simulate(..., observe=problem.observables())``. f* is unknown (``f_star = None``;
    a wide enough network can drive f towards 0 on separable data without reaching it), and
    ``mu``/``L`` are ``None``.

    Parameters
    ----------
    X, labels : arrays (N, p) and (N,)
        Training inputs and integer class labels in 0 .. K - 1.
    X_test, labels_test : arrays (M, p) and (M,)
        Held-out inputs and labels (M >= 1).
    width : int, default 32
        Hidden units h.
    n_classes : int, optional
        K; by default 1 + the largest label seen.
    seed : int, default 0
        Seed of :meth:`initial_point`.
    """

    name = "mlp_classifier"
    convexity = "nonconvex"

    def __init__(self, X, labels, X_test, labels_test, *, width=32, n_classes=None, seed=0):
        owner = type(self).__name__
        X = check_array(X, "X", owner, ndim=2)
        X_test = check_array(X_test, "X_test", owner, shape=(None, X.shape[1]))
        labels = self._check_labels(labels, "labels", X.shape[0], owner)
        labels_test = self._check_labels(labels_test, "labels_test", X_test.shape[0], owner)
        self.width = check_scalar(width, "width", owner, kind=int, low=1, closed="left")
        self.seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
        seen = int(max(labels.max(), labels_test.max())) + 1
        if n_classes is None:
            n_classes = seen
        self.n_classes = check_scalar(n_classes, "n_classes", owner, kind=int, low=2, closed="left")
        if seen > self.n_classes:
            raise ValueError(
                f"The labels of {owner} go up to {seen - 1}, beyond n_classes={self.n_classes}."
            )
        self.X, self.labels = X, labels
        self.y = labels.astype(float)  # float copy for the compiled kernels
        self.X_test, self.labels_test = X_test, labels_test
        self.n_samples, self.n_inputs = X.shape
        self.dim = n_params(self.n_inputs, self.width, self.n_classes)
        self._eye = np.eye(self.n_classes)
        self._w0 = self.random_initial_point(np.random.default_rng(self.seed))
        self.w_star = None
        self.f_star = None
        self.mu = None
        self.L = None

    @staticmethod
    def _check_labels(labels, name, n, owner) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"{owner} needs {name} shaped ({n},), got shape {labels.shape}.")
        if not np.issubdtype(labels.dtype, np.number) or not np.all(np.isfinite(labels)):
            raise ValueError(f"{owner} needs finite numeric class labels in {name}.")
        if np.any(labels < 0) or np.any(labels != np.round(labels)):
            raise ValueError(f"{owner} needs {name} to be integers 0, 1, ..., K - 1.")
        return labels.astype(np.int64)

    def unflatten(self, w: np.ndarray):
        """W1 (..., h, p), b1 (..., h), W2 (..., K, h), b2 (..., K) views of w (..., d)."""
        return unflatten(w, self.n_inputs, self.width, self.n_classes)

    # ---- forward / backward ----------------------------------------------------------------
    def _forward(self, w, Xb):
        """Hidden activations t (R, b, h) and logits z (R, b, K); Xb (R, b, p) or (N, p)."""
        W1, b1, W2, b2 = self.unflatten(w)
        t = np.tanh(Xb @ np.swapaxes(W1, -1, -2) + b1[:, None, :])
        return t, t @ np.swapaxes(W2, -1, -2) + b2[:, None, :]

    @staticmethod
    def _log_softmax_parts(z):
        """(max_k z_k, sum_k exp(z_k - max), exp(z_k - max)) along the last axis."""
        m = z.max(axis=-1)
        e = np.exp(z - m[..., None])
        return m, e.sum(axis=-1), e

    def _losses(self, z, lab):
        """div = logsumexp(z) - z_label: z (R, b, K), lab (R, b) or (b,) -> (R, b)."""
        m, s, _ = self._log_softmax_parts(z)
        lab = np.broadcast_to(lab, z.shape[:-1])
        return m + np.log(s) - np.take_along_axis(z, lab[..., None], axis=-1)[..., 0]

    def _backward(self, w, Xb, lab):
        """Activations t (R, b, h), dz = softmax(z) - onehot(y) (R, b, K) and
        delta = (1 - t^2) (dz W2) (R, b, h)."""
        t, z = self._forward(w, Xb)
        _, s, e = self._log_softmax_parts(z)
        dz = e / s[..., None] - self._eye[lab]
        W2 = self.unflatten(w)[2]
        delta = (1.0 - t * t) * (dz @ W2)
        return t, dz, delta

    def _mean_grad(self, w, Xb, lab):
        t, dz, delta = self._backward(w, Xb, lab)
        b = dz.shape[1]
        gW1 = np.swapaxes(delta, 1, 2) @ Xb / b  # (R, h, p); Xb may be (N, p)
        gW2 = np.swapaxes(dz, 1, 2) @ t / b  # (R, K, h)
        return flatten(gW1, delta.mean(axis=1), gW2, dz.mean(axis=1))

    # ---- Problem interface -----------------------------------------------------------------
    def sample_losses(self, w, idx):
        return self._losses(self._forward(w, self.X[idx])[1], self.labels[idx])

    def sample_grads(self, w, idx):
        Xb = self.X[idx]
        t, dz, delta = self._backward(w, Xb, self.labels[idx])
        R, b = dz.shape[:2]
        gW1 = (delta[:, :, :, None] * Xb[:, :, None, :]).reshape(R, b, -1)
        gW2 = (dz[:, :, :, None] * t[:, :, None, :]).reshape(R, b, -1)
        return np.concatenate([gW1, delta, gW2, dz], axis=2)

    def batch_grad(self, w, idx):
        return self._mean_grad(w, self.X[idx], self.labels[idx])

    def loss(self, w):
        return self._losses(self._forward(w, self.X)[1], self.labels).mean(axis=1)

    def grad(self, w):
        return self._mean_grad(w, self.X, self.labels)

    # ---- predictions and test metrics ------------------------------------------------------
    def predict(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted classes argmax_k z_k(x): w (R, d), X (M, p) -> (R, M) integers."""
        return self._forward(w, X)[1].argmax(axis=-1)

    def test_loss(self, w: np.ndarray) -> np.ndarray:
        """Mean cross-entropy on the test set, per replicate: (R, d) -> (R,)."""
        w = self.validate_point(w, owner=f"{type(self).__name__}.test_loss")
        return self._losses(self._forward(w, self.X_test)[1], self.labels_test).mean(axis=1)

    def test_accuracy(self, w: np.ndarray) -> np.ndarray:
        """Fraction of test samples classified correctly, per replicate: (R, d) -> (R,)."""
        w = self.validate_point(w, owner=f"{type(self).__name__}.test_accuracy")
        return (self.predict(w, self.X_test) == self.labels_test).mean(axis=1)

    def train_accuracy(self, w: np.ndarray) -> np.ndarray:
        """Fraction of training samples classified correctly, per replicate: (R, d) -> (R,)."""
        w = self.validate_point(w, owner=f"{type(self).__name__}.train_accuracy")
        return (self.predict(w, self.X) == self.labels).mean(axis=1)

    def observables(self) -> dict:
        """``{"test_loss": ..., "test_accuracy": ...}``, for ``simulate(..., observe=...)``.

        Both callables map (R, d) parameters to (R,) values; diverged (non-finite) replicates
        give NaN, as the engine records them.
        """

        def guard(fn):
            def observe(w):
                out = np.full(w.shape[0], np.nan)
                ok = np.all(np.isfinite(w), axis=1)
                if ok.any():
                    out[ok] = fn(w[ok])
                return out

            observe.__name__ = fn.__name__
            return observe

        return {"test_loss": guard(self.test_loss), "test_accuracy": guard(self.test_accuracy)}

    @property
    def untrained_test_accuracy(self) -> float:
        """Test accuracy at :meth:`initial_point` (the untrained network): a trained network
        must beat it."""
        return float(self.test_accuracy(self._w0[None, :])[0])

    @property
    def chance_accuracy(self) -> float:
        """Test accuracy of always predicting the most frequent training class."""
        top = np.bincount(self.labels, minlength=self.n_classes).argmax()
        return float(np.mean(self.labels_test == top))

    # ---- starting points -------------------------------------------------------------------
    def initial_point(self):
        """A fixed PyTorch-default initialisation (U(+-1/sqrt(fan_in))) drawn from ``seed``."""
        return self._w0.copy()

    def random_initial_point(self, rng):
        """A fresh PyTorch-default initialisation, W1, b1 ~ U(+-1/sqrt(p)) and
        W2, b2 ~ U(+-1/sqrt(h)), drawn from ``rng`` (the replicate's init stream)."""
        return _torch_default_init(rng, self.n_inputs, self.width, self.n_classes)

    def params(self):
        return {
            **super().params(),
            "n_inputs": self.n_inputs,
            "width": self.width,
            "n_classes": self.n_classes,
            "n_test": int(self.X_test.shape[0]),
            "seed": self.seed,
        }


def load_digits_split(test_size: int = 360, split_seed: int = 0):
    """scikit-learn's bundled digits (1797 8x8 images, 10 classes), split once.

    Pixels (0..16) are divided by 16, so features lie in [0, 1] with no statistic of the data
    used (nothing leaks from the test set). The split is stratified by class and seeded
    (``sklearn.model_selection.train_test_split(stratify=labels, random_state=split_seed)``):
    the same arguments give the same split on every machine. Returns
    ``X_train, labels_train, X_test, labels_test``. Nothing is downloaded.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, labels = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, labels, test_size=test_size, stratify=labels, random_state=split_seed
    )
    return (
        np.ascontiguousarray(X_tr, dtype=float),
        y_tr.astype(np.int64),
        np.ascontiguousarray(X_te, dtype=float),
        y_te.astype(np.int64),
    )


class DigitsMLP(MLPClassifier):
    """A one-hidden-layer tanh MLP with softmax cross-entropy on scikit-learn's digits.

    Data: 1797 8x8 grey-level images of the digits 0-9 (p = 64 features, scaled to [0, 1]),
    split once into a stratified, seeded training set (N = 1437 by default) and test set
    (360), see :func:`load_digits_split`. Model, loss and layout as in the module docstring::

        div_i(w) = logsumexp_k z_k(x_i) - z_{y_i}(x_i),  z = W2 tanh(W1 x + b1) + b2,

    with d = 65 h + 10 (h + 1) parameters (2410 for h = 32). f* is unknown
    (``f_star = None``): measure progress by the training loss, ||grad f||^2 and the test
    metrics (``simulate(..., observe=problem.observables())``).

    Parameters
    ----------
    width : int, default 32
        Hidden units h.
    test_size : int, default 360
        Test samples, at least 10 (one per class) and at most 1787.
    split_seed : int, default 0
        Seed of the train/test split.
    seed : int, default 0
        Seed of :meth:`initial_point`.
    """

    name = "digits_mlp"

    def __init__(self, *, width: int = 32, test_size: int = 360, split_seed: int = 0, seed=0):
        owner = "DigitsMLP"
        test_size = check_scalar(
            test_size, "test_size", owner, kind=int, low=10, high=1787, closed="both"
        )
        self.test_size = test_size
        self.split_seed = check_scalar(
            split_seed, "split_seed", owner, kind=int, low=0, closed="left"
        )
        X, y, X_test, y_test = load_digits_split(test_size, self.split_seed)
        super().__init__(X, y, X_test, y_test, width=width, n_classes=10, seed=seed)

    def params(self):
        return {**super().params(), "split_seed": self.split_seed}
