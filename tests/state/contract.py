"""The contract of ``udf_service.state.base.State``, written once, mixed into each backend's tests.

A backend's test class sets ``self.url`` and ``self.prefix`` (an autouse fixture parametrized over
prefixes) and implements ``make_state(prefix=None)``, returning a state on the same storage each
time. Expiry tests use short TTLs and ``pass_time``, which sleeps unless the backend's clock can be
stepped; race tests use 8 threads, and 2 forked processes that each open their own state from
``self.url``.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from udf_service.clock import SYSTEM
from udf_service.state import BACKGROUND, INTERACTIVE, Done, Reservation, State, Take, state_from_url
from udf_service.testing import SkipAheadClock

TTL = 0.2  # a short expiry
PAST_TTL = TTL + 0.1  # a sleep after which an entry with TTL has surely expired
LONG = 60.0  # an expiry no test outlives
THREADS = 8


def race_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released together; return the results in thread order."""
    barrier, results, errors = threading.Barrier(n, timeout=10), [None] * n, []

    def main(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # reraised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish in 30 s"
    if errors:
        raise errors[0]
    return results


def race_processes(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` forked processes released together; return their results."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(n, timeout=10), ctx.Queue()

    def main(i: int) -> None:
        try:
            barrier.wait()
            out.put((i, True, fn(i)))
        except BaseException as exc:
            out.put((i, False, repr(exc)))

    processes = [ctx.Process(target=main, args=(i,), daemon=True) for i in range(n)]
    for process in processes:
        process.start()
    try:
        answers = {}
        for _ in processes:
            i, ok, value = out.get(timeout=30)
            answers[i] = (ok, value)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()  # only a process this test started
    failed = [value for ok, value in answers.values() if not ok]
    assert not failed, f"a racing process failed: {failed[0]}"
    return [answers[i][1] for i in range(n)]


class Countdown:
    """A wait the backend counts down from a moment this test started: it may have shrunk by the
    time since then (a loaded machine, a TLS cluster's round trips), never grown."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def approx(self, expected: float) -> Any:
        """Matches a value in [expected - elapsed, expected], 0.05 s either side for rounding.
        Evaluated after the left-hand side of ``==``, so the elapsed time includes that call."""
        elapsed = time.monotonic() - self.started
        return pytest.approx(expected - elapsed / 2, abs=elapsed / 2 + 0.05)


class StateContract:
    """Every rule of ``State``, against ``self.make_state()``."""

    url: str
    prefix: str
    # A backend far away in round trips (a TLS cluster on a loaded machine) may set longer ones:
    # three writes must land well within TTL.
    TTL = TTL
    PAST_TTL = PAST_TTL
    clock: SkipAheadClock | None = None  # set by a backend whose clock is injected

    def make_state(self, prefix: str | None = None) -> State:
        raise NotImplementedError

    def pass_time(self, seconds: float) -> None:
        """Let ``seconds`` go by on the backend's clock: skipped ahead on a backend that takes
        ``self.clock`` (SQLite), slept through on one that keeps its own (a Redis server)."""
        if self.clock is None:
            time.sleep(seconds)
        else:
            self.clock.advance(seconds)

    def child_state(self) -> State:
        """A state opened from scratch, as a new worker process would open it."""
        return state_from_url(self.url, prefix=self.prefix, clock=self.clock or SYSTEM)

    @pytest.fixture
    def state(self) -> State:
        return self.make_state()

    # ------------------------------------------------------------------ lifecycle
    def test_now_is_epoch_seconds(self, state: State) -> None:
        """now() is the backend clock in seconds since the epoch, as a float."""
        assert isinstance(state.now(), float)
        assert abs(state.now() - time.time()) < 2

    def test_ping_answers(self, state: State) -> None:
        """ping() returns None when the backend answers."""
        assert state.ping() is None

    def test_ping_with_a_write(self, state: State) -> None:
        """ping(write=True) proves the backend accepts a write (readiness)."""
        assert state.ping(write=True) is None

    def test_close_then_use_keeps_data(self, state: State) -> None:
        """After close() the same object opens new connections and sees earlier writes."""
        state.cache_set_many({"k": b"v"}, LONG)
        state.close()
        assert state.cache_get_many(["k"]) == {"k": b"v"}
        state.close()
        state.close()
        state.ping()

    def test_forked_child_works(self, state: State) -> None:
        """A forked child uses the inherited object at once, and the parent's still works."""
        state.flag_set("parent", b"p", LONG)

        def child(_: int) -> bytes | None:
            state.flag_set("child", b"c", LONG)
            return state.flag_get("parent")

        assert race_processes(1, child) == [b"p"]
        assert state.flag_get("child") == b"c"
        state.flag_set("parent-after", b"q", LONG)
        assert self.make_state().flag_get("parent-after") == b"q"

    def test_sweep_keeps_fresh_entries(self, state: State) -> None:
        """sweep() returns a count and leaves unexpired entries of every kind alone."""
        state.cache_set_many({"old": b"1"}, self.TTL)
        state.flag_set("old", b"1", self.TTL)
        state.cache_set_many({"new": b"2"}, LONG)
        state.fetch_push({"q": b"lead"}, INTERACTIVE)
        state.flag_set("new", b"2", LONG)
        state.incr("n", 3, LONG)
        state.job_create("j", b"p", "me", LONG, LONG)
        self.pass_time(self.PAST_TTL)
        assert state.sweep() >= 0
        assert state.cache_get_many(["old", "new"]) == {"new": b"2"}
        assert state.flag_get("old") is None
        assert (state.fetch_depth(), state.flag_get("new"), state.get_int("n")) == ({0: 1}, b"2", 3)
        assert state.job_get("j") is not None

    def test_prefixes_do_not_share_keys(self, state: State) -> None:
        """A state with another prefix on the same storage sees none of this one's entries."""
        other = self.make_state(prefix=self.prefix + "-other")
        state.cache_set_many({"k": b"v"}, LONG)
        state.reserve_slot("l", LONG, LONG)
        state.incr("n", 5)
        state.flag_set("f", b"1", LONG)
        state.job_create("j", b"p", "me", 0.01, LONG)
        state.fetch_push({"q": b"1"}, BACKGROUND)
        state.heartbeat("w", LONG)
        self.pass_time(0.05)
        assert other.cache_get_many(["k"]) == {} and other.cache_count() == 0
        assert other.slot_backlog("l") == 0.0 and list(other.cache_scan()) == []
        assert other.get_int("n") == 0 and other.flag_get("f") is None
        assert other.job_get("j") is None and other.jobs_orphaned() == []
        assert other.fetch_depth() == {} and other.fetch_take("w", 10, LONG) == []
        assert other.heartbeat("x", LONG) == 1
        assert state.jobs_orphaned() == ["j"] and state.fetch_depth() == {1: 1}

    # ------------------------------------------------------------------ cache
    def test_cache_get_many_returns_only_stored_keys(self, state: State) -> None:
        """cache_get_many maps stored keys to their values and leaves missing keys out."""
        state.cache_set_many({"a": b"1", "b": b"2"}, LONG)
        assert state.cache_get_many(["a", "b", "zz"]) == {"a": b"1", "b": b"2"}
        assert state.cache_get_many([]) == {}

    def test_cache_values_are_bytes_verbatim(self, state: State) -> None:
        """Any bytes round-trip unchanged, including NUL and invalid UTF-8; keys may be any text."""
        value = bytes(range(256)) + b"\x00\xff"
        state.cache_set_many({"k:é/{x} *": value, "empty": b""}, LONG)
        assert state.cache_get_many(["k:é/{x} *", "empty"]) == {"k:é/{x} *": value, "empty": b""}

    def test_cache_set_replaces(self, state: State) -> None:
        """A second set of the same key replaces the value."""
        state.cache_set_many({"a": b"1"}, LONG)
        state.cache_set_many({"a": b"2"}, LONG)
        assert state.cache_get_many(["a"]) == {"a": b"2"}

    def test_cache_entries_expire(self, state: State) -> None:
        """An entry is absent once its ttl has passed; a replaced entry takes the new ttl."""
        state.cache_set_many({"a": b"1", "b": b"1"}, self.TTL)
        state.cache_set_many({"b": b"2"}, LONG)
        self.pass_time(self.PAST_TTL)
        assert state.cache_get_many(["a", "b"]) == {"b": b"2"}

    def test_cache_count_counts_fresh_entries(self, state: State) -> None:
        """cache_count counts unexpired entries only."""
        assert state.cache_count() == 0
        state.cache_set_many({"a": b"1", "b": b"1"}, self.TTL)
        state.cache_set_many({"c": b"1", "a": b"2"}, LONG)
        assert state.cache_count() == 3
        self.pass_time(self.PAST_TTL)
        assert state.cache_count() == 2

    def test_cache_handles_large_batches(self, state: State) -> None:
        """Batches larger than any internal chunk are stored and read whole."""
        items = {f"k{i}": str(i).encode() for i in range(1234)}
        state.cache_set_many(items, LONG)
        assert state.cache_get_many([*items, "missing"]) == items
        assert state.cache_count() == 1234

    def test_cache_rejects_non_positive_ttl(self, state: State) -> None:
        """ttl_s must be > 0: cache_set_many raises ValueError otherwise and stores nothing."""
        with pytest.raises(ValueError):
            state.cache_set_many({"a": b"1"}, 0)
        assert state.cache_get_many(["a"]) == {}

    def test_cache_keeps_the_lead_beside_the_value(self, state: State) -> None:
        """cache_set_many with leads keeps them for cache_scan; a key without one has None."""
        state.cache_set_many({"a": b"1", "b": b"2"}, LONG, leads={"a": b'{"email":"x"}'})
        records = {r.key: r for r in state.cache_scan()}
        assert (records["a"].value, records["a"].lead, records["b"].lead) == (b"1", b'{"email":"x"}', None)
        assert records["a"].expires_at == pytest.approx(state.now() + LONG, abs=2)

    def test_cache_scan_yields_every_fresh_entry_once(self, state: State) -> None:
        """cache_scan walks every fresh entry once, across its batches, and skips expired ones."""
        state.cache_set_many({f"k{i}": b"v" for i in range(23)}, LONG)
        state.cache_set_many({"old": b"v"}, self.TTL)
        self.pass_time(self.PAST_TTL)
        keys = [record.key for record in state.cache_scan(batch=5)]
        assert sorted(keys) == sorted(f"k{i}" for i in range(23))

    # ------------------------------------------------------------------ fetch queue
    def test_fetch_push_queues_new_keys_only(self, state: State) -> None:
        """fetch_push gives each key a round; a queued key keeps its payload and round."""
        first = state.fetch_push({"a": b"1", "b": b"2"}, BACKGROUND)
        again = state.fetch_push({"b": b"other", "c": b"3"}, BACKGROUND)
        assert again["b"] == first["b"] and again["c"] > max(first.values())
        assert state.fetch_push({}, BACKGROUND) == {}
        assert state.fetch_depth() == {BACKGROUND: 3}
        taken = {item.key: item for item in state.fetch_take("w", 10, LONG)}
        assert taken["b"].payload == b"2" and taken["b"].round == first["b"]

    def test_fetch_take_most_urgent_then_oldest(self, state: State) -> None:
        """Interactive items go before background ones; within a priority, oldest first."""
        state.fetch_push({"bg1": b"", "bg2": b""}, BACKGROUND)
        state.fetch_push({"now1": b"", "now2": b""}, INTERACTIVE)
        assert [i.key for i in state.fetch_take("w", 3, LONG)] == ["now1", "now2", "bg1"]
        assert [i.key for i in state.fetch_take("w", 3, LONG)] == ["bg2"]
        assert state.fetch_take("w", 3, LONG) == [] and state.fetch_take("w", 0, LONG) == []

    def test_urgent_push_raises_a_queued_items_priority(self, state: State) -> None:
        """A background item asked for by a waiting query moves ahead of other background work."""
        state.fetch_push({"bg1": b"", "bg2": b""}, BACKGROUND)
        state.fetch_push({"bg2": b""}, INTERACTIVE)
        assert state.fetch_depth() == {INTERACTIVE: 1, BACKGROUND: 1}
        assert [i.key for i in state.fetch_take("w", 1, LONG)] == ["bg2"]
        state.fetch_push({"bg1": b""}, BACKGROUND)  # a less urgent push changes nothing
        assert state.fetch_depth() == {INTERACTIVE: 1, BACKGROUND: 1}

    def test_fetch_push_take_queues_and_claims_in_one_call(self, state: State) -> None:
        """fetch_push_take queues as fetch_push does, then leases ready items to the pusher as
        fetch_take does (most urgent first, queued before or now); without a take it takes none."""
        state.fetch_push({"bg": b"b"}, BACKGROUND)
        first = state.fetch_push({"old": b"o"}, INTERACTIVE)
        rounds, taken = state.fetch_push_take({"old": b"x", "new": b"n"}, INTERACTIVE, Take("w", 2, LONG))
        assert rounds["old"] == first["old"] and rounds["new"] > first["old"]
        assert [(i.key, i.payload, i.round) for i in taken] == [
            ("old", b"o", first["old"]),
            ("new", b"n", rounds["new"]),
        ]
        assert state.before_send("new", "w").held
        assert [i.key for i in state.fetch_take("other", 5, LONG)] == ["bg"]
        assert state.fetch_push_take({"more": b""}, BACKGROUND) == ({"more": rounds["new"] + 1}, [])
        assert state.fetch_push_take({}, BACKGROUND, Take("w", 0, LONG)) == ({}, [])
        assert [i.key for i in state.fetch_push_take({}, BACKGROUND, Take("w", 5, LONG))[1]] == ["more"]

    def test_fetch_take_only_the_given_keys(self, state: State) -> None:
        """With keys, fetch_take leases only those that are ready (a caller fetching its own)."""
        state.fetch_push({"a": b"", "b": b"", "c": b""}, INTERACTIVE)
        state.fetch_take("other", 1, LONG, keys=["a"])
        assert [i.key for i in state.fetch_take("w", 10, LONG, keys=["a", "c", "zz"])] == ["c"]
        assert state.fetch_take("w", 10, LONG, keys=[]) == []

    def test_expired_lease_is_taken_again(self, state: State) -> None:
        """An item whose lease expired is ready again, in its place by age."""
        state.fetch_push({"a": b"", "b": b"", "c": b""}, BACKGROUND)
        assert [i.key for i in state.fetch_take("w1", 1, self.TTL)] == ["a"]
        assert [i.key for i in state.fetch_take("w1", 1, LONG)] == ["b"]
        self.pass_time(self.PAST_TTL)
        assert [i.key for i in state.fetch_take("w2", 5, LONG)] == ["a", "c"]

    def test_fetch_renew_extends_only_held_leases(self, state: State) -> None:
        """fetch_renew answers the keys the owner still holds and keeps them off the queue."""
        state.fetch_push({"a": b"", "b": b""}, BACKGROUND)
        # Two round trips between the take and the renew must fit in the first lease, and the
        # check after the sleep must fall past it: margins of 2 TTL each way, not of sleep jitter.
        state.fetch_take("w1", 1, 2 * self.TTL)
        state.fetch_take("w2", 1, LONG)
        assert state.fetch_renew("w1", ["a", "b", "zz"], LONG) == {"a"}
        self.pass_time(2 * self.TTL + 0.1)  # past the first lease, inside the renewed one
        assert state.fetch_take("w3", 5, LONG) == []
        assert state.fetch_renew("w1", [], LONG) == set()

    def test_lapsed_lease_cannot_be_renewed(self, state: State) -> None:
        """Once a lease has expired it is gone: renewing it does not take it back."""
        state.fetch_push({"a": b""}, BACKGROUND)
        state.fetch_take("w1", 1, self.TTL)
        self.pass_time(self.PAST_TTL)
        assert state.fetch_renew("w1", ["a"], LONG) == set()
        assert [i.key for i in state.fetch_take("w2", 1, LONG)] == ["a"]

    def test_fetch_release_makes_ready_at_once(self, state: State) -> None:
        """fetch_release by the holder gives the item back; by anyone else it does nothing."""
        state.fetch_push({"a": b"", "b": b""}, BACKGROUND)
        state.fetch_take("w1", 2, LONG)
        state.fetch_release("w2", ["a"])
        state.fetch_release("w1", ["b", "zz"])
        assert [i.key for i in state.fetch_take("w3", 5, LONG)] == ["b"]

    def test_before_send_reads_cache_lease_epoch_and_flags(self, state: State) -> None:
        """before_send says whether the key is cached, the lease still ours, which flags are set."""
        reservation = state.reserve_slot("l", 0.001, 1)
        state.fetch_push({"a": b"", "b": b""}, BACKGROUND)
        state.fetch_take("w1", 2, LONG)
        state.flag_set("open", b"1", LONG)
        check = state.before_send("a", "w1", ["open", "closed"])
        assert (check.cached, check.held, check.flags) == (False, True, frozenset({"open"}))
        assert check.epoch == reservation.epoch != ""
        assert state.before_send("a", "w2").held is False
        state.cache_set_many({"b": b"v"}, LONG)
        assert state.before_send("b", "w1").cached is True

    def test_a_reservation_with_check_for_reads_what_before_send_reads(self, state: State) -> None:
        """reserve_slot(check_for=...) answers before_send's check with the slot, counters and
        cap still applied; no check when no slot was reserved (too far, or capped)."""
        state.fetch_push({"a": b"", "b": b""}, BACKGROUND)
        state.fetch_take("w1", 2, LONG)
        state.flag_set("open", b"1", LONG)
        state.cache_set_many({"b": b"v"}, LONG)
        for key, owner in (("a", "w1"), ("a", "w2"), ("b", "w1"), ("zz", "w1")):
            reservation = state.reserve_slot(
                "l", 0.001, 1, {"calls": None}, ("calls", 100), check_for=(key, owner, ["open", "closed"])
            )
            assert reservation.wait_s is not None and reservation.check is not None
            assert reservation.check == state.before_send(key, owner, ["open", "closed"])
            assert reservation.check.epoch == reservation.epoch != ""
        assert state.get_int("calls") == 4
        assert state.reserve_slot("l", 0.001, 1, check_for=("a", "w1", ())).check.flags == frozenset()  # type: ignore[union-attr]
        assert state.reserve_slot("l", 0.001, 1).check is None
        far = state.reserve_slot("far", 10, 100)
        assert far.wait_s == 0.0
        assert state.reserve_slot("far", 10, 1, check_for=("a", "w1", ())) == Reservation(None, far.epoch)
        capped = state.reserve_slot("l", 0.001, 1, {}, ("calls", 4), check_for=("a", "w1", ()))
        assert capped.capped and capped.check is None

    def test_fetch_done_stores_answers_and_removes_items(self, state: State) -> None:
        """fetch_done caches (with the lead), keeps outcomes for their round, drops the items, counts."""
        rounds = state.fetch_push({"ok": b"", "err": b"", "gone": b""}, INTERACTIVE)
        state.fetch_take("w", 3, LONG)
        state.fetch_done(
            [
                Done("ok", b"value", LONG, rounds["ok"], lead=b"lead"),
                Done("err", b"error", LONG, rounds["err"], cache=False),
                Done("gone", None, 0, rounds["gone"]),
            ],
            {"matched": (1, LONG), "calls": (-1, None)},
        )
        answers = state.answers_get(["ok", "err", "gone", "zz"])
        assert answers.cached == {"ok": b"value"}
        assert answers.outcomes == {"err": (rounds["err"], b"error")}
        assert state.fetch_depth() == {} and state.get_ints(["matched", "calls"]) == [1, -1]
        assert [r.lead for r in state.cache_scan()] == [b"lead"]

    def test_fetch_done_keeps_a_key_queued_again(self, state: State) -> None:
        """A key queued anew after its item finished keeps its new item (another round)."""
        first = state.fetch_push({"a": b""}, INTERACTIVE)["a"]
        state.fetch_done([Done("a", b"e1", LONG, first, cache=False)], {})
        second = state.fetch_push({"a": b""}, INTERACTIVE)["a"]
        assert second > first
        state.fetch_done([Done("a", b"late", LONG, first, cache=False)], {})  # a stale finish
        assert state.fetch_depth() == {INTERACTIVE: 1}
        assert [i.round for i in state.fetch_take("w", 1, LONG)] == [second]

    def test_fetch_done_takes_the_next_items(self, state: State) -> None:
        """fetch_done with a take stores, drops, counts, then leases ready items as fetch_take
        does (most urgent, then oldest; expired leases too), in the same write."""
        state.fetch_push({"bg": b"b"}, BACKGROUND)
        rounds = state.fetch_push({"a": b"", "lapsed": b"l", "c": b"c"}, INTERACTIVE)
        state.fetch_take("w", 1, LONG)
        state.fetch_take("gone-worker", 1, self.TTL)
        self.pass_time(self.PAST_TTL)
        taken = state.fetch_done(
            [Done("a", b"v", LONG, rounds["a"])], {"calls": (1, None)}, Take("w", 2, LONG)
        )
        assert [(i.key, i.payload, i.round) for i in taken] == [
            ("lapsed", b"l", rounds["lapsed"]),
            ("c", b"c", rounds["c"]),
        ]
        assert state.answers_get(["a"]).cached == {"a": b"v"} and state.get_int("calls") == 1
        assert state.before_send("c", "w").held and state.fetch_depth() == {INTERACTIVE: 2, BACKGROUND: 1}
        assert [i.key for i in state.fetch_take("other", 5, LONG)] == ["bg"]
        assert state.fetch_done([], {}, Take("w", 5, LONG)) == []

    def test_fetch_done_without_a_take_takes_nothing(self, state: State) -> None:
        """Without a take (or with a limit of 0) fetch_done leases nothing and answers []."""
        state.fetch_push({"a": b"", "b": b""}, INTERACTIVE)
        assert state.fetch_done([], {}) == []
        assert state.fetch_done([], {}, Take("w", 0, LONG)) == []
        assert len(state.fetch_take("other", 5, LONG)) == 2

    def test_outcomes_expire(self, state: State) -> None:
        """An outcome is kept ttl_s, then gone."""
        rounds = state.fetch_push({"a": b""}, INTERACTIVE)
        state.fetch_done([Done("a", b"e", self.TTL, rounds["a"], cache=False)], {})
        assert state.answers_get(["a"]).outcomes
        self.pass_time(self.PAST_TTL)
        assert state.answers_get(["a"]).outcomes == {}

    def test_fetch_queue_handles_large_batches(self, state: State) -> None:
        """Pushes and reads larger than any internal chunk work whole."""
        rounds = state.fetch_push({f"k{i}": b"x" for i in range(1234)}, BACKGROUND)
        assert len(set(rounds.values())) == 1234 and state.fetch_depth() == {BACKGROUND: 1234}
        items = state.fetch_take("w", 1234, LONG)
        state.fetch_done([Done(i.key, b"v", LONG, i.round) for i in items], {})
        assert len(state.answers_get([i.key for i in items]).cached) == 1234

    def test_fetch_take_race_threads(self, state: State) -> None:
        """8 threads draining the queue at once: every item is taken exactly once."""
        keys = [f"k{i}" for i in range(300)]
        state.fetch_push({k: k.encode() for k in keys}, BACKGROUND)

        def drain(i: int) -> list[str]:
            got, deadline = [], time.monotonic() + 20
            while time.monotonic() < deadline and (batch := state.fetch_take(f"t{i}", 7, LONG)):
                assert all(item.payload == item.key.encode() for item in batch)
                got += [item.key for item in batch]
            return got

        taken = race_threads(THREADS, drain)
        assert Counter(k for got in taken for k in got) == Counter(keys)

    def test_fetch_take_race_processes(self, state: State) -> None:
        """2 processes draining the queue at once: every item is taken exactly once."""
        keys = [f"k{i}" for i in range(200)]
        state.fetch_push({k: b"x" for k in keys}, BACKGROUND)
        state.close()

        def drain(i: int) -> list[str]:
            child, got, deadline = self.child_state(), [], time.monotonic() + 20
            while time.monotonic() < deadline and (batch := child.fetch_take(f"p{i}", 5, LONG)):
                got += [item.key for item in batch]
            return got

        taken = race_processes(2, drain)
        assert Counter(k for got in taken for k in got) == Counter(keys)

    def test_fetch_push_race_threads_one_round_per_key(self, state: State) -> None:
        """8 threads queueing the same leads at once: one item per key, one round each."""
        keys = [f"k{i}" for i in range(50)]
        rounds = race_threads(THREADS, lambda _: state.fetch_push({k: b"" for k in keys}, INTERACTIVE))
        assert all(r == rounds[0] for r in rounds)
        assert state.fetch_depth() == {INTERACTIVE: 50}

    # ------------------------------------------------------------------ rate limiter
    def test_first_slot_is_immediate(self, state: State) -> None:
        """An unknown limiter has a free slot now: the wait is 0.0."""
        assert state.slot_backlog("l") == 0.0
        assert state.reserve_slot("l", 10, 0).wait_s == 0.0

    def test_slots_are_spaced_by_interval(self, state: State) -> None:
        """Successive reservations wait 0, interval, 2 * interval, ..."""
        since = Countdown()
        waits = [state.reserve_slot("l", 10, 100).wait_s for _ in range(3)]
        assert waits[0] == 0.0
        assert waits[1] == since.approx(10) and waits[2] == since.approx(20)
        assert state.slot_backlog("l") == since.approx(30)

    def test_reserve_beyond_max_wait_changes_nothing(self, state: State) -> None:
        """A slot further away than max_wait_s is refused (None) and not reserved."""
        since = Countdown()
        state.reserve_slot("l", 10, 100)
        assert state.reserve_slot("l", 10, 5).wait_s is None
        assert state.slot_backlog("l") == since.approx(10)
        assert state.reserve_slot("l", 10, 100).wait_s == since.approx(10)

    def test_idle_limiter_starts_at_now(self, state: State) -> None:
        """A limiter whose last slot has passed gives a free slot at once, not a burst."""
        state.reserve_slot("l", self.TTL, 10)
        self.pass_time(self.PAST_TTL)
        since = Countdown()
        assert state.reserve_slot("l", self.TTL, 10).wait_s == 0.0
        assert state.reserve_slot("l", self.TTL, 10).wait_s == since.approx(self.TTL)

    def test_hold_off_pushes_next_slot(self, state: State) -> None:
        """hold_off(until) makes the next slot start no earlier than until."""
        since = Countdown()
        state.hold_off("l", state.now() + 5)
        assert state.slot_backlog("l") == since.approx(5)
        assert state.reserve_slot("l", 1, 100).wait_s == since.approx(5)
        assert state.reserve_slot("l", 1, 100).wait_s == since.approx(6)

    def test_hold_off_never_pulls_back(self, state: State) -> None:
        """hold_off with an earlier time than the next slot leaves the limiter as it was."""
        since = Countdown()
        state.reserve_slot("l", 10, 100)
        state.hold_off("l", state.now() + 2)
        state.hold_off("l", state.now() - 100)
        assert state.slot_backlog("l") == since.approx(10)
        state.hold_off("fresh", state.now() - 100)
        assert state.slot_backlog("fresh") == 0.0

    def test_limiters_are_independent(self, state: State) -> None:
        """Each limiter name keeps its own schedule."""
        state.reserve_slot("a", 10, 100)
        assert state.reserve_slot("b", 10, 100).wait_s == 0.0

    def test_reserve_race_threads(self, state: State) -> None:
        """8 threads reserving at once get distinct slots spaced one interval apart."""

        def reserve(_: int) -> list[float | None]:
            return [state.reserve_slot("l", 10, 1e6).wait_s for _ in range(5)]

        waits = race_threads(THREADS, reserve)
        flat = sorted(w for ws in waits for w in ws)
        assert flat == pytest.approx([10.0 * k for k in range(len(flat))], abs=2)

    def test_reserve_race_processes(self) -> None:
        """2 processes reserving at once get distinct slots spaced one interval apart."""

        def reserve(_: int) -> list[float | None]:
            child = self.child_state()
            return [child.reserve_slot("l", 10, 1e6).wait_s for _ in range(10)]

        waits = race_processes(2, reserve)
        flat = sorted(w for ws in waits for w in ws)
        assert flat == pytest.approx([10.0 * k for k in range(20)], abs=2)

    def test_reserve_counts_each_slot(self, state: State) -> None:
        """Every reserved slot adds 1 to each counter (ttl on creation); a refused one adds nothing."""
        for _ in range(3):
            state.reserve_slot("l", 10, 100, {"calls": LONG, "minute": self.TTL})
        state.reserve_slot("l", 10, 1, {"calls": LONG})
        assert state.get_ints(["calls", "minute"]) == [3, 3]
        self.pass_time(self.PAST_TTL)
        assert state.get_ints(["calls", "minute"]) == [3, 0]

    def test_reserve_refuses_past_the_cap(self, state: State) -> None:
        """With cap=(key, limit), slots are refused once the counter reaches the limit."""
        answers = [state.reserve_slot("l", 0.001, 100, {"calls": LONG}, cap=("calls", 2)) for _ in range(3)]
        assert [a.capped for a in answers] == [False, False, True]
        assert answers[2].wait_s is None and state.get_int("calls") == 2
        assert state.slot_backlog("l") < 0.01  # the refused one reserved nothing

    def test_epoch_is_stable(self, state: State) -> None:
        """The epoch stays the same across calls and across state objects on one backend."""
        epoch = state.reserve_slot("l", 0.001, 1).epoch
        assert epoch and state.reserve_slot("l", 0.001, 1).epoch == epoch
        assert self.make_state().reserve_slot("m", 0.001, 1).epoch == epoch

    # ------------------------------------------------------------------ counters and flags
    def test_incr_from_absent(self, state: State) -> None:
        """An absent counter counts from 0; incr returns the new value, amounts may be negative."""
        assert state.get_int("n") == 0
        assert state.incr("n") == 1
        assert state.incr("n", 41) == 42
        assert state.incr("n", -2) == 40
        assert state.get_int("n") == 40

    def test_incr_ttl_is_set_only_on_create(self, state: State) -> None:
        """A counter expires ttl_s after it was created, however often it is incremented."""
        state.incr("n", 1, self.TTL)
        self.pass_time(self.TTL / 2)
        assert state.incr("n", 1, LONG) == 2
        self.pass_time(self.PAST_TTL - self.TTL / 2)
        assert state.get_int("n") == 0
        assert state.incr("n", 1, LONG) == 1

    def test_incr_without_ttl_keeps(self, state: State) -> None:
        """A counter created without a ttl does not expire, even if later calls pass one."""
        state.incr("n")
        state.incr("n", 1, 0.05)
        self.pass_time(0.15)
        assert state.get_int("n") == 2

    def test_incr_race_threads(self, state: State) -> None:
        """8 threads incrementing at once lose no increment."""
        race_threads(THREADS, lambda _: [state.incr("n", 1, LONG) for _ in range(50)])
        assert state.get_int("n") == THREADS * 50

    def test_get_ints_reads_many(self, state: State) -> None:
        """get_ints answers every key in order, 0 for absent ones."""
        state.incr("a", 2)
        state.incr("c", 5)
        assert state.get_ints(["a", "b", "c"]) == [2, 0, 5] and state.get_ints([]) == []

    def test_flags_get_reads_many(self, state: State) -> None:
        """flags_get answers each set flag with its value and the seconds it has left."""
        state.flag_set("a", b"1", 10)
        state.flag_set("b", b"2", self.TTL)
        self.pass_time(self.PAST_TTL)
        found = state.flags_get(["a", "b", "c"])
        assert list(found) == ["a"] and found["a"][0] == b"1" and 9 < found["a"][1] <= 10

    def test_heartbeat_counts_live_workers(self, state: State) -> None:
        """heartbeat answers how many owners are alive; one whose ttl passed is not counted."""
        assert state.heartbeat("w1", LONG) == 1
        assert state.heartbeat("w2", self.TTL) == 2
        assert state.heartbeat("w1", LONG) == 2
        self.pass_time(self.PAST_TTL)
        assert state.heartbeat("w1", LONG) == 1

    def test_flag_roundtrip_and_replace(self, state: State) -> None:
        """flag_set stores a value that flag_get returns; a second set replaces value and ttl."""
        assert state.flag_get("f") is None
        state.flag_set("f", b"open", self.TTL)
        assert state.flag_get("f") == b"open"
        state.flag_set("f", b"closed", LONG)
        self.pass_time(self.PAST_TTL)
        assert state.flag_get("f") == b"closed"

    def test_flag_expires(self, state: State) -> None:
        """A flag past its ttl is absent: flag_get and flag_ttl return None."""
        state.flag_set("f", b"1", self.TTL)
        self.pass_time(self.PAST_TTL)
        assert state.flag_get("f") is None
        assert state.flag_ttl("f") is None

    def test_flag_with_no_ttl_left_is_absent(self, state: State) -> None:
        """flag_set with ttl_s <= 0 leaves the flag absent, replacing an earlier value."""
        state.flag_set("f", b"1", LONG)
        state.flag_set("f", b"2", 0)
        state.flag_set("g", b"2", -1)
        assert (state.flag_get("f"), state.flag_ttl("f"), state.flag_get("g")) == (None, None, None)

    def test_flag_ttl_counts_down(self, state: State) -> None:
        """flag_ttl is the seconds left, None when the flag is absent."""
        assert state.flag_ttl("f") is None
        state.flag_set("f", b"1", 10)
        assert 9 < state.flag_ttl("f") <= 10
        self.pass_time(0.2)
        assert state.flag_ttl("f") <= 9.9

    # ------------------------------------------------------------------ jobs
    def test_job_create_and_get(self, state: State) -> None:
        """A created job reads back with its payload, owner, lease and creation time."""
        now = state.now()
        assert state.job_create("j", b"batch", "w1", 30, LONG) is True
        job = state.job_get("j")
        assert (job.job_id, job.payload, job.result, job.owner) == ("j", b"batch", None, "w1")
        assert not job.done
        assert job.lease_until == pytest.approx(now + 30, abs=1)
        assert job.created_at == pytest.approx(now, abs=1)

    def test_job_create_existing_is_refused(self, state: State) -> None:
        """Creating a job id that exists returns False and changes nothing."""
        state.job_create("j", b"first", "w1", 30, LONG)
        assert state.job_create("j", b"second", "w2", 30, LONG) is False
        assert (state.job_get("j").payload, state.job_get("j").owner) == (b"first", "w1")

    def test_job_create_race_threads(self, state: State) -> None:
        """8 threads creating the same job: exactly one creates it."""
        created = race_threads(THREADS, lambda i: state.job_create("j", b"p", f"t{i}", 30, LONG))
        assert created.count(True) == 1
        assert state.job_get("j").owner == f"t{created.index(True)}"

    def test_job_get_unknown_is_none(self, state: State) -> None:
        """An unknown job id reads as None."""
        assert state.job_get("nope") is None

    def test_job_expires_whole(self, state: State) -> None:
        """A job past its ttl is gone, finished or not, and its id may be created again."""
        state.job_create("j", b"p", "w1", LONG, self.TTL)
        state.job_create("done", b"p", "w1", LONG, self.TTL)
        assert state.job_finish("done", "w1", b"r") is True
        self.pass_time(self.PAST_TTL)
        assert state.job_get("j") is None and state.job_get("done") is None
        assert state.job_lease("j", "w1", LONG) is False
        assert state.job_finish("j", "w1", b"r") is False
        assert state.job_create("j", b"again", "w2", LONG, LONG) is True
        assert state.job_get("j").payload == b"again"

    def test_jobs_running_counts_unfinished_live_jobs(self, state: State) -> None:
        """jobs_running counts unfinished jobs, leased or orphaned; not finished or expired ones."""
        assert state.jobs_running() == 0
        state.job_create("leased", b"p", "w1", LONG, LONG)
        state.job_create("orphan", b"p", "w1", self.TTL, LONG)
        state.job_create("done", b"p", "w1", LONG, LONG)
        state.job_create("gone", b"p", "w1", LONG, self.TTL)
        assert state.jobs_running() == 4
        state.job_finish("done", "w1", b"r")
        self.pass_time(self.PAST_TTL)
        assert state.jobs_running() == 2

    def test_job_lease_held_by_other_fails(self, state: State) -> None:
        """Another owner cannot lease a job whose lease is unexpired; the holder renews it."""
        state.job_create("j", b"p", "w1", self.TTL, LONG)
        assert state.job_lease("j", "w2", LONG) is False
        assert state.job_lease("j", "w1", LONG) is True
        self.pass_time(self.PAST_TTL)
        assert state.job_lease("j", "w2", LONG) is False
        assert state.job_get("j").owner == "w1"

    def test_job_lease_taken_over_after_expiry(self, state: State) -> None:
        """When a lease expires any owner may take the job over; the lease then runs lease_s."""
        state.job_create("j", b"p", "w1", self.TTL, LONG)
        self.pass_time(self.PAST_TTL)
        now = state.now()
        assert state.job_lease("j", "w2", 30) is True
        job = state.job_get("j")
        assert job.owner == "w2" and job.lease_until == pytest.approx(now + 30, abs=1)
        assert state.job_lease("j", "w1", 30) is False

    def test_job_lease_refused_on_done_or_unknown(self, state: State) -> None:
        """A finished job or an unknown id cannot be leased, not even by the owner."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        state.job_finish("j", "w1", b"r")
        assert state.job_lease("j", "w1", LONG) is False
        assert state.job_lease("nope", "w1", LONG) is False

    def test_job_finish_by_holder(self, state: State) -> None:
        """The lease holder stores the result; the job is then done and keeps it."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        assert state.job_finish("j", "w1", b"result") is True
        job = state.job_get("j")
        assert job.done and job.result == b"result" and job.payload == b"p"

    def test_job_finish_by_other_while_leased_fails(self, state: State) -> None:
        """Another owner cannot store a result while the lease is held."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        assert state.job_finish("j", "w2", b"r") is False
        assert state.job_get("j").result is None

    def test_job_finish_after_lease_expired(self, state: State) -> None:
        """Once the lease expired and nobody took it, any owner may store the result."""
        state.job_create("j", b"p", "w1", self.TTL, LONG)
        self.pass_time(self.PAST_TTL)
        assert state.job_finish("j", "w2", b"r") is True
        assert state.job_get("j").result == b"r"

    def test_job_finish_twice_keeps_first_result(self, state: State) -> None:
        """A finished job keeps its first result: a second finish returns False."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        state.job_finish("j", "w1", b"first")
        assert state.job_finish("j", "w1", b"second") is False
        assert state.job_get("j").result == b"first"

    def test_job_finish_may_replace_the_payload(self, state: State) -> None:
        """job_finish with a payload stores it instead of the rows (a digest), with the result."""
        state.job_create("j", b"rows", "w1", LONG, LONG)
        assert state.job_finish("j", "w1", b"r", b"sha256:abc") is True
        assert (state.job_get("j").payload, state.job_get("j").result) == (b"sha256:abc", b"r")

    def test_job_lease_zero_gives_it_up(self, state: State) -> None:
        """job_lease with lease_s 0 by the holder lets any worker take the job over at once."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        assert state.job_lease("j", "w1", 0) is True
        assert state.jobs_orphaned() == ["j"] and state.job_lease("j", "w2", LONG) is True

    def test_job_finish_unknown_fails(self, state: State) -> None:
        """Finishing an unknown job returns False and creates nothing."""
        assert state.job_finish("nope", "w1", b"r") is False
        assert state.job_get("nope") is None

    def test_jobs_orphaned_lists_expired_leases_only(self, state: State) -> None:
        """jobs_orphaned lists unfinished, live jobs whose lease expired, up to limit."""
        state.job_create("held", b"p", "w1", LONG, LONG)
        state.job_create("orphan1", b"p", "w1", 0.01, LONG)
        state.job_create("orphan2", b"p", "w1", 0.02, LONG)
        state.job_create("done", b"p", "w1", 0.01, LONG)
        state.job_finish("done", "w1", b"r")
        state.job_create("expired", b"p", "w1", 0.01, self.TTL)
        self.pass_time(self.PAST_TTL)
        assert sorted(state.jobs_orphaned()) == ["orphan1", "orphan2"]
        assert len(state.jobs_orphaned(limit=1)) == 1
        assert state.jobs_orphaned(limit=0) == []
        state.job_lease("orphan1", "w2", LONG)
        assert state.jobs_orphaned() == ["orphan2"]

    def test_job_lease_race_threads(self, state: State) -> None:
        """8 threads taking over the same orphaned jobs: exactly one winner per job."""
        jobs = [f"j{i}" for i in range(20)]
        for job in jobs:
            state.job_create(job, b"p", "dead", 0.01, LONG)
        self.pass_time(0.05)

        def lease_all(i: int) -> list[str]:
            return [j for j in jobs if state.job_lease(j, f"t{i}", LONG)]

        wins = race_threads(THREADS, lease_all)
        assert Counter(j for won in wins for j in won) == Counter(jobs)
        assert state.jobs_orphaned() == []

    def test_job_lease_race_processes(self, state: State) -> None:
        """2 processes taking over the same orphaned jobs: exactly one winner per job."""
        jobs = [f"j{i}" for i in range(30)]
        for job in jobs:
            state.job_create(job, b"p", "dead", 0.01, LONG)
        self.pass_time(0.05)
        state.close()

        def lease_all(i: int) -> list[str]:
            child = self.child_state()
            return [j for j in jobs if child.job_lease(j, f"p{i}", LONG)]

        wins = race_processes(2, lease_all)
        assert Counter(j for won in wins for j in won) == Counter(jobs)
