"""Claims as measured checks with verdicts.

A :class:`Check` ties one of the course's convergence claims (:mod:`convstudy.catalogue`) to a
number measured in a study: an estimate with its confidence interval, the interval theory
expects (its acceptance band), the number the theory predicts where it gives one, and a verdict
that follows from these alone:

- ``reproduced``        the CI lies inside the band (and covers the prediction, if any);
- ``within tolerance``  the CI lies inside the band but excludes the theory's prediction: the
                        measured value is close to, but measurably different from, the theory's;
- ``not reproduced``    the CI and the band do not overlap;
- ``inconclusive``      they overlap only partly (the CI is too wide to decide), or nothing was
                        measured (no estimate, e.g. every replicate censored or diverged) and a
                        missing estimate is not itself what a broken implementation produces.
                        A check whose missing estimate *is* the failure mode (a constant step
                        never reaching eps) says ``missing="not reproduced"``.

Every verdict other than ``reproduced`` carries a one-line reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from .stats.estimate import Estimate

__all__ = [
    "Check",
    "verdict",
    "verdict_and_reason",
    "covers",
    "checks_frame",
    "seed_agreement",
    "VERDICTS",
    "CHECK_COLUMNS",
]

VERDICTS = ("reproduced", "within tolerance", "not reproduced", "inconclusive")
MISSING_VERDICTS = ("inconclusive", "not reproduced")
CHECK_KINDS = ("claim", "sanity")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def covers(ci_low: float, ci_high: float, prediction: float) -> bool | None:
    """Whether [ci_low, ci_high] contains ``prediction`` (None when either is missing)."""
    if _missing(prediction) or _missing(ci_low) or _missing(ci_high):
        return None
    return bool(ci_low <= prediction <= ci_high)


def verdict_and_reason(
    ci_low: float,
    ci_high: float,
    expected_low: float,
    expected_high: float,
    *,
    prediction: float = math.nan,
    missing: str = "inconclusive",
) -> tuple[str, str]:
    """The verdict of a measured CI against an acceptance band, and its reason ('' when plainly
    reproduced). See the module docstring for the rules."""
    if missing not in MISSING_VERDICTS:
        raise ValueError(
            f"The 'missing' parameter of verdict must be one of {MISSING_VERDICTS}. "
            f"Got {missing!r} instead."
        )
    if _missing(expected_low) or _missing(expected_high):
        raise ValueError(
            f"A check needs an acceptance band. Got [{expected_low}, {expected_high}] instead."
        )
    if _missing(ci_low) or _missing(ci_high):
        why = "no estimate"
        if missing == "not reproduced":
            why += " (what a broken implementation produces here)"
        return missing, why
    if ci_low > ci_high or expected_low > expected_high:
        raise ValueError(
            f"Intervals must be ordered: got CI [{ci_low}, {ci_high}] and expected "
            f"[{expected_low}, {expected_high}]."
        )
    band = f"[{expected_low:.4g}, {expected_high:.4g}]"
    if ci_high < expected_low or ci_low > expected_high:
        return "not reproduced", f"CI [{ci_low:.4g}, {ci_high:.4g}] lies outside {band}"
    if not (expected_low <= ci_low and ci_high <= expected_high):
        return "inconclusive", f"CI [{ci_low:.4g}, {ci_high:.4g}] straddles the edge of {band}"
    if covers(ci_low, ci_high, prediction) is False:
        return "within tolerance", (
            f"CI [{ci_low:.4g}, {ci_high:.4g}] is inside {band} but excludes the prediction "
            f"{prediction:.4g}"
        )
    return "reproduced", ""


def verdict(
    ci_low: float,
    ci_high: float,
    expected_low: float,
    expected_high: float,
    *,
    prediction: float = math.nan,
    missing: str = "inconclusive",
) -> str:
    """Verdict of a measured CI [ci_low, ci_high] against an expected interval."""
    return verdict_and_reason(
        ci_low, ci_high, expected_low, expected_high, prediction=prediction, missing=missing
    )[0]


@dataclass(frozen=True)
class Check:
    """One measured check of a claim.

    ``claim`` is the DESIGN.md claim number (1-8) and ``id`` a unique check id such as
    ``"2b-gd-rate"``; ``expected_low``/``expected_high`` bound the value theory predicts
    (use +-inf for one-sided claims); ``estimate`` and ``ci_low``/``ci_high`` are measured
    (95% CI), over ``n_replicates`` replicates. ``figure`` and ``table`` are paths relative to
    the study's report folder, naming the evidence. ``prediction`` is the number the theory
    gives (NaN when it only gives an inequality); ``missing`` is the verdict when nothing was
    measured (see :func:`verdict_and_reason`). ``broken_variant`` names the study's
    deliberately wrong :class:`~convstudy.study.Variant` that must turn this check into "not
    reproduced" (the test suite runs it). ``kind`` is ``"claim"``, or ``"sanity"`` for a check
    no variant can fail (an identity, a linear-algebra fact): reported apart, never counted as
    a claim.
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
    prediction: float = math.nan
    missing: str = "inconclusive"
    broken_variant: str = ""
    kind: str = "claim"
    rationale: str = ""

    def __post_init__(self) -> None:
        if self.missing not in MISSING_VERDICTS:
            raise ValueError(
                f"The 'missing' field of check {self.id!r} must be one of {MISSING_VERDICTS}. "
                f"Got {self.missing!r} instead."
            )
        if self.kind not in CHECK_KINDS:
            raise ValueError(
                f"The 'kind' field of check {self.id!r} must be one of {CHECK_KINDS}. "
                f"Got {self.kind!r} instead."
            )

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

    def judged(self) -> tuple[str, str]:
        """(verdict, reason)."""
        return verdict_and_reason(
            self.ci_low,
            self.ci_high,
            self.expected_low,
            self.expected_high,
            prediction=self.prediction,
            missing=self.missing,
        )

    @property
    def verdict(self) -> str:
        return self.judged()[0]

    def as_row(self) -> dict:
        decided, reason = self.judged()
        return {
            **asdict(self),
            "ci_covers_prediction": covers(self.ci_low, self.ci_high, self.prediction),
            "verdict": decided,
            "reason": reason,
        }


