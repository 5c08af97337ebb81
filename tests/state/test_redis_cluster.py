"""``RedisState`` against the state contract on a real three-node Redis Cluster, on TLS Redis, and
on a TLS-only cluster.

The same suite as `test_redis.TestRedisState`; the servers are started on loopback by the tests
(`tests.redis_server`). What only cluster mode has: every key of one service in one hash slot.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from udf_service.errors import StateError
from udf_service.state import state_from_url

from .contract import StateContract
from .test_redis import PREFIXES as PREFIX_PARAMS

redis = pytest.importorskip("redis")
PREFIXES = {param.id: param.values[0] for param in PREFIX_PARAMS}
from udf_service.state.redis import RedisState, hash_tagged  # noqa: E402

# Three redis-server processes per cluster, TLS handshakes: end to end, run with the full suite.
pytestmark = [pytest.mark.redis, pytest.mark.e2e]


class _OnUrl(StateContract):
    """The contract on one key prefix per variant: what a prefix changes (hash tags, escaping) is
    the same code on every Redis, and `test_redis.TestRedisState` runs every prefix; here the
    variant (cluster routing, TLS) is the subject."""

    url_fixture = ""
    prefix_under_test = PREFIXES["default"]
    TTL = 0.6  # TLS handshakes and three nodes: a few writes take longer than on one plain server
    PAST_TTL = TTL + 0.2

    @pytest.fixture(autouse=True)
    def _backend(self, request: pytest.FixtureRequest) -> Iterator[None]:
        self.url, self.prefix, self.opened = (
            request.getfixturevalue(self.url_fixture),
            self.prefix_under_test,
            [],
        )
        yield
        for state in self.opened:
            state.close()

    def make_state(self, prefix: str | None = None) -> RedisState:
        state = state_from_url(self.url, prefix=self.prefix if prefix is None else prefix)
        assert isinstance(state, RedisState)
        self.opened.append(state)
        return state


class TestRedisClusterState(_OnUrl):
    """The contract on a three-node cluster (``redis+cluster://``)."""

    url_fixture = "redis_cluster_url"
    prefix_under_test = PREFIXES["odd"]  # braces and wildcards: the hard case for one hash slot


class TestRedisTLSState(_OnUrl):
    """The contract over TLS (``rediss://`` with the test CA)."""

    url_fixture = "redis_tls_url"


class TestRedisTLSClusterState(_OnUrl):
    """The contract on a TLS-only three-node cluster (``rediss+cluster://``, as ElastiCache
    Serverless)."""

    url_fixture = "redis_tls_cluster_url"


def test_cluster_keys_share_one_slot(redis_cluster_url: str) -> None:
    """After a busy round every key the service wrote hashes to one slot (so scripts can run)."""
    state = state_from_url(redis_cluster_url, prefix="p")
    assert isinstance(state, RedisState) and state.cluster
    state.cache_set_many({"a": b"1"}, 60, leads={"a": b"{}"})
    state.fetch_push({"k": b""}, 0)
    state.reserve_slot("l", 1.0, 5.0, counters={"c": None})
    state.job_create("j", b"x", "o", 5.0, 60.0)
    keys = [k for node in state.client.get_primaries() for k in state.client.keys(target_nodes=node)]
    slots = {state.client.keyslot(k) for k in keys}
    assert len(keys) >= 8 and len(slots) == 1, (keys, slots)
    state.close()


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [("sixsense-udf", "{sixsense-udf}:"), ("t{1}:x", "{t1:x}:"), ("{}", "{sixsense-udf}:")],
)
def test_hash_tag_is_never_empty(prefix: str, tagged: str) -> None:
    assert hash_tagged(prefix) == tagged


def test_tls_without_the_ca_is_refused(redis_tls_url: str) -> None:
    """The server's certificate is checked: without its CA the connection fails (StateError)."""
    state = state_from_url(redis_tls_url.split("?", 1)[0])
    with pytest.raises(StateError):
        state.ping()


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://node:6379/0", "rediss+cluster://node:6379/0", "rediss://:t@h:6379/0?ssl_ca_certs=/ca"],
)
def test_settings_accept_the_cluster_and_tls_schemes(url: str) -> None:
    from udf_service.config import Settings

    assert Settings.from_env({"SIXSENSE_SIMULATE": "1", "UDF_STATE_URL": url}).state_url == url


def test_unreachable_cluster_starts_and_fails_fast_with_state_error() -> None:
    """Like one server: opening does not fail; each call raises StateError within seconds."""
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = state_from_url(f"redis+cluster://127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(StateError):
        state.ping()
    with pytest.raises(StateError):
        state.fetch_push({"k": b""}, 0)
    assert time.monotonic() - started < 15
    state.close()
