"""Moving paid answers between caches (pure, apart from the ``State`` it is handed).

Three ways in or out, all JSON lines:

- `export_lines(state)`: one line per fresh cache entry, ``{"lead": {...}, "key": ..., "value":
  {...}, "fetched_at": ...}``; the lead is the normalised fields the service sent to 6sense.
- `import_lines(state, lines, ttls)`: reads such lines into any backend. The key is computed again
  from the lead (`leads.Lead.key`, so an export survives a change of backend or prefix), and the
  expiry again from when 6sense answered (``fetched_at`` plus the lifetime of its status), so an
  import never makes an answer live longer than it would have; what has expired is skipped.
- `warm_lines(state, rows, ttls)`: rows as Snowflake writes them from ``sixsense_enriched`` with
  ``COPY INTO @stage FROM sixsense_enriched FILE_FORMAT = (TYPE = JSON)``: upper-case column names
  (``EMAIL``, ``COUNTRY``, ``ENRICHMENT``, ``ENRICHED_AT``, and ``WEBSITE``, ``COMPANY``, ``TITLE``
  when the table has them). Only final answers (``ok``, ``no_match``) within their lifetime load.

Each returns a `Tally`: how many loaded, and how many were skipped, by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .leads import FIELDS, Lead, lead_from_args
from .sixsense.flatten import OUTPUT_KEYS, empty_value
from .state import Done, State
from .values import stored_bytes

FINAL = ("ok", "no_match")
KEY_VERSION = "v1:"  # leads.Lead.key's scheme: a key of another scheme would never be read
WRITE_BATCH = 500
# Snowflake writes TIMESTAMP_TZ/LTZ as "2026-12-01 10:00:00.000 -0800": no "T", a space before
# the offset and no colon in it. Python's fromisoformat wants "+hh:mm" right after the time.
_OFFSET = re.compile(r"\s*([+-])(\d{2}):?(\d{2})$")


@dataclass(frozen=True)
class Lifetimes:
    """How long each final status is cached (seconds; 0 means not cached), as the service does."""

    ok_s: float
    no_match_s: float

    def of(self, status: str) -> float:
        return {"ok": self.ok_s, "no_match": self.no_match_s}.get(status, 0.0)

    @classmethod
    def of_settings(cls, settings: Any) -> Lifetimes:
        return cls(settings.cache_ttl_ok_s, settings.cache_ttl_no_match_s)


@dataclass
class Tally:
    """What an import or a warm did: entries loaded and lines skipped, by reason."""

    loaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def render(self) -> str:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"loaded {self.loaded:,}, skipped {sum(self.skipped.values()):,}" + (
            f" ({reasons})" if reasons else ""
        )


@dataclass(frozen=True)
class Entry:
    """One answer ready for the cache: its key (from the lead, when there is one), the value and
    when 6sense gave it."""

    key: str
    lead: Lead | None
    value: dict[str, Any]
    fetched_at: float


# ---------------------------------------------------------------------------------- export
def export_lines(state: State) -> Iterator[bytes]:
    """One JSON line (with its newline) per fresh cache entry of ``state``."""
    for record in state.cache_scan():
        value = orjson.loads(record.value)
        value.pop("from_cache", None)
        line: dict[str, Any] = {
            "lead": orjson.loads(record.lead) if record.lead else None,
            "key": record.key,
            "value": value,
            "fetched_at": value.get("fetched_at"),
        }
        yield orjson.dumps(line) + b"\n"


# ---------------------------------------------------------------------------------- import
def import_lines(state: State, lines: Iterable[bytes | str], lifetimes: Lifetimes) -> Tally:
    """Load `export_lines` output into ``state``; keys and expiries are computed again."""
    tally = Tally()
    entries = (_entry_of_export(line, tally) for line in _nonblank(lines))
    _load(state, (e for e in entries if e is not None), lifetimes, tally)
    return tally


def _entry_of_export(line: bytes | str, tally: Tally) -> Entry | None:
    document = _json(line, tally)
    if document is None:
        return None
    value = document.get("value")
    fetched_at = document.get("fetched_at")
    if fetched_at is None and isinstance(value, Mapping):
        fetched_at = value.get("fetched_at")
    lead, key = document.get("lead"), document.get("key")
    if isinstance(lead, Mapping):
        return _entry(lead, value, fetched_at, tally)
    if isinstance(key, str) and key.startswith(KEY_VERSION):  # written before leads were kept
        return _entry(None, value, fetched_at, tally, key=key)
    tally.skip("no lead fields")
    return None


# ---------------------------------------------------------------------------------- warm
def warm_lines(
    state: State, rows: Iterable[bytes | str | Mapping[str, Any]], lifetimes: Lifetimes,
    default_country: str | None = None,
) -> Tally:  # fmt: skip
    """Load rows of ``sixsense_enriched`` (Snowflake's JSON export, or rows of a query)."""
    tally = Tally()

    def entries() -> Iterator[Entry]:
        for row in rows:
            if isinstance(row, bytes | str):
                if not row.strip():
                    continue
                document = _json(row, tally)
                if document is None:
                    continue
            else:
                document = row
            entry = _entry_of_row(document, tally, default_country)
            if entry is not None:
                yield entry

    _load(state, entries(), lifetimes, tally)
    return tally


def _entry_of_row(row: Mapping[str, Any], tally: Tally, default_country: str | None) -> Entry | None:
    columns = {str(k).lower(): v for k, v in row.items()}
    value = columns.get("enrichment", columns.get("enriched"))
    if isinstance(value, str):  # a VARIANT exported as text, or a VARCHAR column
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            tally.skip("enrichment is not JSON")
            return None
    lead = {name: columns[name] for name in FIELDS if columns.get(name) is not None}
    if not lead.get("country") and default_country:
        lead["country"] = default_country
    fetched_at = value.get("fetched_at") if isinstance(value, Mapping) else None
    return _entry(lead, value, fetched_at or columns.get("enriched_at"), tally)


# ---------------------------------------------------------------------------------- shared
def _entry(
    lead_fields: Mapping[str, Any] | None, value: object, fetched_at: object, tally: Tally,
    key: str | None = None,
) -> Entry | None:  # fmt: skip
    if not isinstance(value, Mapping) or "status" not in value:
        tally.skip("no value")
        return None
    status = str(value["status"])
    if status not in FINAL:
        tally.skip(f"status {status} (not final)")
        return None
    lead: Lead | None = None
    if lead_fields is not None:
        found = lead_from_args([dict(lead_fields)])
        if not isinstance(found, Lead):
            tally.skip("invalid lead")
            return None
        lead, key = found, found.key
    when = parse_time(fetched_at)
    if when is None:
        tally.skip("no answer time")
        return None
    assert key is not None
    return Entry(key, lead, canonical(value), when)


def canonical(value: Mapping[str, Any]) -> dict[str, Any]:
    """The value as the service returns it: every output key, in output order (Snowflake sorts
    an object's keys and may drop nulls), ``from_cache`` set by whoever reads it."""
    ordered = empty_value(str(value["status"]))
    ordered.update((k, v) for k, v in value.items() if k != "from_cache")
    ordered.pop("from_cache", None)
    return {**{k: ordered[k] for k in OUTPUT_KEYS if k in ordered}, **ordered}


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an ISO-8601 or Snowflake timestamp (naive means UTC)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if isinstance(text, datetime):  # a row read through the Snowflake connector
        return (text if text.tzinfo else text.replace(tzinfo=UTC)).timestamp()
    if not isinstance(text, str) or not text.strip():
        return None
    cleaned = _OFFSET.sub(r"\1\2:\3", text.strip().replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _load(state: State, entries: Iterable[Entry], lifetimes: Lifetimes, tally: Tally) -> None:
    """Write each key's newest answer for what is left of its lifetime, ``WRITE_BATCH`` at a time.

    One ``fetch_done`` per batch (each entry with its own expiry, round 0: it touches no queued
    item), so memory holds one batch plus a small map of the keys written."""
    now = state.now()
    written: dict[str, float] = {}  # key -> answer time of what was written
    batch: dict[str, Done] = {}
    for entry in entries:
        if entry.key in written:
            tally.skip("older duplicate")
            if written[entry.key] >= entry.fetched_at:
                continue
        status = entry.value["status"]
        lifetime = lifetimes.of(status)
        if lifetime <= 0:
            tally.skip(f"{status} not cached (lifetime 0)")
            continue
        left = int(entry.fetched_at + lifetime - now)  # whole seconds, rounded down: never longer
        if left <= 0:
            tally.skip("expired")
            continue
        written[entry.key] = entry.fetched_at
        lead = orjson.dumps(entry.lead.form()) if entry.lead else None
        batch[entry.key] = Done(entry.key, stored_bytes(entry.value), float(left), 0, lead=lead)
        if len(batch) >= WRITE_BATCH:
            state.fetch_done(list(batch.values()), {})
            batch.clear()
    if batch:
        state.fetch_done(list(batch.values()), {})
    tally.loaded = len(written)


def _nonblank(lines: Iterable[bytes | str]) -> Iterator[bytes | str]:
    for line in lines:
        if line.strip():
            yield line


def _json(line: bytes | str, tally: Tally) -> dict[str, Any] | None:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        tally.skip("not JSON")
        return None
    if not isinstance(document, dict):
        tally.skip("not a JSON object")
        return None
    return document
