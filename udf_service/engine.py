"""The engine: a batch of leads in, one output value per row out, paying 6sense at most once per lead.

    rows -> validate -> dedupe by cache key -> one cache read -> misses queued -> answers

`lookup()` answers what is known without calling 6sense (cache, invalid rows); the misses go to
the shared fetch queue, where any worker's fetchers take them (`udf_service.fetching`), and the
batch either waits for them (`wait()`, `enrich()`) or answers `pending` at once (`queue()`).
The engine knows no wire format and no web framework.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import metrics, usage
from .clock import SYSTEM, Clock
from .config import Settings
from .errors import UpstreamAuthError
from .failures import auth_message
from .fetching import Dispatcher, quota_message
from .guards import AUTH_CIRCUIT, QUOTA_CIRCUIT, CreditGuards, SharedPacer
from .leads import InvalidLead, Lead
from .sixsense.flatten import empty_value
from .state import BACKGROUND, INTERACTIVE, State
from .values import CachedValue, Value, as_dict
from .waiting import Waiter, Waiters, lead_payload

log = logging.getLogger("udf_service.engine")

Row = Lead | InvalidLead


@dataclass
class Group:
    """One unique lead of a batch and the row indices that asked for it."""

    lead: Lead
    indices: list[int]


@dataclass
class Lookup:
    """A batch after one cache read: known values (None for misses) and the misses by key."""

    values: list[Value | None]
    misses: dict[str, Group]

    def fill(self, answers: dict[str, Value], missing: Value) -> list[Value]:
        """Every row's value: the answers for misses, `missing` for those without one."""
        values = list(self.values)
        for key, group in self.misses.items():
            value = answers.get(key, missing)
            for index in group.indices:
                values[index] = value
        return values  # type: ignore[return-value]