CHECK_COLUMNS = [
    "id",
    "claim",
    "statement",
    "source",
    "quantity",
    "expected",
    "expected_low",
    "expected_high",
    "prediction",
    "estimate",
    "ci_low",
    "ci_high",
    "ci_covers_prediction",
    "n_replicates",
    "verdict",
    "reason",
    "missing",
    "broken_variant",
    "kind",
    "rationale",
    "seeds_agree",
    "seed_verdicts",
    "study",
    "figure",
    "table",
    "notes",
]


def checks_frame(checks: list[Check]) -> pd.DataFrame:
    """A claims table, one row per check, in a fixed column order."""
    return pd.DataFrame([c.as_row() for c in checks], columns=CHECK_COLUMNS)


def seed_agreement(
    claims: pd.DataFrame, seed: int, others: list[tuple[int, pd.DataFrame]]
) -> pd.DataFrame:
    """The claims table of run seed ``seed`` with how the same checks fared on other seeds.

    ``others`` holds (seed, claims table) pairs of runs on independent seeds. Adds
    ``seed_verdicts`` ("0: reproduced; 1: reproduced; 2: inconclusive") and ``seeds_agree``
    ("2/3": how many seeds, this one included, gave this row's verdict). A check missing from
    another seed's table counts as disagreeing.
    """
    verdicts = {seed: dict(zip(claims["id"], claims["verdict"]))}
    for other, table in others:
        verdicts[other] = dict(zip(table["id"], table["verdict"]))
    rows_text, rows_agree = [], []
    for check, mine in zip(claims["id"], claims["verdict"]):
        got = {s: table.get(check, "missing") for s, table in verdicts.items()}
        rows_text.append("; ".join(f"{s}: {v}" for s, v in got.items()))
        rows_agree.append(f"{sum(v == mine for v in got.values())}/{len(got)}")
    return claims.assign(seed_verdicts=rows_text, seeds_agree=rows_agree)
