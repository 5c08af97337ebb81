"""Fixtures: the service in process (most tests), and as real processes (end-to-end tests).

In process: `make_app(**settings)` builds `create_app(Settings(simulate=True, ...))` on a SQLite
file in the test's tmp dir, answered by the simulator as an httpx transport; `client` is the
Flask test client, `caller` calls it the way Snowflake does, `sim` is its simulator (call counts,
faults). Every app made is shut down after the test.

As processes (tests marked `e2e`): `simulator_factory`/`simulator` start the simulator,
`service_factory` starts `udf-service serve`; all come from `udf_service.testing.processes`, the
same code the demo and the benchmarks use.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from udf_service.app import create_app
from udf_service.config import RateLimit, Settings
from udf_service.runtime import Runtime
from udf_service.simulator import Simulator
from udf_service.testing.processes import (
    TOKEN,
    ServiceProcess,
    SimulatorProcess,
    start_service,
    start_simulator,
)
from udf_service.testing.snowflake import SnowflakeCaller, in_process

__all__ = ["TOKEN", "ServiceProcess", "SimulatorProcess"]

FAST = RateLimit(60000, 60.0)


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["udf"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """In-process defaults: the simulator, a SQLite file of this test's own, a fast limit."""
    return Settings(simulate=True, state_url=f"sqlite:///{tmp_path}/state.db", rate_limit=FAST)


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Any]:
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        transport = overrides.pop("transport", None)
        clock = overrides.pop("clock", None)
        options: dict[str, Any] = {"transport": transport}
        if clock is not None:
            options["clock"] = clock
        app = create_app(replace(settings, **overrides), **options)
        made.append(app)
        return app

    yield factory
    for app in made:
        runtime_of(app).shutdown(grace_s=0.5)


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return runtime_of(app)


@pytest.fixture
def sim(runtime: Runtime) -> Simulator:
    """The in-process app's simulator (its call counts are the upstream's own count)."""
    assert runtime.simulator is not None
    return runtime.simulator


@pytest.fixture
def caller(app: Flask) -> SnowflakeCaller:
    return in_process(app, max_batch_rows=50, parallel=4)


# ---------------------------------------------------------------------------------- processes
@pytest.fixture
def simulator_factory() -> Iterator[Any]:
    started: list[SimulatorProcess] = []

    def factory(**options: Any) -> SimulatorProcess:
        process = start_simulator(**options)
        started.append(process)
        return process

    yield factory
    for process in started:
        process.stop()


@pytest.fixture
def simulator(simulator_factory: Any) -> SimulatorProcess:
    return simulator_factory()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def factory(simulator_url: str | None, state_url: str | None = None, **options: Any) -> ServiceProcess:
        state = state_url or f"sqlite:///{tmp_path}/state.db"
        service = start_service(simulator_url, state, tmp_path / f"service-{len(started)}.log", **options)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop(signal.SIGTERM)


@pytest.fixture
def service(service_factory: Any, simulator: SimulatorProcess) -> ServiceProcess:
    return service_factory(simulator.url)
