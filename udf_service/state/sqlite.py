"""``SQLiteState``: the embedded backend, one file shared by every worker process of one host.

WAL mode lets readers run beside the one writer; ``busy_timeout`` makes a writer wait for the
lock instead of failing; every read-modify-write runs in ``BEGIN IMMEDIATE``, which takes the
write lock before the first read, so two processes can never both see "free" and both take it.
Each process holds one connection behind a lock. Rows carry the prefix in an ``ns`` column, so
several services may share one file. The clock is ``time.time()``: one host, one clock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigError, StateError
from .base import Job, State
from .sqlite_sql import EXPIRING, SCHEMA, SQL

WRITE_ATTEMPT_MS = 20  # one BEGIN IMMEDIATE attempt's busy wait, with the connection held
WRITE_RETRY_PAUSE_S = 0.02  # between attempts, with the connection free for other threads


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SQLiteState(State):
    """``State`` on one SQLite file (``sqlite:///relative/path.db`` or ``sqlite:////abs.db``)."""

    def __init__(self, path: str, prefix: str = "sixsense-udf", busy_timeout_s: float = 5.0):
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ConfigError(f"SQLite state needs a file path, not {path!r}")
        self.path = os.path.abspath(path)
        self.prefix = prefix
        self.busy_timeout_s = busy_timeout_s
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._inherited: list[sqlite3.Connection] = []
        this = weakref.ref(self)  # a child forgets the parent's connection before anything runs
        os.register_at_fork(after_in_child=lambda: (s := this()) is not None and s._forget())
        with self._errors():
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with self._locked() as db:
                db.executescript(SCHEMA)
        # Hold no connection until first use, so a parent that forks right after start-up
        # (gunicorn --preload) hands its children nothing to inherit.
        self.close()

    @classmethod
    def from_url(cls, url: str, prefix: str = "sixsense-udf") -> SQLiteState:
        """``sqlite:///./rel/state.db`` (from the working directory) or ``sqlite:////abs.db``."""
        if not url.startswith("sqlite:///"):
            raise ConfigError(f"not a SQLite state URL (sqlite:///path): {url!r}")
        return cls(url.removeprefix("sqlite:///").split("?", 1)[0], prefix=prefix)

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        deadline = time.monotonic() + self.busy_timeout_s
        while True:  # switching to WAL needs the file to itself, and first starts may race
            try:
                db.execute("pragma journal_mode = wal")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    db.close()
                    raise
                time.sleep(0.05)
        db.execute("pragma synchronous = normal")
        return db

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"SQLite state {self.path}: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        if os.getpid() != self._pid:
            self._forget()
        # One deadline for both waits: the process lock (held by a thread in SQLite's busy wait)
        # and SQLite's own lock. Otherwise threads queue behind each other, 5 s each.
        deadline = time.monotonic() + self.busy_timeout_s
        if not self._lock.acquire(timeout=self.busy_timeout_s):
            raise sqlite3.OperationalError("database is locked (waited for this process's connection)")
        try:
            if self._db is None:
                self._db = self._connect()
            remaining_ms = max(int((deadline - time.monotonic()) * 1000), 1)
            self._db.execute(f"pragma busy_timeout = {remaining_ms}")
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
        deadline = time.monotonic() + self.busy_timeout_s
        with self._errors():
            while True:
                with self._locked() as db:
                    db.execute(f"pragma busy_timeout = {WRITE_ATTEMPT_MS}")
                    try:
                        db.execute("begin immediate")
                    except sqlite3.OperationalError as exc:
                        if not _is_busy(exc) or time.monotonic() >= deadline:
                            raise
                    else:
                        params = {"ns": self.prefix, "now": time.time()}
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
                time.sleep(WRITE_RETRY_PAUSE_S)

    def _read(self, sql: str, /, **kw: Any) -> list[Any]:
        with self._errors(), self._locked() as db:
            return db.execute(SQL[sql], {"ns": self.prefix, "now": time.time(), **kw}).fetchall()

    def _one(self, sql: str, default: Any = None, /, **kw: Any) -> Any:
        rows = self._read(sql, **kw)
        return rows[0] if rows else default

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        return time.time()

    def ping(self) -> None:
        self._read("queue_depth")

    def close(self) -> None:
        with self._errors(), self._lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def reopen(self) -> None:
        if os.getpid() == self._pid:
            self.close()  # the next call opens a new connection
        else:
            self._forget()

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
        keys, found, now = list(dict.fromkeys(keys)), {}, time.time()
        with self._errors(), self._locked() as db:
            for i in range(0, len(keys), 500):  # at most 500 "?" per statement
                part = keys[i : i + 500]
                # `+expires_at`: keep SQLite on the primary key; with the expiry index it would
                # scan every fresh entry for each lookup (137 ms vs 1.7 ms at 20,000 entries).
                sql = "select key, value from cache where ns = ? and +expires_at > ?"
                sql += f" and key in ({','.join('?' * len(part))})"
                found.update(db.execute(sql, (self.prefix, now, *part)))
        return found

    def cache_set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"cache_set_many: ttl_s must be > 0, got {ttl_s}")
        with self._tx() as (run, _):
            for key, value in items.items():
                run("cache_set", key=key, value=value, ttl=ttl_s)

    def cache_count(self) -> int:
        return self._one("cache_count")[0]

    # ------------------------------------------------------------------ claims
    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        with self._tx() as (run, _):
            return run("claim", key=key, owner=owner, ttl=ttl_s).rowcount == 1

    def release(self, key: str, owner: str) -> None:
        with self._tx() as (run, _):
            run("release", key=key, owner=owner)

    def claim_holder(self, key: str) -> str | None:
        return self._one("claim_holder", (None,), key=key)[0]

    # ------------------------------------------------------------------ rate limiter
    def reserve_slot(self, name: str, interval_s: float, max_wait_s: float) -> float | None:
        with self._tx() as (run, now):
            start = row[0] if (row := run("tat", name=name).fetchone()) else now
            if start - now > max_wait_s:
                return None
            run("set_tat", name=name, tat=start + interval_s)
            return start - now

    def hold_off(self, name: str, until: float) -> None:
        with self._tx() as (run, _):
            row = run("tat", name=name).fetchone()
            if row is None or until > row[0]:
                run("set_tat", name=name, tat=until)

    def slot_backlog(self, name: str) -> float:
        now = time.time()
        return self._one("tat", (now,), name=name, now=now)[0] - now

    # ------------------------------------------------------------------ counters and flags
    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        with self._tx() as (run, now):
            row = run("counter", key=key).fetchone()
            if row is None:
                row = (0, None if ttl_s is None else now + ttl_s)
            run("set_counter", key=key, value=row[0] + amount, expires_at=row[1])
            return row[0] + amount

    def get_int(self, key: str) -> int:
        return self._one("counter", (0,), key=key)[0]

    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        with self._tx() as (run, _):
            run("flag_set", key=key, value=value, ttl=ttl_s)

    def flag_get(self, key: str) -> bytes | None:
        return self._one("flag", (None,), key=key)[0]

    def flag_ttl(self, key: str) -> float | None:
        return self._one("flag", (None, None), key=key)[1]

    # ------------------------------------------------------------------ jobs
    def job_create(
        self,
        job_id: str,
        payload: bytes,
        owner: str,
        lease_s: float,
        ttl_s: float,
    ) -> bool:
        with self._tx() as (run, _):
            run("job_expired", id=job_id)
            args = {"id": job_id, "payload": payload, "owner": owner}
            return run("job_create", lease=lease_s, ttl=ttl_s, **args).rowcount == 1

    def job_get(self, job_id: str) -> Job | None:
        row = self._one("job_get", id=job_id)
        return Job(*row) if row else None

    def job_lease(self, job_id: str, owner: str, lease_s: float) -> bool:
        with self._tx() as (run, _):
            return run("job_lease", id=job_id, owner=owner, lease=lease_s).rowcount == 1

    def job_finish(self, job_id: str, owner: str, result: bytes) -> bool:
        with self._tx() as (run, _):
            return run("job_finish", id=job_id, owner=owner, result=result).rowcount == 1

    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        if limit <= 0:  # sqlite reads "limit -1" as no limit
            return []
        return [row[0] for row in self._read("jobs_orphaned", limit=limit)]

    # ------------------------------------------------------------------ refill queue
    def queue_push(self, items: Mapping[str, bytes]) -> int:
        with self._tx() as (run, _):
            return sum(run("queue_push", key=k, payload=v).rowcount for k, v in items.items())

    def queue_take(self, owner: str, limit: int, lease_s: float) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []
        with self._tx() as (run, _):
            rows = run("queue_free", limit=limit).fetchall()
            for seq, _, _ in rows:
                run("queue_lease", seq=seq, owner=owner, lease=lease_s)
            return [(key, payload) for _, key, payload in rows]

    def queue_done(self, keys: Iterable[str]) -> None:
        with self._tx() as (run, _):
            for key in keys:
                run("queue_done", key=key)

    def queue_depth(self) -> int:
        return self._one("queue_depth")[0]
