"""``RedisState``: the backend several hosts share, through one Redis server.

Every read-modify-write is one Lua script from ``state/lua/`` (atomic on the server), and every
time inside them is the server's ``TIME``, so hosts with skewed clocks still agree. ``redis`` is
imported lazily, so the package imports without it. Keys are ``<prefix>:<kind>:<key>``:

    cache:<key>        value, PX ttl          cache-index   zset key -> expiry (cache_count)
    claim:<key>        owner, PX ttl          limiter:<n>   tat (text seconds), PX until tat
    counter:<key>      integer                flag:<key>    value, PX ttl
    job:<id>           hash, PX ttl           job-leases    zset id -> lease_until (unfinished)
    queue-items        hash key -> payload    queue-seqs    hash key -> insertion number
    queue-ready        zset key -> number     queue-leased  zset key -> lease deadline

The scripts build job keys from the prefix, so this backend needs one Redis, not a Cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any

from ..errors import ConfigError, StateError
from .base import Job, State

SCRIPTS = ["cache_set", "cache_count", "claim", "release", "reserve_slot", "hold_off"]
SCRIPTS += ["slot_backlog", "incr", "job_create", "job_lease", "job_finish", "jobs_orphaned"]
SCRIPTS += ["queue_push", "queue_take", "queue_done", "sweep"]
CHUNK = 500  # keys per command or script call, so one call never blocks the server for long


@cache
def _lua(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _ms(seconds: float) -> int:
    """Redis expiries are whole milliseconds, at least one."""
    return max(1, round(seconds * 1000))


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def connect(url: str) -> Any:
    """A client with short timeouts, health checks and quick retries, so a restarted server is
    reconnected on the next call and a dead one fails in seconds (``/readyz``, 503).

    Only connection errors are retried, not timeouts: a script that timed out may have run, and
    running ``job_create`` or ``reserve_slot`` twice is not harmless.
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=2.0,
            socket_timeout=2.0,
            health_check_interval=10,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, (RedisConnectionError,)),
        )
    except ValueError as exc:
        raise ConfigError(f"bad Redis state URL {url!r}: {exc}") from exc


