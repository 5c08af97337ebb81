"""Snowflake's asynchronous protocol and the background refill, on top of the engine.

- A batch with a batch id whose misses cannot be fetched within UDF_SYNC_BUDGET_S is a *job*: the
  POST answers 202 at once, the work goes on in this worker, and `GET` with the same batch id
  answers 202 until the stored result is there (then 200). A repeated POST (Snowflake's retry)
  joins the job. Jobs live in the state backend, leased to one worker; the `Background` thread of
  every worker renews its own leases and claims, and resumes jobs whose lease expired (their worker
  died). Leads already fetched come from the cache, so a resumed job pays nothing twice.
- The cached route queues misses; every worker's `Background` thread drains that queue under the
  shared limiter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import orjson

from . import metrics
from .engine import Engine, Row
from .errors import Overloaded, ProtocolError, StateError, UpstreamAuthError
from .leads import InvalidLead, Lead

log = logging.getLogger("udf_service.jobs")

LEASE_S = 15.0
SNOWFLAKE_ASYNC_LIMIT_S = 600.0  # Snowflake stops polling an async batch after 10 minutes
REFILL_LEASE_S = 120.0
SWEEP_EVERY_S = 600.0  # expired cache entries, claims and jobs (kept UDF_JOB_TTL_S, 12 h) go

Encoder = Callable[[Sequence[int], Sequence[Any]], bytes]


@dataclass(frozen=True)
class Outcome:
    """An HTTP answer for the warehouse: status and body (None for a bare 202)."""

    status: int
    body: bytes | None = None


def auth_failure(exc: UpstreamAuthError) -> Outcome:
    """401/403 from 6sense fail the batch with a status Snowflake does not retry (424)."""
    message = (
        f"6sense rejected the API token (HTTP {exc.status}): check SIXSENSE_API_TOKEN. "
        "The token must be active and belong to the 'Lead Scoring API' API group "
        "with Enrichment API credits (6sense Settings > Integrations > API Token)."
    )
    return Outcome(424, orjson.dumps({"error": message}))


class Jobs:
    """Creates, runs, resumes and answers for asynchronous batch jobs."""

    def __init__(
        self, engine: Engine, encode: Encoder, ttl_s: float, max_jobs: int = 32, max_waiting: int = 7
    ) -> None:
        self.engine = engine
        self.state = engine.state
        self.owner = engine.owner
        self.encode = encode
        self.ttl_s = ttl_s
        self.max_jobs = max_jobs
        self.max_waiting = max(max_waiting, 1)
        self.pool = ThreadPoolExecutor(max_jobs, thread_name_prefix="job")
        self.lock = threading.Lock()
        self.waiting = 0
        # Running jobs and their payloads, kept so a job lost by a restarted backend is re-created.
        self.running: dict[str, bytes] = {}

    def submit(
        self, job_id: str, row_numbers: list[int], rows: Sequence[Row], misses: int, wait_s: float
    ) -> Outcome:
        """Start (or join) the job; wait for it up to `wait_s` if it should fit in that time."""
        encoded = [_encode_row(row) for row in rows]
        existing = self.state.job_get(job_id)
        if existing is not None:
            _require_same_rows(job_id, existing.payload, row_numbers, encoded)
            metrics.JOBS.labels("joined").inc()
            return _stored(existing.result) if existing.done else Outcome(202)
        with self.lock:
            busy = len(self.running)
        if busy >= self.max_jobs:
            raise Overloaded(
                f"overloaded: {busy} asynchronous batches are already running in this worker; retry later"
            )
        created_at = self.state.now()
        payload = orjson.dumps({"created_at": created_at, "row_numbers": row_numbers, "rows": encoded})
        if not self.state.job_create(job_id, payload, self.owner, LEASE_S, self.ttl_s):
            return Outcome(202)
        metrics.JOBS.labels("created").inc()
        future = self._start(job_id, payload, row_numbers, rows, created_at + SNOWFLAKE_ASYNC_LIMIT_S)
        if self.engine.seconds_needed(misses) <= wait_s and self._take_wait_seat():
            try:
                return future.result(timeout=wait_s)
            except FutureTimeout:
                pass
            finally:
                with self.lock:
                    self.waiting -= 1
        metrics.JOBS.labels("went_async").inc()
        return Outcome(202)

    def _take_wait_seat(self) -> bool:
        """Only so many request threads may wait on jobs: the others must stay free to answer."""
        with self.lock:
            if self.waiting >= self.max_waiting:
                return False
            self.waiting += 1
            return True

    def poll(self, job_id: str) -> Outcome | None:
        """The stored result (200), 202 while running, or None for an unknown batch id."""
        job = self.state.job_get(job_id)
        if job is None:
            return None
        return _stored(job.result) if job.done else Outcome(202)

    def resume_orphans(self) -> int:
        """Take over jobs whose worker died (lease expired); return how many were resumed."""
        resumed = 0
        for job_id in self.state.jobs_orphaned():
            if not self.state.job_lease(job_id, self.owner, LEASE_S):
                continue
            job = self.state.job_get(job_id)
            if job is None or job.done:
                continue
            document = orjson.loads(job.payload)
            rows = [_decode_row(row) for row in document["rows"]]
            log.info("job_resumed", extra={"batch_id": job_id[:200], "rows": len(rows)})
            metrics.JOBS.labels("resumed").inc()
            deadline = document["created_at"] + SNOWFLAKE_ASYNC_LIMIT_S
            self._start(job_id, job.payload, document["row_numbers"], rows, deadline)
            resumed += 1
        return resumed

    def renew_leases(self) -> None:
        """Keep this worker's jobs leased; re-create any that the state backend lost."""
        with self.lock:
            running = list(self.running.items())
        for job_id, payload in running:
            if not self.state.job_lease(job_id, self.owner, LEASE_S) and self.state.job_get(job_id) is None:
                self.state.job_create(job_id, payload, self.owner, LEASE_S, self.ttl_s)
                log.warning("job_recreated", extra={"batch_id": job_id[:200]})

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait for running jobs to finish (graceful shutdown); False if some are still running."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self.lock:
                if not self.running:
                    return True
            time.sleep(0.1)
        return False

    def _start(
        self, job_id: str, payload: bytes, row_numbers: list[int], rows: Sequence[Row], deadline: float
    ) -> Future[Outcome]:
        with self.lock:
            self.running[job_id] = payload
        return self.pool.submit(self._run, job_id, payload, row_numbers, rows, deadline)

    def _run(
        self, job_id: str, payload: bytes, row_numbers: list[int], rows: Sequence[Row], deadline: float
    ) -> Outcome:
        started = time.monotonic()
        try:
            try:
                values = self.engine.enrich(rows, deadline)
                metrics.count_rows("full", values)
                outcome = Outcome(200, self.encode(row_numbers, values))
            except UpstreamAuthError as exc:
                log.error("upstream_auth_rejected", extra={"upstream_status": exc.status})
                outcome = auth_failure(exc)
            self._store(job_id, payload, outcome)
            metrics.JOBS.labels("finished").inc()
            seconds = round(time.monotonic() - started, 3)
            log.info("job_finished", extra={"batch_id": job_id[:200], "rows": len(rows), "seconds": seconds})
            return outcome
        except StateError as exc:
            # The lease lapses (nobody renews it now) and a worker resumes the job once the
            # backend is back; leads fetched so far are cached, so nothing is paid twice.
            log.warning("job_interrupted", extra={"batch_id": job_id[:200], "error": str(exc)[:200]})
            return Outcome(503, orjson.dumps({"error": f"state backend unavailable, retry later: {exc}"}))
        finally:
            with self.lock:
                self.running.pop(job_id, None)

    def _store(self, job_id: str, payload: bytes, outcome: Outcome) -> None:
        result = b"%d\n" % outcome.status + (outcome.body or b"")
        if self.state.job_finish(job_id, self.owner, result):
            return
        if self.state.job_get(job_id) is None:  # the backend lost it (e.g. Redis restarted empty)
            self.state.job_create(job_id, payload, self.owner, LEASE_S, self.ttl_s)
            self.state.job_finish(job_id, self.owner, result)


