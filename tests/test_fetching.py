"""The fetcher's rules for one lead, stepped on a ManualClock (no sleeping): retries by failure
class, the re-check right before a paid call, the slot schedule, answers kept while the state is
down; and the concurrency Little's law gives for a quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from udf_service import fetching
from udf_service.config import RateLimit, Settings
from udf_service.errors import StateError
from udf_service.fetching import LATE_TOLERANCE_S, Concurrency, Held
from udf_service.guards import AUTH_CIRCUIT, LIMITER_NAME, QUOTA_CIRCUIT, calls_key
from udf_service.leads import Lead
from udf_service.runtime import Runtime, build
from udf_service.simulator import Simulator, SimulatorTransport
from udf_service.state import INTERACTIVE, Done
from udf_service.state.sqlite import SQLiteState
from udf_service.testing import ManualClock
from udf_service.waiting import lead_payload

LEAD = Lead(email="jane.doe@acme.com", country="US")


class Harness:
    """One worker's runtime on a manual clock, with the simulator (or a mock) as 6sense."""

    def __init__(
        self, tmp_path: Path, transport: httpx.BaseTransport | None = None, **overrides: Any
    ) -> None:
        self.clock = ManualClock(start=time.time())
        self.simulator = Simulator(clock=self.clock)
        options = {"rate_limit": RateLimit(60, 60.0), "fetch_lease_s": 30.0, **overrides}
        self.settings = Settings(simulate=True, state_url=f"sqlite:///{tmp_path}/s.db", **options)
        self.state = SQLiteState(str(tmp_path / "s.db"), clock=self.clock)
        self.runtime: Runtime = build(
            self.settings,
            background=False,
            transport=transport or SimulatorTransport(self.simulator),
            clock=self.clock,
            state=self.state,
        )
        self.stop = threading.Event()

    def take(self, lead: Lead = LEAD, owner: str | None = None) -> Held:
        self.state.fetch_push({lead.key: lead_payload(lead)}, INTERACTIVE)
        [item] = self.state.fetch_take(owner or self.runtime.dispatcher.owner, 1, self.settings.fetch_lease_s)
        return Held(item, lead)

    def fetch(self, held: Held | None = None) -> dict[str, Any]:
        """Run the fetch to its end; the value the state now has for the lead (cache or outcome)."""
        held = held or self.take()
        self.runtime.dispatcher.fetcher.fetch(held, self.stop)
        assert self.runtime.completer.flush(5)
        answers = self.state.answers_get([held.item.key])
        if held.item.key in answers.cached:
            return orjson.loads(answers.cached[held.item.key])
        if held.item.key in answers.outcomes:
            return orjson.loads(answers.outcomes[held.item.key][1])["value"]
        return {}

    def calls_counted(self) -> int:
        return self.state.get_int(calls_key(self.runtime.pacer.periods.day()))

    def close(self) -> None:
        self.runtime.shutdown(grace_s=0)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    yield made
    made.close()


def _failing_once(failure: Exception) -> Callable[[httpx.Request], httpx.Response]:
    simulator, calls = Simulator(), []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise failure
        return SimulatorTransport(simulator).handle_request(request)

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


# ------------------------------------------------------------------------------ retries by class
@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"status": 429}, id="429"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"kind": "malformed"}, id="malformed-json"),
        pytest.param({"kind": "reset"}, id="connection-reset"),
    ],
)
def test_transient_faults_are_retried_then_answered(harness: Harness, rule: dict) -> None:
    """One transient fault, then the right answer: the row is exact, cached, two calls counted."""
    harness.simulator.set_faults([rule])
    value = harness.fetch()
    assert value["status"] == "ok" and value["company_domain"] == "acme.com"
    assert harness.simulator.stats()["calls"] == 2 and harness.calls_counted() == 2


