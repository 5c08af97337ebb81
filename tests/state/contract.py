"""The contract of ``udf_service.state.base.State``, written once, mixed into each backend's tests.

A backend's test class sets ``self.url`` and ``self.prefix`` (an autouse fixture parametrized over
prefixes) and implements ``make_state(prefix=None)``, returning a state on the same storage each
time. Expiry tests use short TTLs and real sleeps; race tests use 8 threads, and 2 forked
processes that each open their own state from ``self.url``.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from udf_service.state import State, state_from_url

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


class StateContract:
    """Every rule of ``State``, against ``self.make_state()``."""

    url: str
    prefix: str

    def make_state(self, prefix: str | None = None) -> State:
        raise NotImplementedError

    def child_state(self) -> State:
        """A state opened from scratch, as a new worker process would open it."""
        return state_from_url(self.url, prefix=self.prefix)

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

    def test_close_then_reopen_keeps_data(self, state: State) -> None:
        """After close() and reopen() the same object works and sees earlier writes."""
        state.cache_set_many({"k": b"v"}, LONG)
        state.close()
        state.reopen()
        assert state.cache_get_many(["k"]) == {"k": b"v"}

    def test_reopen_twice_is_harmless(self, state: State) -> None:
        """reopen() may be called any number of times in one process."""
        state.reopen()
        state.reopen()
        state.ping()

    def test_reopen_in_forked_child(self, state: State) -> None:
        """A forked child that calls reopen() works, and the parent's connections still work."""
        state.flag_set("parent", b"p", LONG)

        def child(_: int) -> bytes | None:
            state.reopen()
            state.flag_set("child", b"c", LONG)
            return state.flag_get("parent")

        assert race_processes(1, child) == [b"p"]
        assert state.flag_get("child") == b"c"
        state.flag_set("parent-after", b"q", LONG)
        assert self.make_state().flag_get("parent-after") == b"q"

    def test_sweep_keeps_fresh_entries(self, state: State) -> None:
        """sweep() returns a count and leaves unexpired entries of every kind alone."""
        state.cache_set_many({"old": b"1"}, TTL)
        state.flag_set("old", b"1", TTL)
        state.cache_set_many({"new": b"2"}, LONG)
        state.claim("c", "me", LONG)
        state.flag_set("new", b"2", LONG)
        state.incr("n", 3, LONG)
        state.job_create("j", b"p", "me", LONG, LONG)
        time.sleep(PAST_TTL)
        assert state.sweep() >= 0
        assert state.cache_get_many(["old", "new"]) == {"new": b"2"}
        assert state.flag_get("old") is None
        assert (state.claim_holder("c"), state.flag_get("new"), state.get_int("n")) == (
            "me",
            b"2",
            3,
        )
        assert state.job_get("j") is not None

    def test_prefixes_do_not_share_keys(self, state: State) -> None:
        """A state with another prefix on the same storage sees none of this one's entries."""
        other = self.make_state(prefix=self.prefix + "-other")
        state.cache_set_many({"k": b"v"}, LONG)
        state.claim("c", "me", LONG)
        state.reserve_slot("l", LONG, LONG)
        state.incr("n", 5)
        state.flag_set("f", b"1", LONG)
        state.job_create("j", b"p", "me", 0.01, LONG)
        state.queue_push({"q": b"1"})
        time.sleep(0.05)
        assert other.cache_get_many(["k"]) == {} and other.cache_count() == 0
        assert other.claim_holder("c") is None and other.slot_backlog("l") == 0.0
        assert other.get_int("n") == 0 and other.flag_get("f") is None
        assert other.job_get("j") is None and other.jobs_orphaned() == []
        assert other.queue_depth() == 0 and other.queue_take("w", 10, LONG) == []
        assert state.jobs_orphaned() == ["j"] and state.queue_depth() == 1

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
        state.cache_set_many({"a": b"1", "b": b"1"}, TTL)
        state.cache_set_many({"b": b"2"}, LONG)
        time.sleep(PAST_TTL)
        assert state.cache_get_many(["a", "b"]) == {"b": b"2"}

    def test_cache_count_counts_fresh_entries(self, state: State) -> None:
        """cache_count counts unexpired entries only."""
        assert state.cache_count() == 0
        state.cache_set_many({"a": b"1", "b": b"1"}, TTL)
        state.cache_set_many({"c": b"1", "a": b"2"}, LONG)
        assert state.cache_count() == 3
        time.sleep(PAST_TTL)
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

    # ------------------------------------------------------------------ claims
    def test_claim_free_key(self, state: State) -> None:
        """A free key is claimed, and claim_holder names the owner."""
        assert state.claim_holder("k") is None
        assert state.claim("k", "a", LONG) is True
        assert state.claim_holder("k") == "a"

    def test_claim_held_by_other_fails(self, state: State) -> None:
        """Another owner cannot take an unexpired claim."""
        state.claim("k", "a", LONG)
        assert state.claim("k", "b", LONG) is False
        assert state.claim_holder("k") == "a"

    def test_claim_by_same_owner_renews(self, state: State) -> None:
        """The holder claiming again succeeds and pushes the expiry out."""
        state.claim("k", "a", 0.3)
        time.sleep(0.2)
        assert state.claim("k", "a", 0.3) is True
        time.sleep(0.2)  # past the first expiry, before the renewed one
        assert state.claim_holder("k") == "a"

    def test_expired_claim_is_free(self, state: State) -> None:
        """Once its ttl passes a claim has no holder and any owner may take it."""
        state.claim("k", "a", TTL)
        time.sleep(PAST_TTL)
        assert state.claim_holder("k") is None
        assert state.claim("k", "b", LONG) is True
        assert state.claim_holder("k") == "b"

    def test_release_only_by_holder(self, state: State) -> None:
        """release() by another owner does nothing; by the holder it frees the key."""
        state.claim("k", "a", LONG)
        state.release("k", "b")
        assert state.claim_holder("k") == "a"
        state.release("k", "a")
        assert state.claim_holder("k") is None
        state.release("never-claimed", "a")
        assert state.claim("k", "b", LONG) is True

    def test_claim_race_threads(self, state: State) -> None:
        """8 threads claiming the same keys: exactly one winner per key."""
        keys = [f"k{i}" for i in range(30)]
        wins = race_threads(THREADS, lambda i: [k for k in keys if state.claim(k, f"t{i}", LONG)])
        assert Counter(k for won in wins for k in won) == Counter(keys)
        assert all(state.claim_holder(k) == f"t{i}" for i, won in enumerate(wins) for k in won)

    def test_claim_race_processes(self) -> None:
        """2 processes claiming the same keys: exactly one winner per key."""
        keys = [f"k{i}" for i in range(40)]

        def claim_all(i: int) -> list[str]:
            state = self.child_state()
            return [k for k in keys if state.claim(k, f"p{i}", LONG)]

        wins = race_processes(2, claim_all)
        assert Counter(k for won in wins for k in won) == Counter(keys)

    # ------------------------------------------------------------------ rate limiter
    def test_first_slot_is_immediate(self, state: State) -> None:
        """An unknown limiter has a free slot now: the wait is 0.0."""
        assert state.slot_backlog("l") == 0.0
        assert state.reserve_slot("l", 10, 0) == 0.0

    def test_slots_are_spaced_by_interval(self, state: State) -> None:
        """Successive reservations wait 0, interval, 2 * interval, ..."""
        waits = [state.reserve_slot("l", 10, 100) for _ in range(3)]
        assert waits[0] == 0.0
        assert waits[1] == pytest.approx(10, abs=0.5) and waits[2] == pytest.approx(20, abs=0.5)
        assert state.slot_backlog("l") == pytest.approx(30, abs=0.5)

    def test_reserve_beyond_max_wait_changes_nothing(self, state: State) -> None:
        """A slot further away than max_wait_s is refused (None) and not reserved."""
        state.reserve_slot("l", 10, 100)
        assert state.reserve_slot("l", 10, 5) is None
        assert state.slot_backlog("l") == pytest.approx(10, abs=0.5)
        assert state.reserve_slot("l", 10, 100) == pytest.approx(10, abs=0.5)

    def test_idle_limiter_starts_at_now(self, state: State) -> None:
        """A limiter whose last slot has passed gives a free slot at once, not a burst."""
        state.reserve_slot("l", TTL, 10)
        time.sleep(PAST_TTL)
        assert state.reserve_slot("l", TTL, 10) == 0.0
        assert state.reserve_slot("l", TTL, 10) == pytest.approx(TTL, abs=0.1)

    def test_hold_off_pushes_next_slot(self, state: State) -> None:
        """hold_off(until) makes the next slot start no earlier than until."""
        state.hold_off("l", state.now() + 5)
        assert state.slot_backlog("l") == pytest.approx(5, abs=0.5)
        assert state.reserve_slot("l", 1, 100) == pytest.approx(5, abs=0.5)
        assert state.reserve_slot("l", 1, 100) == pytest.approx(6, abs=0.5)

    def test_hold_off_never_pulls_back(self, state: State) -> None:
        """hold_off with an earlier time than the next slot leaves the limiter as it was."""
        state.reserve_slot("l", 10, 100)
        state.hold_off("l", state.now() + 2)
        state.hold_off("l", state.now() - 100)
        assert state.slot_backlog("l") == pytest.approx(10, abs=0.5)
        state.hold_off("fresh", state.now() - 100)
        assert state.slot_backlog("fresh") == 0.0

    def test_limiters_are_independent(self, state: State) -> None:
        """Each limiter name keeps its own schedule."""
        state.reserve_slot("a", 10, 100)
        assert state.reserve_slot("b", 10, 100) == 0.0

    def test_reserve_race_threads(self, state: State) -> None:
        """8 threads reserving at once get distinct slots spaced one interval apart."""

        def reserve(_: int) -> list[float | None]:
            return [state.reserve_slot("l", 10, 1e6) for _ in range(5)]

        waits = race_threads(THREADS, reserve)
        flat = sorted(w for ws in waits for w in ws)
        assert flat == pytest.approx([10.0 * k for k in range(len(flat))], abs=2)

    def test_reserve_race_processes(self) -> None:
        """2 processes reserving at once get distinct slots spaced one interval apart."""

        def reserve(_: int) -> list[float | None]:
            child = self.child_state()
            return [child.reserve_slot("l", 10, 1e6) for _ in range(10)]

        waits = race_processes(2, reserve)
        flat = sorted(w for ws in waits for w in ws)
        assert flat == pytest.approx([10.0 * k for k in range(20)], abs=2)

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
        state.incr("n", 1, TTL)
        time.sleep(TTL / 2)
        assert state.incr("n", 1, LONG) == 2
        time.sleep(PAST_TTL - TTL / 2)
        assert state.get_int("n") == 0
        assert state.incr("n", 1, LONG) == 1

    def test_incr_without_ttl_keeps(self, state: State) -> None:
        """A counter created without a ttl does not expire, even if later calls pass one."""
        state.incr("n")
        state.incr("n", 1, 0.05)
        time.sleep(0.15)
        assert state.get_int("n") == 2

    def test_incr_race_threads(self, state: State) -> None:
        """8 threads incrementing at once lose no increment."""
        race_threads(THREADS, lambda _: [state.incr("n", 1, LONG) for _ in range(50)])
        assert state.get_int("n") == THREADS * 50

    def test_flag_roundtrip_and_replace(self, state: State) -> None:
        """flag_set stores a value that flag_get returns; a second set replaces value and ttl."""
        assert state.flag_get("f") is None
        state.flag_set("f", b"open", TTL)
        assert state.flag_get("f") == b"open"
        state.flag_set("f", b"closed", LONG)
        time.sleep(PAST_TTL)
        assert state.flag_get("f") == b"closed"

    def test_flag_expires(self, state: State) -> None:
        """A flag past its ttl is absent: flag_get and flag_ttl return None."""
        state.flag_set("f", b"1", TTL)
        time.sleep(PAST_TTL)
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
        time.sleep(0.2)
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
        state.job_create("j", b"p", "w1", LONG, TTL)
        state.job_create("done", b"p", "w1", LONG, TTL)
        assert state.job_finish("done", "w1", b"r") is True
        time.sleep(PAST_TTL)
        assert state.job_get("j") is None and state.job_get("done") is None
        assert state.job_lease("j", "w1", LONG) is False
        assert state.job_finish("j", "w1", b"r") is False
        assert state.job_create("j", b"again", "w2", LONG, LONG) is True
        assert state.job_get("j").payload == b"again"

    def test_job_lease_held_by_other_fails(self, state: State) -> None:
        """Another owner cannot lease a job whose lease is unexpired; the holder renews it."""
        state.job_create("j", b"p", "w1", TTL, LONG)
        assert state.job_lease("j", "w2", LONG) is False
        assert state.job_lease("j", "w1", LONG) is True
        time.sleep(PAST_TTL)
        assert state.job_lease("j", "w2", LONG) is False
        assert state.job_get("j").owner == "w1"

    def test_job_lease_taken_over_after_expiry(self, state: State) -> None:
        """When a lease expires any owner may take the job over; the lease then runs lease_s."""
        state.job_create("j", b"p", "w1", TTL, LONG)
        time.sleep(PAST_TTL)
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
        state.job_create("j", b"p", "w1", TTL, LONG)
        time.sleep(PAST_TTL)
        assert state.job_finish("j", "w2", b"r") is True
        assert state.job_get("j").result == b"r"

    def test_job_finish_twice_keeps_first_result(self, state: State) -> None:
        """A finished job keeps its first result: a second finish returns False."""
        state.job_create("j", b"p", "w1", LONG, LONG)
        state.job_finish("j", "w1", b"first")
        assert state.job_finish("j", "w1", b"second") is False
        assert state.job_get("j").result == b"first"

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
        state.job_create("expired", b"p", "w1", 0.01, TTL)
        time.sleep(PAST_TTL)
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
        time.sleep(0.05)

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
        time.sleep(0.05)
        state.close()

        def lease_all(i: int) -> list[str]:
            child = self.child_state()
            return [j for j in jobs if child.job_lease(j, f"p{i}", LONG)]

        wins = race_processes(2, lease_all)
        assert Counter(j for won in wins for j in won) == Counter(jobs)

    # ------------------------------------------------------------------ refill queue
    def test_queue_push_skips_queued_keys(self, state: State) -> None:
        """queue_push adds keys not yet queued and returns how many it added."""
        assert state.queue_push({"a": b"1", "b": b"2"}) == 2
        assert state.queue_push({"b": b"other", "c": b"3"}) == 1
        assert state.queue_push({}) == 0
        assert state.queue_depth() == 3
        assert dict(state.queue_take("w", 10, LONG))["b"] == b"2"

    def test_queue_take_oldest_first(self, state: State) -> None:
        """queue_take leases at most limit items, in the order they were pushed."""
        state.queue_push({"c": b"3", "a": b"1"})
        state.queue_push({"b": b"2"})
        assert state.queue_take("w", 2, LONG) == [("c", b"3"), ("a", b"1")]
        assert state.queue_take("w", 2, LONG) == [("b", b"2")]
        assert state.queue_take("w", 2, LONG) == []
        assert state.queue_take("w", 0, LONG) == []

    def test_queue_lease_expiry_redelivers(self, state: State) -> None:
        """An item whose lease expired is taken again, ahead of younger items."""
        state.queue_push({"a": b"1", "b": b"2", "c": b"3"})
        assert state.queue_take("w1", 1, TTL) == [("a", b"1")]
        assert state.queue_take("w1", 1, LONG) == [("b", b"2")]
        time.sleep(PAST_TTL)
        assert state.queue_take("w2", 5, LONG) == [("a", b"1"), ("c", b"3")]

    def test_queue_done_removes_whoever_holds(self, state: State) -> None:
        """queue_done removes leased and unleased keys; unknown keys are ignored."""
        state.queue_push({"a": b"1", "b": b"2", "c": b"3"})
        state.queue_take("w1", 1, LONG)
        state.queue_done(["a", "b", "unknown"])
        state.queue_done([])
        assert state.queue_depth() == 1
        assert state.queue_take("w2", 5, LONG) == [("c", b"3")]

    def test_queue_key_may_return_after_done(self, state: State) -> None:
        """A key removed by queue_done can be pushed again, with its new payload."""
        state.queue_push({"a": b"1"})
        state.queue_done(["a"])
        assert state.queue_push({"a": b"2"}) == 1
        assert state.queue_take("w", 5, LONG) == [("a", b"2")]

    def test_queue_depth_counts_leased_and_free(self, state: State) -> None:
        """queue_depth counts every queued item, leased or not."""
        assert state.queue_depth() == 0
        state.queue_push({f"k{i}": b"x" for i in range(1200)})
        state.queue_take("w", 7, LONG)
        assert state.queue_depth() == 1200

    def test_queue_take_race_threads(self, state: State) -> None:
        """8 threads draining the queue at once: every item is delivered exactly once."""
        keys = [f"k{i}" for i in range(300)]
        state.queue_push({k: k.encode() for k in keys})

        def drain(i: int) -> list[str]:
            got, deadline = [], time.monotonic() + 20
            while time.monotonic() < deadline and (batch := state.queue_take(f"t{i}", 7, LONG)):
                assert all(payload == key.encode() for key, payload in batch)
                got += [key for key, _ in batch]
            return got

        taken = race_threads(THREADS, drain)
        assert Counter(k for got in taken for k in got) == Counter(keys)

    def test_queue_take_race_processes(self, state: State) -> None:
        """2 processes draining the queue at once: every item is delivered exactly once."""
        keys = [f"k{i}" for i in range(200)]
        state.queue_push({k: b"x" for k in keys})
        state.close()

        def drain(i: int) -> list[str]:
            child, got, deadline = self.child_state(), [], time.monotonic() + 20
            while time.monotonic() < deadline and (batch := child.queue_take(f"p{i}", 5, LONG)):
                got += [key for key, _ in batch]
            return got

        taken = race_processes(2, drain)
        assert Counter(k for got in taken for k in got) == Counter(keys)
