"""Paying 6sense once per lead: dedupe, claims, retries of a batch id, restarts, the shared limiter.

Each test runs on both state backends (SQLite and Redis) through `udf-service serve --workers 2`.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from tests.fixtures import Simulator
from tests.leadgen import expected_value, stable
from tests.snowflake_caller import SnowflakeCaller

FAST = {"SIXSENSE_RATE_LIMIT": "60000/minute"}


def _leads(count: int, prefix: str) -> list[list[Any]]:
    countries = ["US", "USA", "United States", "us"]
    return [[f"{prefix}{i}@firm{i % 60}.com", countries[i % 4]] for i in range(count)]


def test_three_passes_duplicates_and_a_retried_batch_cost_one_call_per_lead(
    service_factory: Any, simulator: Simulator, state_url: str
) -> None:
    """300 leads x 3 queries, each twice per query, plus a re-sent batch id: one call per lead."""
    service = service_factory(simulator.url, state_url, workers=2, env=FAST)
    leads = _leads(300, "econ")
    caller = SnowflakeCaller(service.function_url, max_batch_rows=50, parallel=4)
    for seed in range(3):
        rows = leads + leads
        random.Random(seed).shuffle(rows)
        values = caller.query(rows)
        assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    retried = [
        threading.Thread(target=caller.send_batch, args=(leads[:50], "q-retry", 0, "q-retry:1:0:0:0"))
        for _ in range(3)
    ]
    for thread in retried:
        thread.start()
    for thread in retried:
        thread.join(timeout=60)
    calls = simulator.calls_by_email()
    assert len(calls) == 300
    assert set(calls.values()) == {1}


def test_restart_serves_earlier_leads_from_cache(
    service_factory: Any, simulator: Simulator, state_url: str
) -> None:
    """After a restart, leads fetched before cost zero upstream calls and say from_cache."""
    rows = _leads(80, "restart")
    first = service_factory(simulator.url, state_url, workers=2, env=FAST)
    before = SnowflakeCaller(first.function_url).query(rows)
    assert first.stop() == 0
    calls = simulator.stats()["calls"]
    second = service_factory(simulator.url, state_url, workers=2, env=FAST)
    after = SnowflakeCaller(second.function_url).query(rows)
    assert simulator.stats()["calls"] == calls == 80
    assert [stable(v) for v in after] == [stable(v) for v in before]
    assert all(v["from_cache"] for v in after)


def test_shared_limiter_keeps_two_workers_under_the_upstream_limit(
    service_factory: Any, simulator_factory: Any, state_url: str
) -> None:
    """Upstream enforcing 10/s, SIXSENSE_RATE_LIMIT=600/minute, 2 workers: zero 429s, every row exact."""
    simulator = simulator_factory(rate_limit="10/second")
    service = service_factory(simulator.url, state_url, workers=2, env={"SIXSENSE_RATE_LIMIT": "600/minute"})
    rows = _leads(120, "rate")
    started = time.monotonic()
    values = SnowflakeCaller(service.function_url, max_batch_rows=30, parallel=4).query(rows)
    elapsed = time.monotonic() - started
    stats = simulator.stats()
    assert "429" not in stats["statuses"], stats["statuses"]
    assert stats["max_window_count"] <= 10
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    print(f"achieved {stats['calls'] / elapsed:.2f} calls/s against a limit of 10/s")


def test_two_instances_share_one_limiter_on_redis(
    service_factory: Any, simulator_factory: Any, redis_url: str
) -> None:
    """Two service instances on one Redis: together they stay under the upstream's 10/s."""
    simulator = simulator_factory(rate_limit="10/second")
    env = {"SIXSENSE_RATE_LIMIT": "600/minute"}
    services = [service_factory(simulator.url, redis_url, workers=2, env=env) for _ in range(2)]
    halves = [_leads(60, "twin-a"), _leads(60, "twin-b")]
    results: dict[int, list[Any]] = {}

    def run(index: int) -> None:
        results[index] = SnowflakeCaller(services[index].function_url, max_batch_rows=20).query(halves[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stats = simulator.stats()
    assert "429" not in stats["statuses"] and stats["max_window_count"] <= 10
    for index in range(2):
        assert [stable(v) for v in results[index]] == [expected_value(r) for r in halves[index]]
    assert set(simulator.calls_by_email().values()) == {1}