def test_read_timeout_is_retried(tmp_path: Path) -> None:
    """A read timeout (6sense may have billed it) is retried on the read budget, then answered."""
    handler = _failing_once(httpx.ReadTimeout("slow"))
    harness = Harness(tmp_path, transport=httpx.MockTransport(handler))
    try:
        assert harness.fetch()["status"] == "ok" and len(handler.calls) == 2  # type: ignore[attr-defined]
    finally:
        harness.close()


def test_connect_failure_is_not_counted_as_a_call(tmp_path: Path) -> None:
    """A connect failure never reached 6sense: retried, and not counted among today's calls."""
    handler = _failing_once(httpx.ConnectError("refused"))
    harness = Harness(tmp_path, transport=httpx.MockTransport(handler))
    try:
        assert harness.fetch()["status"] == "ok"
        assert harness.calls_counted() == 1  # the answered call only
    finally:
        harness.close()


def test_429_holds_every_worker_back(harness: Harness) -> None:
    """A 429 pushes the shared limiter out, so no worker sends before the pause."""
    harness.simulator.set_faults([{"status": 429}])
    before = harness.clock.time()
    harness.fetch()
    assert harness.clock.time() - before >= 0.1  # the second attempt waited for the hold-off


def test_persistent_faults_end_in_an_error_row_not_cached(harness: Harness) -> None:
    """After the bounded retries the answer is an `error` outcome with the last failure; it is
    never cached, so the next query asks again."""
    harness.simulator.set_faults([{"status": 503, "times": 100}])
    value = harness.fetch()
    attempts = harness.runtime.dispatcher.fetcher.policy.total + 1
    assert value["status"] == "error" and f"gave up after {attempts} attempts" in value["error"]
    assert harness.simulator.stats()["calls"] == attempts
    assert harness.state.cache_get_many([LEAD.key]) == {}


@pytest.mark.parametrize(("status", "expected"), [(400, "invalid_input"), (404, "no_match"), (422, "error")])
def test_final_statuses_are_one_call(harness: Harness, status: int, expected: str) -> None:
    """400, 404 and other 4xx are answers: one call, mapped to a row status."""
    harness.simulator.set_faults([{"status": status, "times": 5}])
    assert harness.fetch()["status"] == expected and harness.simulator.stats()["calls"] == 1


def test_402_trips_the_circuit(harness: Harness) -> None:
    """A 402 answers quota_exhausted and opens the circuit for every worker."""
    harness.simulator.set_faults([{"status": 402}])
    assert harness.fetch()["status"] == "quota_exhausted"
    assert QUOTA_CIRCUIT in harness.runtime.guards.open_circuits()


def test_401_is_fatal_for_the_batch_and_trips_the_auth_circuit(harness: Harness) -> None:
    """A rejected token: a fatal outcome (the batch fails with 424) and a short circuit."""
    harness.simulator.set_faults([{"status": 401}])
    held = harness.take()
    harness.fetch(held)
    assert (
        orjson.loads(harness.state.answers_get([held.item.key]).outcomes[held.item.key][1])["fatal"] == "auth"
    )
    assert AUTH_CIRCUIT in harness.runtime.guards.open_circuits()


# ------------------------------------------------------------------------------ the re-check
def test_no_call_when_the_lead_was_cached_meanwhile(harness: Harness) -> None:
    """Cached by someone else while we waited for our slot: no call, the item is gone."""
    held = harness.take()
    harness.state.cache_set_many({held.item.key: b'{"status":"ok"}'}, 60)
    harness.fetch(held)
    assert harness.simulator.stats()["calls"] == 0 and harness.state.fetch_depth() == {}
    assert harness.calls_counted() == 0


def test_no_call_when_the_lease_was_lost(harness: Harness) -> None:
    """Our lease lapsed and another worker took the lead: we do not send."""
    held = harness.take()
    harness.clock.advance(harness.settings.fetch_lease_s + 1)
    assert harness.state.fetch_take("other-worker", 1, 30)
    harness.fetch(held)
    assert harness.simulator.stats()["calls"] == 0


