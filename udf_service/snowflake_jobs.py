"""Snowflake's asynchronous protocol: a batch that cannot be answered in time becomes a job.

    POST (batch id) -> job stored, misses queued -> 200 if done within UDF_SYNC_BUDGET_S, else 202
    GET  (same id)  -> 202 while it runs, then 200 with the data (or the batch's error status)

A job waits; it never fetches (the fetch queue does, in every worker), so running a job twice
costs nothing and a job is cheap to resume: its rows are stored with it, leased to the worker
that waits for it; the background thread renews the lease and resumes jobs whose worker died.
A repeated POST (Snowflake's retry) joins the job.

Snowflake ends a query on any poll status but 200 and 202 (protocols.md 1.10), so a poll answers
202 whenever the job may still finish: while the state backend cannot be read, and for a short
grace while a job the backend lost is put back by the worker that holds it in memory. Finished
results are kept in this worker's memory until Snowflake has read them. A job whose lease cannot
be renewed for a whole lease period (the backend refuses writes: a full disk, Redis at
maxmemory) ends with a 503 at once instead of running out Snowflake's 600 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import metrics
from .clock import SYSTEM, Clock
from .config import Settings
from .engine import NOT_IN_TIME, Engine, Lookup, Row
from .errors import Overloaded, ProtocolError, StateError, UdfError
from .failures import STATE_UNAVAILABLE, describe
from .leads import InvalidLead, Lead
from .protocols import snowflake
from .state import State
from .values import Value
from .waiting import Waiter

log = logging.getLogger("udf_service.snowflake_jobs")

SNOWFLAKE_ASYNC_LIMIT_S = 600.0  # Snowflake stops polling an async batch after 10 minutes
KEEP_FINISHED_S = 900.0  # results stay in memory a while past Snowflake's window
KEEP_FINISHED_MAX = 256
# ... and within this many bytes per worker: a 500-row result is ~650 KB, so a count alone let a
# soak's workers grow by 150 MB each. The state holds every result; memory is for outages.
KEEP_FINISHED_BYTES = 8 * 1024 * 1024

Encoder = Callable[[Sequence[int], Sequence[Any]], bytes]


@dataclass(frozen=True)
class Outcome:
    """An HTTP answer for the warehouse: status and body (None for a bare 202)."""

    status: int
    body: bytes | None = None

    def stored(self) -> bytes:
        return b"%d\n" % self.status + (self.body or b"")

    @classmethod
    def from_stored(cls, result: bytes) -> Outcome:
        status, _, body = result.partition(b"\n")
        return cls(int(status), body or None)


ACCEPTED = Outcome(202)


def failure(exc: BaseException) -> Outcome:
    """The batch's answer when it fails as a whole (the one table in `failures`)."""
    described = describe(exc)
    return Outcome(described.status, snowflake.error(described.message))


@dataclass(frozen=True)
class Kept:
    """A finished result this worker holds until Snowflake has read it (or it ages out)."""

    outcome: Outcome
    at: float  # monotonic time it finished
    digest: bytes  # what the stored job keeps instead of the rows (to store it again if lost)


