"""The state backend: everything that workers and instances share.

One small interface, two implementations chosen by ``UDF_STATE_URL``:

- ``sqlite:///path/state.db``: the embedded default. Safe across the gunicorn worker processes of
  one host (WAL mode, ``BEGIN IMMEDIATE`` for every read-modify-write).
- ``redis://host:port/db``: several hosts. Every read-modify-write is one Lua script, so it is
  atomic on the server; times come from the Redis server clock (``TIME``) so hosts with skewed
  clocks still agree.

This class is the spec: each method's docstring is its contract, and
``tests/state/contract.py`` checks both backends against it. Every backend failure is raised as
``StateError`` (``from`` the original), never as a driver exception. Keys are opaque strings chosen
by the engine (hashes, never raw emails); a backend may add its own prefix.

Time: ``now()`` is the backend's clock in seconds since the epoch (float). Every expiry below is
measured on that clock. An entry whose expiry has passed behaves exactly as if it were absent;
backends may delete it lazily or in ``sweep()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """An asynchronous batch (Snowflake's batch id), as stored.

    ``payload`` is the batch as the engine wrote it; ``result`` is None until the job finished.
    ``owner`` holds the lease until ``lease_until``; after that any worker may take it over.
    """

    job_id: str
    payload: bytes
    result: bytes | None
    owner: str | None
    lease_until: float
    created_at: float

    @property
    def done(self) -> bool:
        return self.result is not None


class State(ABC):
    """Shared state: cache, claims, limiter, counters, flags, jobs and the refill queue."""

    # ------------------------------------------------------------------ lifecycle
    @abstractmethod
    def now(self) -> float:
        """The backend's clock, seconds since the epoch."""

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend answers; raise StateError otherwise. Used by /readyz."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The object may be reopened by calling ``reopen()``."""

    @abstractmethod
    def reopen(self) -> None:
        """Drop inherited connections and open new ones (gunicorn ``post_fork``)."""

    def sweep(self) -> int:
        """Delete expired entries of every kind; return how many were deleted. Optional."""
        return 0

    # ------------------------------------------------------------------ cache
    @abstractmethod
    def cache_get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Map each key that holds a fresh (unexpired) value to that value. Missing keys are absent."""

    @abstractmethod
    def cache_set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        """Store every item for ``ttl_s`` seconds, replacing earlier values. ``ttl_s`` > 0."""

    @abstractmethod
    def cache_count(self) -> int:
        """How many fresh entries the cache holds (for /usage; may be approximate on Redis)."""

    # ------------------------------------------------------------------ claims
    @abstractmethod
    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        """Take the claim on ``key`` for ``owner`` for ``ttl_s`` seconds, atomically.

        True when the key was free, expired, or already held by ``owner`` (then the expiry is
        renewed). False when another owner holds an unexpired claim. This is how one lead being
        fetched by one worker is awaited, not fetched again, by every other worker and host.
        """

    @abstractmethod
    def release(self, key: str, owner: str) -> None:
        """Drop the claim on ``key`` if ``owner`` holds it; otherwise do nothing."""

    @abstractmethod
    def claim_holder(self, key: str) -> str | None:
        """The owner of the unexpired claim on ``key``, or None."""

    # ------------------------------------------------------------------ rate limiter
    @abstractmethod
    def reserve_slot(self, name: str, interval_s: float, max_wait_s: float) -> float | None:
        """Reserve the next send slot of the limiter ``name`` (GCRA with a burst of one).

        Atomically: ``start = max(tat, now)``; if ``start - now > max_wait_s`` return None and
        change nothing; else set ``tat = start + interval_s`` and return ``start - now`` (the
        seconds the caller must wait before sending; 0.0 when it may send at once). ``tat`` is
        kept per ``name``; an unknown name starts at ``tat = now``. Callers across every process
        and host that share the backend are spaced ``interval_s`` apart.
        """

    @abstractmethod
    def hold_off(self, name: str, until: float) -> None:
        """Push the limiter ``name`` so no slot starts before ``until`` (``tat = max(tat, until)``).

        Called after an upstream 429, so every worker slows down, not just the one that saw it.
        ``until`` is on the backend clock: pass ``state.now() + retry_after``, not ``time.time()``.
        """

    @abstractmethod
    def slot_backlog(self, name: str) -> float:
        """Seconds from now until the next free slot of limiter ``name`` (0.0 when free now)."""

    # ------------------------------------------------------------------ counters and flags
    @abstractmethod
    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (absent = 0) and return the new value.

        ``ttl_s`` sets the expiry only when the key is created, so a daily counter created with
        a TTL to midnight expires at midnight however often it is incremented.
        """

    @abstractmethod
    def get_int(self, key: str) -> int:
        """The integer at ``key``, 0 when absent or expired."""

    @abstractmethod
    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store a small value for ``ttl_s`` seconds (circuit breakers, markers)."""

    @abstractmethod
    def flag_get(self, key: str) -> bytes | None:
        """The value at ``key`` if unexpired, else None."""

    @abstractmethod
    def flag_ttl(self, key: str) -> float | None:
        """Seconds left before ``key`` expires, or None when absent."""

    # ------------------------------------------------------------------ jobs
    @abstractmethod
    def job_create(self, job_id: str, payload: bytes, owner: str, lease_s: float, ttl_s: float) -> bool:
        """Create the job leased to ``owner`` unless ``job_id`` exists; True when created.

        The whole job (payload, result, lease) expires ``ttl_s`` seconds after creation.
        """

    @abstractmethod
    def job_get(self, job_id: str) -> Job | None:
        """The job, or None when unknown or expired."""

    @abstractmethod
    def job_lease(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Take or renew the lease on an unfinished job, atomically.

        True when the job exists, is not done, and its lease is expired or held by ``owner``
        (the lease then runs ``lease_s`` seconds from now, owned by ``owner``). Else False.
        """

    @abstractmethod
    def job_finish(self, job_id: str, owner: str, result: bytes) -> bool:
        """Store the result if ``owner`` holds the lease (or the lease expired and nobody took it).

        True when stored. A finished job keeps its result until the job's TTL runs out.
        The first result wins: finishing a job that is already done returns False.
        """

    @abstractmethod
    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        """Ids of unfinished, unexpired jobs whose lease has expired (their worker died)."""

    # ------------------------------------------------------------------ refill queue
    @abstractmethod
    def queue_push(self, items: Mapping[str, bytes]) -> int:
        """Add each key with its payload unless the key is already queued; return how many were added.

        The queue is durable (survives restarts on SQLite; on Redis as durable as the server).
        """

    @abstractmethod
    def queue_take(self, owner: str, limit: int, lease_s: float) -> list[tuple[str, bytes]]:
        """Lease up to ``limit`` queued items that are not leased (or whose lease expired), oldest first."""

    @abstractmethod
    def queue_done(self, keys: Iterable[str]) -> None:
        """Remove these keys from the queue (whoever holds them)."""

    @abstractmethod
    def queue_depth(self) -> int:
        """How many items are queued, leased or not."""