class RedisState(State):
    """``State`` on Redis; pass ``client`` (``decode_responses=False``) or use ``from_url``."""

    def __init__(self, client: Any, prefix: str = "sixsense-udf") -> None:
        import redis.exceptions

        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigError("RedisState needs a client with decode_responses=False")
        self.client = client
        self.prefix = prefix
        self._p = f"{prefix}:" if prefix else ""
        self._failures = (redis.exceptions.RedisError, OSError)
        self._scripts = {name: client.register_script(_lua(name)) for name in SCRIPTS}
        self._queue = [self._p + k for k in ("queue-items", "queue-seqs", "queue-ready")]
        self._queue += [self._p + "queue-leased"]

    @classmethod
    def from_url(cls, url: str, prefix: str = "sixsense-udf") -> RedisState:
        return cls(connect(url), prefix=prefix)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except self._failures as exc:
            raise StateError(f"Redis state: {type(exc).__name__}: {exc}") from exc

    def _run(self, name: str, keys: Sequence[str], *args: Any) -> Any:
        with self._mapped():
            return self._scripts[name](keys=list(keys), args=list(args))

    def _call(self, command: str, *args: Any) -> Any:
        with self._mapped():
            return self.client.execute_command(command, *args)

    def _key(self, kind: str, key: str) -> str:
        return f"{self._p}{kind}:{key}"

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        seconds, micros = self._call("TIME")
        return int(seconds) + int(micros) / 1_000_000

    def ping(self) -> None:
        self._call("PING")

    def close(self) -> None:
        with self._mapped():
            self.client.connection_pool.disconnect()

    def reopen(self) -> None:
        # In a forked child the pool notices the new pid and drops the parent's sockets without
        # shutting them down; in the same process this just disconnects. Both reconnect lazily.
        self.close()

    def sweep(self) -> int:
        keys = [self._p + "cache-index", self._p + "job-leases"]
        return int(self._run("sweep", keys, self._p + "job:"))

    # ------------------------------------------------------------------ cache
    def cache_get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        keys, found = list(dict.fromkeys(keys)), {}
        for part in _chunks(keys):
            values = self._call("MGET", *[self._key("cache", k) for k in part])
            found.update((k, v) for k, v in zip(part, values, strict=True) if v is not None)
        return found

    def cache_set_many(self, items: Mapping[str, bytes], ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"cache_set_many: ttl_s must be > 0, got {ttl_s}")
        for part in _chunks(list(items.items())):
            keys = [self._p + "cache-index", *[self._key("cache", k) for k, _ in part]]
            self._run("cache_set", keys, _ms(ttl_s), *[v for _, v in part])

    def cache_count(self) -> int:
        return int(self._run("cache_count", [self._p + "cache-index"]))

    # ------------------------------------------------------------------ claims
    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        return self._run("claim", [self._key("claim", key)], owner, _ms(ttl_s)) == 1

    def release(self, key: str, owner: str) -> None:
        self._run("release", [self._key("claim", key)], owner)

    def claim_holder(self, key: str) -> str | None:
        holder = self._call("GET", self._key("claim", key))
        return None if holder is None else holder.decode()

    # ------------------------------------------------------------------ rate limiter
    def reserve_slot(self, name: str, interval_s: float, max_wait_s: float) -> float | None:
        wait = self._run("reserve_slot", [self._key("limiter", name)], interval_s, max_wait_s)
        return None if wait is None else float(wait)

    def hold_off(self, name: str, until: float) -> None:
        self._run("hold_off", [self._key("limiter", name)], f"{until:.6f}")

    def slot_backlog(self, name: str) -> float:
        return float(self._run("slot_backlog", [self._key("limiter", name)]))

    # ------------------------------------------------------------------ counters and flags
    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        ttl = "" if ttl_s is None else _ms(ttl_s)
        return int(self._run("incr", [self._key("counter", key)], int(amount), ttl))

    def get_int(self, key: str) -> int:
        return int(self._call("GET", self._key("counter", key)) or 0)

    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:  # already expired: the same as absent
            self._call("DEL", self._key("flag", key))
        else:
            self._call("SET", self._key("flag", key), value, "PX", _ms(ttl_s))

    def flag_get(self, key: str) -> bytes | None:
        return self._call("GET", self._key("flag", key))

    def flag_ttl(self, key: str) -> float | None:
        ms = self._call("PTTL", self._key("flag", key))
        return None if ms < 0 else ms / 1000

    # ------------------------------------------------------------------ jobs
    def _job_keys(self, job_id: str) -> list[str]:
        return [self._key("job", job_id), self._p + "job-leases"]

    def job_create(
        self,
        job_id: str,
        payload: bytes,
        owner: str,
        lease_s: float,
        ttl_s: float,
    ) -> bool:
        args = (job_id, payload, owner, lease_s, _ms(ttl_s))
        return self._run("job_create", self._job_keys(job_id), *args) == 1

    def job_get(self, job_id: str) -> Job | None:
        fields = self._call("HGETALL", self._key("job", job_id))
        if not fields or b"payload" not in fields:
            return None
        owner = fields.get(b"owner")
        return Job(
            job_id=job_id,
            payload=fields[b"payload"],
            result=fields.get(b"result"),
            owner=None if owner is None else owner.decode(),
            lease_until=float(fields[b"lease_until"]),
            created_at=float(fields[b"created_at"]),
        )

    def job_lease(self, job_id: str, owner: str, lease_s: float) -> bool:
        return self._run("job_lease", self._job_keys(job_id), job_id, owner, lease_s) == 1

    def job_finish(self, job_id: str, owner: str, result: bytes) -> bool:
        return self._run("job_finish", self._job_keys(job_id), job_id, owner, result) == 1

    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        if limit <= 0:
            return []
        ids = self._run("jobs_orphaned", [self._p + "job-leases"], self._p + "job:", limit)
        return [i.decode() for i in ids]

    # ------------------------------------------------------------------ refill queue
    def queue_push(self, items: Mapping[str, bytes]) -> int:
        keys = [*self._queue[:3], self._p + "queue-counter"]
        added = 0
        for part in _chunks(list(items.items())):
            added += self._run("queue_push", keys, *[x for pair in part for x in pair])
        return added

    def queue_take(self, owner: str, limit: int, lease_s: float) -> list[tuple[str, bytes]]:
        if limit <= 0:
            return []
        flat = self._run("queue_take", self._queue, limit, lease_s)
        return [(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    def queue_done(self, keys: Iterable[str]) -> None:
        for part in _chunks(list(keys)):
            self._run("queue_done", self._queue, *part)

    def queue_depth(self) -> int:
        return int(self._call("HLEN", self._queue[0]))
