"""``RedisState``: the backend several hosts share, through one Redis server.

Every read-modify-write is one Lua script from ``state/lua/`` (atomic on the server), and every
time inside them is the server's ``TIME``, so hosts with skewed clocks still agree. ``redis`` is
imported lazily, so the package imports without it. Keys are ``<prefix>:<kind>:<key>``:

    cache:<key>        value, PX ttl          cache-index   zset redis key -> expiry
    cache-lead:<key>   lead fields, PX ttl    outcome:<key> "<round>\\n<value>", PX ttl
    fetch-items        hash key -> payload    fetch-rounds  hash key -> round
    fetch-prio         hash key -> priority   fetch-ready   zset key -> priority*1e13 + round
    fetch-leased       zset key -> deadline   fetch-owners  hash key -> owner
    fetch-counter      last round             epoch         random token (no expiry)
    limiter:<n>        tat (text seconds)     flag:<key>    value, PX ttl
    counter:<key>      integer                workers       zset owner -> alive until
    job:<id>           hash, PX ttl           job-leases    zset id -> lease_until (unfinished)
    take:<token>       keys one take (or fetch_done with a take) leased, PX half a lease (claimed
                       back if its answer was lost)

Cluster mode (``redis+cluster://``, ``rediss+cluster://``: Redis Cluster, Valkey cluster mode,
ElastiCache Serverless): the prefix becomes a hash tag, ``{<prefix>}:<kind>:<key>``, so every key
of the service is in one hash slot and every script, MGET and pipeline runs on one node. (The
service's state is small and hot; one slot is the price of atomic scripts across the queue, the
cache and the limiter, and it still spreads nothing it should not: each service is one tag.)
TLS: ``rediss://`` (and ``rediss+cluster://``), with ``ssl_ca_certs``, ``ssl_cert_reqs``,
``ssl_certfile``/``ssl_keyfile`` as URL query parameters (redis-py's own names).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any

from ..errors import ConfigError, StateError
from .base import (
    BACKGROUND,
    INTERACTIVE,
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

SCRIPTS = ["cache_count", "reserve_slot", "hold_off", "slot_backlog", "incr"]
SCRIPTS += ["job_create", "job_lease", "job_finish", "jobs_orphaned", "jobs_running", "sweep", "heartbeat"]
SCRIPTS += ["fetch_push", "fetch_take", "fetch_renew", "fetch_release", "fetch_done", "fetch_depth"]
SCRIPTS += ["before_send", "fetch_reclaim"]
CHUNK = 500  # keys per command or script call, so one call never blocks the server for long
FETCH = ("fetch-items", "fetch-rounds", "fetch-prio", "fetch-ready", "fetch-leased", "fetch-owners")
LOST_TAKES_KEPT = 16  # takes whose answer never came, per process, that the next take claims


INCLUDE = re.compile(r"^--! include (\w+)$", re.MULTILINE)


@cache
def _lua(name: str) -> str:
    """A script's text, with each `--! include name` line replaced by lua/name.lua: the one
    copy of a step several scripts run (Redis scripts cannot call each other)."""
    text = files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    return INCLUDE.sub(lambda match: _lua(match.group(1)), text)


def _send_check(out: Sequence[Any], flags: Sequence[str]) -> SendCheck:
    """`send_check`'s answer (lua/_check.lua) as a SendCheck."""
    epoch = out[2].decode() if isinstance(out[2], bytes) else str(out[2] or "")
    found = frozenset(flag for flag, is_set in zip(flags, out[3:], strict=True) if is_set)
    return SendCheck(cached=bool(out[0]), held=bool(out[1]), epoch=epoch, flags=found)


