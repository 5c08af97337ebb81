"""Cached values travel as stored JSON bytes, flipped to from_cache=true, never re-encoded."""

from __future__ import annotations

import orjson

from udf_service.sixsense.flatten import OUTPUT_KEYS, empty_value, flatten
from udf_service.values import CachedValue, as_dict, dumps, status_of, stored_bytes


def test_cached_value_round_trips_with_from_cache_true() -> None:
    """A stored value reads back equal, with from_cache true and keys in output order."""
    value = flatten(
        {"company": {"name": "Acme", "employeeCount": "12"}, "scores": []}, "2026-11-26T00:00:00Z"
    )
    cached = CachedValue(stored_bytes(value))
    assert as_dict(cached) == {**value, "from_cache": True}
    assert list(as_dict(cached)) == list(OUTPUT_KEYS)
    assert cached.status == status_of(cached) == "ok"


def test_encoding_splices_cached_bytes() -> None:
    """A document mixing dicts and cached values encodes to the same JSON as decoding first."""
    cached = CachedValue(stored_bytes(empty_value("no_match", fetched_at="t")))
    fresh = empty_value("invalid_input", "email is missing")
    document = {"data": [[0, cached], [1, fresh]]}
    assert orjson.loads(dumps(document)) == {"data": [[0, as_dict(cached)], [1, fresh]]}
    assert cached.raw in dumps(document)


def test_entries_written_another_way_still_read() -> None:
    """A cache entry without the expected suffix is decoded and flagged the slow way."""
    cached = CachedValue(orjson.dumps({"from_cache": False, "status": "ok"}))
    assert as_dict(cached) == {"from_cache": True, "status": "ok"} and cached.status == "ok"
