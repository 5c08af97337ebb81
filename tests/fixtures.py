"""Fixtures that start real processes on loopback: the 6sense simulator and `udf-service serve`.

The processes come from `udf_service.harness`, the same code the demo and the benchmarks use.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from udf_service.harness import TOKEN, Service, Simulator, start_service, start_simulator

__all__ = ["TOKEN", "Service", "Simulator"]


@pytest.fixture
def simulator_factory() -> Iterator[Any]:
    started: list[Simulator] = []

    def factory(**options: Any) -> Simulator:
        simulator = start_simulator(**options)
        started.append(simulator)
        return simulator

    yield factory
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(simulator_factory: Any) -> Simulator:
    return simulator_factory()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Service] = []

    def factory(simulator_url: str | None, state_url: str | None = None, **options: Any) -> Service:
        state = state_url or f"sqlite:///{tmp_path}/state.db"
        service = start_service(simulator_url, state, tmp_path / f"service-{len(started)}.log", **options)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop(signal.SIGTERM)


@pytest.fixture
def service(service_factory: Any, simulator: Simulator) -> Service:
    return service_factory(simulator.url)
