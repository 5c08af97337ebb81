"""A waiting requester re-queues its pending keys every REQUEUE_EVERY_S, and not more often.

Not sooner after a loss either: a requeue while calls sent under the lost state are still in
flight makes another worker pay for those leads again (seen in 2 of 3 runs of an early-requeue
variant of the deleted-SQLite test), so the interval is the grace for them to finish.

The collector runs here by hand (`collect_once`) on a stepped clock, so the test reads which
state calls each tick makes; the thread that runs it in the service is not started.
"""

from __future__ import annotations

from pathlib import Path

from udf_service.leads import Lead
from udf_service.state import INTERACTIVE
from udf_service.state.counting import CountingState
from udf_service.state.sqlite import SQLiteState
from udf_service.testing.clock import ManualClock
from udf_service.waiting import REQUEUE_EVERY_S, Waiters


def _waiters(path: Path) -> tuple[Waiters, CountingState, ManualClock]:
    clock = ManualClock()
    state = CountingState(SQLiteState(str(path), clock=clock))
    waiters = Waiters(state, clock)
    waiters._ensure_thread = lambda: None  # type: ignore[method-assign]  # ticks run by the test
    return waiters, state, clock


def test_pending_keys_are_requeued_every_interval_and_not_between(tmp_path: Path) -> None:
    waiters, state, clock = _waiters(tmp_path / "s.db")
    lead = Lead(email="bob@acme.com", country="US")
    waiters.wait_for({lead.key: lead}, INTERACTIVE, deadline=clock.time() + 600)
    waiters.collect_once()  # the first tick requeues (a no-op: the keys are queued)
    pushes = state.tally.snapshot()["fetch_push"]
    for _ in range(3):
        clock.advance(REQUEUE_EVERY_S / 4)
        assert waiters.collect_once()
    assert state.tally.snapshot()["fetch_push"] == pushes, "no requeue within the interval"
    clock.advance(REQUEUE_EVERY_S / 4)
    waiters.collect_once()
    assert state.tally.snapshot()["fetch_push"] == pushes + 1


def test_the_interval_is_a_setting(tmp_path: Path) -> None:
    """UDF_REQUEUE_EVERY_S sets it (10 s by default); the runtime hands it to its waiters."""
    from udf_service.config import Settings
    from udf_service.runtime import build

    assert Settings().requeue_every_s == REQUEUE_EVERY_S == 10.0
    settings = Settings.from_env({"SIXSENSE_SIMULATE": "1", "UDF_REQUEUE_EVERY_S": "2.5",
                                  "UDF_STATE_URL": f"sqlite:///{tmp_path}/s.db"})  # fmt: skip
    runtime = build(settings, background=False)
    try:
        assert runtime.waiters.requeue_every_s == 2.5
    finally:
        runtime.shutdown(grace_s=0)
