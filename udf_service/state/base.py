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

How a lead is fetched once, whoever asks (the *fetch queue*):

    fetch_push   a requester queues its misses (one call for a whole batch); a key already queued
                 is not queued again, so every requester of one lead waits for the same fetch
                 (``fetch_push_take``: and claims its worker's share of them in the same write)
    fetch_take   a fetcher (any worker, any host) leases ready items, most urgent first
    reserve_slot one send slot under the shared rate limit, counted against the call budget
    before_send  right before the call: not cached meanwhile, still ours, same schedule epoch
    fetch_done   the answer cached (or kept as a short-lived outcome) and the item removed,
                 in one write; requesters read it with ``answers_get``. The same write may
                 lease the next ready items to the writer (``take``), so a worker that finishes
                 leads refills its fetch threads without a write of its own

Time: ``now()`` is the backend's clock in seconds since the epoch (float). Every expiry below is
measured on that clock. An entry whose expiry has passed behaves exactly as if it were absent;
backends may delete it lazily or in ``sweep()``.

Epoch: a random token the backend creates on first use and keeps for its life. A backend that
lost everything (Redis restarted empty, a SQLite file deleted or replaced) has a new epoch, so a
slot reserved under the old schedule is recognised as void before anyone sends on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

#: Priorities of the fetch queue, most urgent first.
INTERACTIVE = 0  # a query is waiting (sync POST or async job)
BACKGROUND = 1  # the cached route and backfills: fetched when nobody is waiting


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


@dataclass(frozen=True)
class Item:
    """One queued lead: its cache key, the payload the requester wrote, and its round.

    ``round`` numbers the queueing: every time a key is queued anew (after the previous fetch of
    it finished) it gets a higher round, so a requester can tell the answer to *its* fetch from a
    stale outcome of an earlier one.
    """

    key: str
    payload: bytes
    round: int


@dataclass(frozen=True)
class Done:
    """A finished fetch, as ``fetch_done`` stores it.

    ``cache`` true: ``value`` is cached for ``ttl_s`` (with ``lead``, the normalised lead fields
    as JSON, kept beside it for ``cache_scan``). ``cache`` false: ``value`` is an *outcome*
    (an error, a quota or budget answer) kept ``ttl_s`` only for the requesters of ``round``.
    ``value`` None: nothing to store (the answer was cached meanwhile); only the item goes.
    """

    key: str
    value: bytes | None
    ttl_s: float
    round: int
    cache: bool = True
    lead: bytes | None = None


@dataclass(frozen=True)
class Take:
    """What ``fetch_done`` leases after storing: up to ``limit`` ready items to ``owner``,
    for ``lease_s``, exactly as ``fetch_take`` without ``keys`` would."""

    owner: str
    limit: int
    lease_s: float


@dataclass(frozen=True)
class Reservation:
    """The answer of ``reserve_slot``.

    ``wait_s``: seconds until the slot (0.0: send now), or None when no slot is free within the
    caller's ``max_wait_s``. ``capped``: the cap counter had reached its limit, so nothing was
    reserved or counted. ``epoch``: the backend's epoch the slot belongs to.
    """

    wait_s: float | None
    epoch: str
    capped: bool = False
    check: SendCheck | None = None  # asked for with `check_for` and a slot reserved (see reserve_slot)


@dataclass(frozen=True)
class SendCheck:
    """What ``before_send`` read: may this fetcher still send for this key?"""

    cached: bool  # a fresh cache entry exists: do not send
    held: bool  # the caller still holds the item's lease
    epoch: str  # the backend's epoch now
    flags: frozenset[str]  # which of the asked flags are set (e.g. an open circuit)


@dataclass(frozen=True)
class Answers:
    """What ``answers_get`` found: fresh cache entries, and outcomes with their round."""

    cached: dict[str, bytes]
    outcomes: dict[str, tuple[int, bytes]]


@dataclass(frozen=True)
class CacheRecord:
    """One fresh cache entry, as ``cache_scan`` yields it."""

    key: str
    value: bytes
    lead: bytes | None
    expires_at: float


class State(ABC):
    """Shared state: cache, fetch queue, limiter, counters, flags and jobs."""

    # ------------------------------------------------------------------ lifecycle
    @abstractmethod
    def now(self) -> float:
        """The backend's clock, seconds since the epoch."""

    @abstractmethod
    def ping(self, write: bool = False) -> None:
        """Return if the backend answers (and, with ``write``, accepts a small write); raise
        StateError otherwise. ``/readyz`` proves a write: a full disk or a Redis at maxmemory
        still answers reads."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the next call opens new ones (also after a fork)."""

    def sweep(self) -> int:
        """Delete expired entries of every kind; return how many were deleted. Optional."""
        return 0

    # ------------------------------------------------------------------ cache
    @abstractmethod
    def cache_get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Map each key that holds a fresh (unexpired) value to that value. Missing keys are absent."""

    @abstractmethod
    def cache_set_many(
        self, items: Mapping[str, bytes], ttl_s: float, leads: Mapping[str, bytes] | None = None
    ) -> None:
        """Store every item for ``ttl_s`` seconds, replacing earlier values. ``ttl_s`` > 0.

        ``leads`` maps keys to the normalised lead fields (JSON), kept beside the value for
        ``cache_scan`` (export); a key without one keeps none.
        """

    @abstractmethod
    def cache_count(self) -> int:
        """How many fresh entries the cache holds (for /usage; may be approximate on Redis)."""

    @abstractmethod
    def cache_scan(self, batch: int = 500) -> Iterator[CacheRecord]:
        """Every fresh cache entry, in no particular order, read ``batch`` at a time."""

    # ------------------------------------------------------------------ fetch queue
    @abstractmethod
    def fetch_push(self, items: Mapping[str, bytes], priority: int) -> dict[str, int]:
        """Queue each key with its payload unless it is queued already; return every key's round.

        A key already queued keeps its payload and round, and its priority becomes ``priority``
        if that is more urgent (lower). New keys get a round higher than any before.
        """

    def fetch_push_take(
        self, items: Mapping[str, bytes], priority: int, take: Take | None = None
    ) -> tuple[dict[str, int], list[Item]]:
        """``fetch_push``, then with ``take`` lease ready items as ``fetch_take(take.owner,
        take.limit, take.lease_s)`` does (the pushed ones or any others, most urgent first);
        every key's round and the items taken. A backend does both in one write where it can:
        the worker that receives a batch claims its share of the misses as it queues them."""
        rounds = self.fetch_push(items, priority)
        if take is None or take.limit <= 0:
            return rounds, []
        return rounds, self.fetch_take(take.owner, take.limit, take.lease_s)

    @abstractmethod
    def fetch_take(
        self, owner: str, limit: int, lease_s: float, keys: Sequence[str] | None = None
    ) -> list[Item]:
        """Lease up to ``limit`` ready items to ``owner`` for ``lease_s``, most urgent then oldest.

        Ready: not leased, or leased with an expired lease. With ``keys``, only those keys are
        taken (a caller fetching its own leads).
        """

    @abstractmethod
    def fetch_renew(self, owner: str, keys: Iterable[str], lease_s: float) -> set[str]:
        """Extend ``owner``'s leases on ``keys`` to ``lease_s`` from now; return the keys still held."""

    @abstractmethod
    def fetch_release(self, owner: str, keys: Iterable[str]) -> None:
        """Give the items back unfetched (ready again at once), where ``owner`` holds them."""

    @abstractmethod
    def fetch_done(
        self,
        done: Sequence[Done],
        counters: Mapping[str, tuple[int, float | None]],
        take: Take | None = None,
    ) -> list[Item]:
        """Atomically: store each answer (cache entry or outcome), remove its item from the queue
        (whoever holds it: the answer is there now) unless the key was queued again since (its
        round differs), add ``counters`` (key -> amount, ttl on creation), and then, with
        ``take``, lease ready items as ``fetch_take(take.owner, take.limit, take.lease_s)`` does
        and return them (else return ``[]``)."""

    @abstractmethod
    def fetch_depth(self) -> dict[int, int]:
        """How many items are queued, by priority (leased or not)."""

    @abstractmethod
    def answers_get(self, keys: Sequence[str]) -> Answers:
        """Fresh cache entries and unexpired outcomes of ``keys``, in one read."""

    @abstractmethod
    def before_send(self, key: str, owner: str, flags: Sequence[str] = ()) -> SendCheck:
        """One read right before a paid call: cached? lease held by ``owner``? epoch? flags set?"""

    # ------------------------------------------------------------------ rate limiter
    @abstractmethod
    def reserve_slot(
        self,
        name: str,
        interval_s: float,
        max_wait_s: float,
        counters: Mapping[str, float | None] | None = None,
        cap: tuple[str, int] | None = None,
        check_for: tuple[str, str, Sequence[str]] | None = None,
    ) -> Reservation:
        """Reserve the next send slot of the limiter ``name`` (GCRA with a burst of one), atomically.

        With ``cap = (key, limit)``: if the counter ``key`` is at ``limit`` or more, reserve
        nothing and answer ``capped``. Else ``start = max(tat, now)``; if ``start - now >
        max_wait_s`` answer ``wait_s=None`` and change nothing; else set ``tat = start +
        interval_s``, add 1 to every counter in ``counters`` (key -> ttl on creation, or None),
        and answer ``wait_s = start - now``. An unknown name starts at ``tat = now``. Callers
        across every process and host that share the backend are spaced ``interval_s`` apart.

        With ``check_for = (key, owner, flags)`` and a slot reserved, ``check`` is what
        ``before_send(key, owner, flags)`` answers, read in the same operation: a sender whose
        slot starts now needs no second round trip before its call.
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
    def get_ints(self, keys: Sequence[str]) -> list[int]:
        """The integers at ``keys`` in order, 0 where absent or expired; one read."""

    def get_int(self, key: str) -> int:
        """The integer at ``key``, 0 when absent or expired."""
        return self.get_ints([key])[0]

    @abstractmethod
    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store a small value for ``ttl_s`` seconds (circuit breakers, markers)."""

    @abstractmethod
    def flags_get(self, keys: Sequence[str]) -> dict[str, tuple[bytes, float]]:
        """Each set flag of ``keys``: its value and the seconds left before it expires; one read."""

    def flag_get(self, key: str) -> bytes | None:
        """The value at ``key`` if unexpired, else None."""
        found = self.flags_get([key]).get(key)
        return None if found is None else found[0]

    def flag_ttl(self, key: str) -> float | None:
        """Seconds left before ``key`` expires, or None when absent."""
        found = self.flags_get([key]).get(key)
        return None if found is None else found[1]

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
        (the lease then runs ``lease_s`` seconds from now, owned by ``owner``; ``lease_s`` 0
        gives it up so another worker may resume the job at once). Else False.
        """

    @abstractmethod
    def job_finish(self, job_id: str, owner: str, result: bytes, payload: bytes | None = None) -> bool:
        """Store the result if ``owner`` holds the lease (or the lease expired and nobody took it).

        True when stored. A finished job keeps its result until the job's TTL runs out; with
        ``payload`` the stored payload is replaced (by a digest: the rows are not needed any more).
        The first result wins: finishing a job that is already done returns False.
        """

    @abstractmethod
    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        """Ids of unfinished, unexpired jobs whose lease has expired (their worker died)."""

    @abstractmethod
    def jobs_running(self) -> int:
        """How many jobs are unfinished and unexpired: leased to a worker, or waiting for one to
        resume them (for /usage and /status)."""

    # ------------------------------------------------------------------ workers
    @abstractmethod
    def heartbeat(self, owner: str, ttl_s: float) -> int:
        """Record that ``owner`` (a worker) is alive for ``ttl_s``; return how many are alive."""
