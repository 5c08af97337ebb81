"""Credit guards through the live service: the 402 circuit, the daily budget, the default country."""

from __future__ import annotations

from typing import Any

import requests

from tests.fixtures import Simulator
from tests.snowflake_caller import SnowflakeCaller

FAST = {"SIXSENSE_RATE_LIMIT": "60000/minute"}


def test_402_opens_the_circuit_and_stops_calls(service_factory: Any, simulator: Simulator) -> None:
    """After a 402, rows get quota_exhausted without further upstream calls until the cool-down."""
    simulator.faults([{"status": 402, "times": 1000}])
    service = service_factory(simulator.url, env={**FAST, "UDF_UPSTREAM_CONCURRENCY": "1"})
    rows = [[f"q{i}@quota.com", "US"] for i in range(10)]
    values = SnowflakeCaller(service.function_url, max_batch_rows=10).query(rows)
    assert {v["status"] for v in values} == {"quota_exhausted"}
    assert "402" in values[0]["error"] and "credit" in values[0]["error"]
    assert simulator.stats()["calls"] == 1
    usage = requests.get(f"{service.url}/usage", timeout=5).json()
    assert usage["quota_circuit"]["open"] is True
    cached = SnowflakeCaller(f"{service.function_url}/cached").query([["new@quota.com", "US"]])
    assert cached[0]["status"] == "quota_exhausted"
    assert simulator.stats()["calls"] == 1


def test_circuit_closes_after_the_cooldown(service_factory: Any, simulator: Simulator) -> None:
    """Once UDF_QUOTA_COOLDOWN_S has passed, calls resume."""
    import time

    simulator.faults([{"status": 402, "times": 1}])
    service = service_factory(simulator.url, env={**FAST, "UDF_QUOTA_COOLDOWN_S": "1"})
    first = SnowflakeCaller(service.function_url).query([["a@acme.com", "US"]])
    assert first[0]["status"] == "quota_exhausted"
    time.sleep(1.5)
    again = SnowflakeCaller(service.function_url).query([["a@acme.com", "US"]])
    assert again[0]["status"] == "ok"


def test_daily_budget_caps_calls(service_factory: Any, simulator: Simulator) -> None:
    """With UDF_DAILY_CALL_BUDGET=5, the sixth new lead and later get budget_exhausted, uncalled."""
    service = service_factory(simulator.url, env={**FAST, "UDF_DAILY_CALL_BUDGET": "5"})
    rows = [[f"b{i}@budget.com", "US"] for i in range(8)]
    values = SnowflakeCaller(service.function_url, max_batch_rows=8).query(rows)
    statuses = [v["status"] for v in values]
    assert statuses.count("budget_exhausted") == 3 and simulator.stats()["calls"] == 5
    usage = requests.get(f"{service.url}/usage", timeout=5).json()
    assert usage["daily_budget_left"] == 0 and usage["calls_today"] == 5
    repeat = SnowflakeCaller(service.function_url, max_batch_rows=8).query(rows)
    assert [v["status"] for v in repeat].count("budget_exhausted") == 3, "cached leads still answer"


def test_default_country_fills_missing_countries(service_factory: Any, simulator: Simulator) -> None:
    """SIXSENSE_DEFAULT_COUNTRY turns a row without country into a call instead of invalid_input."""
    service = service_factory(simulator.url, env={**FAST, "SIXSENSE_DEFAULT_COUNTRY": "USA"})
    values = SnowflakeCaller(service.function_url).query([["a@acme.com", None], ["b@acme.com", ""]])
    assert [v["status"] for v in values] == ["ok", "ok"]
