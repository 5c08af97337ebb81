"""From 6sense's `/v2/people/full` JSON to the flat output value of DESIGN.md (pure).

Tolerant by design: `scores` and `segments` are absent unless enabled on the token, any value
may be null, and employee count / revenue arrive as strings in the provider's own spec.
Every output carries every key, so SQL views never meet a missing path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

STATUSES = ("ok", "no_match", "invalid_input", "pending", "error", "quota_exhausted", "budget_exhausted")

COMPANY_FIELDS: dict[str, str] = {
    "companyId": "company_id",
    "domain": "company_domain",
    "name": "company_name",
    "region": "company_region",
    "country": "company_country",
    "countryISOCode": "company_country_iso_code",
    "state": "company_state",
    "city": "company_city",
    "streetAddress": "company_street_address",
    "postalCode": "company_postal_code",
    "companyPhone": "company_phone",
    "industry": "company_industry",
    "employeeRange": "company_employee_range",
    "revenueRange": "company_revenue_range",
    "employeeCount": "company_employee_count",
    "annualRevenue": "company_annual_revenue",
    "siccode": "company_sic_code",
    "sicdescription": "company_sic_description",
    "naicscode": "company_naics_code",
    "naicsdescription": "company_naics_description",
}
CONTACT_FIELDS: dict[str, str] = {
    "titleLevel": "contact_title_level",
    "titleFunction": "contact_title_function",
}
NUMERIC_COMPANY_FIELDS = frozenset({"employeeCount", "annualRevenue"})
SCORE_FIELDS: tuple[str, ...] = (
    "product",
    "company_intent_score",
    "company_buying_stage",
    "company_profile_score",
    "company_profile_fit",
    "contact_intent_score",
    "contact_grade",
    "contact_profile_score",
    "contact_profile_fit",
)
INTEGER_SCORE_FIELDS = frozenset(
    {"company_intent_score", "company_profile_score", "contact_intent_score", "contact_profile_score"}
)
OUTPUT_KEYS: tuple[str, ...] = (
    "status",
    "error",
    *COMPANY_FIELDS.values(),
    *CONTACT_FIELDS.values(),
    "scores",
    "segment_ids",
    "segment_names",
    "segments",
    "fetched_at",
    "from_cache",
)


def empty_value(status: str, error: str | None = None, fetched_at: str | None = None) -> dict[str, Any]:
    """An output value with every key present and nothing known but the status."""
    value: dict[str, Any] = dict.fromkeys(OUTPUT_KEYS)
    value.update(
        status=status,
        error=error,
        scores=[],
        segment_ids=[],
        segment_names=[],
        segments=[],
        fetched_at=fetched_at,
        from_cache=False,
    )
    return value


def has_match(payload: Mapping[str, Any]) -> bool:
    """6sense matched the lead: it sent a company with any value, or any score."""
    company = payload.get("company")
    company_known = isinstance(company, Mapping) and any(v not in (None, "", []) for v in company.values())
    return company_known or bool(payload.get("scores"))


def flatten(payload: Mapping[str, Any], fetched_at: str) -> dict[str, Any]:
    """The output value for one 6sense answer (status `ok`, or `no_match` when nothing matched)."""
    value = empty_value("ok" if has_match(payload) else "no_match", fetched_at=fetched_at)
    company = payload.get("company")
    if isinstance(company, Mapping):
        for source, target in (COMPANY_FIELDS | CONTACT_FIELDS).items():
            raw = company.get(source)
            value[target] = to_number(raw) if source in NUMERIC_COMPANY_FIELDS else _text(raw)
    # Some answers put the contact's title fields at the top level rather than under company.
    for source, target in CONTACT_FIELDS.items():
        if value[target] is None:
            value[target] = _text(payload.get(source))
    scores = payload.get("scores")
    if isinstance(scores, list):
        value["scores"] = [_score(item) for item in scores if isinstance(item, Mapping)]
    value["segment_ids"], value["segment_names"], value["segments"] = _segments(payload.get("segments"))
    return value


def _score(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _integer(item.get(name)) if name in INTEGER_SCORE_FIELDS else _text(item.get(name))
        for name in SCORE_FIELDS
    }


def _segments(raw: Any) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    """(ids, names, [{id, name}]) from `segments`, built from `list` or from `ids`/`names`."""
    if not isinstance(raw, Mapping):
        return [], [], []
    listed = raw.get("list")
    if isinstance(listed, list) and listed:
        pairs = [(_integer(i.get("id")), _text(i.get("name"))) for i in listed if isinstance(i, Mapping)]
    else:
        ids = raw.get("ids") if isinstance(raw.get("ids"), list) else []
        names = raw.get("names") if isinstance(raw.get("names"), list) else []
        count = max(len(ids), len(names))
        pairs = [
            (_integer(ids[i]) if i < len(ids) else None, _text(names[i]) if i < len(names) else None)
            for i in range(count)
        ]
    return (
        [segment_id for segment_id, _ in pairs],
        [name for _, name in pairs],
        [{"id": segment_id, "name": name} for segment_id, name in pairs],
    )


def to_number(raw: Any) -> int | float | None:
    """A number from a JSON number or a numeric string (`"1,200"` -> 1200); else None."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if not isinstance(raw, str):
        return None
    text = raw.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _integer(raw: Any) -> int | None:
    number = to_number(raw)
    if number is None:
        return None
    return int(number) if float(number).is_integer() else None


def _text(raw: Any) -> str | None:
    if raw is None or isinstance(raw, Mapping | list):
        return None
    text = str(raw).strip()
    return text or None
