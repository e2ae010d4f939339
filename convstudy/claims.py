"""Claims as measured checks with verdicts.

A :class:`Check` ties one of the course's convergence claims (DESIGN.md, claims 1-8) to a number
measured in a study: an estimate with its confidence interval, the interval theory expects, and
a verdict that follows from the two intervals alone:

- ``reproduced``      the CI lies inside the expected interval;
- ``not reproduced``  the CI and the expected interval do not overlap;
- ``inconclusive``    they overlap only partly (the CI is too wide to decide), or nothing was
                      measured (no estimate: e.g. every replicate censored or diverged).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from .stats.estimate import Estimate

__all__ = ["Check", "verdict", "checks_frame", "VERDICTS", "CHECK_COLUMNS"]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def verdict(ci_low: float, ci_high: float, expected_low: float, expected_high: float) -> str:
    """Verdict of a measured CI [ci_low, ci_high] against an expected interval."""
    values = (ci_low, ci_high, expected_low, expected_high)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return "inconclusive"
    if ci_low > ci_high or expected_low > expected_high:
        raise ValueError(
            f"Intervals must be ordered: got CI [{ci_low}, {ci_high}] and expected "
            f"[{expected_low}, {expected_high}]."
        )
    if expected_low <= ci_low and ci_high <= expected_high:
        return "reproduced"
    if ci_high < expected_low or ci_low > expected_high:
        return "not reproduced"
    return "inconclusive"


@dataclass(frozen=True)
class Check:
    """One measured check of a claim.

    ``claim`` is the DESIGN.md claim number (1-8) and ``id`` a unique check id such as
    ``"2b-gd-rate"``; ``expected_low``/``expected_high`` bound the value theory predicts
    (use +-inf for one-sided claims); ``estimate`` and ``ci_low``/``ci_high`` are measured
    (95% CI), over ``n_replicates`` replicates. ``figure`` and ``table`` are paths relative to
    the study's report folder, naming the evidence.
    """

    id: str
    claim: int
    statement: str
    source: str
    quantity: str
    expected: str
    expected_low: float
    expected_high: float
    estimate: float
    ci_low: float
    ci_high: float
    n_replicates: int
    study: str = ""
    figure: str = ""
    table: str = ""
    notes: str = field(default="")

    @classmethod
    def from_estimate(cls, estimate: Estimate, **fields) -> Check:
        """A check of ``estimate``: its value, CI and n fill ``estimate, ci_low, ci_high,
        n_replicates``; every other field is a keyword (``id``, ``claim``, ``expected_low``...).
        """
        taken = {"estimate", "ci_low", "ci_high", "n_replicates"} & fields.keys()
        if taken:
            raise TypeError(
                f"Check.from_estimate takes {sorted(taken)} from the Estimate; "
                f"got them as keywords too."
            )
        return cls(
            estimate=estimate.value,
            ci_low=estimate.ci_low,
            ci_high=estimate.ci_high,
            n_replicates=estimate.n,
            **fields,
        )

    @property
    def verdict(self) -> str:
        return verdict(self.ci_low, self.ci_high, self.expected_low, self.expected_high)

    def as_row(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


CHECK_COLUMNS = [
    "id",
    "claim",
    "statement",
    "source",
    "quantity",
    "expected",
    "expected_low",
    "expected_high",
    "estimate",
    "ci_low",
    "ci_high",
    "n_replicates",
    "verdict",
    "study",
    "figure",
    "table",
    "notes",
]


def checks_frame(checks: list[Check]) -> pd.DataFrame:
    """A claims table, one row per check, in a fixed column order."""
    return pd.DataFrame([c.as_row() for c in checks], columns=CHECK_COLUMNS)
