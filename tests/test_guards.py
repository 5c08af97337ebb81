"""Credit guards through the service: the 402 circuit, the daily budget, the default country."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures import runtime_of
from udf_service.testing.snowflake import in_process


def test_402_opens_the_circuit_and_stops_calls(make_app: Any) -> None:
    """After a 402, rows get quota_exhausted without further upstream calls until the cool-down."""
    app = make_app(upstream_concurrency=1)
    sim = runtime_of(app).simulator
    sim.set_faults([{"status": 402, "times": 1000}])
    rows = [[f"q{i}@quota.com", "US"] for i in range(10)]
    values = in_process(app, max_batch_rows=10).query(rows)
    assert {v["status"] for v in values} == {"quota_exhausted"}
    assert "402" in values[0]["error"] and "credit" in values[0]["error"]
    assert sim.stats()["calls"] == 1
    assert app.test_client().get("/usage").get_json()["quota_circuit"]["open"] is True
    cached = in_process(app)
    cached.url += "/cached"
    assert cached.query([["new@quota.com", "US"]])[0]["status"] == "quota_exhausted"
    assert sim.stats()["calls"] == 1


def test_circuit_closes_after_the_cooldown(make_app: Any) -> None:
    """Once UDF_QUOTA_COOLDOWN_S has passed, calls resume."""
    app = make_app(quota_cooldown_s=0.5)
    runtime_of(app).simulator.set_faults([{"status": 402, "times": 1}])
    caller = in_process(app)
    assert caller.query([["a@acme.com", "US"]])[0]["status"] == "quota_exhausted"
    time.sleep(0.7)
    assert caller.query([["a@acme.com", "US"]])[0]["status"] == "ok"


def test_daily_budget_caps_calls(make_app: Any) -> None:
    """With UDF_DAILY_CALL_BUDGET=5, the sixth new lead and later get budget_exhausted, uncalled;
    /usage's calls today equal the upstream's own count."""
    app = make_app(daily_call_budget=5)
    sim = runtime_of(app).simulator
    rows = [[f"b{i}@budget.com", "US"] for i in range(8)]
    values = in_process(app, max_batch_rows=8).query(rows)
    assert sorted(v["status"] for v in values) == ["budget_exhausted"] * 3 + ["ok"] * 5, values
    assert sim.stats()["calls"] == 5
    usage = app.test_client().get("/usage").get_json()
    assert usage["daily_budget_left"] == 0 and usage["calls_today"] == 5 == sim.stats()["calls"]
    repeat = in_process(app, max_batch_rows=8).query(rows)
    assert [v["status"] for v in repeat].count("budget_exhausted") == 3, "cached leads still answer"


def test_budget_under_faults_counts_what_6sense_counts(make_app: Any) -> None:
    """Budget 50 with 40 % of calls failing: at most 50 requests reach 6sense, and /usage's
    calls today is exactly the upstream's count; matched leads are what it bills."""
    app = make_app(daily_call_budget=50)
    sim = runtime_of(app).simulator
    sim.set_faults([{"status": 503, "match": f"f{i}@", "times": 1} for i in range(0, 80, 3)])
    values = in_process(app, max_batch_rows=40).query([[f"f{i}@faults{i}.com", "US"] for i in range(80)])
    usage = app.test_client().get("/usage").get_json()
    assert sim.stats()["calls"] <= 50 and usage["calls_today"] == sim.stats()["calls"]
    assert usage["matched_today"] == sum(1 for v in values if v["status"] == "ok")


def test_default_country_fills_missing_countries(make_app: Any) -> None:
    """SIXSENSE_DEFAULT_COUNTRY turns a row without country into a call instead of invalid_input."""
    app = make_app(default_country="USA")
    values = in_process(app).query([["a@acme.com", None], ["b@acme.com", ""]])
    assert [v["status"] for v in values] == ["ok", "ok"]
