"""Output values as they travel from the engine to a wire format (pure).

A value is either a dict (built now, from a fresh 6sense answer or a guard) or a `CachedValue`:
the JSON bytes exactly as the cache stored them, spliced into the response without being decoded
and encoded again (the largest cost of a fully cached batch). Consumers that need fields call
`status_of()` or `as_dict()`; encoders pass `json_default` to orjson.
"""

from __future__ import annotations

from typing import Any

import orjson

_STORED_SUFFIX = b',"from_cache":false}'
_CACHED_SUFFIX = b',"from_cache":true}'
_STATUS_PREFIX = b'{"status":"'


class CachedValue:
    """An output value read from the cache, kept as JSON bytes with `from_cache` set to true."""

    __slots__ = ("raw", "status")

    def __init__(self, stored: bytes) -> None:
        if stored.endswith(_STORED_SUFFIX):  # written by `stored_bytes()`: flip the flag in place
            self.raw = stored[: -len(_STORED_SUFFIX)] + _CACHED_SUFFIX
        else:
            self.raw = orjson.dumps({**orjson.loads(stored), "from_cache": True})
        # Read once here: every row that shares this value is counted by it (metrics, logs).
        self.status = _status(self.raw)


def _status(raw: bytes) -> str:
    if raw.startswith(_STATUS_PREFIX):
        end = raw.index(b'"', len(_STATUS_PREFIX))
        return raw[len(_STATUS_PREFIX) : end].decode()
    return str(orjson.loads(raw).get("status"))


Value = dict[str, Any] | CachedValue


def stored_bytes(value: dict[str, Any]) -> bytes:
    """The bytes the cache keeps for a value (keys in output order: status first, from_cache last)."""
    return orjson.dumps({**value, "from_cache": False})


def status_of(value: object) -> str:
    if isinstance(value, CachedValue):
        return value.status
    if isinstance(value, dict):
        return str(value.get("status", "other"))
    return "null"


def as_dict(value: Value) -> dict[str, Any]:
    return orjson.loads(value.raw) if isinstance(value, CachedValue) else value


def json_default(obj: object) -> Any:
    """orjson `default`: cached values go into the document as they are."""
    if isinstance(obj, CachedValue):
        return orjson.Fragment(obj.raw)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(document: object) -> bytes:
    return orjson.dumps(document, default=json_default)
