"""A redeploy pays nothing for answers still fresh, in every deployment the docs describe.

Each case is one documented deployment's state setting. A real `udf-service serve` answers a
query against the simulator (one process, counting calls), is stopped, and a *new* service
process on the same configured state answers the same leads: 0 upstream calls, every value from
the cache. The state itself outlives the service, as the deployment keeps it:

- ``sqlite-on-a-volume`` (a Docker named volume, or the SPCS block volume: the same setting):
  ``sqlite:////var/lib/udf/state.db`` on a volume that outlives the container (here a directory
  that outlives the process);
- ``aws-elasticache`` (the Terraform default): ``rediss://:<auth token>@host:6379/0``;
- ``aws-serverless-valkey`` (``state_store = "serverless"``): cluster mode over TLS,
  ``rediss+cluster://``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.leadgen import expected_value, stable
from tests.redis_server import require_redis
from udf_service.testing.redis_cluster import start_tls_redis
from udf_service.testing.snowflake import SnowflakeCaller

pytestmark = pytest.mark.e2e

DEPLOYMENTS = ["sqlite-on-a-volume", "aws-elasticache", "aws-serverless-valkey"]


@pytest.fixture
def configured_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The UDF_STATE_URL the deployment configures, on storage that outlives the service."""
    kind = request.param
    if kind == "sqlite-on-a-volume":
        volume = tmp_path / "volume"  # what the named volume / block volume mounts at /var/lib/udf
        volume.mkdir()
        yield f"sqlite:///{volume}/state.db"
    elif kind == "aws-elasticache":
        require_redis()
        server = start_tls_redis(tmp_path / "elasticache", password="auth-token-0123456789abcdef")
        try:
            yield server.url
        finally:
            server.stop()
    else:
        yield request.getfixturevalue("redis_tls_cluster_url")


@pytest.mark.parametrize("configured_state", DEPLOYMENTS, indirect=True)
def test_a_new_service_on_the_same_state_pays_nothing(
    service_factory: Any, simulator: Any, configured_state: str
) -> None:
    rows = [[f"redeploy{i}@firm{i % 9}.com", ["US", "USA", "United States"][i % 3]] for i in range(40)]
    first = service_factory(simulator.url, configured_state, workers=2)
    before = SnowflakeCaller(first.function_url, max_batch_rows=20).query(rows)
    assert [stable(v) for v in before] == [expected_value(r) for r in rows]
    assert simulator.stats()["calls"] == 40
    assert first.stop(signal.SIGTERM) == 0

    second = service_factory(simulator.url, configured_state, workers=2)
    after = SnowflakeCaller(second.function_url, max_batch_rows=20).query(rows)
    assert simulator.stats()["calls"] == 40, "the redeployed service paid again"
    assert all(v["from_cache"] for v in after)
    assert [stable(v) for v in after] == [stable(v) for v in before]
