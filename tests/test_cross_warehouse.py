"""One engine, three warehouses, one cache: Snowflake and BigQuery through the real service over
HTTP, Redshift through the Lambda handler in this process, all on the same state backend and the
same simulator. A lead fetched through one warehouse is served from the cache to the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.bigquery_caller import BigQueryCaller
from tests.fixtures import Service, Simulator
from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from tests.redshift_caller import LocalLambda, RedshiftCaller, lambda_environment
from tests.snowflake_caller import SnowflakeCaller
from udf_service.protocols import redshift

Query = Callable[[list[list[Any]]], list[Any]]


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return f"sqlite:///{tmp_path}/shared.db"


@pytest.fixture
def warehouses(
    service_factory: Any, simulator: Simulator, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Query]]:
    """Each warehouse's query function, all three on one state backend and one simulator."""
    service: Service = service_factory(simulator.url, state_url, env={"SIXSENSE_RATE_LIMIT": "60000/minute"})
    lambda_environment(monkeypatch, simulator.url, state_url)
    yield {
        "snowflake": SnowflakeCaller(service.function_url, max_batch_rows=100).query,
        "bigquery": BigQueryCaller(f"{service.url}/bigquery/people/full", max_batching_rows=50).query,
        "redshift": RedshiftCaller(LocalLambda(redshift.handler), max_batch_rows=100).query,
    }
    redshift.close()


def test_three_warehouses_at_once_pay_once_per_lead(
    warehouses: dict[str, Query], simulator: Simulator
) -> None:
    """The same 1,000 leads through all three warehouses at once: exact values, one upstream call each."""
    rows = make_rows(1000, seed=31)
    with ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(query, rows) for name, query in warehouses.items()}
        answers = {name: future.result() for name, future in futures.items()}
    expected = [expected_value(r) for r in rows]
    for name, values in answers.items():
        assert [stable(v) for v in values] == expected, name
    calls = simulator.calls_by_email()
    assert set(calls) == unique_valid_emails(rows)
    assert set(calls.values()) == {1}, "each unique lead is fetched once across all warehouses"


def test_a_lead_fetched_through_one_warehouse_is_cached_for_the_others(
    warehouses: dict[str, Query], simulator: Simulator
) -> None:
    """Each warehouse fetches a third; then every warehouse answers all 1,000 rows from the cache."""
    rows = make_rows(1000, seed=32)
    thirds = [rows[:333], rows[333:666], rows[666:]]
    for query, third in zip(warehouses.values(), thirds, strict=True):
        query(third)
    calls = simulator.stats()["calls"]
    expected = [expected_value(r) for r in rows]
    for name, query in warehouses.items():
        values = query(rows)
        assert [stable(v) for v in values] == expected, name
        assert all(v["from_cache"] for v in values if v["status"] != "invalid_input"), name
    assert simulator.stats()["calls"] == calls, "the second round costs nothing upstream"
    assert set(simulator.calls_by_email().values()) == {1}
