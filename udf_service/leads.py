"""The input model: one lead per row, normalised, validated, and keyed for the cache.

A row's arguments arrive positionally in the seed's order (2 to 10 of them) or as one OBJECT with
those keys. NULL and blank strings are absent values. A row without a syntactically valid email is
invalid at once and never costs an upstream call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import pycountry

FIELDS: tuple[str, ...] = (
    "email",
    "country",
    "website",
    "company",
    "title",
    "leadsource",
    "firstname",
    "lastname",
    "role",
    "industry",
)
MAX_FIELD_CHARS = 1000
MAX_ARGS = len(FIELDS)
ARGUMENTS_HINT = f"people_full takes 2 to {MAX_ARGS} arguments ({', '.join(FIELDS)}) or one object"

# Syntax only (no DNS): a local part, an @, and a dotted domain with a 2+ letter TLD. Deliberately
# stricter than RFC 5322 quoting rules: 6sense matches on real business addresses.
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_WEBSITE_PREFIX = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?")


class Lead(NamedTuple):
    """One valid lead, with the values as they will be sent to 6sense.

    A NamedTuple rather than a frozen dataclass: just as immutable, and made in a quarter of the
    time (a frozen dataclass sets each of its ten fields through `object.__setattr__`), which
    every row of a batch pays.
    """

    email: str
    country: str
    website: str | None = None
    company: str | None = None
    title: str | None = None
    leadsource: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    role: str | None = None
    industry: str | None = None

    def form(self) -> dict[str, str]:
        """The form fields of the 6sense request: every present value."""
        return {name: value for name, value in zip(self._fields, self, strict=True) if value is not None}

    @property
    def key(self) -> str:
        """Cache key: a hash of what changes 6sense's match, so raw emails never reach the store.

        Email (trimmed, lower-cased), country (ISO code when recognised), website (bare domain),
        company and title. Lead source, names, role and industry do not change the company
        match or the scores, so two requests differing only in those are one lead.
        """
        return _key(self.email, self.country, self.website, self.company, self.title)

    @property
    def email_hash(self) -> str:
        """A short, stable hash of the email for logs (never log the address itself)."""
        return email_hash(self.email)

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Lead:
        return cls(**{name: form.get(name) for name in FIELDS})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class InvalidLead:
    """A row that cannot be sent to 6sense, with a sentence saying why."""

    reason: str


def lead_from_args(args: Sequence[object], default_country: str | None = None) -> Lead | InvalidLead:
    """Build a Lead from one row's function arguments (positional or a single OBJECT)."""
    if len(args) == 1:
        if not isinstance(args[0], Mapping):
            return InvalidLead("a single argument must be an OBJECT with keys such as email, country")
        return _from_object(args[0], default_country)
    if len(args) == 2 and type(args[0]) is str and type(args[1]) is str:
        return _from_email_country(args[0], args[1], default_country)
    values: dict[str, object] = dict(zip(FIELDS, args, strict=False))
    return _build(values, default_country)


def _from_email_country(email: str, country: str, default_country: str | None) -> Lead | InvalidLead:
    """`_build` for the commonest call, `people_full(email, country)` with two strings, without
    the per-field dict: the same checks in the same order, so the same answer, at a third of the
    cost (every row of a fully cached batch pays it)."""
    email, country = email.strip(), country.strip()
    if len(email) > MAX_FIELD_CHARS:
        return InvalidLead(f"email is longer than {MAX_FIELD_CHARS} characters")
    if len(country) > MAX_FIELD_CHARS:
        return InvalidLead(f"country is longer than {MAX_FIELD_CHARS} characters")
    return _validated(email or None, country or None, default_country, None)


def _from_object(obj: Mapping[object, object], default_country: str | None) -> Lead | InvalidLead:
    values: dict[str, object] = {}
    for raw_key, value in obj.items():
        name = str(raw_key).strip().lower()
        if name not in FIELDS:
            return InvalidLead(f"unknown field {str(raw_key)[:40]!r}; expected any of: {', '.join(FIELDS)}")
        values[name] = value
    return _build(values, default_country)


def _build(values: Mapping[str, object], default_country: str | None) -> Lead | InvalidLead:
    clean: dict[str, str | None] = {}
    for name in FIELDS:
        value = values.get(name)
        if value is None:
            clean[name] = None
            continue
        if isinstance(value, Mapping | list | tuple):
            return InvalidLead(f"{name} must be a string, not an {type(value).__name__}")
        text = str(value).strip()
        if len(text) > MAX_FIELD_CHARS:
            return InvalidLead(f"{name} is longer than {MAX_FIELD_CHARS} characters")
        clean[name] = text or None
    return _validated(clean["email"], clean["country"], default_country, clean)


