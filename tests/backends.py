"""The `state_url` fixture: every test that uses it runs on SQLite and on Redis (started on
loopback by `tests.redis_server`). Cluster and TLS are a question of the backend, answered by the
state contract on each (tests/state/test_redis_cluster.py), the economy scenario and the redeploy
test; the behaviour tests need not run on them again."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("redis_url")