def _ms(seconds: float) -> int:
    """Redis expiries are whole milliseconds, at least one."""
    return max(1, round(seconds * 1000))


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _items(flat: Sequence[Any]) -> list[Item]:
    """Items from a script's flat answer: key, payload, round, ..."""
    return [Item(flat[i].decode(), flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]


def cluster_url(url: str) -> tuple[str, bool]:
    """``redis+cluster://`` / ``rediss+cluster://`` -> (the plain URL, True); others unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("redis+cluster", "rediss+cluster"):
        return f"{scheme.lower().removesuffix('+cluster')}://{rest}", True
    return url, False


def hash_tagged(prefix: str) -> str:
    """The key prefix in cluster mode: ``{prefix}:``, a hash tag, so all keys share one slot.

    Redis hashes the text between the first ``{`` and the next ``}``; braces inside ``prefix``
    would end the tag early (or leave it empty), so they are dropped from the tag.
    """
    tag = prefix.replace("{", "").replace("}", "") or "sixsense-udf"
    return "{" + tag + "}:"


@cache
def _cluster_class() -> Any:
    """redis-py's cluster client, minus its retry of timeouts (as for one server, above)."""
    from redis.cluster import RedisCluster
    from redis.exceptions import TimeoutError as RedisTimeoutError

    class Cluster(RedisCluster):  # type: ignore[misc]
        ERRORS_ALLOW_RETRY = tuple(
            error for error in RedisCluster.ERRORS_ALLOW_RETRY if not issubclass(error, RedisTimeoutError)
        )

    return Cluster


class LazyCluster:
    """A cluster client made on first use. redis-py's reads the cluster's topology when it is
    built, so without this a service could not start (and answer 503 on ``/readyz``) while the
    cluster is unreachable, as it does with one server. Everything else is the client's own."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def get_connection_kwargs(self) -> dict[str, Any]:
        return {}  # decode_responses is never set here

    def real(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
        return self._client

    def disconnect_connection_pools(self) -> None:
        if self._client is not None:
            self._client.disconnect_connection_pools()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def connect(url: str, max_connections: int = 64) -> Any:
    """A client with short timeouts, health checks and quick retries, so a restarted server is
    reconnected on the next call and a dead one fails in seconds (``/readyz``, 503).

    Only connection errors are retried, not timeouts: a script that timed out may have run, and
    running ``job_create`` or ``reserve_slot`` twice is not harmless. The pool blocks (up to a few
    seconds) when all ``max_connections`` are busy instead of failing: many fetch threads may
    want the server at once, and redis-py's default pool refuses the 101st with an error (in
    cluster mode too: each node's pool is a blocking one, else "MaxConnectionsError").
    """
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    plain, cluster = cluster_url(url)
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": 5.0,
        "socket_connect_timeout": 2.0,
        "socket_timeout": 2.0,
        "health_check_interval": 10,
    }
    try:
        if cluster:
            from redis.connection import parse_url

            parse_url(plain)  # a bad URL fails now; an unreachable cluster on first use
            return LazyCluster(
                lambda: _cluster_class().from_url(
                    plain,
                    connection_pool_class=redis.BlockingConnectionPool,
                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
                    **options,
                )
            )
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, (RedisConnectionError,))
        pool = redis.BlockingConnectionPool.from_url(plain, retry=retry, **options)
        return redis.Redis(connection_pool=pool)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad Redis state URL {url!r}: {exc}") from exc


class RedisState(State):
    """``State`` on Redis; pass ``client`` (``decode_responses=False``) or use ``from_url``."""

    def __init__(self, client: Any, prefix: str = "sixsense-udf") -> None:
        import redis.exceptions

        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigError("RedisState needs a client with decode_responses=False")
        from redis.cluster import RedisCluster
        from redis.commands.core import Script

        self.client = client
        self.prefix = prefix
        self.cluster = isinstance(client, RedisCluster | LazyCluster)
        self._p = hash_tagged(prefix) if self.cluster else (f"{prefix}:" if prefix else "")
        self._failures = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)
        # Scripts as bytes: registering them asks the client nothing (a lazy one stays unbuilt).
        self._scripts = {name: Script(client, _lua(name).encode()) for name in SCRIPTS}
        self._fetch = [self._p + name for name in FETCH]
        self._epoch_key = self._p + "epoch"
        # A take that timed out may still have run (a paused or slow server executes it later):
        # its items are then leased to us and nobody fetches them until the lease lapses. The
        # next take by the same owner claims them back through the take's record.
        self._lost_takes: list[tuple[str, str]] = []  # (owner, record key)
        self._lost_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, prefix: str = "sixsense-udf", max_connections: int = 64) -> RedisState:
        return cls(connect(url, max_connections), prefix=prefix)

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
            if self.cluster and command in ("TIME", "PING"):  # keyless: ask the node of our slot
                node = self.client.get_node_from_key(self._epoch_key)
                return self.client.execute_command(command, *args, target_nodes=node)
            return self.client.execute_command(command, *args)

    def _pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        with self._mapped():
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()

    def _key(self, kind: str, key: str) -> str:
        return f"{self._p}{kind}:{key}"

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        seconds, micros = self._call("TIME")
        return int(seconds) + int(micros) / 1_000_000

    def ping(self, write: bool = False) -> None:
        if write:
            self._call("SET", self._p + "ping", b"1", "PX", 60_000)
        else:
            self._call("PING")

    def close(self) -> None:
        # In a forked child the pool notices the new pid and drops the parent's sockets without
        # shutting them down; in the same process this just disconnects. Both reconnect lazily.
        with self._mapped():
            if self.cluster:
                self.client.disconnect_connection_pools()
            else:
                self.client.connection_pool.disconnect()

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

    def cache_set_many(
        self, items: Mapping[str, bytes], ttl_s: float, leads: Mapping[str, bytes] | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"cache_set_many: ttl_s must be > 0, got {ttl_s}")
        done = [Done(key, value, ttl_s, 0, lead=(leads or {}).get(key)) for key, value in items.items()]
        for part in _chunks(done):
            self.fetch_done(part, {})

    def cache_count(self) -> int:
        return int(self._run("cache_count", [self._p + "cache-index"]))

    def cache_scan(self, batch: int = 500) -> Iterator[CacheRecord]:
        index, start = self._p + "cache-index", 0
        value_prefix = self._key("cache", "")
        while True:
            now = self.now()
            with self._mapped():
                pairs = self.client.zrangebyscore(
                    index, f"({now:.6f}", "+inf", start=start, num=batch, withscores=True
                )
            keys = [name.decode().removeprefix(value_prefix) for name, _ in pairs]
            if keys:
                values = self._call("MGET", *[self._key("cache", k) for k in keys])
                leads = self._call("MGET", *[self._key("cache-lead", k) for k in keys])
                for key, (_, expires_at), value, lead in zip(keys, pairs, values, leads, strict=True):
                    if value is not None:
                        yield CacheRecord(key, value, lead, expires_at)
            if len(pairs) < batch:
                return
            start += batch

    # ------------------------------------------------------------------ fetch queue
    def fetch_push(self, items: Mapping[str, bytes], priority: int) -> dict[str, int]:
        return self.fetch_push_take(items, priority)[0]

    def fetch_push_take(
        self, items: Mapping[str, bytes], priority: int, take: Take | None = None
    ) -> tuple[dict[str, int], list[Item]]:
        take = take if take is not None and take.limit > 0 else None
        if not items and take is None:
            return {}, []
        reclaimed = [] if take is None else self._reclaim(take.owner, take.lease_s)
        rounds: dict[str, int] = {}
        flat: list[Any] = []
        parts = list(_chunks(list(items.items()))) or [[]]
        for index, part in enumerate(parts):
            asks = take if index == len(parts) - 1 else None  # the take rides on the last chunk
            record = f"{self._p}take:{secrets.token_hex(8)}"
            keys = [*self._fetch[:4], self._p + "fetch-counter", *self._fetch[4:], record]
            args: list[Any] = [priority, 0, 0, 0, ""]
            if asks is not None:  # the record lives half a lease, as fetch_take's
                args = [priority, asks.limit, asks.lease_s, asks.lease_s / 2, asks.owner]
            try:
                answer, flat = self._run("fetch_push", keys, *args, *[x for pair in part for x in pair])
            except StateError:
                if asks is not None:
                    self._lost_take(asks.owner, record)
                raise
            rounds.update((key, int(round_)) for (key, _), round_ in zip(part, answer, strict=True))
        return rounds, reclaimed + _items(flat)

    def fetch_take(
        self, owner: str, limit: int, lease_s: float, keys: Sequence[str] | None = None
    ) -> list[Item]:
        if limit <= 0 or (keys is not None and not keys):
            return []
        reclaimed = self._reclaim(owner, lease_s)
        record = f"{self._p}take:{secrets.token_hex(8)}"
        try:
            # The record lives half a lease: past that the items may be ready (and taken) again.
            flat = self._run(
                "fetch_take", [*self._fetch, record], limit, lease_s, lease_s / 2, owner, *(keys or ())
            )
        except StateError:
            self._lost_take(owner, record)
            raise
        return reclaimed + _items(flat)

    def _lost_take(self, owner: str, record: str) -> None:
        """A take that failed on the way back may have run: the owner's next take claims it."""
        with self._lost_lock:
            self._lost_takes = [*self._lost_takes, (owner, record)][-LOST_TAKES_KEPT:]

    def _reclaim(self, owner: str, lease_s: float) -> list[Item]:
        """The items of this owner's takes that failed on the way back (see ``_lost_takes``)."""
        with self._lost_lock:
            records = [record for who, record in self._lost_takes if who == owner]
        if not records:
            return []
        flat = self._run("fetch_reclaim", [*self._fetch, *records], owner, lease_s)
        with self._lost_lock:
            self._lost_takes = [lost for lost in self._lost_takes if lost[1] not in records]
        return _items(flat)

    def fetch_renew(self, owner: str, keys: Iterable[str], lease_s: float) -> set[str]:
        held: set[str] = set()
        for part in _chunks(list(keys)):
            held.update(k.decode() for k in self._run("fetch_renew", self._fetch[4:], owner, lease_s, *part))
        return held

    def fetch_release(self, owner: str, keys: Iterable[str]) -> None:
        for part in _chunks(list(keys)):
            self._run("fetch_release", self._fetch[1:], owner, *part)

    def fetch_done(
        self,
        done: Sequence[Done],
        counters: Mapping[str, tuple[int, float | None]],
        take: Take | None = None,
    ) -> list[Item]:
        take = take if take is not None and take.limit > 0 else None
        reclaimed = [] if take is None else self._reclaim(take.owner, take.lease_s)
        record = f"{self._p}take:{secrets.token_hex(8)}"
        keys = [self._p + "cache-index", *self._fetch, record]
        args: list[Any] = [len(done)]
        args += [0, 0, 0, ""] if take is None else [take.limit, take.lease_s, take.lease_s / 2, take.owner]
        for item in done:
            if item.value is None:
                keys.append(self._key("cache", item.key))  # a placeholder: nothing is written
                kind = "-"
            elif item.cache:
                keys += [self._key("cache", item.key), self._key("cache-lead", item.key)]
                kind = "1"
            else:
                keys.append(self._key("outcome", item.key))
                kind = "0"
            args += [item.key, kind, _ms(item.ttl_s), item.round, item.value or b"", item.lead or b""]
        for key, (amount, ttl_s) in counters.items():
            keys.append(self._key("counter", key))
            args += [int(amount), "" if ttl_s is None else _ms(ttl_s)]
        try:
            flat = self._run("fetch_done", keys, *args)
        except StateError:
            if take is not None:
                self._lost_take(take.owner, record)
            raise
        return reclaimed + _items(flat)

    def fetch_depth(self) -> dict[int, int]:
        priorities = (INTERACTIVE, BACKGROUND)
        flat = self._run("fetch_depth", [self._fetch[2], self._fetch[3], self._fetch[4]], *priorities)
        return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2) if int(flat[i + 1])}

    def answers_get(self, keys: Sequence[str]) -> Answers:
        keys = list(dict.fromkeys(keys))
        cached: dict[str, bytes] = {}
        outcomes: dict[str, tuple[int, bytes]] = {}
        for part in _chunks(keys):
            values, kept = self._pipeline(
                ("MGET", *[self._key("cache", k) for k in part]),
                ("MGET", *[self._key("outcome", k) for k in part]),
            )
            cached.update((k, v) for k, v in zip(part, values, strict=True) if v is not None)
            for key, raw in zip(part, kept, strict=True):
                if raw is not None:
                    round_, _, value = raw.partition(b"\n")
                    outcomes[key] = (int(round_), value)
        return Answers(cached, outcomes)

    def before_send(self, key: str, owner: str, flags: Sequence[str] = ()) -> SendCheck:
        keys = [self._key("cache", key), self._fetch[4], self._fetch[5], self._epoch_key]
        keys += [self._key("flag", flag) for flag in flags]
        return _send_check(self._run("before_send", keys, key, owner), flags)

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
        counters = counters or {}
        keys = [self._key("limiter", name), self._epoch_key]
        keys.append(self._key("counter", cap[0]) if cap else self._p + "no-cap")
        keys += [self._key("counter", key) for key in counters]
        args = [interval_s, max_wait_s, secrets.token_hex(8), "" if cap is None else cap[1], len(counters)]
        args += ["" if ttl is None else _ms(ttl) for ttl in counters.values()]
        if check_for:
            key, owner, flags = check_for
            keys += [self._key("cache", key), self._fetch[4], self._fetch[5]]
            keys += [self._key("flag", flag) for flag in flags]
            args += [key, owner]
        out = self._run("reserve_slot", keys, *args)
        wait, epoch, capped = out[:3]
        epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        check = _send_check(out[3], check_for[2]) if check_for and len(out) > 3 else None
        return Reservation(None if wait is None else float(wait), epoch, capped=bool(capped), check=check)

    def hold_off(self, name: str, until: float) -> None:
        self._run("hold_off", [self._key("limiter", name)], f"{until:.6f}")

    def slot_backlog(self, name: str) -> float:
        return float(self._run("slot_backlog", [self._key("limiter", name)]))

    # ------------------------------------------------------------------ counters and flags
    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        ttl = "" if ttl_s is None else _ms(ttl_s)
        return int(self._run("incr", [self._key("counter", key)], int(amount), ttl))

    def get_ints(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        values = self._call("MGET", *[self._key("counter", key) for key in keys])
        return [int(value or 0) for value in values]

    def flag_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:  # already expired: the same as absent
            self._call("DEL", self._key("flag", key))
        else:
            self._call("SET", self._key("flag", key), value, "PX", _ms(ttl_s))

    def flags_get(self, keys: Sequence[str]) -> dict[str, tuple[bytes, float]]:
        if not keys:
            return {}
        commands = [("GET", self._key("flag", key)) for key in keys]
        commands += [("PTTL", self._key("flag", key)) for key in keys]
        out = self._pipeline(*commands)
        values, ttls = out[: len(keys)], out[len(keys) :]
        return {
            key: (value, ttl / 1000 if ttl > 0 else 0.0)
            for key, value, ttl in zip(keys, values, ttls, strict=True)
            if value is not None
        }

    # ------------------------------------------------------------------ jobs
    def _job_keys(self, job_id: str) -> list[str]:
        return [self._key("job", job_id), self._p + "job-leases"]

    def job_create(self, job_id: str, payload: bytes, owner: str, lease_s: float, ttl_s: float) -> bool:
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

    def job_finish(self, job_id: str, owner: str, result: bytes, payload: bytes | None = None) -> bool:
        return self._run("job_finish", self._job_keys(job_id), job_id, owner, result, payload or b"") == 1

    def jobs_orphaned(self, limit: int = 100) -> list[str]:
        if limit <= 0:
            return []
        ids = self._run("jobs_orphaned", [self._p + "job-leases"], self._p + "job:", limit)
        return [i.decode() for i in ids]

    def jobs_running(self) -> int:
        return int(self._run("jobs_running", [self._p + "job-leases"], self._p + "job:"))

    # ------------------------------------------------------------------ workers
    def heartbeat(self, owner: str, ttl_s: float) -> int:
        return int(self._run("heartbeat", [self._p + "workers"], owner, ttl_s))
