"""Flattening 6sense answers into the output value (pure)."""

from __future__ import annotations

from pathlib import Path

import yaml

from udf_service.sixsense.flatten import (
    COMPANY_FIELDS,
    CONTACT_FIELDS,
    OUTPUT_KEYS,
    SCORE_FIELDS,
    empty_value,
    flatten,
    to_number,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed-openapi.yml"
DESIGN_KEYS = [
    "status",
    "error",
    "company_id",
    "company_domain",
    "company_name",
    "company_region",
    "company_country",
    "company_country_iso_code",
    "company_state",
    "company_city",
    "company_street_address",
    "company_postal_code",
    "company_phone",
    "company_industry",
    "company_employee_range",
    "company_revenue_range",
    "company_employee_count",
    "company_annual_revenue",
    "company_sic_code",
    "company_sic_description",
    "company_naics_code",
    "company_naics_description",
    "contact_title_level",
    "contact_title_function",
    "scores",
    "segment_ids",
    "segment_names",
    "segments",
    "fetched_at",
    "from_cache",
]


def _seed_schema(name: str) -> dict:
    return yaml.safe_load(SEED.read_text())["components"]["schemas"][name]["properties"]


def test_output_keys_are_the_design_contract() -> None:
    """Every value carries exactly the DESIGN.md keys."""
    assert list(OUTPUT_KEYS) == DESIGN_KEYS
    assert list(empty_value("pending")) == DESIGN_KEYS


def test_every_seed_field_reaches_the_output() -> None:
    """Every field of the seed's Company, Score and Segments schemas has its DESIGN.md key."""
    company = _seed_schema("Company")
    assert set(company) == set(COMPANY_FIELDS) | set(CONTACT_FIELDS)
    payload = {
        "company": {
            field: ("12" if spec["type"] in {"integer", "number"} else f"<{field}>")
            for field, spec in company.items()
        },
        "scores": [
            {
                field: (7 if spec["type"] == "integer" else f"<{field}>")
                for field, spec in _seed_schema("Score").items()
            }
        ],
        "segments": {"ids": [1], "names": ["ICP"], "list": [{"id": 1, "name": "ICP"}]},
    }
    assert set(_seed_schema("Score")) == set(SCORE_FIELDS)
    assert set(_seed_schema("Segments")) == {"ids", "names", "list"}
    value = flatten(payload, "2026-11-26T00:00:00Z")
    for source, target in (COMPANY_FIELDS | CONTACT_FIELDS).items():
        assert value[target] is not None, f"{source} did not reach {target}"
    assert value["company_employee_count"] == 12 and value["company_annual_revenue"] == 12
    assert value["scores"] == [{f: (7 if f.endswith("_score") else f"<{f}>") for f in SCORE_FIELDS}]
    assert value["segment_ids"] == [1] and value["segment_names"] == ["ICP"]
    assert value["segments"] == [{"id": 1, "name": "ICP"}]
    assert value["status"] == "ok" and value["fetched_at"] == "2026-11-26T00:00:00Z"


def test_absent_scores_and_segments_become_empty_arrays() -> None:
    """Tokens without the score/segment toggles get [] rather than missing keys."""
    value = flatten({"company": {"name": "Acme"}}, "t")
    assert value["scores"] == [] and value["segments"] == [] and value["segment_ids"] == []


def test_nulls_everywhere_are_tolerated() -> None:
    """Null company, scores and segments give a no_match value, not an exception."""
    value = flatten({"company": None, "scores": None, "segments": None}, "t")
    assert value["status"] == "no_match" and value["scores"] == []


def test_segments_from_ids_and_names_when_list_is_absent() -> None:
    """Segment data formats without `list` still give id/name pairs."""
    value = flatten({"company": {"name": "A"}, "segments": {"ids": ["4713", 2], "names": ["ICP"]}}, "t")
    assert value["segments"] == [{"id": 4713, "name": "ICP"}, {"id": 2, "name": None}]


def test_numbers_sent_as_strings() -> None:
    """Numeric strings become numbers; anything else becomes null."""
    assert to_number("1,200") == 1200
    assert to_number("12.5") == 12.5
    assert to_number("") is None and to_number("n/a") is None and to_number("nan") is None
    assert to_number(True) is None and to_number(float("inf")) is None and to_number(42) == 42
    value = flatten({"company": {"name": "A", "employeeCount": "abc", "annualRevenue": "1e6"}}, "t")
    assert value["company_employee_count"] is None and value["company_annual_revenue"] == 1000000


def test_scores_with_junk_values() -> None:
    """Non-numeric scores become null; non-object score items are dropped."""
    value = flatten(
        {"company": {"name": "A"}, "scores": [{"product": "p", "company_intent_score": "x"}, 5]}, "t"
    )
    assert value["scores"][0]["company_intent_score"] is None and len(value["scores"]) == 1
