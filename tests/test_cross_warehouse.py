"""One engine, three warehouses, one cache: Snowflake and BigQuery through the app in process,
Redshift through the Lambda handler in this process, all on the same state backend. A lead
fetched through one warehouse is served from the cache to the others. The app and the Lambda
container each answer from their own simulator; what 6sense would count is the sum of both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests import bigquery_caller
from tests.fixtures import runtime_of
from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from tests.redshift_caller import LocalLambda, RedshiftCaller, lambda_environment
from udf_service import redshift_lambda
from udf_service.testing.snowflake import in_process

Query = Callable[[list[list[Any]]], list[Any]]


class Warehouses(dict[str, Query]):
    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def calls_by_email(self) -> Counter[str]:
        total: Counter[str] = Counter(runtime_of(self.app).simulator.calls_by_email())
        total.update(redshift_lambda.container_runtime().simulator.calls_by_email())
        return total


@pytest.fixture
def warehouses(make_app: Any, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouses]:
    """Each warehouse's query function, all three on one state backend."""
    app = make_app(state_url=state_url)
    lambda_environment(monkeypatch, None, state_url)
    found = Warehouses(app)
    found["snowflake"] = in_process(app, max_batch_rows=100).query
    found["bigquery"] = bigquery_caller.in_process(app, max_batching_rows=50).query
    found["redshift"] = RedshiftCaller(LocalLambda(redshift_lambda.handler), max_batch_rows=100).query
    yield found
    redshift_lambda.close()


def test_three_warehouses_at_once_pay_once_per_lead(warehouses: Warehouses) -> None:
    """The same 400 leads through all three warehouses at once: exact values, one upstream call each."""
    rows = make_rows(400, seed=31)
    with ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(query, rows) for name, query in warehouses.items()}
        answers = {name: future.result() for name, future in futures.items()}
    expected = [expected_value(r) for r in rows]
    for name, values in answers.items():
        assert [stable(v) for v in values] == expected, name
    calls = warehouses.calls_by_email()
    assert set(calls) == unique_valid_emails(rows)
    assert set(calls.values()) == {1}, "each unique lead is fetched once across all warehouses"


def test_a_lead_fetched_through_one_warehouse_is_cached_for_the_others(warehouses: Warehouses) -> None:
    """Each warehouse fetches a third; then every warehouse answers all 400 rows from the cache."""
    rows = make_rows(400, seed=32)
    thirds = [rows[:133], rows[133:266], rows[266:]]
    for query, third in zip(warehouses.values(), thirds, strict=True):
        query(third)
    calls = sum(warehouses.calls_by_email().values())
    expected = [expected_value(r) for r in rows]
    for name, query in warehouses.items():
        values = query(rows)
        assert [stable(v) for v in values] == expected, name
        assert all(v["from_cache"] for v in values if v["status"] != "invalid_input"), name
    assert sum(warehouses.calls_by_email().values()) == calls, "the second round costs nothing upstream"
    assert set(warehouses.calls_by_email().values()) == {1}
