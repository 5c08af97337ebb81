"""Issue 18, items 4 and 5: one country is one key, one upstream call and the value 6sense
documents (ISO alpha-3, as in its `default=USA`); an email is validated as given before it is
lower-cased, so no two different addresses share a cache key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from udf_service.leads import Lead, country_code, lead_from_args
from udf_service.simulator import SimulatorTransport
from udf_service.testing.snowflake import in_process

UK_SPELLINGS = ["GB", "United Kingdom", "UK", "Great Britain", "England", "826", "GBR", "u.k.", " gb "]


class RecordingTransport(httpx.BaseTransport):
    """The simulator, keeping every form sent upstream."""

    def __init__(self) -> None:
        self.inner = SimulatorTransport()
        self.forms: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(dict(parse_qsl(request.read().decode())))
        return self.inner.handle_request(request)


@pytest.fixture
def upstream() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def recorded_app(make_app: Any, upstream: RecordingTransport) -> Flask:
    return make_app(transport=upstream)


@pytest.mark.parametrize("spelling", UK_SPELLINGS)
def test_every_uk_spelling_is_gbr(spelling: str) -> None:
    """Codes, names, the numeric code and common CRM spellings are all GBR."""
    assert country_code(spelling) == "GBR"


@pytest.mark.parametrize(
    ("given_", "sent"),
    [("840", "USA"), ("US", "USA"), ("usa", "USA"), ("United States", "USA"), ("76", "BRA"), ("de", "DEU"),
     ("Wakanda", "Wakanda"), ("  Middle   Earth ", "Middle Earth")],
)  # fmt: skip
def test_country_value_sent_is_alpha_3_or_the_text(given_: str, sent: str) -> None:
    """`840` is sent as USA (not "840"); an unknown country goes as given, trimmed."""
    lead = lead_from_args(["kate@acme.com", given_])
    assert isinstance(lead, Lead) and lead.country == sent and lead.form()["country"] == sent


def test_one_lead_in_every_uk_spelling_is_one_upstream_call(
    recorded_app: Flask, upstream: RecordingTransport
) -> None:
    """Nine spellings of the UK for one email: one key, one call, `country=GBR` on the wire, and
    every row the same answer."""
    rows = [["kate@acme.com", spelling] for spelling in UK_SPELLINGS]
    values = in_process(recorded_app).query(rows)
    assert len(upstream.forms) == 1
    assert upstream.forms[0]["country"] == "GBR"
    assert all(v == values[0] for v in values) and values[0]["status"] in {"ok", "no_match"}
    keys = {lead_from_args(row).key for row in rows}  # type: ignore[union-attr]
    assert len(keys) == 1


def test_numeric_840_is_sent_as_usa(recorded_app: Flask, upstream: RecordingTransport) -> None:
    """The numeric ISO code is keyed and sent as USA: one call for `840`, `US` and `USA`."""
    in_process(recorded_app).query([["joe@acme.com", "840"], ["joe@acme.com", "US"], ["joe@acme.com", "USA"]])
    assert [form["country"] for form in upstream.forms] == ["USA"]


# ------------------------------------------------------------------------------------ emails

KELVIN = "\u212a"  # KELVIN SIGN: lower-cases to ASCII "k"


def test_kelvin_sign_email_is_invalid_input_not_kates_data(
    recorded_app: Flask, upstream: RecordingTransport
) -> None:
    """`\u212aate@acme.com` is not kate@acme.com: `invalid_input`, no call, never her value."""
    kate, kelvin = in_process(recorded_app).query([["kate@acme.com", "US"], [KELVIN + "ate@acme.com", "US"]])
    assert kate["status"] in {"ok", "no_match"}
    assert kelvin["status"] == "invalid_input" and "ASCII" in kelvin["error"]
    assert [form["email"] for form in upstream.forms] == ["kate@acme.com"]


# Characters whose case mapping lands on (or near) ASCII, fullwidth forms, and plain ASCII.
TRICKY = KELVIN + "\u212b\u017f\u0130\u0131\u00df\uff21\uff41\u1e9e\u00c5\u00e5"
LOCAL = st.text(alphabet=st.sampled_from("abkKsSiI.-_+" + TRICKY), min_size=1, max_size=8)
DOMAIN = st.text(alphabet=st.sampled_from("akKsS-" + TRICKY), min_size=1, max_size=6)
ADDRESS = st.builds(
    lambda u, d, t: f"{u}@{d}.{t}", LOCAL, DOMAIN, st.sampled_from(["com", "co", "\u017fe", "CoM"])
)


def same_lead(a: str, b: str) -> bool:
    """Two addresses are one lead when they differ only in ASCII case and surrounding space."""
    a, b = a.strip(), b.strip()
    return a.isascii() and b.isascii() and a.lower() == b.lower()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ADDRESS, ADDRESS)
@example("kate@acme.com", KELVIN + "ate@acme.com")
@example("kate@acme.com", "KATE@ACME.COM")
@example("sam@acme.com", "\u017fam@acme.com")
def test_two_addresses_that_are_not_the_same_lead_never_share_a_key(a: str, b: str) -> None:
    """Property: equal cache keys imply the same lead (ASCII case-insensitive equality)."""
    first, second = lead_from_args([a, "US"]), lead_from_args([b, "US"])
    if isinstance(first, Lead) and isinstance(second, Lead) and first.key == second.key:
        assert same_lead(a, b), (a, b)
    if isinstance(first, Lead):
        assert first.email.isascii() and first.email == first.email.lower()
