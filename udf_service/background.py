"""The per-worker background thread: leases, heartbeats, orphaned jobs, expired state.

Every tick it keeps this worker's leases alive (jobs it waits for, fetch items in flight and
answers not yet written), tells the state this worker is alive (so `Concurrency` knows how many
workers share the quota), resumes jobs whose worker died, and now and then sweeps expired rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .clock import SYSTEM, Clock
from .errors import StateError
from .fetching import Concurrency, Dispatcher
from .snowflake_jobs import SnowflakeJobs
from .state import State

log = logging.getLogger("udf_service.background")

TICK_S = 0.25
HEARTBEAT_EVERY_S = 5.0
SWEEP_EVERY_S = 600.0  # expired cache entries, outcomes and jobs (kept UDF_JOB_TTL_S, 12 h) go


class Background:
    """One daemon thread per worker; `stop()` ends it."""

    def __init__(
        self,
        state: State,
        jobs: SnowflakeJobs,
        dispatcher: Dispatcher,
        concurrency: Concurrency,
        owner: str,
        job_lease_s: float,
        fetch_lease_s: float,
        clock: Clock = SYSTEM,
    ) -> None:
        self.state = state
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.concurrency = concurrency
        self.owner = owner
        self.clock = clock
        self.stop_event = threading.Event()
        self.every: list[tuple[float, Callable[[], object]]] = [
            (job_lease_s / 3, jobs.renew),
            (fetch_lease_s / 3, dispatcher.renew),
            (HEARTBEAT_EVERY_S, self._heartbeat),
            (TICK_S, jobs.resume_orphans),
            (SWEEP_EVERY_S, state.sweep),
        ]
        self.last_run = [-float("inf")] * len(self.every)
        self.thread = threading.Thread(target=self._loop, name="udf-background", daemon=True)

    def add(self, every_s: float, action: Callable[[], object]) -> None:
        """Also run `action` every `every_s` seconds (before `start()`)."""
        self.every.append((every_s, action))
        self.last_run.append(-float("inf"))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def tick(self) -> None:
        """Run whatever is due (tests call this directly)."""
        for index, (every, action) in enumerate(self.every):
            if self.clock.monotonic() - self.last_run[index] >= every:
                self.last_run[index] = self.clock.monotonic()
                try:
                    action()
                except StateError:
                    log.warning("background_state_unavailable", extra={"task": action.__name__})
                except Exception:
                    log.exception("background_failed", extra={"task": action.__name__})

    def _heartbeat(self) -> None:
        self.concurrency.workers = self.state.heartbeat(self.owner, 3 * HEARTBEAT_EVERY_S)

    def _loop(self) -> None:
        while not self.clock.wait(self.stop_event, TICK_S):
            self.tick()
