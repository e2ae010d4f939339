"""The catalogue of checks: fixed before the runs, every claim check falsifiable by a declared
broken variant of its study, no band wider than 10% without a written reason."""

import importlib

import pytest

from convstudy.catalogue import CLAIMS, CheckSpec, all_specs
from convstudy.loader import list_studies, load_study

SPECS = all_specs()


def test_every_study_has_its_catalogue_and_every_variant_named_exists():
    for name in list_studies():
        study = load_study(name)
        module = importlib.import_module(f"convstudy.catalogue.{name}")
        assert module.SPECS, name
        for spec in module.SPECS:
            assert spec.claim in CLAIMS and spec.claim in study.claims, spec.id
            if spec.kind == "claim":
                assert spec.broken_variant in study.variants, (name, spec.id)


def test_bands_are_at_most_ten_percent_unless_a_reason_says_why():
    for spec in SPECS.values():
        if spec.tolerance is not None:
            assert spec.tolerance <= 0.10 or spec.wide_reason, spec.id
            assert spec.tolerance_reason, spec.id
        else:
            assert spec.bound_reason, spec.id


def test_a_spec_that_breaks_the_rules_is_refused():
    common = dict(claim=2, statement="s", source="src", quantity="q", prediction="p")
    with pytest.raises(ValueError, match="wider than 10%"):
        CheckSpec(id="x", tolerance=0.2, tolerance_reason="r", broken_variant="v", **common)
    with pytest.raises(ValueError, match="broken variant"):
        CheckSpec(id="x", tolerance=0.05, tolerance_reason="r", **common)
    with pytest.raises(ValueError, match="exactly one of"):
        CheckSpec(id="x", broken_variant="v", **common)
    with pytest.raises(ValueError, match="'bound_reason'"):
        CheckSpec(id="x", bound=(0.0, 1.0), broken_variant="v", **common)
    sanity = CheckSpec(id="x", kind="sanity", bound=(0.0, 1.0), bound_reason="identity", **common)
    assert sanity.band() == (0.0, 1.0)


def test_the_committed_claims_table_comes_from_the_catalogue():
    from pathlib import Path

    import pandas as pd

    table = Path(__file__).parents[1] / "reports" / "claims.csv"
    claims = pd.read_csv(table)
    assert {"prediction", "ci_covers_prediction", "reason", "seeds_agree"} <= set(claims)
    assert claims["id"].is_unique and claims["rationale"].notna().all()
    for row in claims.itertuples():
        if row.kind == "claim":
            assert isinstance(row.broken_variant, str) and row.broken_variant, row.id
        if "band +-" in row.rationale:  # a band around a numeric prediction
            half = (row.expected_high - row.expected_low) / 2 / abs(row.prediction)
            assert half <= 0.10 + 1e-9 or "wider than" in row.rationale, row.id
        else:  # an inequality, with the reason the theory gives no number
            assert "inequality only" in row.rationale, row.id
