"""Verdicts: the band, the theory's prediction, and what a missing estimate means."""

import math

import pytest

from convstudy.claims import Check, checks_frame, covers, verdict, verdict_and_reason
from convstudy.stats.estimate import Estimate

BAND = (0.45, 0.55)


@pytest.mark.parametrize(
    "ci, prediction, expected",
    [
        ((0.49, 0.51), 0.5, "reproduced"),
        ((0.49, 0.51), math.nan, "reproduced"),  # the theory gives only the band
        ((0.527, 0.533), 0.5, "within tolerance"),  # inside the band, excludes 0.5
        ((0.56, 0.60), 0.5, "not reproduced"),
        ((0.53, 0.58), 0.5, "inconclusive"),
    ],
)
def test_a_ci_that_excludes_the_prediction_is_not_plainly_reproduced(ci, prediction, expected):
    assert verdict(*ci, *BAND, prediction=prediction) == expected


def test_every_verdict_but_reproduced_has_a_reason():
    assert verdict_and_reason(0.49, 0.51, *BAND, prediction=0.5) == ("reproduced", "")
    got, why = verdict_and_reason(0.527, 0.533, *BAND, prediction=0.5)
    assert got == "within tolerance" and "excludes the prediction 0.5" in why
    got, why = verdict_and_reason(0.53, 0.58, *BAND)
    assert got == "inconclusive" and "straddles" in why
    got, why = verdict_and_reason(0.6, 0.7, *BAND)
    assert got == "not reproduced" and "outside [0.45, 0.55]" in why


def test_a_missing_estimate_is_a_failure_where_that_is_the_failure_mode():
    assert verdict(math.nan, math.nan, *BAND) == "inconclusive"
    got, why = verdict_and_reason(math.nan, math.nan, *BAND, missing="not reproduced")
    assert got == "not reproduced" and "no estimate" in why
    with pytest.raises(ValueError, match="'missing' parameter"):
        verdict(0.5, 0.5, *BAND, missing="fine")


def test_check_rows_carry_prediction_coverage_and_reason():
    est = Estimate(0.53, 0.527, 0.533, 200, "Student t")
    check = Check.from_estimate(
        est, id="x", claim=6, statement="s", source="src", quantity="q", expected="0.5 +- 10%",
        expected_low=BAND[0], expected_high=BAND[1], prediction=0.5,
    )  # fmt: skip
    row = checks_frame([check]).iloc[0]
    assert row["prediction"] == 0.5 and not row["ci_covers_prediction"]
    assert row["verdict"] == "within tolerance" and "excludes" in row["reason"]
    assert covers(0.4, 0.6, 0.5) and covers(0.4, 0.6, math.nan) is None


def test_seed_agreement_counts_the_seeds_that_share_a_verdict():
    import pandas as pd

    from convstudy.claims import seed_agreement

    main = pd.DataFrame({"id": ["a", "b"], "verdict": ["reproduced", "inconclusive"]})
    one = pd.DataFrame({"id": ["a", "b"], "verdict": ["reproduced", "reproduced"]})
    two = pd.DataFrame({"id": ["a"], "verdict": ["not reproduced"]})
    got = seed_agreement(main, 0, [(1, one), (2, two)]).set_index("id")
    assert got.loc["a", "seeds_agree"] == "2/3" and got.loc["b", "seeds_agree"] == "1/3"
    assert got.loc["b", "seed_verdicts"] == "0: inconclusive; 1: reproduced; 2: missing"
