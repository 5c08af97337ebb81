"""The engine: a batch of leads in, one output value per row out, paying 6sense at most once per lead.

    rows -> validate -> dedupe by cache key -> cache -> claim -> guards -> pacer -> 6sense -> cache

A lead that another worker or host is already fetching is awaited through the shared claim and
cache, not fetched again. The engine knows no wire format and no web framework: collaborators
(state, client, pacer, guards) come in through the constructor.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import metrics
from .config import Settings
from .guards import CreditGuards, SharedPacer
from .leads import InvalidLead, Lead
from .sixsense.client import DeadlineExceeded, SixsenseClient
from .sixsense.flatten import empty_value, flatten
from .state import State
from .values import CachedValue, Value, as_dict, stored_bytes

log = logging.getLogger("udf_service.engine")

CLAIM_TTL_S = 30.0
AWAIT_POLL_S = 0.1
CACHEABLE = frozenset({"ok", "no_match"})

Row = Lead | InvalidLead


@dataclass
class Group:
    """One unique lead of a batch and the row indices that asked for it."""

    lead: Lead
    indices: list[int]


class ClaimKeeper:
    """Renews this process's claims while it lives; when the process dies they expire."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.claims: dict[str, str] = {}

    def hold(self, key: str, owner: str) -> None:
        with self.lock:
            self.claims[key] = owner

    def drop(self, key: str) -> None:
        with self.lock:
            self.claims.pop(key, None)

    def renew_all(self) -> None:
        with self.lock:
            held = list(self.claims.items())
        for key, owner in held:
            self.state.claim(key, owner, CLAIM_TTL_S)


