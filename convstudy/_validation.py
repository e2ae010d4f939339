"""Parameter validation in one voice (scikit-learn style).

Every public entry point checks its arguments here, so every message has the same shape::

    The 'lr' parameter of sgd must be a float in the range (0, inf). Got -0.1 instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["check_scalar", "check_option", "check_array"]

_KINDS = {int: "an int", float: "a float"}


def _interval_text(low: float, high: float, closed: str) -> str:
    left = "[" if closed in ("left", "both") else "("
    right = "]" if closed in ("right", "both") else ")"
    lo = "-inf" if low == -math.inf else f"{low:g}"
    hi = "inf" if high == math.inf else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_scalar(
    value: Any,
    name: str,
    owner: str,
    *,
    kind: type = float,
    low: float = -math.inf,
    high: float = math.inf,
    closed: str = "neither",
) -> float | int:
    """Check that ``value`` is a finite scalar of ``kind`` inside an interval and return it.

    ``closed`` is one of ``"neither"``, ``"left"``, ``"right"``, ``"both"`` and says which
    ends of ``[low, high]`` are allowed. Booleans are never accepted as numbers.
    Raises ``TypeError`` for the wrong type and ``ValueError`` for a value out of range.
    """
    what = f"{_KINDS[kind]} in the range {_interval_text(low, high, closed)}"
    msg = f"The {name!r} parameter of {owner} must be {what}. Got {value!r} instead."
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(msg)
    if kind is int:
        if not isinstance(value, numbers.Integral):
            raise TypeError(msg)
        value = int(value)
    else:
        if not isinstance(value, numbers.Real):
            raise TypeError(msg)
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(msg)
    ok_low = value >= low if closed in ("left", "both") else value > low
    ok_high = value <= high if closed in ("right", "both") else value < high
    if not (ok_low and ok_high):
        raise ValueError(msg)
    return value


def check_option(value: Any, name: str, owner: str, options: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``options`` and return it."""
    options = list(options)
    if value not in options:
        shown = ", ".join(repr(o) for o in options)
        raise ValueError(
            f"The {name!r} parameter of {owner} must be one of {{{shown}}}. Got {value!r} instead."
        )
    return value


def check_array(
    value: Any,
    name: str,
    owner: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple[int | None, ...] | None = None,
    dtype: type = float,
    finite: bool = True,
) -> np.ndarray:
    """Convert ``value`` to an array and check its dimension, shape and finiteness.

    ``shape`` entries of ``None`` match any length. Raises ``ValueError`` naming the argument.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The {name!r} parameter of {owner} must be array-like of {dtype.__name__}. "
            f"Got {type(value).__name__} instead."
        ) from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"The {name!r} parameter of {owner} must have {' or '.join(map(str, allowed))} "
                f"dimension(s). Got an array of shape {arr.shape} instead."
            )
    if shape is not None:
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape)
        ):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(
                f"The {name!r} parameter of {owner} must have shape {want}. "
                f"Got shape {arr.shape} instead."
            )
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"The {name!r} parameter of {owner} must contain only finite values. "
            f"Got {bad} non-finite value(s) (NaN or inf) instead."
        )
    return arr
