"""``RedisState`` against the state contract, plus what only Redis has: faults, prefix, client."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from udf_service.errors import ConfigError, StateError
from udf_service.state import state_from_url

from .contract import LONG, StateContract

redis = pytest.importorskip("redis")
from udf_service.state.redis import RedisState  # noqa: E402

pytestmark = pytest.mark.redis
PREFIXES = [pytest.param("sixsense-udf", id="default"), pytest.param("t{1}:*?[x] é", id="odd")]


class TestRedisState(StateContract):
    """The contract on the session's redis-server, its database flushed before each test."""

    @pytest.fixture(autouse=True, params=PREFIXES)
    def _backend(self, request: pytest.FixtureRequest, redis_url: str) -> Iterator[None]:
        self.url, self.prefix, self.opened = redis_url, request.param, []
        yield
        for state in self.opened:
            state.close()

    def make_state(self, prefix: str | None = None) -> RedisState:
        state = RedisState.from_url(self.url, prefix=self.prefix if prefix is None else prefix)
        self.opened.append(state)
        return state


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_is_state_error() -> None:
    """With no server listening, calls fail fast with StateError, not a redis exception."""
    state = RedisState.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    started = time.monotonic()
    with pytest.raises(StateError) as info:
        state.ping()
    assert isinstance(info.value.__cause__, redis.exceptions.RedisError)
    with pytest.raises(StateError):
        state.claim("k", "me", LONG)
    assert time.monotonic() - started < 10


def test_server_errors_are_state_errors(redis_url: str) -> None:
    """An error reply from Redis (here WRONGTYPE inside a script) becomes StateError."""
    state = RedisState.from_url(redis_url, prefix="p")
    state.client.hset("p:claim:k", "x", "y")
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.claim("k", "me", LONG)
    state.client.hset("p:counter:k", "x", "y")
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.get_int("k")


def test_restarted_server_is_reconnected(redis_server, redis_url: str) -> None:
    """After Redis restarts the same state object reconnects by itself and reloads its scripts."""
    state = RedisState.from_url(redis_url)
    assert state.claim("k", "a", LONG) is True
    redis_server.restart()
    assert state.claim("k", "b", LONG) is True  # the server lost its data: the key is free
    assert state.reserve_slot("l", 1, 1) == 0.0


def test_every_key_carries_the_prefix(redis_url: str) -> None:
    """All keys a state writes start with '<prefix>:'."""
    state = RedisState.from_url(redis_url, prefix="pre{x}*")
    state.cache_set_many({"k": b"v"}, LONG)
    state.claim("c", "me", LONG)
    state.reserve_slot("l", LONG, LONG)
    state.incr("n")
    state.flag_set("f", b"1", LONG)
    state.job_create("j", b"p", "me", LONG, LONG)
    state.queue_push({"q": b"1"})
    keys = list(state.client.scan_iter(count=1000))
    assert len(keys) >= 10
    assert all(k.startswith(b"pre{x}*:") for k in keys), keys


def test_accepts_an_existing_client(redis_url: str) -> None:
    """RedisState(client=...) uses the given client."""
    client = redis.Redis.from_url(redis_url)
    state = RedisState(client=client, prefix="p")
    state.flag_set("f", b"1", LONG)
    assert client.get("p:flag:f") == b"1"


def test_refuses_a_decoding_client(redis_url: str) -> None:
    """A client with decode_responses=True would turn payloads into str: ConfigError."""
    with pytest.raises(ConfigError):
        RedisState(client=redis.Redis.from_url(redis_url, decode_responses=True))


def test_now_is_server_time(redis_url: str) -> None:
    """now() reads the Redis server clock."""
    state = RedisState.from_url(redis_url)
    seconds, micros = state.client.time()
    assert state.now() == pytest.approx(seconds + micros / 1e6, abs=1)


def test_state_from_url_opens_redis(redis_url: str) -> None:
    """state_from_url maps redis:// to RedisState with the given prefix."""
    state = state_from_url(redis_url, prefix="x")
    assert isinstance(state, RedisState) and state.prefix == "x"
    state.ping()