@pytest.mark.parametrize(("flag", "status"), [(QUOTA_CIRCUIT, "quota_exhausted"), (AUTH_CIRCUIT, "error")])
def test_no_call_while_a_circuit_is_open(harness: Harness, flag: str, status: str) -> None:
    """A circuit opened by another worker is seen right before the call: no call."""
    harness.state.flag_set(flag, b"1", 60)
    assert harness.fetch()["status"] == status and harness.simulator.stats()["calls"] == 0


def test_a_slot_that_starts_now_is_checked_in_the_same_round_trip(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit far from reach: the reservation reads the check before the call too, so no
    separate before_send; the call is made, once."""
    checks = []
    real = harness.state.before_send
    monkeypatch.setattr(harness.state, "before_send", lambda *a, **k: checks.append(1) or real(*a, **k))
    assert harness.fetch()["status"] == "ok"
    assert checks == [] and harness.simulator.stats()["calls"] == 1


def test_a_slot_of_a_lost_schedule_is_not_used(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's epoch changed after our slot was reserved (it lost its state): the slot is
    void and a new one is taken before sending, so old and new schedules never overlap. (Only a
    check read after the wait can see another epoch: one read with the slot has the slot's.)"""
    monkeypatch.setattr(fetching, "CHECKED_WITH_SLOT_S", -1.0)  # every check read after the wait
    real = harness.state.before_send
    seen = []

    def before_send(*args: Any, **kwargs: Any) -> Any:
        check = real(*args, **kwargs)
        seen.append(check)
        return check if len(seen) > 1 else type(check)(check.cached, check.held, "lost", check.flags)

    monkeypatch.setattr(harness.state, "before_send", before_send)
    reservations = []
    real_reserve = harness.state.reserve_slot
    monkeypatch.setattr(
        harness.state, "reserve_slot", lambda *a, **k: reservations.append(1) or real_reserve(*a, **k)
    )
    assert harness.fetch()["status"] == "ok"
    assert len(reservations) == 2 and harness.simulator.stats()["calls"] == 1


@pytest.mark.parametrize("read_with_the_slot", [True, False], ids=["with-the-slot", "after-the-wait"])
def test_no_call_while_the_state_is_down(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, read_with_the_slot: bool
) -> None:
    """If the check right before the call cannot be read, nothing is sent; the item is left to
    its lease (another worker takes it once the backend is back). The check is read with the
    slot (one that starts now) or on its own after the wait."""

    def down(*_: Any, **__: Any) -> Any:
        raise StateError("down")

    monkeypatch.setattr(harness.state, "before_send", down)
    if read_with_the_slot:
        monkeypatch.setattr(harness.state, "reserve_slot", down)
    else:
        monkeypatch.setattr(fetching, "CHECKED_WITH_SLOT_S", -1.0)
    harness.runtime.dispatcher.fetcher.fetch(harness.take(), harness.stop)
    assert harness.simulator.stats()["calls"] == 0


def test_budget_caps_calls_not_leads(harness: Harness, tmp_path: Path) -> None:
    """With UDF_DAILY_CALL_BUDGET=3 and a lead that needs retries, the budget stops the fourth
    call: retries count against it, since 6sense counts every request."""
    capped = Harness(tmp_path / "b", daily_call_budget=3)
    try:
        capped.simulator.set_faults([{"status": 503, "times": 10}])
        assert capped.fetch()["status"] == "budget_exhausted"
        assert capped.simulator.stats()["calls"] == 3 == capped.calls_counted()
    finally:
        capped.close()


def test_a_late_wake_up_takes_a_new_slot(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Waking more than the tolerance after its slot (a loaded machine), a sender takes a new one:
    sending late would land next to the following sender's call."""
    harness.state.reserve_slot(LIMITER_NAME, harness.settings.upstream_interval_s, 5)  # a slot ahead
    real_wait = harness.clock.wait
    waits = []

    def oversleep(event: threading.Event, seconds: float) -> bool:
        waits.append(seconds)
        return real_wait(event, seconds + (0.05 if len(waits) == 1 else 0))

    monkeypatch.setattr(harness.clock, "wait", oversleep)
    assert harness.fetch()["status"] == "ok"
    assert len(waits) == 2 and harness.simulator.stats()["calls"] == 1 and harness.calls_counted() == 1


def test_a_slow_check_before_the_call_does_not_make_the_sender_late(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lateness is the wake-up's, not the state's round trip after it: a busy backend whose every
    check takes longer than the tolerance still gets the call sent, on one slot (measured after
    the check, each new slot made the backend busier: 80 reservations per call on Redis)."""
    harness.state.reserve_slot(LIMITER_NAME, harness.settings.upstream_interval_s, 5)  # a slot ahead
    real_check, reservations = harness.state.before_send, []
    real_reserve = harness.state.reserve_slot

    def slow_check(*args: Any, **kwargs: Any) -> Any:
        harness.clock.advance(5 * LATE_TOLERANCE_S)
        return real_check(*args, **kwargs)

    def counted_reserve(*args: Any, **kwargs: Any) -> Any:
        reservations.append(args)
        return real_reserve(*args, **kwargs)

    monkeypatch.setattr(harness.state, "before_send", slow_check)
    monkeypatch.setattr(harness.state, "reserve_slot", counted_reserve)
    assert harness.fetch()["status"] == "ok"
    assert len(reservations) == 1 and harness.simulator.stats()["calls"] == 1 == harness.calls_counted()


def test_an_unused_slot_does_not_spend_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Budget 1 and a late wake-up: the unused slot's refund is still being written when the
    sender asks again; it waits for the refund instead of answering budget_exhausted."""
    capped = Harness(tmp_path / "b", daily_call_budget=1)
    try:
        real_wait, real_done, waits = capped.clock.wait, capped.state.fetch_done, []

        def oversleep(event: threading.Event, seconds: float) -> bool:
            waits.append(seconds)
            return real_wait(event, seconds + (0.05 if len(waits) == 1 else 0))

        def slow_write(done: Any, counters: Any) -> None:
            time.sleep(0.2)  # the completer thread, busy writing while the sender asks again
            real_done(done, counters)

        capped.state.reserve_slot(LIMITER_NAME, capped.settings.upstream_interval_s, 5)  # a slot ahead
        monkeypatch.setattr(capped.clock, "wait", oversleep)
        monkeypatch.setattr(capped.state, "fetch_done", slow_write)
        assert capped.fetch()["status"] == "ok"
        assert capped.simulator.stats()["calls"] == 1 == capped.calls_counted()
    finally:
        capped.close()


def test_stopping_during_a_slot_wait_gives_the_item_back(harness: Harness) -> None:
    """Shutdown while waiting for a slot: nothing sent, the item ready for another worker at once,
    the reserved call taken back."""
    harness.state.hold_off(LIMITER_NAME, harness.clock.time() + 5)
    harness.stop.set()
    harness.runtime.dispatcher.fetcher.fetch(harness.take(), harness.stop)
    assert harness.runtime.completer.flush(5)
    assert harness.simulator.stats()["calls"] == 0
    assert [i.key for i in harness.state.fetch_take("next-worker", 1, 30)] == [LEAD.key]


def test_answers_are_kept_and_written_after_a_state_outage(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paid answer whose write fails is kept in memory and written once the state is back."""
    real = harness.state.fetch_done
    failures = []

    def flaky(done: Any, counters: Any) -> None:
        if len(failures) < 3:
            failures.append(1)
            raise StateError("disk full")
        real(done, counters)

    monkeypatch.setattr(harness.state, "fetch_done", flaky)
    value = harness.fetch()
    assert value["status"] == "ok" and len(failures) == 3
    assert harness.simulator.stats()["calls"] == 1


def test_fetch_done_write_is_one_per_group(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers that finish while a write is under way go out together in the next write."""
    writes: list[int] = []
    real = harness.state.fetch_done
    monkeypatch.setattr(
        harness.state, "fetch_done", lambda done, c: writes.append(len(done)) or real(done, c)
    )
    completer = harness.runtime.completer
    with completer.lock:  # hold the writer while five answers arrive
        for i in range(5):
            completer.done.append(Done(f"k{i}", b"v", 60, 1))
        completer.idle.clear()
    completer.wake.set()
    assert completer.flush(5) and writes == [5]


def test_without_a_running_dispatcher_no_write_takes(harness: Harness) -> None:
    """A worker whose dispatcher does not run (a Lambda, the CLI) takes nothing in an answer's
    write: it fetches only the leads its requests ask for."""
    assert harness.runtime.completer.refill is None
    assert harness.runtime.dispatcher.room([]) is None


def test_items_taken_as_the_dispatcher_stops_go_back(harness: Harness) -> None:
    """Items an answer's write took while the dispatcher stops are given back at once, so another
    worker sends them now rather than after this worker's lease."""
    dispatcher = harness.runtime.dispatcher
    leads = [Lead(email=f"p{i}@acme.com", country="US") for i in range(2)]
    harness.state.fetch_push({lead.key: lead_payload(lead) for lead in leads}, INTERACTIVE)
    items = harness.state.fetch_take(dispatcher.owner, 2, harness.settings.fetch_lease_s)
    dispatcher.stop_event.set()
    assert dispatcher.run_taken(items) == 0 and dispatcher.in_flight() == 0
    assert len(harness.state.fetch_take("next-worker", 5, 30)) == 2


# ------------------------------------------------------------------------------ concurrency
@pytest.mark.parametrize(
    ("per_minute", "latency_s", "workers", "expected"),
    [
        (100, 0.2, 1, 2),  # 1.67/s x 0.2 s x 1.5 = 0.5 -> 1 + 1
        (6000, 0.1, 2, 8),  # 97/s x 0.1 s x 1.5 = 14.6 -> 16 in all, 8 each
        (60000, 0.1, 2, 74),  # 971/s x 0.1 s x 1.5 = 146 -> 147 in all
        (60000, 1.0, 1, 256),  # the ceiling bounds it
    ],
)
def test_concurrency_follows_the_quota(
    per_minute: int, latency_s: float, workers: int, expected: int
) -> None:
    """Calls in flight = rate x latency (Little's law) with a margin, shared by the live workers,
    bounded by UDF_UPSTREAM_CONCURRENCY."""
    concurrency = Concurrency(Settings(simulate=True, rate_limit=RateLimit(per_minute, 60.0)))
    concurrency.latency_s, concurrency.workers = latency_s, workers
    assert concurrency.target() == expected


def test_an_answer_written_between_the_lookups_reads_is_found(harness: Harness) -> None:
    """A lookup reads the completer before the state: an answer whose write lands between the
    two reads is found, not taken for a new lead (read the other way round, it was in neither:
    a /usage hit ratio short by the leads answered a moment ago, seen once in the suite)."""
    completer, raw = harness.runtime.completer, b'{"status":"ok"}'
    completer.writing = [Done(LEAD.key, raw, 60, 1)]  # being written right now
    read_before_the_write = harness.state.cache_get_many

    def write_lands_during_the_read(keys: list[str]) -> dict[str, bytes]:
        seen = read_before_the_write(keys)
        harness.state.cache_set_many({LEAD.key: raw}, 60)
        completer.writing = []  # written: it leaves the completer
        return seen

    harness.state.cache_get_many = write_lands_during_the_read  # type: ignore[method-assign]
    lookup = harness.runtime.engine.lookup([LEAD])
    assert lookup.misses == {} and lookup.values[0] is not None
