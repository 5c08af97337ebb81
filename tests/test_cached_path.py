"""The cached path's shortcuts give the answers of the general code they stand in for (pure, fast)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import EnvironHeaders

from udf_service import leads, metrics
from udf_service.leads import FIELDS, Lead, country_code, country_key, lead_from_args, website_key
from udf_service.protocols import snowflake
from udf_service.protocols.compression import compress
from udf_service.routes.answers import wire_headers
from udf_service.values import CachedValue, status_of, stored_bytes

# Text that reaches every branch of the checks: blanks, case, non-ASCII, long, email-shaped.
TEXT = st.one_of(
    st.sampled_from(["", "  ", "US", " usa ", "United Kingdom", "826", "Atlantis", "K", "\u212a"]),
    st.from_regex(r"[ A-Za-z0-9.@_+-]{0,30}", fullmatch=True),
    st.text(max_size=12),
    st.just("a" * 995 + "@x.com"),
    st.just("b" * 1001),
)


def _general(args: list[Any], default_country: str | None) -> Lead | leads.InvalidLead:
    """The general path, which every call took before the email-and-country shortcut."""
    return leads._build(dict(zip(FIELDS, args, strict=False)), default_country)


@settings(max_examples=300, deadline=None)
@given(email=TEXT, country=TEXT, default=st.sampled_from([None, "USA", "Germany"]))
def test_email_and_country_shortcut_matches_the_general_path(
    email: str, country: str, default: str | None
) -> None:
    """`people_full(email, country)` with two strings: the same Lead or the same reason as `_build`."""
    assert lead_from_args([email, country], default) == _general([email, country], default)


def _joined_key(lead: Lead) -> str:
    parts = (
        lead.email.strip().lower(),
        country_key(lead.country),
        website_key(lead.website),
        " ".join((lead.company or "").casefold().split()),
        " ".join((lead.title or "").casefold().split()),
    )
    return "v1:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@pytest.mark.parametrize(
    "lead",
    [
        pytest.param(Lead("a@acme.com", "USA"), id="email-country"),
        pytest.param(Lead("a@acme.com", "Atlantis  Republic"), id="unknown-country"),
        pytest.param(Lead("a@acme.com", "GBR", website="https://www.Acme.com/x"), id="website"),
        pytest.param(Lead("a@acme.com", "GBR", company=" Acme  Inc "), id="company"),
        pytest.param(Lead("a@acme.com", "GBR", title="CTO"), id="title"),
    ],
)
def test_key_shortcut_is_the_joined_key(lead: Lead) -> None:
    """The cache key's shortcut for leads without website, company and title is the same key."""
    assert lead.key == _joined_key(lead)


def test_country_memos_are_bounded_and_agree_with_the_lookup() -> None:
    """The country memos answer as the lookup does, and start again when full."""
    assert [country_code(c) for c in ("US", "840", " united  states ", "Atlantis  X")] == [
        "USA",
        "USA",
        "USA",
        "Atlantis X",
    ]
    assert country_key("Atlantis  X") == "atlantis x"
    for i in range(leads._MEMO_SIZE + 10):
        country_code(f"nowhere {i}")
    assert len(leads._CODES) <= leads._MEMO_SIZE
    assert country_code("GB") == "GBR"


ENVIRON = {
    "REQUEST_METHOD": "POST",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": "12",
    "HTTP_CONTENT_ENCODING": "gzip",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate",
    "HTTP_SF_EXTERNAL_FUNCTION_QUERY_BATCH_ID": "q:1",
    "HTTP_SF_CONTEXT_CURRENT_USER": "ANALYST",
    "HTTP_SF_CUSTOM_TEAM": "growth",
    "HTTP_CONTENT_TYPE": "ignored: WSGI keeps the content type unprefixed",
    "wsgi.input": None,
}


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param(ENVIRON, id="snowflake-request"),
        pytest.param({**ENVIRON, "CONTENT_LENGTH": ""}, id="empty-content-length"),
        pytest.param({"REQUEST_METHOD": "GET"}, id="no-headers"),
    ],
)
def test_wire_headers_are_werkzeugs_headers_lowercased(environ: dict[str, Any]) -> None:
    """The plain dict a codec gets has the names and values of `request.headers`."""
    expected = {name.lower(): value for name, value in EnvironHeaders(environ).items()}
    assert wire_headers(environ) == expected


def test_decode_reads_context_from_wire_headers() -> None:
    """The batch id, query id and sf-context/sf-custom headers come through `wire_headers`."""
    batch = snowflake.decode(
        b'{"data": [[0, "a@b.co", "US"]]}', wire_headers(ENVIRON | {"HTTP_CONTENT_ENCODING": ""}), 1000
    )
    assert batch.batch_id == "q:1"
    assert batch.context == {"sf-context-current-user": "ANALYST", "sf-custom-team": "growth"}


def test_metric_children_are_the_labelled_children() -> None:
    """`metrics.child` hands back the object `labels()` does, so counts land in the same series."""
    assert metrics.child(metrics.ROWS, "full", "ok") is metrics.ROWS.labels("full", "ok")
    before = metrics.ROWS.labels("full", "ok")._value.get()
    metrics.count_rows("full", [CachedValue(stored_bytes({"status": "ok"}))] * 3)
    assert metrics.ROWS.labels("full", "ok")._value.get() == before + 3


def test_cached_value_status_is_read_once_and_right() -> None:
    """A cached value's status, read at construction, is the stored one (either key order)."""
    assert status_of(CachedValue(stored_bytes({"status": "no_match", "error": None}))) == "no_match"
    assert CachedValue(b'{"error":null,"status":"ok"}').status == "ok"


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [("gzip", "gzip"), ("deflate;q=1, gzip;q=0", "deflate"), ("br", None), (None, None)],
)
def test_accept_encoding_parse_is_cached_and_unchanged(accept: str | None, encoding: str | None) -> None:
    """The cached Accept-Encoding parse picks the same coding on the first and the next call."""
    assert compress(b"{}", accept)[1] == encoding
    assert compress(b"{}", accept)[1] == encoding
