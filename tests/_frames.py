"""Tidy run frames built from matrices of values, for the statistics tests."""

import numpy as np
import pandas as pd

__all__ = ["_frame", "_curves_frame"]


def _frame(values, steps, diverged=None):
    """A tidy frame from a (R, S) matrix of values recorded at ``steps``."""
    R, S = values.shape
    diverged = np.zeros((R, S), bool) if diverged is None else diverged
    return pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "subopt": values.ravel(),
            "diverged": diverged.ravel(),
        }
    )


def _curves_frame(steps, curves, diverged=None) -> pd.DataFrame:
    """A tidy run frame (replicate, step, samples, subopt, diverged) from curves (R, S)."""
    curves = np.asarray(curves, float)
    R, S = curves.shape
    div = np.zeros(R, bool) if diverged is None else np.asarray(diverged)
    return pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(R), S),
            "step": np.tile(steps, R),
            "samples": np.tile(steps, R),
            "subopt": np.where(div[:, None], np.nan, curves).ravel(),
            "diverged": np.repeat(div, S),
        }
    )
