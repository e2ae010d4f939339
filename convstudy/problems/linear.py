"""Linear models: least squares with a chosen spectrum, ridge and L2-logistic regression.

All three are finite sums over the rows (x_i, y_i) of a design matrix X (N, d) and targets y (N,):

- least squares:  div_i(w) = (x_i . w - y_i)^2 / 2 (+ lam/2 ||w||^2 for ridge);
- logistic:       div_i(w) = log(1 + exp(-y_i x_i . w)) + lam/2 ||w||^2,  y_i in {-1, +1}.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from .._validation import check_array, check_option, check_scalar
from .base import Problem, rowwise_matmul

__all__ = ["LeastSquares", "Quadratic", "Ridge", "Logistic", "load_dataset"]


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset bundled with scikit-learn, features standardised to mean 0, variance 1.

    ``"diabetes"`` (442 x 10, regression target centred and scaled to unit variance) or
    ``"breast_cancer"`` (569 x 30, labels mapped to {-1, +1}). Nothing is downloaded.
    """
    from sklearn import datasets

    check_option(name, "name", "load_dataset", ["diabetes", "breast_cancer"])
    loader = datasets.load_diabetes if name == "diabetes" else datasets.load_breast_cancer
    X, y = loader(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    if name == "diabetes":
        y = (y - y.mean()) / y.std()
    else:
        y = np.where(y > 0, 1.0, -1.0)
    return X, y.astype(float)


class _LinearModel(Problem):
    """Shared machinery for problems whose divergence depends on w through x_i . w."""

    X: np.ndarray
    y: np.ndarray
    lam: float = 0.0

    def _set_data(self, X, y, owner: str) -> None:
        X = check_array(X, "X", owner, ndim=2)
        y = check_array(y, "y", owner, shape=(X.shape[0],))
        self.X, self.y = X, y
        self.n_samples, self.dim = X.shape

    def _margins(self, w: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Xb = self.X[idx]  # (R, b, d)
        return Xb, np.einsum("rbd,rd->rb", Xb, w)

    # link-specific pieces: loss and derivative as functions of the margin z = x.w
    def _phi(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _dphi(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _ridge_term(self, w: np.ndarray) -> np.ndarray:
        return 0.5 * self.lam * np.einsum("rd,rd->r", w, w)

    def sample_losses(self, w, idx):
        _, z = self._margins(w, idx)
        return self._phi(z, self.y[idx]) + self._ridge_term(w)[:, None]

    def sample_grads(self, w, idx):
        Xb, z = self._margins(w, idx)
        return self._dphi(z, self.y[idx])[:, :, None] * Xb + self.lam * w[:, None, :]

    def batch_grad(self, w, idx):
        Xb, z = self._margins(w, idx)
        return np.einsum("rb,rbd->rd", self._dphi(z, self.y[idx]), Xb) / idx.shape[1] + self.lam * w

    def loss(self, w):
        z = rowwise_matmul(w, self.X.T)  # (R, N)
        return self._phi(z, self.y[None, :]).mean(axis=1) + self._ridge_term(w)

    def grad(self, w):
        z = rowwise_matmul(w, self.X.T)
        dphi = self._dphi(z, self.y[None, :])
        return rowwise_matmul(dphi, self.X) / self.n_samples + self.lam * w


class LeastSquares(_LinearModel):
    """Least squares f(w) = 1/(2N) ||X w - y||^2 + lam/2 ||w||^2 on given data.

    Hessian H = X^T X / N + lam I, so mu and L are its extreme eigenvalues and the optimum is
    the exact solution of (X^T X / N + lam I) w* = X^T y / N.
    """

    name = "least_squares"

    def __init__(self, X, y, *, lam: float = 0.0, name: str | None = None):
        owner = type(self).__name__
        self._set_data(X, y, owner)
        self.lam = check_scalar(lam, "lam", owner, low=0.0, closed="left")
        if name is not None:
            self.name = name
        self._solve()

    def _solve(self) -> None:
        H = self.X.T @ self.X / self.n_samples + self.lam * np.eye(self.dim)
        eig = np.linalg.eigvalsh(H)
        self.mu, self.L = float(max(eig[0], 0.0)), float(eig[-1])
        self.convexity = "strongly convex" if self.mu > 1e-12 * self.L else "convex"
        if self.convexity == "strongly convex":
            self.w_star = np.linalg.solve(H, self.X.T @ self.y / self.n_samples)
        else:  # minimum-norm minimiser of a rank-deficient least-squares problem
            self.w_star = np.linalg.lstsq(self.X, self.y, rcond=None)[0]
        self.f_star = float(self.loss(self.w_star[None, :])[0])

    def _phi(self, z, y):
        return 0.5 * (z - y) ** 2

    def _dphi(self, z, y):
        return z - y

    def params(self):
        return {**super().params(), "lam": self.lam}


class Quadratic(LeastSquares):
    """Synthetic least squares whose Hessian has an exactly chosen spectrum.

    X = sqrt(N) Q diag(sqrt(lambda)) V^T with Q (N, d) and V (d, d) random orthonormal, so
    H = X^T X / N = V diag(lambda) V^T with lambda log-spaced from mu to L = kappa * mu.
    Targets y = X w_true + noise * z, z ~ N(0, 1): ``noise`` sets the per-sample gradient noise
    at w* (noise = 0 makes every div_i minimal at w*, the interpolation regime).
    """

    name = "quadratic"

    def __init__(
        self,
        dim: int = 10,
        *,
        condition_number: float = 10.0,
        mu: float = 1.0,
        noise: float = 1.0,
        n_samples: int = 1000,
        seed: int = 0,
    ):
        owner = "Quadratic"
        dim = check_scalar(dim, "dim", owner, kind=int, low=1, closed="left")
        n_samples = check_scalar(n_samples, "n_samples", owner, kind=int, low=dim, closed="left")
        kappa = check_scalar(condition_number, "condition_number", owner, low=1.0, closed="left")
        mu = check_scalar(mu, "mu", owner, low=0.0)
        noise = check_scalar(noise, "noise", owner, low=0.0, closed="left")
        seed = check_scalar(seed, "seed", owner, kind=int, low=0, closed="left")
        rng = np.random.default_rng(seed)
        eig = mu * np.logspace(0.0, np.log10(kappa), dim) if dim > 1 else np.array([mu])
        Q, _ = np.linalg.qr(rng.standard_normal((n_samples, dim)))
        V, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        X = np.sqrt(n_samples) * (Q * np.sqrt(eig)) @ V.T
        w_true = rng.standard_normal(dim)
        y = X @ w_true + noise * rng.standard_normal(n_samples)
        self.condition_number, self.noise, self.seed = kappa, noise, seed
        self.eigenvalues = eig
        super().__init__(X, y, lam=0.0)
        self.mu, self.L = float(eig[0]), float(eig[-1])  # exact by construction

    def initial_point(self):
        """Start at w = w* + (1, ..., 1) * sqrt(2/d): f(w0) - f* is of order the spectrum's mean."""
        return self.w_star + np.sqrt(2.0 / self.dim)

    def params(self):
        return {
            "problem": self.name,
            "n_samples": self.n_samples,
            "dim": self.dim,
            "condition_number": self.condition_number,
            "mu": self.mu,
            "noise": self.noise,
            "seed": self.seed,
        }


class Ridge(LeastSquares):
    """Ridge regression on scikit-learn's bundled diabetes data (standardised), lam > 0."""

    name = "ridge"

    def __init__(self, *, lam: float = 1e-2, dataset: str = "diabetes"):
        X, y = load_dataset(dataset)
        self.dataset = dataset
        super().__init__(X, y, lam=check_scalar(lam, "lam", "Ridge", low=0.0))

    def params(self):
        return {**super().params(), "dataset": self.dataset}


class Logistic(_LinearModel):
    """L2-regularised logistic regression on scikit-learn's bundled breast-cancer data.

    div_i(w) = log(1 + exp(-y_i x_i . w)) + lam/2 ||w||^2, y_i in {-1, +1}. Strongly convex with
    mu = lam and L = lam + lambda_max(X^T X) / (4 N) (the logistic curvature is at most 1/4).
    w* is solved by L-BFGS then Newton polishing until ||grad f(w*)|| <= 1e-10.
    """

    name = "logistic"
    convexity = "strongly convex"

    def __init__(self, *, lam: float = 1e-2, dataset: str = "breast_cancer", X=None, y=None):
        owner = "Logistic"
        self.lam = check_scalar(lam, "lam", owner, low=0.0)
        if X is None:
            X, y = load_dataset(dataset)
        else:
            dataset = "custom"
        self._set_data(X, y, owner)
        if not np.all(np.isin(self.y, (-1.0, 1.0))):
            raise ValueError(f"The 'y' parameter of {owner} must contain only -1 and +1 labels.")
        self.dataset = dataset
        self.mu = self.lam
        self.L = self.lam + float(np.linalg.eigvalsh(self.X.T @ self.X)[-1]) / (4 * self.n_samples)
        self.w_star = self._solve()
        self.f_star = float(self.loss(self.w_star[None, :])[0])

    def _phi(self, z, y):
        return np.logaddexp(0.0, -y * z)

    def _dphi(self, z, y):
        return -y * special.expit(-y * z)

    def _hessian(self, w: np.ndarray) -> np.ndarray:
        s = special.expit(self.X @ w)
        return (self.X.T * (s * (1 - s))) @ self.X / self.n_samples + self.lam * np.eye(self.dim)

    def _solve(self, tol: float = 1e-10) -> np.ndarray:
        def fun(w):
            return float(self.loss(w[None])[0]), self.grad(w[None])[0]

        w = optimize.minimize(
            fun,
            np.zeros(self.dim),
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-12, "maxiter": 10_000},
        ).x
        for _ in range(50):  # Newton polishing: quadratic convergence from the L-BFGS point
            g = self.grad(w[None])[0]
            if np.linalg.norm(g) <= tol:
                return w
            w = w - np.linalg.solve(self._hessian(w), g)
        raise RuntimeError(f"Logistic optimum not certified: ||grad|| = {np.linalg.norm(g):.3g}")

    def params(self):
        return {**super().params(), "lam": self.lam, "dataset": self.dataset}
