"""Test leads and the values the service must answer for them, derived from the simulator."""

from __future__ import annotations

import random
from typing import Any

from udf_service.leads import Lead, lead_from_args
from udf_service.simulator import lead_answer
from udf_service.sixsense.flatten import empty_value, flatten

VOLATILE_KEYS = ("fetched_at", "from_cache")
DOMAINS = [f"company{i}.com" for i in range(40)] + ["gmail.com", "yahoo.com"]
# Each person has one country, spelled any of these ways (all one cache key).
COUNTRY_SPELLINGS = [["US", "USA", "United States", "us"], ["DE", "Germany", "deu"], ["GB", "United Kingdom"]]


def make_rows(count: int, seed: int = 1, unique: int | None = None) -> list[list[Any]]:
    """`count` rows of (email, country), with repeats, odd spellings, NULL and invalid emails."""
    rng = random.Random(seed)
    unique = unique or max(count * 6 // 10, 1)
    people = [f"person{i}@{DOMAINS[i % len(DOMAINS)]}" for i in range(unique)]
    rows: list[list[Any]] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.03:
            rows.append([None, "US"])
        elif roll < 0.05:
            rows.append(["   ", "US"])
        elif roll < 0.07:
            rows.append([f"not-an-email-{i}", "US"])
        else:
            person = rng.randrange(unique)
            email = people[person]
            if rng.random() < 0.2:
                email = f"  {email.upper()} "
            rows.append([email, rng.choice(COUNTRY_SPELLINGS[person % len(COUNTRY_SPELLINGS)])])
    return rows


def expected_value(args: list[Any]) -> dict[str, Any]:
    """What the service must answer for one row, minus the volatile keys."""
    lead = lead_from_args(args)
    if not isinstance(lead, Lead):
        value = empty_value("invalid_input", lead.reason)
    else:
        status, body = lead_answer(lead.form())
        value = flatten(body, "") if status == 200 else empty_value("no_match")
    return stable(value)


def stable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in VOLATILE_KEYS}


def unique_valid_emails(rows: list[list[Any]]) -> set[str]:
    return {lead.email for args in rows if isinstance(lead := lead_from_args(args), Lead)}