class Engine:
    """Answers batches of leads; one instance per worker process, thread-safe."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        client: SixsenseClient,
        owner: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.state = state
        self.client = client
        self.owner = owner
        self.sleep = sleep
        self.pacer = SharedPacer(state, settings.upstream_interval_s, sleep)
        self.guards = CreditGuards(state, settings.quota_cooldown_s, settings.daily_call_budget)
        self.claims = ClaimKeeper(state)
        self.pool = ThreadPoolExecutor(settings.upstream_concurrency, thread_name_prefix="fetch")
        self.latency_s = 0.5  # moving estimate of one upstream call, seeded pessimistically

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    # ------------------------------------------------------------------ batches
    def enrich(self, rows: Sequence[Row], deadline: float) -> list[Value]:
        """Every row's value: from the cache, or fetched now (each unique lead at most once)."""
        values, groups = group_rows(rows)
        cached = self.cached_values(groups)
        misses = {key: group for key, group in groups.items() if key not in cached}
        futures = {key: self.pool.submit(self.resolve, g.lead, deadline) for key, g in misses.items()}
        answers = {key: future.result() for key, future in futures.items()} | cached
        for key, group in groups.items():
            for index in group.indices:
                values[index] = answers[key]
        return values  # type: ignore[return-value]

    def lookup(self, rows: Sequence[Row]) -> tuple[list[Value | None], dict[str, Group]]:
        """Values known without calling 6sense (cache, invalid rows); None and a Group for misses."""
        values, groups = group_rows(rows)
        cached = self.cached_values(groups)
        misses = {}
        for key, group in groups.items():
            for index in group.indices:
                values[index] = cached.get(key)
            if key not in cached:
                misses[key] = group
        return values, misses

    def cached_values(self, groups: dict[str, Group]) -> dict[str, CachedValue]:
        found = self.state.cache_get_many(list(groups)) if groups else {}
        metrics.CACHE_LOOKUPS.labels("hit").inc(len(found))
        metrics.CACHE_LOOKUPS.labels("miss").inc(len(groups) - len(found))
        return {key: _from_cache(raw) for key, raw in found.items()}

    def miss_placeholder(self) -> dict[str, Any]:
        """The value a non-waiting route gives a cache miss: pending, or why it will not be fetched."""
        if self.guards.quota_open():
            return empty_value("quota_exhausted", "6sense credits are exhausted (HTTP 402); not queued")
        if self.guards.budget_left() == 0:
            return empty_value("budget_exhausted", "UDF_DAILY_CALL_BUDGET is spent for today; not queued")
        return empty_value("pending", "queued for a background fetch; call again later")

    def estimate(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """Per row, whether answering it now would call 6sense, and why; calls nothing."""
        _, groups = group_rows(rows)
        cached = self.cached_values(groups)
        quota_open = self.guards.quota_open()
        budget = self.guards.budget_left()
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for row in rows:
            if isinstance(row, InvalidLead):
                out.append(_estimate_row("invalid_input"))
                continue
            key = row.key
            if key in cached:
                out.append(_estimate_row("cached", cached_until=self._cached_until(as_dict(cached[key]))))
            elif key in seen:
                out.append(_estimate_row("duplicate"))
            elif quota_open:
                seen.add(key)
                out.append(_estimate_row("quota_exhausted"))
            elif budget is not None and budget <= 0:
                seen.add(key)
                out.append(_estimate_row("budget_exhausted"))
            else:
                seen.add(key)
                budget = None if budget is None else budget - 1
                out.append(_estimate_row("new", would_call=True))
        return out

    def _cached_until(self, value: dict[str, Any]) -> str | None:
        ttl = self.ttl_for(str(value.get("status")))
        try:
            fetched = datetime.fromisoformat(str(value.get("fetched_at")).replace("Z", "+00:00"))
        except ValueError:
            return None
        return (fetched + timedelta(seconds=ttl)).isoformat(timespec="seconds").replace("+00:00", "Z")

    def ttl_for(self, status: str) -> float:
        """How long an answer stays fresh: matches 7 days, no-matches 1 day (by default)."""
        return self.settings.cache_ttl_ok_s if status == "ok" else self.settings.cache_ttl_no_match_s

    def seconds_needed(self, misses: int) -> float:
        """Estimated time to fetch `misses` new leads at the shared rate, behind today's backlog."""
        if misses == 0:
            return 0.0
        per_call = max(self.settings.upstream_interval_s, self.latency_s / self.settings.upstream_concurrency)
        return self.pacer.backlog_s() + (misses - 1) * per_call + self.latency_s

    # ------------------------------------------------------------------ one lead
    def resolve(self, lead: Lead, deadline: float) -> Value:
        """This lead's value: cached, awaited from whoever is fetching it, or fetched by us."""
        key = lead.key
        # One claimant per call, not per process: two threads of one worker must not both win.
        claimant = f"{self.owner}/{secrets.token_hex(4)}"
        while True:
            hit = self.state.cache_get_many([key]).get(key)
            if hit is not None:
                return _from_cache(hit)
            if self.state.claim(key, claimant, CLAIM_TTL_S):
                self.claims.hold(key, claimant)
                try:
                    hit = self.state.cache_get_many([key]).get(key)
                    return _from_cache(hit) if hit is not None else self._fetch(lead, deadline)
                finally:
                    self.claims.drop(key)
                    self.state.release(key, claimant)
            if time.time() + AWAIT_POLL_S >= deadline:
                return empty_value(
                    "error",
                    "another worker was still fetching this lead when "
                    "the time for this batch ran out; ask again",
                )
            self.sleep(AWAIT_POLL_S)

    def _fetch(self, lead: Lead, deadline: float) -> Value:
        if self.guards.quota_open():
            return empty_value("quota_exhausted", _quota_message(self.guards.quota_retry_in()))
        if not self.guards.take_budget():
            return empty_value("budget_exhausted", "UDF_DAILY_CALL_BUDGET is spent for today (UTC)")
        started = time.monotonic()
        try:
            answer = self.client.fetch(lead, self.pacer, deadline)
        except DeadlineExceeded:
            self.guards.take_budget_back()
            return empty_value(
                "error",
                "not fetched: no upstream slot was free before this "
                "batch's deadline (use people_full_cached for large backfills)",
            )
        self.latency_s = 0.8 * self.latency_s + 0.2 * (time.monotonic() - started) / answer.attempts
        fetched_at = now_iso()
        if answer.outcome == "ok":
            value = flatten(answer.payload or {}, fetched_at)
        elif answer.outcome == "no_match":
            value = empty_value("no_match", fetched_at=fetched_at)
        else:
            value = empty_value(answer.outcome, answer.error)
        if answer.outcome == "quota_exhausted":
            self.guards.trip_quota()
            log.warning(
                "quota_circuit_opened",
                extra={
                    "email_hash": lead.email_hash,
                    "upstream_status": 402,
                    "cooldown_s": self.settings.quota_cooldown_s,
                },
            )
            value["error"] = _quota_message(self.settings.quota_cooldown_s)
        self.guards.record_calls(answer.attempts, matched=value["status"] == "ok")
        if value["status"] in CACHEABLE:
            ttl = self.ttl_for(value["status"])
            if ttl > 0:
                self.state.cache_set_many({lead.key: stored_bytes(value)}, ttl)
        return value


def group_rows(rows: Sequence[Row]) -> tuple[list[Value | None], dict[str, Group]]:
    """Invalid rows answered at once; valid rows grouped by cache key, first-seen order."""
    values: list[Value | None] = [None] * len(rows)
    groups: dict[str, Group] = {}
    for index, row in enumerate(rows):
        if isinstance(row, InvalidLead):
            values[index] = empty_value("invalid_input", row.reason)
            continue
        key = row.key
        if key in groups:
            groups[key].indices.append(index)
        else:
            groups[key] = Group(row, [index])
    return values, groups


def _estimate_row(reason: str, would_call: bool = False, cached_until: str | None = None) -> dict[str, Any]:
    return {"would_call": would_call, "reason": reason, "cached_until": cached_until}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _from_cache(raw: bytes) -> CachedValue:
    return CachedValue(raw)


def _quota_message(retry_in: float | None) -> str:
    minutes = f" in about {max(retry_in / 60, 1):.0f} min" if retry_in else ""
    return (
        "6sense answered 402: the API credit pool is exhausted; calls resume"
        + minutes
        + " (UDF_QUOTA_COOLDOWN_S), or ask your 6sense admin to add credits"
    )