class UpstreamUnavailable(Exception):
    """No call can be made now (circuit or budget): misses get this value instead of being queued."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value["error"])
        self.value = value


class Engine:
    """Answers batches of leads; one instance per worker process, thread-safe."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        pacer: SharedPacer,
        guards: CreditGuards,
        waiters: Waiters,
        dispatcher: Dispatcher,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings = settings
        self.state = state
        self.pacer = pacer
        self.guards = guards
        self.waiters = waiters
        self.dispatcher = dispatcher
        self.clock = clock
        self.lookups = usage.LookupTally(guards.periods)  # today's hit ratio, written once a second

    # ------------------------------------------------------------------ one read
    def lookup(self, rows: Sequence[Row]) -> Lookup:
        """Values known without calling 6sense (cache, invalid rows), and the misses."""
        values, groups = group_rows(rows)
        # The completer first, then the state: an answer leaves the completer only once it is
        # written, so one missed here is found in the state. The other way round, an answer
        # written between the two reads was in neither, and a lead paid a moment ago looked new.
        found = self.dispatcher.completer.cached_answers(groups) if groups else {}
        if len(found) < len(groups):
            found |= self.state.cache_get_many(
                [k for k in groups if k not in found] if found else list(groups)
            )
        metrics.child(metrics.CACHE_LOOKUPS, "hit").inc(len(found))
        metrics.child(metrics.CACHE_LOOKUPS, "miss").inc(len(groups) - len(found))
        if groups:
            counters = self.lookups.add(len(found), len(groups) - len(found))
            if counters:
                self.dispatcher.completer.submit(None, counters)
        misses = {}
        for key, group in groups.items():
            raw = found.get(key)
            if raw is None:
                misses[key] = group
                continue
            value = CachedValue(raw)
            for index in group.indices:
                values[index] = value
        return Lookup(values, misses)

    def flush_lookups(self) -> None:
        """Hand today's cache hits and misses counted since the last write to the completer."""
        counters = self.lookups.drain()
        if counters:
            self.dispatcher.completer.submit(None, counters)

    def check_upstream(self) -> None:
        """Raise when no call can be made now: UpstreamUnavailable (402 circuit, budget spent) or
        UpstreamAuthError (the token was rejected moments ago). One read of the circuits."""
        circuits = self.guards.open_circuits()
        if AUTH_CIRCUIT in circuits:
            raise UpstreamAuthError(401, "6sense rejected the token moments ago")
        if QUOTA_CIRCUIT in circuits:
            self._error("quota_exhausted", "not queued: the 402 circuit is open")
            raise UpstreamUnavailable(empty_value("quota_exhausted", quota_message(circuits[QUOTA_CIRCUIT])))
        if self.guards.budget_left() == 0:
            self._error("budget_exhausted", "not queued: UDF_DAILY_CALL_BUDGET is spent for today (UTC)")
            raise UpstreamUnavailable(
                empty_value("budget_exhausted", "UDF_DAILY_CALL_BUDGET is spent for today (UTC); not queued")
            )

    def _error(self, error_class: str, message: str) -> None:
        """Count an error by class (the fetcher's record, shared by the worker)."""
        self.dispatcher.fetcher._error(error_class, message)

    # ------------------------------------------------------------------ the three ways to answer
    def queue(self, lookup: Lookup) -> list[Value]:
        """The non-waiting routes: cached values now; misses queued (background) and `pending`."""
        if not lookup.misses:
            return lookup.values  # type: ignore[return-value]
        try:
            self.check_upstream()
        except UpstreamUnavailable as unavailable:
            return lookup.fill({}, unavailable.value)
        except UpstreamAuthError as exc:
            return lookup.fill({}, empty_value("error", auth_message(exc.status)))
        self.state.fetch_push(
            {key: lead_payload(group.lead) for key, group in lookup.misses.items()}, BACKGROUND
        )
        self.dispatcher.poke()
        return lookup.fill({}, empty_value("pending", "queued for a background fetch; call again later"))

    def wait(
        self, lookup: Lookup, deadline: float, on_done: Callable[[Waiter], None] | None = None
    ) -> Waiter | None:
        """Queue the misses (urgent) and register a waiter; None when no call can be made now,
        with the misses' values filled in `lookup` (raises UpstreamAuthError for a bad token)."""
        try:
            self.check_upstream()
        except UpstreamUnavailable as unavailable:
            lookup.values = lookup.fill({}, unavailable.value)
            lookup.misses = {}
            return None
        leads = {key: group.lead for key, group in lookup.misses.items()}
        return self.waiters.wait_for(leads, INTERACTIVE, deadline, on_done)

    def deadline(self, budget_s: float) -> float:
        """The time `budget_s` from now on the engine's clock (what every wait compares with)."""
        return self.clock.time() + budget_s

    def enrich(self, rows: Sequence[Row], deadline: float, fetch_own: bool = False) -> list[Value]:
        """Every row's value within `deadline`: cached, or fetched now (each unique lead once)."""
        return self.answer(self.lookup(rows), deadline, fetch_own)

    def answer(self, lookup: Lookup, deadline: float, fetch_own: bool = False) -> list[Value]:
        """`lookup`'s rows with their misses fetched, waiting until `deadline` at most.

        Rows whose lead is not answered by the deadline are `error` (the fetch goes on, and the
        next query finds it cached). `fetch_own`: this process's own threads fetch its misses
        (a Lambda container, the CLI), instead of a dispatcher that takes any queued work.
        """
        if not lookup.misses:
            return lookup.values  # type: ignore[return-value]
        waiter = self.wait(lookup, deadline)
        if waiter is None:
            return lookup.values  # type: ignore[return-value]
        if fetch_own:
            self._fetch_own(waiter, deadline)
        return self.result(lookup, waiter, deadline)

    def result(self, lookup: Lookup, waiter: Waiter, deadline: float) -> list[Value]:
        """Wait for `waiter` until `deadline`; the batch's values (UpstreamAuthError if rejected)."""
        waiter.done.wait(max(deadline - self.clock.time(), 0.0))
        self.waiters.abandon(waiter)
        if waiter.fatal is not None:
            raise waiter.fatal
        return lookup.fill(dict(waiter.answers), NOT_IN_TIME)

    def _fetch_own(self, waiter: Waiter, deadline: float) -> None:
        """Take this batch's own queued leads (none else) and fetch them on this worker's threads."""
        while not waiter.done.is_set() and self.clock.time() < deadline:
            took = self.dispatcher.take_once(keys=waiter.pending)
            waiter.done.wait(0.01 if took else min(0.05, max(deadline - self.clock.time(), 0.0)))

    # ------------------------------------------------------------------ calls nothing
    def estimate(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """Per row, whether answering it now would call 6sense, and why; calls nothing."""
        lookup = self.lookup(rows)
        circuits = self.guards.open_circuits()
        budget = self.guards.budget_left()
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for row, known in zip(rows, lookup.values, strict=True):
            if isinstance(row, InvalidLead):
                out.append(_estimate_row("invalid_input"))
                continue
            key = row.key
            if known is not None:
                out.append(_estimate_row("cached", cached_until=self._cached_until(as_dict(known))))
            elif key in seen:
                out.append(_estimate_row("duplicate"))
            elif QUOTA_CIRCUIT in circuits:
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
        ttl = (
            self.settings.cache_ttl_ok_s
            if value.get("status") == "ok"
            else self.settings.cache_ttl_no_match_s
        )
        try:
            fetched = datetime.fromisoformat(str(value.get("fetched_at")).replace("Z", "+00:00"))
        except ValueError:
            return None
        return (fetched + timedelta(seconds=ttl)).isoformat(timespec="seconds").replace("+00:00", "Z")

    def seconds_needed(self, misses: int) -> float:
        """Estimated time to fetch `misses` new leads at the shared rate, behind today's backlog."""
        if misses == 0:
            return 0.0
        concurrency = self.dispatcher.concurrency
        in_flight = max(concurrency.needed(), 1)
        per_call = max(self.settings.upstream_interval_s, concurrency.latency_s / in_flight)
        return self.pacer.backlog_s() + (misses - 1) * per_call + concurrency.latency_s


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


NOT_IN_TIME = empty_value(
    "error",
    "not answered within this batch's time (the fetch goes on: ask again, or use "
    "people_full_cached for large backfills)",
)


def _estimate_row(reason: str, would_call: bool = False, cached_until: str | None = None) -> dict[str, Any]:
    return {"would_call": would_call, "reason": reason, "cached_until": cached_until}