def _validated(
    email: str | None, country: str | None, default_country: str | None, clean: dict[str, str | None] | None
) -> Lead | InvalidLead:
    """The Lead for cleaned values (`clean`: every field; None when only email and country were
    given), or why there is none."""
    if email is None:
        return InvalidLead("email is missing")
    # Validate what was given, then normalise: lower-casing first would turn the Kelvin sign
    # (U+212A) into an ASCII "k" and answer one lead with another's data.
    if not email.isascii():
        return InvalidLead("email is not a valid address (only ASCII addresses are accepted)")
    email = email.lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        return InvalidLead("email is not a valid address")
    country = country or default_country
    if not country:
        return InvalidLead("country is missing (or set SIXSENSE_DEFAULT_COUNTRY)")
    if clean is None:
        return Lead(email, country_code(country))
    return Lead(**{**clean, "email": email, "country": country_code(country)})  # type: ignore[arg-type]


# Spellings CRMs use that ISO 3166 (and so pycountry) does not: the constituent countries of the
# UK, short forms and former names. Keys are casefolded, without dots, spaces collapsed.
COUNTRY_ALIASES = {
    "uk": "GBR",
    "great britain": "GBR",
    "britain": "GBR",
    "england": "GBR",
    "scotland": "GBR",
    "wales": "GBR",
    "northern ireland": "GBR",
    "us": "USA",
    "usa": "USA",
    "america": "USA",
    "united states": "USA",
    "russia": "RUS",
    "turkey": "TUR",
    "holland": "NLD",
    "ivory coast": "CIV",
    "macedonia": "MKD",
}
_NUMERIC = re.compile(r"\d{1,3}(?:\.0*)?")


def country_code(country: str) -> str:
    """The value sent to 6sense: the ISO 3166 alpha-3 code when the country is recognised.

    Every spelling of one country is one value (`GB`, `GBR`, `826`, `United Kingdom`, `UK`,
    `England` -> `GBR`; `US`, `840`, `United States` -> `USA`), so it is one cache key and one
    upstream call. Alpha-3 because it is the form 6sense documents (its Marketo template sends
    `country={{lead.Country:default=USA}}`, reference/upstream.md A2). Anything else is sent as
    given (trimmed), for 6sense to match or not.
    """
    code = _CODES.get(country)
    if code is None:
        code = _remember(_CODES, country, _iso_alpha_3(country) or " ".join(country.split()))
    return code


def country_key(country: str) -> str:
    """The country's part of the cache key: its alpha-3 code, or the casefolded text."""
    key = _COUNTRY_KEYS.get(country)
    if key is None:
        key = _remember(_COUNTRY_KEYS, country, _iso_alpha_3(country) or " ".join(country.casefold().split()))
    return key


# Both are asked once per row with one of a few spellings: a dict read is a fifth of the cost of
# the lru_cache'd lookup behind it plus the text clean-up. Bounded like that cache (a caller
# sending free text must not grow a worker's memory); a full memo starts again.
_MEMO_SIZE = 4096
_CODES: dict[str, str] = {}
_COUNTRY_KEYS: dict[str, str] = {}


def _remember(memo: dict[str, str], country: str, value: str) -> str:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[country] = value
    return value


@lru_cache(maxsize=4096)
def _iso_alpha_3(country: str) -> str | None:
    text = " ".join(country.split())
    if _NUMERIC.fullmatch(text):  # ISO numeric, also as a number (76, 840.0)
        text = text.split(".", 1)[0].zfill(3)
    alias = COUNTRY_ALIASES.get(text.casefold().replace(".", "").strip())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(text).alpha_3
    except LookupError:
        return None


def website_key(website: str | None) -> str:
    """The bare domain of a website (`https://www.Acme.com/about` -> `acme.com`)."""
    if not website:
        return ""
    host = _WEBSITE_PREFIX.sub("", website.strip().lower())
    return host.split("/", 1)[0].split("?", 1)[0]


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def _key(email: str, country: str, website: str | None, company: str | None, title: str | None) -> str:
    if website is None and company is None and title is None:  # `people_full(email, country)`
        # The join below with its three empty parts, written out: the same bytes, a third of the time.
        return (
            "v1:"
            + hashlib.sha256(
                f"{email.strip().lower()}\x1f{country_key(country)}\x1f\x1f\x1f".encode()
            ).hexdigest()
        )
    parts = (
        email.strip().lower(),
        country_key(country),
        website_key(website),
        " ".join((company or "").casefold().split()),
        " ".join((title or "").casefold().split()),
    )
    return "v1:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