@dataclass(eq=False)
class Running:
    """A job this worker waits for."""

    job_id: str
    payload: bytes
    row_numbers: list[int]
    lookup: Lookup
    created_at: float
    waiter: Waiter | None = None
    renewed_at: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class SnowflakeJobs:
    """Creates, waits for, resumes and answers for asynchronous batch jobs, in one worker."""

    def __init__(
        self,
        engine: Engine,
        state: State,
        settings: Settings,
        owner: str,
        encode: Encoder,
        count_rows: Callable[[Sequence[Value]], None],
        clock: Clock = SYSTEM,
    ) -> None:
        self.engine = engine
        self.state = state
        self.settings = settings
        self.owner = owner
        self.encode = encode
        self.count_rows = count_rows
        self.clock = clock
        self.lock = threading.Lock()
        self.running: dict[str, Running] = {}
        self.finished: OrderedDict[str, Kept] = OrderedDict()
        self.finished_bytes = 0  # of the bodies in `finished`
        self.checked_kept_at = -float("inf")
        self.unstored: dict[str, Running] = {}
        self.unknown_since: dict[str, float] = {}
        self.waiting_seats = max(settings.threads - 1, 1)

    # ------------------------------------------------------------------ POST
    def submit(
        self, job_id: str, row_numbers: list[int], rows: Sequence[Row], lookup: Lookup, wait_s: float
    ) -> Outcome:
        """Start (or join) the job; wait for it up to `wait_s` when it should fit in that time."""
        encoded = [_encode_row(row) for row in rows]
        existing = self.state.job_get(job_id)
        if existing is not None:
            _require_same_rows(job_id, existing.payload, row_numbers, encoded)
            metrics.JOBS.labels("joined").inc()
            return Outcome.from_stored(existing.result) if existing.done else ACCEPTED
        with self.lock:
            busy = len(self.running)
        if busy >= self.settings.max_async_batches:
            raise Overloaded(
                f"overloaded: {busy} asynchronous batches are already running in this worker; retry later"
            )
        created_at = self.clock.time()
        payload = orjson.dumps({"created_at": created_at, "row_numbers": row_numbers, "rows": encoded})
        if not self.state.job_create(
            job_id, payload, self.owner, self.settings.job_lease_s, self.settings.job_ttl_s
        ):
            return ACCEPTED  # another request created it a moment ago: poll it
        metrics.JOBS.labels("created").inc()
        job = Running(job_id, payload, row_numbers, lookup, created_at, renewed_at=self.clock.monotonic())
        self._start(job)
        misses = len(lookup.misses)
        if self.engine.seconds_needed(misses) <= wait_s and self._take_seat():
            try:
                if job.finished.wait(wait_s) and job.outcome is not None:
                    return job.outcome
            finally:
                with self.lock:
                    self.waiting_seats += 1
        metrics.JOBS.labels("went_async").inc()
        return ACCEPTED

    def _take_seat(self) -> bool:
        """Only so many request threads may wait on jobs: the others must stay free to answer."""
        with self.lock:
            if self.waiting_seats <= 0:
                return False
            self.waiting_seats -= 1
            return True

    def _start(self, job: Running) -> None:
        with self.lock:
            self.running[job.job_id] = job
        deadline = job.created_at + SNOWFLAKE_ASYNC_LIMIT_S
        try:
            # on_done gets the waiter itself: it may fire before `wait` returns (a fast answer).
            job.waiter = self.engine.wait(job.lookup, deadline, on_done=lambda w, j=job: self._done(j, w))
        except UdfError as exc:
            self._finish(job, failure(exc))
            return
        if job.waiter is None:  # nothing to fetch (circuit, budget): answered now
            self._done(job, None)

    # ------------------------------------------------------------------ finishing
    def _done(self, job: Running, waiter: Waiter | None) -> None:
        """`waiter` finished (all answered, or the deadline): encode, keep, store."""
        if waiter is not None and waiter.fatal is not None:
            outcome = failure(waiter.fatal)
        else:
            answers = dict(waiter.answers) if waiter is not None else {}
            values = job.lookup.fill(answers, NOT_IN_TIME)
            try:
                outcome = Outcome(200, self.encode(job.row_numbers, values))
            except ProtocolError as exc:  # e.g. an answer past the warehouse's size limit
                outcome = failure(exc)
            else:
                self.count_rows(values)
        self._finish(job, outcome)

    def _finish(self, job: Running, outcome: Outcome) -> None:
        job.outcome = outcome
        with self.lock:
            self.running.pop(job.job_id, None)
            self._keep(job.job_id, outcome, _digest(job.payload))
        job.finished.set()
        metrics.JOBS.labels("finished").inc()
        seconds = round(self.clock.time() - job.created_at, 3)
        log.info(
            "job_finished",
            extra={"batch_id": job.job_id[:200], "rows": len(job.row_numbers), "seconds": seconds,
                   "http_status": outcome.status},
        )  # fmt: skip
        if not self._store(job):
            with self.lock:
                self.unstored[job.job_id] = job

    def _store(self, job: Running) -> bool:
        """Write the result (and a digest instead of the rows, which are no longer needed)."""
        assert job.outcome is not None
        digest = _digest(job.payload)
        try:
            if self.state.job_finish(job.job_id, self.owner, job.outcome.stored(), digest):
                return True
            if self.state.job_get(job.job_id) is None:  # the backend lost it (Redis restarted empty)
                self.state.job_create(
                    job.job_id, digest, self.owner, self.settings.job_lease_s, self.settings.job_ttl_s
                )
                self.state.job_finish(job.job_id, self.owner, job.outcome.stored(), digest)
            return True
        except StateError:
            return False

    def _keep(self, job_id: str, outcome: Outcome, digest: bytes) -> None:
        """Keep a finished result in memory (lock held), bounded in count, bytes and time."""
        self._forget(job_id)
        self.finished[job_id] = Kept(outcome, self.clock.monotonic(), digest)
        self.finished_bytes += len(outcome.body or b"")
        while len(self.finished) > KEEP_FINISHED_MAX or (
            self.finished_bytes > KEEP_FINISHED_BYTES and len(self.finished) > 1
        ):
            self._forget(next(iter(self.finished)))

    def _forget(self, job_id: str) -> None:
        """Drop a kept result (lock held)."""
        kept = self.finished.pop(job_id, None)
        if kept is not None:
            self.finished_bytes -= len(kept.outcome.body or b"")

    # ------------------------------------------------------------------ GET
    def poll(self, job_id: str) -> Outcome:
        """The result (200, or the batch's error), or 202 while the job may still finish."""
        with self.lock:
            kept = self.finished.get(job_id)
            if kept is not None:
                return kept.outcome
            if job_id in self.running:
                return ACCEPTED
        try:
            job = self.state.job_get(job_id)
        except StateError:
            return ACCEPTED  # cannot tell now; the worker running it keeps going
        if job is None:
            return self._unknown(job_id)
        if job.done:
            return Outcome.from_stored(job.result or b"500\n")
        stalled_for = self.state.now() - job.lease_until
        if stalled_for > self.settings.job_lease_s:  # nobody resumed it: can anyone write?
            try:
                self.state.ping(write=True)
            except StateError:
                return failure(StateError("the state backend refuses writes"))
        return ACCEPTED

    def _unknown(self, job_id: str) -> Outcome:
        """202 for a grace (its worker may re-register it), then a clear error."""
        now = self.clock.monotonic()
        with self.lock:
            first = self.unknown_since.setdefault(job_id, now)
            if len(self.unknown_since) > 10_000:
                self.unknown_since = {k: v for k, v in self.unknown_since.items() if now - v < 3600}
        if now - first < 2 * self.settings.job_lease_s:
            return ACCEPTED
        message = (
            f"unknown batch id {job_id[:80]!r}: no such job (results expire after UDF_JOB_TTL_S; a job "
            "lost with the state backend and its worker is gone): run the query again"
        )
        return Outcome(503, snowflake.error(message))

    # ------------------------------------------------------------------ background
    def renew(self) -> None:
        """Keep this worker's jobs leased; put back jobs the backend lost; fail stalled ones."""
        with self.lock:
            running = list(self.running.values())
            unstored = list(self.unstored.values())
        for job in running:
            try:
                self._renew_one(job)
            except StateError:
                if self.clock.monotonic() - job.renewed_at > self.settings.job_lease_s:
                    log.warning("job_failed_state_unavailable", extra={"batch_id": job.job_id[:200]})
                    if job.waiter is not None:
                        self.engine.waiters.abandon(job.waiter)
                    self._finish(job, Outcome(503, snowflake.error(STATE_UNAVAILABLE)))
        for job in unstored:
            if self._store(job):
                with self.lock:
                    self.unstored.pop(job.job_id, None)
        now = self.clock.monotonic()
        with self.lock:
            while self.finished and now - next(iter(self.finished.values())).at > KEEP_FINISHED_S:
                self._forget(next(iter(self.finished)))
        if now - self.checked_kept_at >= self.settings.job_lease_s:
            self.checked_kept_at = now
            self._store_lost_results(now)

    def _store_lost_results(self, now: float) -> None:
        """Store again the results this worker holds that the backend lost (Redis restarted
        empty): Snowflake's next poll may reach another worker, which only has the state, and
        would answer it 503 after the unknown-id grace; that ends the query."""
        with self.lock:
            young = [(job_id, kept) for job_id, kept in self.finished.items()
                     if now - kept.at < SNOWFLAKE_ASYNC_LIMIT_S]  # fmt: skip
        lease, ttl = self.settings.job_lease_s, self.settings.job_ttl_s
        for job_id, kept in young:
            if self.state.job_get(job_id) is None:
                self.state.job_create(job_id, kept.digest, self.owner, lease, ttl)
                self.state.job_finish(job_id, self.owner, kept.outcome.stored(), kept.digest)
                log.warning("job_result_stored_again", extra={"batch_id": job_id[:200]})

    def _renew_one(self, job: Running) -> None:
        lease, ttl = self.settings.job_lease_s, self.settings.job_ttl_s
        if not self.state.job_lease(job.job_id, self.owner, lease) and self.state.job_get(job.job_id) is None:
            self.state.job_create(job.job_id, job.payload, self.owner, lease, ttl)  # the backend lost it
            log.warning("job_recreated", extra={"batch_id": job.job_id[:200]})
        job.renewed_at = self.clock.monotonic()

    def resume_orphans(self) -> int:
        """Take over jobs whose worker died (lease expired); return how many were resumed."""
        resumed = 0
        for job_id in self.state.jobs_orphaned():
            with self.lock:
                if job_id in self.running or len(self.running) >= self.settings.max_async_batches:
                    continue
            if not self.state.job_lease(job_id, self.owner, self.settings.job_lease_s):
                continue
            stored = self.state.job_get(job_id)
            if stored is None or stored.done:
                continue
            document = orjson.loads(stored.payload)
            rows = [_decode_row(row) for row in document["rows"]]
            log.info("job_resumed", extra={"batch_id": job_id[:200], "rows": len(rows)})
            metrics.JOBS.labels("resumed").inc()
            job = Running(
                job_id, stored.payload, document["row_numbers"], self.engine.lookup(rows),
                document["created_at"], renewed_at=self.clock.monotonic(),
            )  # fmt: skip
            self._start(job)
            resumed += 1
        return resumed

    def hand_off(self) -> int:
        """Shutting down: give every running job's lease up, so another worker resumes it at once."""
        with self.lock:
            running = list(self.running.values())
        for job in running:
            with contextlib.suppress(StateError):  # else it lapses by itself
                self.state.job_lease(job.job_id, self.owner, 0.0)
            if job.waiter is not None:
                self.engine.waiters.abandon(job.waiter)
        return len(running)

    def busy(self) -> int:
        with self.lock:
            return len(self.running)


