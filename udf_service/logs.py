"""Structured JSON logs, one object per line, with no secrets and no raw emails.

Callers pass context through `extra=` (batch_id, query_id, rows, seconds, email_hash ...); the
formatter copies those fields into the JSON object. Emails are only ever logged as
`leads.email_hash()`; the token is never passed to a logger at all.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice

import orjson

_RECORD_ATTRIBUTES = tuple(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_STANDARD = frozenset(_RECORD_ATTRIBUTES) | {"message", "asctime"}
# A record's own attributes come first in its __dict__ (LogRecord.__init__ sets them, for
# makeRecord and makeLogRecord alike); `extra=` fields and later additions follow. Skipping the
# first ones unread takes a third off formatting a batch line, one per request.
_SKIP = len(_RECORD_ATTRIBUTES)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "event": record.getMessage(),
        }
        for key, value in islice(record.__dict__.items(), _SKIP, None):
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds, as `datetime.isoformat(timespec="milliseconds")` gives;
    the part up to the second is formatted once per second."""
    global _second
    second = int(created)
    micros = round((created - second) * 1_000_000)  # rounded to the microsecond, as datetime does
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if _second[0] != second:
        _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{micros // 1000:03d}+00:00"


class RepeatFilter(logging.Filter):
    """A warning (or worse) repeated within `every_s` is dropped and counted; the next one let
    through carries `suppressed`, how many were dropped since. During a state outage every
    worker would otherwise write the same warning a few times a second."""

    MAX_TRACKED = 1000

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [last let through, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # One lead's give-up is not a repeat of another's: the email hash is part of the message.
        key = (record.name, record.levelno, f"{record.msg}|{getattr(record, 'email_hash', '')}")
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.every_s:
                seen[1] += 1
                return False
            if len(self._seen) >= self.MAX_TRACKED:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.every_s}
            self._seen[key] = [now, 0]
        if seen is not None and seen[1]:
            record.suppressed = int(seen[1])
        return True


EMAIL_LIKE = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.IGNORECASE)


class RedactFilter(logging.Filter):
    """For lines written by code that is not ours (gunicorn quotes the request line it refuses):
    anything shaped like an email, plain or URL-encoded, becomes `<email>`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = EMAIL_LIKE.sub("<email>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure(level: str = "INFO") -> None:
    """Send this package's logs to stderr as JSON (idempotent)."""
    logger = logging.getLogger("udf_service")
    logger.setLevel(level)
    if not any(getattr(h, "_udf_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RepeatFilter())
        handler._udf_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
