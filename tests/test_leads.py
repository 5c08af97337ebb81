"""The input model: arguments to leads, validation, normalisation, cache keys."""

from __future__ import annotations

import pytest

from udf_service.leads import FIELDS, InvalidLead, Lead, country_key, lead_from_args, website_key


def test_positional_arguments_follow_the_seed_order() -> None:
    """Ten positional arguments map to the ten seed fields in order."""
    values = [f"v{i}" for i in range(10)]
    values[0] = "Jane@Acme.com "
    lead = lead_from_args(values)
    assert isinstance(lead, Lead)
    assert lead.email == "jane@acme.com"
    assert [getattr(lead, f) for f in FIELDS[1:]] == values[1:]


def test_object_argument_with_any_key_case() -> None:
    """One OBJECT argument works, with keys in any case."""
    lead = lead_from_args([{"EMAIL": "a@acme.com", "Country": "US", "title": "CTO"}])
    assert isinstance(lead, Lead) and lead.title == "CTO" and lead.country == "USA"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        pytest.param([None, "US"], "email is missing", id="null-email"),
        pytest.param(["   ", "US"], "email is missing", id="blank-email"),
        pytest.param(["not-an-email", "US"], "not a valid address", id="no-at"),
        pytest.param(["a@b", "US"], "not a valid address", id="no-tld"),
        pytest.param(["a b@c.com", "US"], "not a valid address", id="space"),
        pytest.param(["a@c.com", None], "country is missing", id="no-country"),
        pytest.param(["a@c.com"], "must be an OBJECT", id="single-scalar"),
        pytest.param([{"emial": "a@c.com"}], "unknown field", id="unknown-key"),
        pytest.param(["a@c.com", ["US"]], "must be a string", id="array-value"),
        pytest.param(["a@c.com", "x" * 2000], "longer than", id="huge-value"),
    ],
)
def test_invalid_rows_say_why(args: list[object], reason: str) -> None:
    """Rows that cannot be sent become InvalidLead with a reason, never an exception."""
    lead = lead_from_args(args)
    assert isinstance(lead, InvalidLead)
    assert reason in lead.reason


def test_default_country_fills_a_missing_country() -> None:
    """SIXSENSE_DEFAULT_COUNTRY is used when a row has no country."""
    lead = lead_from_args(["a@acme.com", ""], default_country="USA")
    assert isinstance(lead, Lead) and lead.country == "USA"


@pytest.mark.parametrize("spelling", ["US", "us", "USA", "United States", " united states "])
def test_country_spellings_share_one_key(spelling: str) -> None:
    """US, USA, United States and us are one cache key."""
    assert country_key(spelling) == "USA"


def test_cache_key_ignores_case_spaces_and_non_matching_fields() -> None:
    """Email case and spaces, country spelling and names do not change the key; company does."""
    a = lead_from_args(["Jane@Acme.com", "US", None, None, None, "web", "Jane"])
    b = lead_from_args([" jane@acme.com", "United States", None, None, None, "ads", "J."])
    c = lead_from_args(["jane@acme.com", "US", None, "Acme Inc"])
    assert isinstance(a, Lead) and isinstance(b, Lead) and isinstance(c, Lead)
    assert a.key == b.key != c.key
    assert "jane" not in a.key


def test_website_key_is_the_bare_domain() -> None:
    """Scheme, www and path do not change the website part of the key."""
    assert website_key("https://www.Acme.com/about?x=1") == website_key("acme.com") == "acme.com"
