"""``SQLiteState``: the embedded backend, one file shared by every worker process of one host.

WAL mode lets readers run beside the one writer; every read-modify-write runs in ``BEGIN
IMMEDIATE``, which takes the write lock before the first read, so two processes can never both
see "free" and both take it. Each process holds one connection behind a lock. Rows carry the
prefix in an ``ns`` column, so several services may share one file. The clock is injected
(``time.time()`` by default): one host, one clock.

A file deleted or replaced under a running service would split the state silently (each worker
writing to whichever inode it opened). Every call checks the path's inode against the open
connection's; on a change the connection is dropped and the file at the path is opened (and
created) again, with a new epoch, so reservations made on the old file are void everywhere.
WAL needs shared memory, so the file must be on a local disk, never on a network filesystem.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..clock import SYSTEM, Clock
from ..errors import ConfigError, StateError
from .base import (
    BACKGROUND,
    Answers,
    CacheRecord,
    Done,
    Item,
    Job,
    Reservation,
    SendCheck,
    State,
    Take,
)
from .sqlite_sql import CACHE_TO_ROWID, EXPIRING, MIGRATIONS, OLD_QUEUE, OLD_TABLES, SCHEMA, SQL

log = logging.getLogger("udf_service.state")

WRITE_ATTEMPT_MS = 20  # one BEGIN IMMEDIATE attempt's busy wait, with the connection held
WRITE_RETRY_PAUSE_S = 0.02  # between attempts, with the connection free for other threads
CHUNK = 500  # at most 500 "?" per statement
LOCK_WAIT_SLACK_MS = 50  # a wait for the process lock this short leaves SQLite the whole timeout
MMAP_BYTES = 256 * 1024 * 1024  # address space, not memory: pages are the OS page cache
ROUND_COUNTER = "fetch:round"
# `+expires_at`: keep SQLite on the primary key; with the expiry index it would scan every fresh
# entry for each lookup (137 ms vs 1.7 ms at 20,000 entries).
CACHE_IN = "select key, value from cache where ns = ? and +expires_at > ? and key in"
OUTCOMES_IN = "select key, round, value from outcomes where ns = ? and expires_at > ? and key in"


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteState(State):
    """``State`` on one SQLite file (``sqlite:///relative/path.db`` or ``sqlite:////abs.db``)."""

    def __init__(
        self, path: str, prefix: str = "sixsense-udf", busy_timeout_s: float = 5.0, clock: Clock = SYSTEM
    ) -> None:
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ConfigError(f"SQLite state needs a file path, not {path!r}")
        self.path = os.path.abspath(path)
        self.prefix = prefix
        self.busy_timeout_s = busy_timeout_s
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        self.clock = clock
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._busy_ms = 0  # the connection's busy_timeout, as last set
        self._inode: tuple[int, int] | None = None
        self._epoch = ""
        self._inherited: list[sqlite3.Connection] = []
        this = weakref.ref(self)  # a child forgets the parent's connection before anything runs
        os.register_at_fork(after_in_child=lambda: (s := this()) is not None and s._forget())
        try:
            with self._errors(), self._locked():
                pass  # create the directory, the file and the schema now: a bad path fails at start-up
        except StateError as exc:
            # Another process holding the write lock is not a bad path: a worker that boots during
            # a long write must come up (and answer 503 until the lock clears), not take the
            # whole server down with it. The schema is then checked on first use.
            cause = exc.__cause__
            if not (isinstance(cause, sqlite3.OperationalError) and _is_busy(cause)):
                raise
            log.warning(
                "state_locked_at_start", extra={"path": self.path, "action": "schema checked on first use"}
            )
        # Hold no connection until first use, so a parent that forks right after start-up
        # (gunicorn --preload) hands its children nothing to inherit.
        self.close()

    @classmethod
    def from_url(cls, url: str, prefix: str = "sixsense-udf", clock: Clock = SYSTEM) -> SQLiteState:
        """``sqlite:///./rel/state.db`` (from the working directory) or ``sqlite:////abs.db``."""
        if not url.startswith("sqlite:///"):
            raise ConfigError(f"not a SQLite state URL (sqlite:///path): {url!r}")
        return cls(url.removeprefix("sqlite:///").split("?", 1)[0], prefix=prefix, clock=clock)

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            deadline = self.clock.monotonic() + self.busy_timeout_s
            while True:  # switching to WAL needs the file to itself, and first starts may race
                try:
                    db.execute("pragma journal_mode = wal")
                    break
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or self.clock.monotonic() > deadline:
                        raise
                    self.clock.sleep(0.05)
            db.execute("pragma synchronous = normal")
            self._busy_ms = self.busy_timeout_ms
            db.execute(f"pragma busy_timeout = {self._busy_ms}")
            # Reads of the file through a shared memory map instead of a read() per page: a
            # 100-key cache lookup costs a third less CPU (the cached path's largest single
            # cost), and the workers share the OS page cache instead of each copying pages.
            db.execute(f"pragma mmap_size = {MMAP_BYTES}")
            self._prepare(db)
            stat = os.stat(self.path)
        except BaseException:
            db.close()
            raise
        self._inode = (stat.st_dev, stat.st_ino)
        self._epoch = db.execute(SQL["epoch"]).fetchone()[0]
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Schema, migrations of files from earlier releases, and the epoch, in one transaction."""
        db.execute("begin immediate")
        try:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            for table, column, statement in MIGRATIONS.values():
                if column not in {row[1] for row in db.execute(f"pragma table_info({table})")}:
                    db.execute(statement)
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
            if "queue" in tables:
                db.execute(OLD_QUEUE[0], {"priority": BACKGROUND})
                db.execute(OLD_QUEUE[1])
            for statement in OLD_TABLES:
                db.execute(statement)
            cache_sql = db.execute("select sql from sqlite_master where name = 'cache'").fetchone()[0]
            if "without rowid" in cache_sql.lower():
                for statement in CACHE_TO_ROWID:
                    db.execute(statement)
            db.execute(SQL["set_epoch"], {"epoch": secrets.token_hex(8)})
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise

    def _replaced(self) -> bool:
        """The file at our path is not the one our connection has open (deleted or swapped)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._inode

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"SQLite state {self.path}: {exc}") from exc

    @contextmanager
    def _locked(self, busy_ms: int | None = None) -> Iterator[sqlite3.Connection]:
        """This process's connection, with SQLite's busy wait set to ``busy_ms`` or to what is
        left of the busy timeout after waiting for the process lock."""
        if os.getpid() != self._pid:
            self._forget()
        # One deadline for both waits: the process lock (held by a thread in SQLite's busy wait)
        # and SQLite's own lock. Otherwise threads queue behind each other, 5 s each.
        started = self.clock.monotonic()
        if not self._lock.acquire(timeout=self.busy_timeout_s):
            raise sqlite3.OperationalError("database is locked (waited for this process's connection)")
        try:
            if self._db is not None and self._replaced():
                log.error(
                    "state_file_replaced",
                    extra={"path": self.path, "action": "reopened the file now at the path"},
                )
                self._db.close()
                self._db = None
            if self._db is None:
                self._db = self._connect()
            if busy_ms is None:
                waited_ms = int((self.clock.monotonic() - started) * 1000)
                full_ms = self.busy_timeout_ms
                busy_ms = full_ms if waited_ms < LOCK_WAIT_SLACK_MS else max(full_ms - waited_ms, 1)
            if busy_ms != self._busy_ms:  # a statement per change, not per call (the cached path's)
                self._db.execute(f"pragma busy_timeout = {busy_ms}")
                self._busy_ms = busy_ms
            yield self._db
        finally:
            self._lock.release()

    @contextmanager
    def _tx(self) -> Iterator[tuple[Any, float]]:
        """A write transaction, its lock taken before the first read: yields ``run`` and now.

        Waiting for another process's write lock happens *outside* this process's connection
        lock (short BEGIN IMMEDIATE attempts, one deadline): other threads' reads go on meanwhile,
        so a request's state calls never queue behind one thread's busy wait.
        """
        deadline = self.clock.monotonic() + self.busy_timeout_s
        with self._errors():
            while True:
                with self._locked(WRITE_ATTEMPT_MS) as db:
                    try:
                        db.execute("begin immediate")
                    except sqlite3.OperationalError as exc:
                        if not _is_busy(exc) or self.clock.monotonic() >= deadline:
                            raise
                    else:
                        params = {"ns": self.prefix, "now": self.clock.time()}
                        try:
                            yield (
                                (lambda sql, /, _p=params, **kw: db.execute(SQL[sql], {**_p, **kw})),
                                params["now"],
                            )
                        except BaseException:
                            if db.in_transaction:
                                db.execute("rollback")
                            raise
                        db.execute("commit")
                        return
                self.clock.sleep(WRITE_RETRY_PAUSE_S)

    @contextmanager
    def _reading(self) -> Iterator[tuple[Any, float]]:
        """Several reads under one lock: yields ``run`` (named statements) and now."""
        with self._errors(), self._locked() as db:
            params = {"ns": self.prefix, "now": self.clock.time()}
            yield (lambda sql, /, _p=params, **kw: db.execute(SQL[sql], {**_p, **kw})), params["now"]

    def _select_in(self, db: sqlite3.Connection, sql: str, keys: Sequence[str], *params: Any) -> list[Any]:
        """``sql`` ending in ``key in (...)``, run in chunks of CHUNK keys."""
        rows: list[Any] = []
        for i in range(0, len(keys), CHUNK):
            part = keys[i : i + CHUNK]
            rows += db.execute(f"{sql} ({','.join('?' * len(part))})", (*params, *part)).fetchall()
        return rows

    @staticmethod
    def _add(run: Any, key: str, amount: int, ttl_s: float | None, now: float) -> int:
        row = run("counter", key=key).fetchone()
        if row is None:
            row = (0, None if ttl_s is None else now + ttl_s)
        run("set_counter", key=key, value=row[0] + amount, expires_at=row[1])
        return row[0] + amount

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        return self.clock.time()

    def ping(self, write: bool = False) -> None:
        if write:
            with self._tx() as (run, _):
                run("ping")
        else:
            with self._reading() as (run, _):
                run("epoch").fetchone()

    def close(self) -> None:
        with self._errors(), self._lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def _forget(self) -> None:
        """In a forked child: drop the parent's connection and lock without closing them.

        Closing in the child may checkpoint and unlink the WAL the parent still uses; keep the
        handle referenced (garbage collection would close it). The lock may have been held by a
        thread that does not exist here, so it is replaced too.
        """
        if self._db is not None:
            self._inherited.append(self._db)
        self._db, self._lock, self._pid = None, threading.Lock(), os.getpid()

    def sweep(self) -> int:
        with self._tx() as (run, _):
            return sum(run(f"sweep_{table}").rowcount for table in EXPIRING)

    # ------------------------------------------------------------------ cache
    def cache_get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        with self._errors(), self._locked() as db:
            return dict(self._select_in(db, CACHE_IN, keys, self.prefix, self.clock.time()))

    def cache_set_many(
        self, items: Mapping[str, bytes], ttl_s: float, leads: Mapping[str, bytes] | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"cache_set_many: ttl_s must be > 0, got {ttl_s}")
        leads = leads or {}
        with self._tx() as (run, _):
            for key, value in items.items():
                run("cache_set", key=key, value=value, ttl=ttl_s, lead=leads.get(key))

    def cache_count(self) -> int:
        with self._reading() as (run, _):
            return run("cache_count").fetchone()[0]

    def cache_scan(self, batch: int = 500) -> Iterator[CacheRecord]:
        after = ""
        while True:
            with self._reading() as (run, _):
                rows = run("cache_scan", after=after, limit=batch).fetchall()
            for key, value, lead, expires_at in rows:
                yield CacheRecord(key, value, lead, expires_at)
            if len(rows) < batch:
                return
            after = rows[-1][0]

    # ------------------------------------------------------------------ fetch queue
    def fetch_push(self, items: Mapping[str, bytes], priority: int) -> dict[str, int]:
        if not items:
            return {}
        with self._tx() as (run, _):
            return self._push(run, items, priority)

    def fetch_push_take(
        self, items: Mapping[str, bytes], priority: int, take: Take | None = None
    ) -> tuple[dict[str, int], list[Item]]:
        if take is None or take.limit <= 0:
            return self.fetch_push(items, priority), []
        with self._tx() as (run, _):
            rounds = self._push(run, items, priority) if items else {}
            return rounds, self._lease_ready(run, take.owner, take.limit, take.lease_s)

    @staticmethod
    def _push(run: Any, items: Mapping[str, bytes], priority: int) -> dict[str, int]:
        """Queue ``items`` (see ``fetch_push``) in the caller's transaction; every key's round."""
        rounds: dict[str, int] = {}
        counter = run("counter", key=ROUND_COUNTER).fetchone()
        next_round = counter[0] if counter else 0
        for key, payload in items.items():
            row = run("fetch_get", key=key).fetchone()
            if row is not None:
                rounds[key] = row[0]
                if row[1] > priority:
                    run("fetch_raise", key=key, priority=priority)
                continue
            next_round += 1
            run("fetch_add", key=key, payload=payload, priority=priority, round=next_round)
            rounds[key] = next_round
        run("set_counter", key=ROUND_COUNTER, value=next_round, expires_at=None)
        return rounds

    def fetch_take(
        self, owner: str, limit: int, lease_s: float, keys: Sequence[str] | None = None
    ) -> list[Item]:
        if limit <= 0 or (keys is not None and not keys):
            return []
        if keys is None:
            with self._reading() as (run, _):  # a read first: an idle poll never takes the write lock
                if run("fetch_any_ready").fetchone() is None:
                    return []
        with self._tx() as (run, _):
            return self._lease_ready(run, owner, limit, lease_s, keys)

    @staticmethod
    def _lease_ready(
        run: Any, owner: str, limit: int, lease_s: float, keys: Sequence[str] | None = None
    ) -> list[Item]:
        """Lease up to ``limit`` ready items (of ``keys``, or most urgent first), in the caller's tx."""
        if keys is None:
            rows = run("fetch_ready", limit=limit).fetchall()
        else:
            rows = [row for key in keys[:limit] if (row := run("fetch_ready_key", key=key).fetchone())]
        for key, _, _ in rows:
            run("fetch_lease", key=key, owner=owner, lease=lease_s)
        return [Item(key, payload, round_) for key, payload, round_ in rows]

    def fetch_renew(self, owner: str, keys: Iterable[str], lease_s: float) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        with self._tx() as (run, _):
            return {key for key in keys if run("fetch_renew", key=key, owner=owner, lease=lease_s).rowcount}

    def fetch_release(self, owner: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            with self._tx() as (run, _):
                for key in keys:
                    run("fetch_release", key=key, owner=owner)

    def fetch_done(
        self,
        done: Sequence[Done],
        counters: Mapping[str, tuple[int, float | None]],
        take: Take | None = None,
    ) -> list[Item]:
        with self._tx() as (run, now):
            for item in done:
                if item.value is not None and item.cache:
                    run("cache_set", key=item.key, value=item.value, ttl=item.ttl_s, lead=item.lead)
                elif item.value is not None:
                    run("outcome_set", key=item.key, round=item.round, value=item.value, ttl=item.ttl_s)
                run("fetch_remove", key=item.key, round=item.round)
            for key, (amount, ttl_s) in counters.items():
                self._add(run, key, amount, ttl_s, now)
            if take is None or take.limit <= 0:
                return []
            return self._lease_ready(run, take.owner, take.limit, take.lease_s)

    def fetch_depth(self) -> dict[int, int]:
        with self._reading() as (run, _):
            return dict(run("fetch_depth").fetchall())

    def answers_get(self, keys: Sequence[str]) -> Answers:
        keys = list(dict.fromkeys(keys))
        now = self.clock.time()
        with self._errors(), self._locked() as db:
            cached = self._select_in(
                db,
                "select key, value from cache where ns = ? and +expires_at > ? and key in",
                keys,
                self.prefix,
                now,
            )
            outcomes = self._select_in(
                db,
                "select key, round, value from outcomes where ns = ? and expires_at > ? and key in",
                keys,
                self.prefix,
                now,
            )
        return Answers(dict(cached), {key: (round_, value) for key, round_, value in outcomes})

    def before_send(self, key: str, owner: str, flags: Sequence[str] = ()) -> SendCheck:
        with self._reading() as (run, _):
            return self._send_check(run, key, owner, flags)

    def _send_check(self, run: Any, key: str, owner: str, flags: Sequence[str]) -> SendCheck:
        cached = run("cache_fresh", key=key).fetchone() is not None
        held = run("fetch_held", key=key, owner=owner).fetchone() is not None
        found = frozenset(self._flags(run, flags))
        return SendCheck(cached=cached, held=held, epoch=self._epoch, flags=found)

    # ------------------------------------------------------------------ rate limiter
    def reserve_slot(
        self,
        name: str,
        interval_s: float,
        max_wait_s: float,
        counters: Mapping[str, float | None] | None = None,
        cap: tuple[str, int] | None = None,
        check_for: tuple[str, str, Sequence[str]] | None = None,
    ) -> Reservation:
        with self._tx() as (run, now):
            if cap is not None:
                row = run("counter", key=cap[0]).fetchone()
                if row is not None and row[0] >= cap[1]:
                    return Reservation(None, self._epoch, capped=True)
            start = row[0] if (row := run("tat", name=name).fetchone()) else now
            if start - now > max_wait_s:
                return Reservation(None, self._epoch)
            run("set_tat", name=name, tat=start + interval_s)
            for key, ttl_s in (counters or {}).items():
                self._add(run, key, 1, ttl_s, now)
            check = self._send_check(run, *check_for) if check_for else None
            return Reservation(start - now, self._epoch, check=check)

    def hold_off(self, name: str, until: float) -> None:
        with self._tx() as (run, _):
            row = run("tat", name=name).fetchone()
            if row is None or until > row[0]:
                run("set_tat", name=name, tat=until)

    def slot_backlog(self, name: str) -> float:
        with self._reading() as (run, now):
            row = run("tat", name=name).fetchone()
        return max((row[0] if row else now) - now, 0.0)

    # ------------------------------------------------------------------ counters and flags
    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        with self._tx() as (run, now):
            return self._add(run, key, amount, ttl_s, now)

    def get_ints(self, keys: Sequence[str]) -> list[int]:
        with self._reading() as (run, _):
            rows = [run("counter", key=key).fetchone() for key in keys]
        return [row[0] if row else 0 for row in rows]

    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        with self._tx() as (run, _):
            run("flag_set", key=key, value=value, ttl=ttl_s)

    def flags_get(self, keys: Sequence[str]) -> dict[str, tuple[bytes, float]]:
        with self._reading() as (run, _):
            return self._flags(run, keys)

    def _flags(self, run: Any, keys: Sequence[str]) -> dict[str, tuple[bytes, float]]:
        found = {}
        for key in keys:
            row = run("flag", key=key).fetchone()
            if row is not None:
                found[key] = (row[0], row[1])
        return found

    # ------------------------------------------------------------------ jobs
    def job_create(self, job_id: str, payload: bytes, owner: str, lease_s: float, ttl_s: float) -> bool:
        with self._tx() as (run, _):
            run("job_expired", id=job_id)
            args = {"id": job_id, "payload": payload, "owner": owner}
            return run("job_create", lease=lease_s, ttl=ttl_s, **args).rowcount == 1

    def job_get(self, job_id: str) -> Job | None:
        with self._reading() as (run, _):
            row = run("job_get", id=job_id).fetchone()
        return Job(*row) if row else None

    def job_lease(self, job_id: str, owner: str, lease_s: float) -> bool:
        with self._tx() as (run, _):
            return run("job_lease", id=job_id, owner=owner, lease=lease_s).rowcount == 1

    def job_finish(self, job_id: str, owner: str, result: bytes, payload: bytes | None = None) -> bool:
        with self._tx() as (run, _):
            return run("job_finish", id=job_id, owner=owner, result=result, payload=payload).rowcount == 1

    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        if limit <= 0:  # sqlite reads "limit -1" as no limit
            return []
        with self._reading() as (run, _):
            return [row[0] for row in run("jobs_orphaned", limit=limit).fetchall()]

    def jobs_running(self) -> int:
        with self._reading() as (run, _):
            return run("jobs_running").fetchone()[0]

    # ------------------------------------------------------------------ workers
    def heartbeat(self, owner: str, ttl_s: float) -> int:
        with self._tx() as (run, _):
            run("heartbeat", owner=owner, ttl=ttl_s)
            return run("workers_alive").fetchone()[0]
