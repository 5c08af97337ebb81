"""The figures a person running a backfill asks for, collected once for `/usage`, `/status`,
`udf-service status` and the gauges `/metrics` exports.

    calls per minute (last hour) vs the limit · fetch queue depth and ETA at the current rate ·
    calls and matched leads today / this month vs the daily budget · the 402 circuit ·
    cache entries and today's hit ratio · async jobs running · the last error of each class

Everything is read from the state backend (so any worker answers for all of them) in a handful
of reads. docs/status.md describes every key.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from . import __version__, metrics
from .guards import AUTH_CIRCUIT, QUOTA_CIRCUIT, Periods

RATE_BUCKETS = 30  # the "current rate": calls over the last 30 ten-second spans (5 minutes)
LOOKUP_TTL_S = 3 * 86400


def hits_key(day: str) -> str:
    return f"usage:cache_hits:{day}"


def misses_key(day: str) -> str:
    return f"usage:cache_misses:{day}"


def lookup_counters(periods: Periods, hits: int, misses: int) -> Mapping[str, tuple[int, float | None]]:
    """Counter changes for one batch's cache lookups (written with the next answers)."""
    day = periods.day()
    changes = {hits_key(day): (hits, LOOKUP_TTL_S), misses_key(day): (misses, LOOKUP_TTL_S)}
    return {key: change for key, change in changes.items() if change[0]}


class LookupTally:
    """This worker's cache hits and misses, handed to the state at most every `every_s` seconds:
    a fully cached batch then costs no state write of its own (the cached route's hot path)."""

    def __init__(self, periods: Periods, every_s: float = 1.0) -> None:
        self.periods = periods
        self.every_s = every_s
        self.lock = threading.Lock()
        self.hits = self.misses = 0
        self.last = -math.inf

    def add(self, hits: int, misses: int) -> Mapping[str, tuple[int, float | None]]:
        """Count one batch; the counter changes to write now (empty until they are due)."""
        now = self.periods.clock.monotonic()
        with self.lock:
            self.hits += hits
            self.misses += misses
            if now - self.last < self.every_s:
                return {}
            hits, misses, self.hits, self.misses, self.last = self.hits, self.misses, 0, 0, now
        return lookup_counters(self.periods, hits, misses)

    def drain(self) -> Mapping[str, tuple[int, float | None]]:
        """Everything counted and not yet handed over (the background thread's once a second)."""
        with self.lock:
            hits, misses, self.hits, self.misses = self.hits, self.misses, 0, 0
            self.last = self.periods.clock.monotonic()
        return lookup_counters(self.periods, hits, misses)

    def unwritten(self) -> tuple[int, int]:
        with self.lock:
            return self.hits, self.misses


def current_rate_per_min(
    per_ten_seconds: Sequence[int], seconds_into_bucket: float, reserved_ahead: int = 0
) -> float:
    """Calls per minute over the last RATE_BUCKETS ten-second spans (this one partly), counted
    from the first span with a call, so a backfill that started a minute ago is not averaged
    with the idle minutes before it. A call is counted when its slot is reserved: the
    `reserved_ahead` slots still in the future are not calls made yet (early in a backfill they
    would otherwise read as a rate over the limit)."""
    window = list(per_ten_seconds[-RATE_BUCKETS:])
    while window and not window[0]:
        window.pop(0)
    if not window:
        return 0.0
    elapsed_s = (len(window) - 1) * 10 + max(seconds_into_bucket, 1.0)
    return max(sum(window) - reserved_ahead, 0) / elapsed_s * 60


def eta_s(depth: int, rate_per_min: float) -> float | None:
    """Seconds until `depth` queued leads are fetched at `rate_per_min` (None: no rate, no ETA)."""
    if depth == 0:
        return 0.0
    if rate_per_min <= 0:
        return None
    return round(depth / rate_per_min * 60, 1)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def collect(rt: Any) -> dict[str, Any]:
    """Every figure, as the JSON document `/usage` answers (the older keys first, unchanged)."""
    guards, settings, state = rt.guards, rt.settings, rt.state
    circuits = guards.open_circuits()
    depth_by_priority = state.fetch_depth()
    depth = sum(depth_by_priority.values())
    cache_entries = state.cache_count() + rt.completer.pending_cache_writes()
    limit_per_min = settings.rate_limit.per_second * 60
    per_minute = guards.calls_per_minute(60)
    now = guards.periods.clock.time()
    backlog_s = rt.pacer.backlog_s()
    ahead = int(backlog_s / settings.upstream_interval_s) if settings.upstream_interval_s > 0 else 0
    rate = current_rate_per_min(guards.calls_per_ten_seconds(RATE_BUCKETS), now % 10, ahead)
    lookup_keys = [hits_key(guards.periods.day()), misses_key(guards.periods.day())]
    hits, misses = state.get_ints(lookup_keys)
    held_hits, held_misses = rt.engine.lookups.unwritten()  # this worker's, due within a second
    handed = rt.completer.pending_counts(lookup_keys)  # this worker's, handed over, being written
    hits += held_hits + handed[lookup_keys[0]]
    misses += held_misses + handed[lookup_keys[1]]
    lookups = hits + misses
    quota_retry_in = circuits.get(QUOTA_CIRCUIT)
    auth_retry_in = circuits.get(AUTH_CIRCUIT)
    document = {
        "version": __version__,
        **guards.usage(rt.completer.pending_counts),
        "daily_call_budget": settings.daily_call_budget,
        "daily_budget_left": guards.budget_left(),
        "queue_depth": depth,
        "cache_entries": cache_entries,
        "limiter": {
            "rate_limit": f"{settings.rate_limit.amount}/{settings.rate_limit.per_s:g}s",
            "interval_s": round(settings.upstream_interval_s, 4),
            "backlog_s": round(backlog_s, 3),
        },
        "quota_circuit": {"open": quota_retry_in is not None, "retry_in_s": quota_retry_in},
        # Since issue 19 (docs/status.md):
        "generated_at": _iso(now),
        "calls_per_minute": {
            "limit": round(limit_per_min, 2),
            "current": round(rate, 2),
            "last_hour": per_minute,
        },
        "queue": {
            "depth": depth,
            "interactive": depth_by_priority.get(0, 0),
            "background": depth_by_priority.get(1, 0),
            "rate_per_minute": round(rate, 2),
            "eta_s": eta_s(depth, rate),
            "eta_at_limit_s": eta_s(depth, limit_per_min),
        },
        "cache": {
            "entries": cache_entries,
            "hits_today": hits,
            "misses_today": misses,
            "hit_ratio_today": round(hits / lookups, 4) if lookups else None,
        },
        "auth_circuit": {"open": auth_retry_in is not None, "retry_in_s": auth_retry_in},
        "jobs_running": state.jobs_running(),
        "errors": rt.errors.last() if rt.errors else [],
    }
    export(document)
    return document


def export(document: Mapping[str, Any]) -> None:
    """Set the gauges `/metrics` shows from one collection."""
    queue = document["queue"]
    metrics.QUEUE_DEPTH.set(queue["depth"])
    metrics.QUEUE_ETA.set(-1 if queue["eta_s"] is None else queue["eta_s"])
    metrics.CACHE_ENTRIES.set(document["cache_entries"])
    metrics.RATE_LIMIT.set(document["calls_per_minute"]["limit"])
    metrics.JOBS_RUNNING.set(document["jobs_running"])
