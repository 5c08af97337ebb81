"""The last error of each class, shared by every worker, for `/usage`, `/status` and the CLI.

`record(error_class, message)` counts the error (Prometheus `sixsense_errors_total{class}` and a
daily counter in the state backend) and keeps its newest message for a day as a flag in the state,
so any worker's page shows what any worker saw. A state that is down cannot take the record of its
own outage: every worker also keeps its last errors in memory, merged in when read.

Messages are scrubbed before they are stored: anything shaped like an email address and the
6sense token never leave this module (6sense echoes the request in some error bodies).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from . import metrics
from .clock import SYSTEM, Clock
from .errors import StateError
from .state import State

log = logging.getLogger("udf_service.errors")

#: Every class an error is counted under, and what it means (the page's legend).
CLASSES = {
    "upstream_rate_limited": "6sense answered 429: calls slowed down and retried",
    "upstream_server_error": "6sense answered 5xx (or 202): retried",
    "upstream_timeout": "a 6sense call timed out or its answer was unreadable: retried",
    "upstream_connect": "6sense could not be reached: retried",
    "upstream_error": "6sense refused one lead (4xx other than 401/402/403/429)",
    "upstream_auth": "6sense rejected the token (401/403): no calls for a minute",
    "quota_exhausted": "6sense answered 402 (credits exhausted): the circuit is open",
    "budget_exhausted": "UDF_DAILY_CALL_BUDGET is spent for today",
    "state_unavailable": "the state backend (UDF_STATE_URL) did not answer",
    "overloaded": "the service answered 429 to the warehouse (retried by Snowflake)",
    "bad_request": "a warehouse request was malformed, too large or unauthorised",
    "internal": "an unexpected error; see the service log",
}
KEEP_S = 86400.0  # a last error is shown for a day
WRITE_EVERY_S = 1.0  # per class and worker
MESSAGE_CHARS = 200
EMAIL = re.compile(r"[^\s\"'<>(),;:@]+@[^\s\"'<>(),;:@]+")
TOKEN_HEADER = re.compile(r"(?i)\b(token|bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def scrub(message: str, secrets: Iterable[str] = ()) -> str:
    """`message` without email addresses or any of `secrets`, cut to MESSAGE_CHARS."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "<token>")
    message = TOKEN_HEADER.sub(lambda m: f"{m.group(1)} <token>", message)
    message = EMAIL.sub("<email>", message)
    return message[:MESSAGE_CHARS]


def _last_key(error_class: str) -> str:
    return f"errors:last:{error_class}"


def _count_key(error_class: str, day: str) -> str:
    return f"errors:count:{error_class}:{day}"


class RecentErrors:
    """Counts errors by class and keeps the newest message of each; one per worker, thread-safe."""

    def __init__(self, state: State, clock: Clock = SYSTEM, secrets: Iterable[str] = ()) -> None:
        self.state = state
        self.clock = clock
        self.secrets = tuple(s for s in secrets if s)
        self.lock = threading.Lock()
        self.local: dict[str, tuple[float, str]] = {}  # class -> (at, message), this worker's
        self.unwritten: dict[str, int] = {}  # class -> errors counted here, not yet in the state
        self.written_at: dict[str, float] = {}  # class -> when (monotonic) it was last written

    def _day(self) -> str:
        return f"{datetime.fromtimestamp(self.clock.time(), UTC):%Y-%m-%d}"

    def record(self, error_class: str, message: str) -> None:
        """Count one error of `error_class` and keep `message` (scrubbed) as its newest."""
        if error_class not in CLASSES:
            error_class = "internal"
        metrics.ERRORS.labels(error_class).inc()
        at, text = self.clock.time(), scrub(message, self.secrets)
        with self.lock:
            self.local[error_class] = (at, text)
            self.unwritten[error_class] = self.unwritten.get(error_class, 0) + 1
            due = self.clock.monotonic() - self.written_at.get(error_class, -math.inf) >= WRITE_EVERY_S
        if due:
            self._write([error_class])

    def flush(self) -> None:
        """Write every class counted since its last write (the background thread, once a second)."""
        with self.lock:
            classes = list(self.unwritten)
        self._write(classes)

    def _write(self, classes: Iterable[str]) -> None:
        """The newest message and the count of each class to the state: at most once a second per
        class and worker, so a storm of errors (or of unauthenticated requests) costs no more."""
        for error_class in classes:
            if error_class == "state_unavailable":
                continue  # the state is down: writing it there would only wait for its timeout
            with self.lock:
                count = self.unwritten.pop(error_class, 0)
                at, text = self.local[error_class]
                self.written_at[error_class] = self.clock.monotonic()
            if not count:
                continue
            try:
                self.state.flag_set(_last_key(error_class), orjson.dumps({"at": at, "message": text}), KEEP_S)
                self.state.incr(_count_key(error_class, self._day()), count, 2 * 86400)
            except StateError:  # kept in this worker's memory, written with the next one
                with self.lock:
                    self.unwritten[error_class] = self.unwritten.get(error_class, 0) + count

    def last(self) -> list[dict[str, object]]:
        """Each class seen in the last day, newest first: count today, when, and what it said."""
        classes = list(CLASSES)
        seen: dict[str, tuple[float, str]] = {}
        counts = [0] * len(classes)
        try:
            for key, (raw, _) in self.state.flags_get([_last_key(c) for c in classes]).items():
                document = orjson.loads(raw)
                seen[key.rsplit(":", 1)[1]] = (float(document["at"]), str(document["message"]))
            counts = self.state.get_ints([_count_key(c, self._day()) for c in classes])
        except StateError:
            pass
        with self.lock:
            counts = [n + self.unwritten.get(c, 0) for c, n in zip(classes, counts, strict=True)]
            for error_class, (at, text) in self.local.items():
                if at > seen.get(error_class, (0.0, ""))[0]:
                    seen[error_class] = (at, text)
        rows = [
            {
                "class": error_class,
                "count_today": max(count, 1 if error_class in seen else 0),
                "last_at": _iso(seen[error_class][0]),
                "last_message": seen[error_class][1],
                "meaning": CLASSES[error_class],
            }
            for error_class, count in zip(classes, counts, strict=True)
            if error_class in seen
        ]
        return sorted(rows, key=lambda row: str(row["last_at"]), reverse=True)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
