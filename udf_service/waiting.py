"""Requesters waiting for their leads: one registry per worker, one reader for all of them.

A batch that needs leads fetched queues them and registers a `Waiter`: one write for the batch,
which also claims this worker's free share of the queue for its fetch threads
(`State.fetch_push_take`). Whoever fetches a lead (any worker, any host) stores the answer; a fetch in
this worker also hands it over here at once, in memory, so a local requester is answered even
while the state backend is down. For fetches elsewhere, one collector thread per worker reads the
answers of every pending key of every waiter in one `answers_get` per tick.

A waiter re-queues its pending keys now and then, so leads lost with the queue (a Redis restarted
empty, a SQLite file replaced) are fetched again instead of waited for until the deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .clock import SYSTEM, Clock
from .errors import StateError, UpstreamAuthError
from .leads import Lead
from .state import Item, State, Take
from .values import CachedValue, Value

log = logging.getLogger("udf_service.waiting")

TICK_S = 0.05
# `UDF_REQUEUE_EVERY_S`. Also the grace after a loss: requeued sooner, a lead whose call was in
# flight when the queue went is taken and paid again by another worker before the first answer
# is cached.
REQUEUE_EVERY_S = 10.0


class Refill(Protocol):
    """Who runs the items a write takes on the side (this worker's `fetching.Dispatcher`)."""

    def room(self, finishing: Sequence[str]) -> Take | None:
        """What to take once the fetches of `finishing` have ended; None: take nothing."""

    def run_taken(self, items: list[Item]) -> int:
        """Run the items taken on the fetch threads; how many were started."""


@dataclass(frozen=True)
class Outcome:
    """A non-cached answer (error, quota, budget) as fetchers store it for waiters elsewhere."""

    value: dict[str, Any]
    fatal: str | None = None  # "auth": 6sense rejected the token; the whole batch fails

    def to_bytes(self) -> bytes:
        return orjson.dumps({"fatal": self.fatal, "value": self.value})

    @classmethod
    def from_bytes(cls, raw: bytes) -> Outcome:
        document = orjson.loads(raw)
        return cls(document["value"], document.get("fatal"))


@dataclass(eq=False)
class Waiter:
    """One batch's pending leads: key -> the round it waits for; answers as they arrive."""

    rounds: dict[str, int]
    leads: dict[str, Lead]
    priority: int
    deadline: float
    on_done: Callable[[Waiter], None] | None = None
    answers: dict[str, Value] = field(default_factory=dict)
    fatal: UpstreamAuthError | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def pending(self) -> list[str]:
        return [key for key in self.rounds if key not in self.answers]


class Waiters:
    """Every waiter of this worker, and the thread that collects answers from elsewhere."""

    def __init__(
        self,
        state: State,
        clock: Clock = SYSTEM,
        poke: Callable[[], None] | None = None,
        requeue_every_s: float = REQUEUE_EVERY_S,
    ) -> None:
        self.state = state
        self.clock = clock
        self.requeue_every_s = requeue_every_s
        self.poke = poke or (lambda: None)
        self.lock = threading.Lock()
        self.by_key: dict[str, list[Waiter]] = {}
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.last_requeue = 0.0
        self.refill: Refill | None = None  # set by a running dispatcher

    # ------------------------------------------------------------------ registering
    def wait_for(
        self,
        leads: Mapping[str, Lead],
        priority: int,
        deadline: float,
        on_done: Callable[[Waiter], None] | None = None,
    ) -> Waiter:
        """Queue `leads` and claim this worker's free share (one write); register a waiter."""
        payloads = {key: lead_payload(lead) for key, lead in leads.items()}
        refill = self.refill
        take = refill.room([]) if refill is not None else None
        if take is None:
            rounds, taken = self.state.fetch_push(payloads, priority), []
        else:
            rounds, taken = self.state.fetch_push_take(payloads, priority, take)
        waiter = Waiter(dict(rounds), dict(leads), priority, deadline, on_done)
        with self.lock:
            for key in rounds:
                self.by_key.setdefault(key, []).append(waiter)
        self._ensure_thread()
        self.wake.set()
        if take is None:
            self.poke()  # the dispatcher takes them (the write took what this worker had room for)
        elif taken and refill is not None:
            refill.run_taken(taken)
        return waiter

    def _ensure_thread(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.stop_event.clear()
                self.thread = threading.Thread(target=self._loop, name="udf-waiters", daemon=True)
                self.thread.start()

    # ------------------------------------------------------------------ answers
    def deliver(self, key: str, round_: int, value: Value, fatal: str | None = None) -> None:
        """A fetch in this worker finished: hand the answer to every waiter of that round."""
        finished = []
        with self.lock:
            for waiter in self.by_key.get(key, []):
                if waiter.rounds.get(key, 0) <= round_ and key not in waiter.answers:
                    finished += self._answer(waiter, key, value, fatal)
        self._finish(finished)

    def _answer(self, waiter: Waiter, key: str, value: Value, fatal: str | None) -> list[Waiter]:
        """Record one answer (lock held); the waiter if that was its last pending key."""
        waiter.answers[key] = value
        if fatal == "auth" and waiter.fatal is None:
            waiter.fatal = UpstreamAuthError(401, "rejected by 6sense")
        if waiter.fatal is not None or not waiter.pending:
            self._unregister(waiter)
            return [waiter]
        return []

    def _unregister(self, waiter: Waiter) -> None:
        for key in waiter.rounds:
            waiters = self.by_key.get(key)
            if waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self.by_key[key]

    def _finish(self, waiters: list[Waiter]) -> None:
        for waiter in waiters:
            waiter.done.set()
            if waiter.on_done is not None:
                try:
                    waiter.on_done(waiter)
                except Exception:
                    log.exception("waiter_callback_failed")

    def abandon(self, waiter: Waiter) -> None:
        """The requester stopped waiting (deadline, shutdown): forget it; its fetches go on."""
        with self.lock:
            self._unregister(waiter)

    def pending_count(self) -> int:
        with self.lock:
            return len({id(w) for waiters in self.by_key.values() for w in waiters})

    # ------------------------------------------------------------------ the collector
    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self.wake.clear()
            try:
                if not self.collect_once():
                    return  # nobody waits: the thread ends, and starts again with the next waiter
            except StateError:
                pass  # keep waiting: local fetches still deliver, and the backend may come back
            except Exception:
                log.exception("waiters_collect_failed")
            self.clock.wait(self.wake, TICK_S)

    def collect_once(self) -> bool:
        """Read answers for every pending key, finish waiters past their deadline; False if idle."""
        with self.lock:
            if not self.by_key:
                self.thread = None
                return False
            keys = list(self.by_key)
            waiters = list({id(w): w for ws in self.by_key.values() for w in ws}.values())
        answers = self.state.answers_get(keys)
        finished: list[Waiter] = []
        with self.lock:
            for key, raw in answers.cached.items():
                for waiter in list(self.by_key.get(key, [])):
                    if key not in waiter.answers:
                        finished += self._answer(waiter, key, CachedValue(raw), None)
            for key, (round_, raw) in answers.outcomes.items():
                for waiter in list(self.by_key.get(key, [])):
                    if key not in waiter.answers and waiter.rounds[key] <= round_:
                        outcome = Outcome.from_bytes(raw)
                        finished += self._answer(waiter, key, outcome.value, outcome.fatal)
            now = self.clock.time()
            for waiter in waiters:
                if waiter not in finished and now >= waiter.deadline and not waiter.done.is_set():
                    self._unregister(waiter)
                    finished.append(waiter)
        self._finish(finished)
        if self.clock.monotonic() - self.last_requeue >= self.requeue_every_s:
            self.last_requeue = self.clock.monotonic()
            self._requeue()
        return True

    def _requeue(self) -> None:
        """Queue every pending key again (a no-op for keys still queued): lost items come back."""
        with self.lock:
            pending = {
                (key, w.priority): w.leads[key]
                for key, ws in self.by_key.items()
                for w in ws
                if key not in w.answers
            }
        for priority in {p for _, p in pending}:
            leads = {key: lead for (key, p), lead in pending.items() if p == priority}
            rounds = self.state.fetch_push({k: lead_payload(v) for k, v in leads.items()}, priority)
            with self.lock:
                for key, round_ in rounds.items():
                    for waiter in self.by_key.get(key, []):
                        if key not in waiter.answers and round_ > waiter.rounds[key]:
                            waiter.rounds[key] = round_  # the item was lost and queued anew
            if rounds:
                self.poke()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()


def lead_payload(lead: Lead) -> bytes:
    """What a queue item carries: the lead's form fields, as the fetcher will send them."""
    return orjson.dumps(lead.form())
