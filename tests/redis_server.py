"""Pytest plugin: a real ``redis-server`` on a free loopback port, for the tests that need one.

Fixtures:

- ``redis_server`` (session): the running `udf_service.testing.redis.RedisServer`, with ``.url``,
  ``.port``, ``.pid``, ``.restart()``, ``.pause()``/``.resume()`` and ``.stop()``.
- ``redis_url`` (function): the server's URL after ``FLUSHDB``: no test sees another's keys.
- ``redis_cluster`` / ``redis_cluster_url``: a real three-node Redis Cluster (``redis+cluster://``),
  flushed before each test; ``redis_tls_server`` / ``redis_tls_url``: a TLS-only server with a
  throwaway CA (``rediss://...?ssl_ca_certs=...``); ``redis_tls_cluster`` / ``redis_tls_cluster_url``:
  both at once (``rediss+cluster://``). All from `udf_service.testing.redis_cluster`.

Without the binary the tests skip, except under ``CI=true``, where they fail. Every test that uses
one of these fixtures is marked ``redis``. Only the process started here is ever stopped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from udf_service.testing.redis import INSTALL, RedisServer, redis_binary, start_redis
from udf_service.testing.redis_cluster import RedisCluster, TLSRedisServer, start_cluster, start_tls_redis

MISSING = f"redis-server not installed: {INSTALL}"
Server = TypeVar("Server", RedisServer, RedisCluster, TLSRedisServer)


def require_redis() -> None:
    """Skip (or, under CI=true, fail) when redis-server is not installed."""
    if redis_binary() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {MISSING}")
        pytest.skip(MISSING)


def _session_process(prefix: str, start: Callable[[Path], Server]) -> Iterator[Server]:
    """Start one server (or cluster) in a temp dir for the session, and stop only it."""
    require_redis()
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        server = start(Path(workdir))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port for the whole session."""
    yield from _session_process("udf-redis-", start_redis)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its database flushed first."""
    redis_server.flushdb()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """Three cluster-enabled redis-server masters on free loopback ports, for the whole session."""
    yield from _session_process("udf-redis-cluster-", start_cluster)


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    """The cluster's ``redis+cluster://`` URL, every node flushed first."""
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture(scope="session")
def redis_tls_cluster() -> Iterator[RedisCluster]:
    """A three-node cluster that speaks only TLS (clients and cluster bus), like ElastiCache
    Serverless, for the whole session."""
    yield from _session_process("udf-redis-tls-cluster-", partial(start_cluster, tls=True))


@pytest.fixture
def redis_tls_cluster_url(redis_tls_cluster: RedisCluster) -> str:
    """The TLS cluster's ``rediss+cluster://`` URL (with its CA), every node flushed first."""
    redis_tls_cluster.flushall()
    return redis_tls_cluster.url


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[TLSRedisServer]:
    """A TLS-only redis-server (throwaway CA) on a free loopback port, for the whole session."""
    yield from _session_process("udf-redis-tls-", start_tls_redis)


@pytest.fixture
def redis_tls_url(redis_tls_server: TLSRedisServer) -> str:
    """The TLS server's ``rediss://`` URL (with its CA), its database flushed first."""
    redis_tls_server.flushdb()
    return redis_tls_server.url


REDIS_FIXTURES = {"redis_server", "redis_url", "redis_cluster", "redis_cluster_url"}
REDIS_FIXTURES |= {"redis_tls_server", "redis_tls_url", "redis_tls_cluster", "redis_tls_cluster_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server ``redis``, so ``-m 'not redis'`` deselects them."""
    for item in items:
        if REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)