class Refill:
    """Drains the queue of the cached route: fetches queued leads under the shared limiter."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state = engine.state

    def cached_or_queued(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """Values for the non-waiting routes: cached now; misses queued and answered `pending`."""
        values, misses = self.engine.lookup(rows)
        if misses:
            placeholder = self.engine.miss_placeholder()
            if placeholder["status"] == "pending":
                self.enqueue({key: group.lead for key, group in misses.items()})
            for group in misses.values():
                for index in group.indices:
                    values[index] = placeholder
        return values  # type: ignore[return-value]

    def enqueue(self, misses: dict[str, Lead]) -> int:
        return self.state.queue_push({key: orjson.dumps(lead.form()) for key, lead in misses.items()})

    def drain_once(self) -> int:
        """Fetch one handful of queued leads; return how many were taken."""
        items = self.state.queue_take(
            self.engine.owner, self.engine.settings.upstream_concurrency, REFILL_LEASE_S
        )
        if not items:
            return 0
        deadline = time.time() + REFILL_LEASE_S - 10
        futures = {
            key: self.engine.pool.submit(self.engine.resolve, Lead.from_form(orjson.loads(payload)), deadline)
            for key, payload in items
        }
        finished = []
        for key, future in futures.items():
            try:
                future.result()
                finished.append(key)
            except StateError:
                log.warning("refill_item_left_queued")
        self.state.queue_done(finished)
        return len(items)


class Background:
    """One daemon thread per worker: renew leases and claims, resume orphans, drain the queue."""

    def __init__(self, jobs: Jobs, refill: Refill, tick_s: float = 0.5) -> None:
        self.jobs, self.refill, self.tick_s = jobs, refill, tick_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="udf-background", daemon=True)
        self.drainer = threading.Thread(target=self._drain_loop, name="udf-refill", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.drainer.start()

    def stop(self) -> None:
        self.stop_event.set()

    def _loop(self) -> None:
        last_renew = last_sweep = 0.0
        while not self.stop_event.wait(self.tick_s):
            try:
                if time.monotonic() - last_renew >= LEASE_S / 3:
                    self.jobs.renew_leases()
                    self.jobs.engine.claims.renew_all()
                    last_renew = time.monotonic()
                self.jobs.resume_orphans()
                if time.monotonic() - last_sweep >= SWEEP_EVERY_S:
                    last_sweep = time.monotonic()
                    swept = self.jobs.state.sweep()
                    log.debug("swept_expired_state", extra={"rows": swept})
            except StateError:
                log.warning("background_state_unavailable")
            except Exception:
                log.exception("background_failed")

    def _drain_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                taken = self.refill.drain_once()
            except StateError:
                log.warning("refill_state_unavailable")
                taken = 0
            except Exception:
                log.exception("refill_failed")
                taken = 0
            if not taken:
                self.stop_event.wait(self.tick_s)


def _require_same_rows(job_id: str, payload: bytes, row_numbers: list[int], rows: list[Any]) -> None:
    """A batch id names one batch: reusing it for other rows is a caller error, not a retry."""
    document = orjson.loads(payload)
    if document["row_numbers"] != row_numbers or document["rows"] != rows:
        raise ProtocolError(
            f"batch id {job_id[:80]!r} was already used for different rows; batch ids must be unique", 409
        )


def _stored(result: bytes | None) -> Outcome:
    status, _, body = (result or b"500\n").partition(b"\n")
    return Outcome(int(status), body or None)


def _encode_row(row: Row) -> dict[str, Any]:
    return {"invalid": row.reason} if isinstance(row, InvalidLead) else row.form()


def _decode_row(row: dict[str, Any]) -> Row:
    return InvalidLead(row["invalid"]) if "invalid" in row else Lead.from_form(row)