def _require_same_rows(job_id: str, payload: bytes, row_numbers: list[int], rows: list[Any]) -> None:
    """A batch id names one batch: reusing it for other rows is a caller error, not a retry."""
    document = {"row_numbers": row_numbers, "rows": rows}
    if payload.startswith(b"sha256:"):
        same = payload == _digest(orjson.dumps(document))
    else:
        stored = orjson.loads(payload)
        same = stored["row_numbers"] == row_numbers and stored["rows"] == rows
    if not same:
        raise ProtocolError(
            f"batch id {job_id[:80]!r} was already used for different rows; batch ids must be unique", 409
        )


def _digest(payload: bytes) -> bytes:
    """What a finished job keeps instead of its rows: enough to tell a retry from another batch."""
    if payload.startswith(b"sha256:"):
        return payload
    document = orjson.loads(payload)
    canonical = orjson.dumps({"row_numbers": document["row_numbers"], "rows": document["rows"]})
    return b"sha256:" + hashlib.sha256(canonical).hexdigest().encode()


def _encode_row(row: Row) -> dict[str, Any]:
    return {"invalid": row.reason} if isinstance(row, InvalidLead) else row.form()


def _decode_row(row: dict[str, Any]) -> Row:
    return InvalidLead(row["invalid"]) if "invalid" in row else Lead.from_form(row)
