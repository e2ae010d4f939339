"""How a check is specified before any run: statement, source, prediction, tolerance, window.

A :class:`CheckSpec` is data fixed in advance (one module per study under
:mod:`convstudy.catalogue`): what the course claims, the theory's prediction and how it is
computed, the acceptance band around it and why it is that wide, the fit window and why, and the
deliberately broken variant that must fail it. A study measures an :class:`Estimate` and calls
``spec.check(estimate, prediction=...)``; the band follows from the spec, never from the data.

Bands: where the theory gives a number, the band is that number +- ``tolerance`` (relative, at
most 10% unless ``wide_reason`` says why the theory cannot be held tighter); where it gives only
an inequality, ``bound`` is the half-line or interval it allows and ``bound_reason`` says why
there is no number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..claims import CHECK_KINDS, MISSING_VERDICTS, Check
from ..stats.estimate import Estimate

__all__ = ["CheckSpec", "MAX_TOLERANCE"]

MAX_TOLERANCE = 0.10


@dataclass(frozen=True)
class CheckSpec:
    """One check of a claim, fixed before the runs.

    ``id``, ``statement`` and ``quantity`` may hold ``{placeholders}`` filled per instance
    (``spec.check(..., problem="ridge")``). Exactly one of ``tolerance`` (relative band around
    the prediction the study passes) and ``bound`` (the allowed interval, for an inequality) is
    given. ``prediction`` says how the theory's number is computed; ``window`` which part of the
    run is fitted and why.
    """

    id: str
    claim: int
    statement: str
    source: str
    quantity: str
    prediction: str
    tolerance: float | None = None
    tolerance_reason: str = ""
    wide_reason: str = ""
    bound: tuple[float, float] | None = None
    bound_reason: str = ""
    window: str = ""
    broken_variant: str = ""
    missing: str = "inconclusive"
    kind: str = "claim"

    def __post_init__(self) -> None:
        where = f"CheckSpec {self.id!r}"
        if (self.tolerance is None) == (self.bound is None):
            raise ValueError(f"{where} needs exactly one of 'tolerance' and 'bound'.")
        if self.tolerance is not None:
            if not (0 < self.tolerance < 1):
                raise ValueError(f"{where}: 'tolerance' must be in (0, 1). Got {self.tolerance}.")
            if not self.tolerance_reason:
                raise ValueError(f"{where}: a 'tolerance' needs its 'tolerance_reason'.")
            if self.tolerance > MAX_TOLERANCE and not self.wide_reason:
                raise ValueError(
                    f"{where}: a tolerance of {self.tolerance:.0%} is wider than "
                    f"{MAX_TOLERANCE:.0%}; say why in 'wide_reason' or tighten it."
                )
        else:
            low, high = self.bound
            if not low < high or (math.isinf(low) and math.isinf(high)):
                raise ValueError(f"{where}: 'bound' must be an interval. Got {self.bound}.")
            if not self.bound_reason:
                raise ValueError(f"{where}: a 'bound' needs its 'bound_reason'.")
        if self.missing not in MISSING_VERDICTS or self.kind not in CHECK_KINDS:
            raise ValueError(f"{where}: bad 'missing' or 'kind' ({self.missing}, {self.kind}).")
        if self.kind == "claim" and not self.broken_variant:
            raise ValueError(
                f"{where}: a claim check names the broken variant that must fail it "
                "(or is kind='sanity')."
            )

    def band(self, prediction: float = math.nan) -> tuple[float, float]:
        """The acceptance interval: prediction +- tolerance, or the bound."""
        if self.bound is not None:
            return self.bound
        if not math.isfinite(prediction):
            raise ValueError(f"CheckSpec {self.id!r} needs a finite prediction for its band.")
        a, b = prediction * (1 - self.tolerance), prediction * (1 + self.tolerance)
        return (min(a, b), max(a, b))

    def expected_text(self, prediction: float = math.nan) -> str:
        if self.bound is not None:
            low, high = self.bound
            if math.isinf(low):
                return f"<= {high:.4g}"
            if math.isinf(high):
                return f">= {low:.4g}"
            return f"in [{low:.4g}, {high:.4g}]"
        return f"{prediction:.4g} +- {self.tolerance:.0%}"

    def rationale(self) -> str:
        parts = [f"prediction: {self.prediction}"]
        if self.tolerance is not None:
            parts.append(f"band +-{self.tolerance:.0%}: {self.tolerance_reason}")
            if self.wide_reason:
                parts.append(f"wider than {MAX_TOLERANCE:.0%} because {self.wide_reason}")
        else:
            parts.append(f"inequality only: {self.bound_reason}")
        if self.window:
            parts.append(f"window: {self.window}")
        return "; ".join(parts)

    def check(
        self,
        estimate: Estimate,
        *,
        prediction: float = math.nan,
        study: str = "",
        figure: str = "",
        table: str = "",
        notes: str = "",
        **fields: object,
    ) -> Check:
        """The :class:`Check` of a measured ``estimate`` (placeholders filled from ``fields``).

        ``prediction`` is the theory's number (required with a tolerance; optional with a bound,
        where it is shown and tested for coverage when the theory gives one).
        """
        low, high = self.band(prediction)
        return Check.from_estimate(
            estimate,
            id=self.id.format(**fields),
            claim=self.claim,
            statement=self.statement.format(**fields),
            source=self.source,
            quantity=self.quantity.format(**fields),
            expected=self.expected_text(prediction),
            expected_low=low,
            expected_high=high,
            prediction=prediction,
            missing=self.missing,
            broken_variant=self.broken_variant,
            kind=self.kind,
            rationale=self.rationale(),
            study=study,
            figure=figure,
            table=table,
            notes=notes,
        )
