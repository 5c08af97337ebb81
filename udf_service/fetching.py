"""Fetching queued leads from 6sense, each paid once, by whichever worker is free.

    fetch_take -> reserve_slot -> wait -> before_send -> send -> (retry) -> deliver + fetch_done
    (and that fetch_done is the next lead's fetch_take: see `Completer`)

- `Dispatcher`: one thread per worker; takes ready items from the shared queue (most urgent
  first) and runs them on this worker's fetch threads, keeping as many calls in flight as
  `Concurrency` says the quota needs.
- `Fetcher.fetch(item)`: the rules for one lead. Every attempt takes its own slot under the shared
  limiter (so retries count against the quota like first calls), and right before sending reads
  the state once more: if the lead was cached meanwhile, the lease was lost, the schedule's epoch
  changed (the backend lost its state) or a circuit opened, it does not send.
- `Completer`: answers are handed to this worker's waiters at once, then written to the state in
  groups (one write for all answers that finished meanwhile). A write that fails is kept in memory
  and tried again until it lands: an answer that was paid for is never dropped. The same write
  takes the next items for the fetch threads it frees (`State.fetch_done` with a `Take`), so a
  fetched lead costs two writes, its slot and its answer, however the answers group.
- `Concurrency`: Little's law. Calls in flight = rate x latency; every worker runs its share,
  bounded by `UDF_UPSTREAM_CONCURRENCY` across all workers and instances.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from . import metrics
from .clock import SYSTEM, Clock
from .config import Settings
from .errors import (
    StateError,
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamTransportError,
)
from .failures import auth_message
from .guards import AUTH_CIRCUIT, CIRCUITS, QUOTA_CIRCUIT, CreditGuards, SharedPacer, calls_key
from .leads import Lead
from .recent_errors import RecentErrors
from .sixsense.client import Answer, SixsenseClient, error_kind
from .sixsense.flatten import empty_value, flatten
from .sixsense.retry import RetryPolicy
from .state import Done, Item, State, Take
from .values import stored_bytes
from .waiting import Outcome, Refill, Waiters

log = logging.getLogger("udf_service.fetching")

LATE_TOLERANCE_S = 0.01  # a sender waking later than this after its slot takes a new one
# The check before the call, read with the slot, stands for a slot this close: at most this much
# older than the call, plus LATE_TOLERANCE_S (leases last tens of seconds). For a slot further
# off the check is read again after the wait, a round trip of its own.
CHECKED_WITH_SLOT_S = 0.01
OUTCOME_TTL_S = 900.0  # errors are kept for waiters elsewhere past Snowflake's 600 s
RECOVERY_GRACE_S = 1.0  # after a state outage, answers held in memory are written before new takes
STATE_RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0)


def now_iso(clock: Clock) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(clock.time(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def quota_message(retry_in: float | None) -> str:
    minutes = f" in about {max(retry_in / 60, 1):.0f} min" if retry_in else ""
    return (
        "6sense answered 402: the API credit pool is exhausted; calls resume"
        + minutes
        + " (UDF_QUOTA_COOLDOWN_S), or ask your 6sense admin to add credits"
    )


BUDGET_MESSAGE = "UDF_DAILY_CALL_BUDGET is spent for today (UTC)"
# The budget can read as spent only because an unused slot's refund is still on its way to the
# state (a late wake-up on a loaded machine): wait this long for it before refusing the lead.
REFUND_FLUSH_S = 2.0


class Concurrency:
    """Calls this worker keeps in flight: Little's law on the shared rate and the measured latency."""

    MARGIN = 1.5  # latency varies; a few extra fetchers cost a thread each, too few cost quota

    def __init__(self, settings: Settings) -> None:
        self.rate_per_s = settings.rate_limit.per_second / (1 + settings.rate_headroom)
        self.ceiling = settings.upstream_concurrency
        self.latency_s = 0.25  # a guess until the first calls are timed (then a moving average)
        self.workers = 1

    def observe(self, seconds: float) -> None:
        self.latency_s = 0.8 * self.latency_s + 0.2 * seconds

    def needed(self) -> int:
        """Calls in flight across every worker that keep the quota busy."""
        return min(math.ceil(self.rate_per_s * self.latency_s * self.MARGIN) + 1, self.ceiling)

    def target(self) -> int:
        """This worker's share."""
        return max(1, math.ceil(self.needed() / max(self.workers, 1)))


