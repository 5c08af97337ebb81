"""``RedisState`` against the state contract, plus what only Redis has: faults, prefix, client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from udf_service.errors import ConfigError, StateError
from udf_service.state import Done, state_from_url

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
        state.fetch_push({"k": b""}, 0)
    assert time.monotonic() - started < 10


def test_server_errors_are_state_errors(redis_url: str) -> None:
    """An error reply from Redis (here WRONGTYPE inside a script) becomes StateError."""
    state = RedisState.from_url(redis_url, prefix="p")
    state.client.set("p:fetch-items", "x")
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.fetch_push({"k": b""}, 0)
    state.client.set("p:job:k", "x")
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.job_get("k")


def test_restarted_server_is_reconnected(redis_server, redis_url: str) -> None:
    """After Redis restarts the same state object reconnects by itself and reloads its scripts;
    the empty server has a new epoch, so slots reserved before are known to be void."""
    state = RedisState.from_url(redis_url)
    state.fetch_push({"k": b"a"}, 0)
    epoch = state.reserve_slot("l", 1, 1).epoch
    redis_server.restart()
    assert state.fetch_depth() == {}  # the server lost its data
    assert state.before_send("k", "w").epoch != epoch
    reservation = state.reserve_slot("l", 1, 1)
    assert reservation.wait_s == 0.0 and reservation.epoch not in ("", epoch)


def test_every_key_carries_the_prefix(redis_url: str) -> None:
    """All keys a state writes start with '<prefix>:'."""
    state = RedisState.from_url(redis_url, prefix="pre{x}*")
    state.cache_set_many({"k": b"v"}, LONG, leads={"k": b"lead"})
    state.reserve_slot("l", LONG, LONG, {"c": None})
    state.incr("n")
    state.flag_set("f", b"1", LONG)
    state.job_create("j", b"p", "me", LONG, LONG)
    rounds = state.fetch_push({"q": b"1", "o": b"2"}, 0)
    state.fetch_take("w", 2, LONG)
    state.fetch_done([Done("o", b"e", LONG, rounds["o"], cache=False)], {})
    state.heartbeat("w", LONG)
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


def test_a_take_whose_answer_was_lost_is_claimed_back(redis_server, redis_url: str) -> None:
    """A take sent to a stopped server (SIGSTOP) times out in the client but runs when the server
    continues: its items are leased to us, unseen. The next take by the same owner gets them back
    at once, instead of nobody fetching them until the lease lapses; another owner cannot."""
    state = RedisState.from_url(redis_url)
    state.fetch_push({"a": b"1", "b": b"2"}, 0)
    admin = redis.Redis.from_url(redis_url)
    assert state.fetch_take("w", 1, LONG, keys=["absent"]) == []  # the script is loaded: EVALSHA runs
    redis_server.pause()
    resume = threading.Timer(2.5, redis_server.resume)
    resume.start()
    try:
        with pytest.raises(StateError, match="Timeout"):
            state.fetch_take("w", 2, LONG)  # the client gives up at 2 s; the server runs it at 2.5 s
    finally:
        resume.join()
    assert admin.hlen("sixsense-udf:fetch-owners") == 2, "the timed-out take ran"
    assert state.fetch_take("other", 2, LONG) == []  # leased (to "w", who never heard)
    assert sorted(i.key for i in state.fetch_take("w", 2, LONG)) == ["a", "b"]
    assert state.fetch_take("w", 2, LONG) == []  # claimed once