@dataclass
class Held:
    """An item this worker holds a lease on, from the take until its answer is written."""

    item: Item
    lead: Lead


class Completer:
    """Writes finished fetches to the state in groups, and keeps trying while the state is down.

    With a `refill` (a running dispatcher), each write of finished fetches also takes the next
    items for the threads they free: finishing a lead and claiming the next is one write.
    """

    def __init__(
        self, state: State, clock: Clock = SYSTEM, on_written: Callable[[list[str]], None] | None = None
    ):
        self.state = state
        self.clock = clock
        self.on_written = on_written or (lambda _keys: None)
        self.lock = threading.Lock()
        self.done: list[Done] = []
        self.writing: list[Done] = []  # taken from `done`, being written: still answers meanwhile
        self.counters: dict[str, tuple[int, float | None]] = {}
        self.writing_counters: dict[str, tuple[int, float | None]] = {}  # as `writing`, for counts
        self.wake = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.stop_event = threading.Event()
        self.failing_since: float | None = None
        self.refill: Refill | None = None  # set by Dispatcher.start
        self.thread = threading.Thread(target=self._loop, name="udf-completer", daemon=True)
        self.thread.start()

    def submit(self, done: Done | None, counters: Mapping[str, tuple[int, float | None]] = ()) -> None:  # type: ignore[assignment]
        with self.lock:
            if done is not None:
                self.done.append(done)
            for key, (amount, ttl) in dict(counters).items():
                old = self.counters.get(key, (0, ttl))[0]
                self.counters[key] = (old + amount, ttl)
            self.idle.clear()
        self.wake.set()

    def finishing(self) -> bool:
        """Finished fetches not yet written: their write will take the items for their threads."""
        with self.lock:
            return bool(self.writing or self.done)

    def pending_keys(self) -> list[str]:
        with self.lock:
            return [done.key for done in self.writing + self.done]

    def cached_answers(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Answers submitted for the cache and not yet written: a lookup finds them here, so a
        lead paid for a moment ago is neither re-queued nor refused for a spent budget."""
        with self.lock:
            held = self.writing + self.done
        if not held:  # the cached route's usual case: nothing being written
            return {}
        wanted = set(keys)
        return {d.key: d.value for d in held if d.cache and d.value is not None and d.key in wanted}

    def pending_counts(self, keys: Iterable[str]) -> dict[str, int]:
        """Counter changes submitted and not yet written (usage figures add them, so a count
        handed over a moment ago does not vanish from /usage until it is written)."""
        with self.lock:
            held = [self.writing_counters, self.counters]
            return {key: sum(part.get(key, (0, None))[0] for part in held) for key in keys}

    def pending_cache_writes(self) -> int:
        """Answers submitted for the cache and not yet written (a refresh of a cached lead counts
        too: the figure is for /usage, a moment ahead of the state's own count)."""
        with self.lock:
            return sum(1 for d in self.writing + self.done if d.cache and d.value is not None)

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted is written; False if the time ran out."""
        self.wake.set()
        return self.idle.wait(timeout_s)

    def stop(self, timeout_s: float) -> bool:
        flushed = self.flush(timeout_s)
        self.stop_event.set()
        self.wake.set()
        return flushed

    def _loop(self) -> None:
        failures = 0
        while True:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                done, counters = self.done, {k: v for k, v in self.counters.items() if v[0]}
                self.writing, self.done, self.counters = done, [], {}
                self.writing_counters = counters
            if not done and not counters:
                self.idle.set()
                if self.stop_event.is_set():
                    return
                continue
            refill = self.refill if done else None
            take = refill.room([d.key for d in done]) if refill is not None else None
            try:
                # Without a take the call is the plain two-argument one (tests wrap it so).
                taken = (
                    self.state.fetch_done(done, counters, take)
                    if take
                    else self.state.fetch_done(done, counters)
                )
            except StateError as exc:
                with self.lock:  # keep them, in order, ahead of anything submitted meanwhile
                    self.writing, self.done, self.writing_counters = [], done + self.done, {}
                    for key, (amount, ttl) in counters.items():
                        self.counters[key] = (self.counters.get(key, (0, ttl))[0] + amount, ttl)
                if self.failing_since is None:
                    self.failing_since = self.clock.monotonic()
                    log.warning(
                        "answers_held_in_memory", extra={"answers": len(done), "error": str(exc)[:200]}
                    )
                delay = STATE_RETRY_S[min(failures, len(STATE_RETRY_S) - 1)]
                failures += 1
                if self.stop_event.wait(delay) and self.stop_event.is_set() and failures > 50:
                    return  # shutting down and the state is gone: nothing more can be done
                self.wake.set()
                continue
            if self.failing_since is not None:
                log.info("answers_written_after_outage", extra={"answers": len(done)})
            self.failing_since = None
            failures = 0
            with self.lock:
                self.writing, self.writing_counters = [], {}
            self.on_written([d.key for d in done])
            if taken and refill is not None:
                try:
                    refill.run_taken(taken)
                except Exception:  # the writer must outlive anything the fetch side does
                    log.exception("refill_failed")
            with self.lock:
                if not self.done and not self.counters:
                    self.idle.set()


class Fetcher:
    """The rules for fetching one queued lead; `fetch()` runs in a fetch thread."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        client: SixsenseClient,
        pacer: SharedPacer,
        guards: CreditGuards,
        completer: Completer,
        waiters: Waiters,
        concurrency: Concurrency,
        owner: str,
        clock: Clock = SYSTEM,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.client = client
        self.pacer = pacer
        self.guards = guards
        self.completer = completer
        self.waiters = waiters
        self.concurrency = concurrency
        self.owner = owner
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.errors: RecentErrors | None = None  # set by runtime.build: errors by class

    def _error(self, error_class: str, message: str) -> None:
        if self.errors is not None:
            self.errors.record(error_class, message)

    def fetch(self, held: Held, stop: threading.Event) -> None:
        """Fetch `held`'s lead, or hand the item back; never leaves it in doubt while it can write."""
        item, lead = held.item, held.lead
        policy, attempts, failure, state_failures = self.policy, 0, "", 0
        while True:
            if stop.is_set():
                self._release(item)
                return
            try:
                reservation = self.pacer.reserve(
                    self.settings.fetch_lease_s / 3, check_for=(item.key, self.owner, CIRCUITS)
                )
            except StateError:
                state_failures += 1
                if self._state_down(stop, state_failures):
                    return
                continue
            if reservation.capped:
                if self._refund_pending() and self.completer.flush(REFUND_FLUSH_S):
                    continue  # a slot this worker did not send on is being taken back: ask again
                self._error("budget_exhausted", BUDGET_MESSAGE)
                self._finish(
                    held, empty_value("budget_exhausted", "UDF_DAILY_CALL_BUDGET is spent for today (UTC)")
                )
                return
            if reservation.wait_s is None:  # the schedule is full for now: wait and ask again
                if self.clock.wait(stop, self.settings.fetch_lease_s / 6):
                    self._release(item)
                    return
                continue
            slot_at = self.clock.monotonic() + reservation.wait_s
            if self.clock.wait(stop, reservation.wait_s):
                self._unused()
                self._release(item)
                return
            if self.clock.monotonic() - slot_at > LATE_TOLERANCE_S:
                # Waking late would land the call right next to the following sender's, and two
                # calls that close together can both fall in one of 6sense's windows: take a new
                # slot. Measured at the wake-up, before the check's round trip: measured after it,
                # a busy state backend made every sender late, and each new slot made it busier
                # (2 instances on Redis, limit far above reach: 80 reservations per call).
                self._unused()
                metrics.LIMITER_LATE_SLOTS.inc()
                continue
            check = reservation.check if reservation.wait_s <= CHECKED_WITH_SLOT_S else None
            if check is None:
                try:
                    check = self.state.before_send(item.key, self.owner, CIRCUITS)
                except StateError:
                    self._unused()
                    state_failures += 1
                    if self._state_down(stop, state_failures):
                        return
                    continue
            state_failures = 0
            if check.cached:
                self._unused()
                self._written_elsewhere(item)
                return
            if not check.held:  # the lease lapsed and another worker has the lead now
                self._unused()
                metrics.FETCH_EVENTS.labels("lease_lost").inc()
                return
            if check.epoch != reservation.epoch:  # the backend lost its schedule: take a new slot
                metrics.FETCH_EVENTS.labels("epoch_changed").inc()
                continue
            if QUOTA_CIRCUIT in check.flags:
                self._unused()
                self._error("quota_exhausted", "not sent: the 402 circuit is open")
                self._finish(
                    held,
                    empty_value(
                        "quota_exhausted", quota_message(self.guards.open_circuits().get(QUOTA_CIRCUIT))
                    ),
                )
                return
            if AUTH_CIRCUIT in check.flags:
                self._unused()
                self._finish(held, empty_value("error", auth_message()), fatal="auth")
                return
            attempts += 1
            started = self.clock.monotonic()
            try:
                answer = self.client.send(lead)
            except UpstreamRateLimited as exc:
                policy = policy.increment(status=429)
                pause = policy.sleep_for(exc.retry_after)
                self._quietly(partial(self.pacer.slow_down, pause))
                failure = "6sense answered HTTP 429 (rate limited)"
                self._retrying("upstream_rate_limited", failure)
            except UpstreamAuthError as exc:
                self._quietly(partial(self.guards.trip_auth, exc.status))
                self._error("upstream_auth", f"6sense rejected the token (HTTP {exc.status})")
                log.error("upstream_auth_rejected", extra={"upstream_status": exc.status})
                self._finish(held, empty_value("error", auth_message(exc.status)), fatal="auth")
                return
            except UpstreamTransportError as exc:
                kind = error_kind(exc)
                if kind == "connect":
                    self._unused()  # nothing reached 6sense: not a call
                policy = policy.increment(error=kind)
                pause = policy.sleep_for(None)
                failure = f"6sense call failed: {exc}"
                self._retrying("upstream_connect" if kind == "connect" else "upstream_timeout", failure)
            else:
                self.concurrency.observe(self.clock.monotonic() - started)
                if not (
                    answer.outcome == "error"
                    and answer.http_status
                    and policy.is_retryable_status(answer.http_status)
                ):
                    self._finish(held, self._value(answer, lead), matched=answer.outcome == "ok")
                    return
                policy = policy.increment(status=answer.http_status)
                pause = policy.sleep_for(None)
                failure = answer.error or f"6sense answered HTTP {answer.http_status}"
                self._retrying("upstream_server_error", f"HTTP {answer.http_status}: {failure}")
            if policy.is_exhausted():
                log.warning(
                    "upstream_gave_up",
                    extra={"email_hash": lead.email_hash, "attempts": attempts, "failure": failure[:200]},
                )
                self._finish(held, empty_value("error", f"{failure}; gave up after {attempts} attempts"))
                return
            log.debug(
                "upstream_retry",
                extra={"email_hash": lead.email_hash, "attempt": attempts, "failure": failure[:200],
                       "pause_s": round(pause, 3)},
            )  # fmt: skip
            if self.clock.wait(stop, pause):
                self._release(item)
                return

    # ------------------------------------------------------------------ endings
    def _value(self, answer: Answer, lead: Lead) -> dict[str, Any]:
        fetched_at = now_iso(self.clock)
        if answer.outcome == "ok":
            return flatten(answer.payload or {}, fetched_at)
        if answer.outcome == "no_match":
            return empty_value("no_match", fetched_at=fetched_at)
        if answer.outcome == "quota_exhausted":
            self._quietly(self.guards.trip_quota)
            self._error("quota_exhausted", "6sense answered 402: the credit pool is exhausted")
            log.warning(
                "quota_circuit_opened",
                extra={"email_hash": lead.email_hash, "upstream_status": 402,
                       "cooldown_s": self.settings.quota_cooldown_s},
            )  # fmt: skip
            return empty_value("quota_exhausted", quota_message(self.settings.quota_cooldown_s))
        if answer.outcome in ("error", "invalid_input"):
            self._error("upstream_error", f"HTTP {answer.http_status}: {answer.error or ''}")
        return empty_value(answer.outcome, answer.error)

    def _retrying(self, error_class: str, failure: str) -> None:
        metrics.UPSTREAM_RETRIES.labels(error_class.removeprefix("upstream_")).inc()
        self._error(error_class, failure)

    def _finish(
        self, held: Held, value: dict[str, Any], matched: bool = False, fatal: str | None = None
    ) -> None:
        """Write to the state (in a group, retried); deliver to this worker's waiters now.

        Submitted first: from then on a lookup in this worker finds the answer (in the
        completer until written), so a caller who got it never sees the lead as new again."""
        item, status = held.item, value["status"]
        ttl = self.ttl_for(status)
        if ttl is not None:
            done = Done(item.key, stored_bytes(value), ttl, item.round, lead=orjson.dumps(held.lead.form()))
        else:
            done = Done(item.key, Outcome(value, fatal).to_bytes(), OUTCOME_TTL_S, item.round, cache=False)
        self.completer.submit(done, self.guards.matched() if matched else {})
        self.waiters.deliver(item.key, item.round, value, fatal)
        metrics.FETCH_EVENTS.labels(status).inc()
        if matched:
            metrics.MATCHED_LEADS.inc()

    def ttl_for(self, status: str) -> float | None:
        """How long an answer is cached, or None when it is not (errors, quota, budget)."""
        if status == "ok" and self.settings.cache_ttl_ok_s > 0:
            return self.settings.cache_ttl_ok_s
        if status == "no_match" and self.settings.cache_ttl_no_match_s > 0:
            return self.settings.cache_ttl_no_match_s
        return None

    def _written_elsewhere(self, item: Item) -> None:
        """The lead was cached meanwhile (another fetch): drop the item; waiters read the cache."""
        self.completer.submit(Done(item.key, None, 0, item.round))
        metrics.FETCH_EVENTS.labels("cached_meanwhile").inc()

    def _refund_pending(self) -> bool:
        """True while a call this worker reserved and did not send is not yet taken back."""
        today = calls_key(self.pacer.periods.day())
        return self.completer.pending_counts([today])[today] < 0

    def _unused(self) -> None:
        """A reserved slot that was not sent on is not a call: take the count back (with the next write)."""
        self.completer.submit(None, self.pacer.unused())

    def _release(self, item: Item) -> None:
        self._quietly(partial(self.state.fetch_release, self.owner, [item.key]))

    def _state_down(self, stop: threading.Event, failures: int) -> bool:
        """Back off while the state is unreachable; True when the fetch should give up the item.

        Nothing is sent meanwhile: every attempt needs a slot and a check, both in the state.
        After a lease's worth of failures the lease is gone anyway; another worker takes the item
        once the backend is back.
        """
        delay = STATE_RETRY_S[min(failures - 1, len(STATE_RETRY_S) - 1)]
        if failures * delay > self.settings.fetch_lease_s or self.clock.wait(stop, delay):
            metrics.FETCH_EVENTS.labels("state_unavailable").inc()
            self._error("state_unavailable", "the state backend did not answer; the lead goes back")
            return True
        return False

    @staticmethod
    def _quietly(action: Callable[[], object]) -> None:
        try:
            action()
        except StateError:
            log.warning("state_write_skipped")


def _worth_retrying(answer: Answer, policy: RetryPolicy) -> bool:
    """An error answer with a status that may succeed later (5xx, 202): try again."""
    return (
        answer.outcome == "error"
        and bool(answer.http_status)
        and policy.is_retryable_status(answer.http_status or 0)
    )


class Dispatcher:
    """Takes ready items from the shared queue and runs them on this worker's fetch threads."""

    def __init__(
        self,
        fetcher: Fetcher,
        state: State,
        settings: Settings,
        concurrency: Concurrency,
        completer: Completer,
        owner: str,
        clock: Clock = SYSTEM,
    ) -> None:
        self.fetcher = fetcher
        self.state = state
        self.settings = settings
        self.concurrency = concurrency
        self.completer = completer
        self.owner = owner
        self.clock = clock
        self.pool = ThreadPoolExecutor(settings.upstream_concurrency, thread_name_prefix="fetch")
        self.lock = threading.Lock()
        self.held: dict[str, Held] = {}
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.taking = threading.Event()
        self.taking.set()
        self.last_state_error = -math.inf
        self.last_activity = -math.inf
        self.thread = threading.Thread(target=self._loop, name="udf-dispatcher", daemon=True)

    def start(self) -> None:
        # From now on, writes of finished fetches and of a batch's misses take the next items.
        self.completer.refill = self
        self.fetcher.waiters.refill = self
        self.thread.start()

    def poke(self) -> None:
        """Work was queued in this worker: take it now instead of at the next poll."""
        self.wake.set()

    def held_keys(self) -> list[str]:
        with self.lock:
            return list(self.held)

    def in_flight(self) -> int:
        with self.lock:
            return len(self.held)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self.wake.clear()
            took = 0
            try:
                took = self.take_once()
            except StateError:
                self.last_state_error = self.clock.monotonic()
            except Exception:
                log.exception("dispatcher_failed")
            if took:
                self.last_activity = self.clock.monotonic()
                continue
            busy = self.clock.monotonic() - self.last_activity < 5.0
            self.clock.wait(self.wake, 0.05 if busy else 0.25)

    def _may_take(self) -> bool:
        if self.stop_event.is_set() or not self.taking.is_set():
            return False
        # Answers held in memory go first, so nobody takes (and pays for) them again.
        return not (
            self.clock.monotonic() - self.last_state_error < RECOVERY_GRACE_S or self.completer.failing_since
        )

    def take_once(self, keys: list[str] | None = None) -> int:
        """Take as many items as this worker's share allows and start them; how many were taken."""
        if not self._may_take():
            return 0
        if keys is None and self.completer.finishing():
            return 0  # the write of those answers takes the items for the threads they free
        with self.lock:
            free = self.concurrency.target() - len(self.held)
        if free <= 0:
            return 0
        return self.run_taken(self.state.fetch_take(self.owner, free, self.settings.fetch_lease_s, keys))

    def room(self, finishing: Sequence[str]) -> Take | None:
        """The take for a completer's write: this worker's free share once `finishing` have ended.

        Their threads are about to return (an answer is a fetch's last step), so they count as
        free now. A take of the dispatcher's own at the same moment may start a few more than the
        share for a while: extra calls in flight, never an extra call per lead.
        """
        if not self._may_take() or not self.thread.is_alive():
            return None
        with self.lock:
            free = self.concurrency.target() - len(self.held.keys() - set(finishing))
        return Take(self.owner, free, self.settings.fetch_lease_s) if free > 0 else None

    def run_taken(self, items: list[Item]) -> int:
        """Run taken items on the fetch threads; how many were started. Items taken as the
        dispatcher stops go back at once (another worker sends them, not us after our lease)."""
        started, back = 0, []
        for item in items:
            held = Held(item, Lead.from_form(orjson.loads(item.payload)))
            with self.lock:
                # Claimed back from a lost take while it runs here; or (rarer) queued again under
                # the same key while its last fetch is still finishing: its lease then lapses.
                if item.key in self.held:
                    continue
                self.held[item.key] = held
            try:
                if self.stop_event.is_set():
                    raise RuntimeError("stopping")
                self.pool.submit(self._run, held)
            except RuntimeError:  # the pool is shut down: stopping
                with self.lock:
                    self.held.pop(item.key, None)
                back.append(item.key)
                continue
            started += 1
        if started:  # busy: the dispatcher's own polls stay quick for work queued elsewhere
            self.last_activity = self.clock.monotonic()
        if back:
            self.fetcher._quietly(partial(self.state.fetch_release, self.owner, back))
        return started

    def _run(self, held: Held) -> None:
        try:
            self.fetcher.fetch(held, self.stop_event)
        except Exception:
            log.exception("fetch_failed")
            self.fetcher._release(held.item)
        finally:
            with self.lock:
                self.held.pop(held.item.key, None)
            # An answer handed to the completer takes the next items with its write (`room`): no
            # need to wake the dispatcher, only to find that out. Waking a thread costs a system
            # call, on a VM an interrupt to another CPU, and this runs once per call.
            if not self.completer.finishing():
                self.wake.set()

    def renew(self) -> None:
        """Keep the leases of items in flight, and of answers not yet written, alive."""
        keys = set(self.held_keys()) | set(self.completer.pending_keys())
        if keys:
            self.state.fetch_renew(self.owner, keys, self.settings.fetch_lease_s)

    def stop(self, grace_s: float) -> None:
        """Stop taking; cancel slot waits (their items go back at once); let calls in the air land."""
        self.taking.clear()
        self.stop_event.set()
        self.wake.set()
        end = self.clock.monotonic() + grace_s
        while self.in_flight() and self.clock.monotonic() < end:
            self.clock.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
