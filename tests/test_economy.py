"""Paying 6sense once per lead: dedupe, retries of a batch id, restarts, the shared limiter.

In process where one worker is the subject; through `udf-service serve` (e2e) where several
workers or instances sharing one state are.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from tests.fixtures import runtime_of
from tests.leadgen import expected_value, stable
from udf_service.testing.snowflake import SnowflakeCaller, in_process


def _leads(count: int, prefix: str) -> list[list[Any]]:
    countries = ["US", "USA", "United States", "us"]
    return [[f"{prefix}{i}@firm{i % 60}.com", countries[i % 4]] for i in range(count)]


def test_three_passes_duplicates_and_a_retried_batch_cost_one_call_per_lead(make_app: Any) -> None:
    """300 leads x 3 queries, each twice per query, plus a re-sent batch id: one call per lead."""
    app = make_app()
    sim = runtime_of(app).simulator
    leads = _leads(300, "econ")
    caller = in_process(app, max_batch_rows=50, parallel=4)
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
    calls = sim.calls_by_email()
    assert len(calls) == 300
    assert set(calls.values()) == {1}


def test_restart_serves_earlier_leads_from_cache(make_app: Any, state_url: str) -> None:
    """A new service on the same state (a redeploy) pays nothing for leads fetched before, on
    either backend, and says from_cache."""
    rows = _leads(80, "restart")
    first = make_app(state_url=state_url)
    before = in_process(first).query(rows)
    runtime_of(first).shutdown(grace_s=1)
    second = make_app(state_url=state_url)
    after = in_process(second).query(rows)
    assert runtime_of(first).simulator.stats()["calls"] == 80
    assert runtime_of(second).simulator.stats()["calls"] == 0
    assert [stable(v) for v in after] == [stable(v) for v in before]
    assert all(v["from_cache"] for v in after)


def test_two_apps_on_one_state_fetch_each_lead_once(make_app: Any, state_url: str) -> None:
    """Two workers (here two apps in one process) on one state, the same leads at once: each
    lead is fetched by one of them, and both answer every row exactly."""
    first, second = make_app(state_url=state_url), make_app(state_url=state_url)
    rows = _leads(200, "twins")
    results: dict[int, list[Any]] = {}

    def run(index: int, app: Any) -> None:
        results[index] = in_process(app, max_batch_rows=25).query(rows)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for index in range(2):
        assert [stable(v) for v in results[index]] == [expected_value(r) for r in rows]
    calls: dict[str, int] = {}
    for app in (first, second):
        for email, count in runtime_of(app).simulator.calls_by_email().items():
            calls[email] = calls.get(email, 0) + count
    assert len(calls) == 200 and set(calls.values()) == {1}


@pytest.mark.e2e
def test_shared_limiter_keeps_two_workers_under_the_upstream_limit(
    service_factory: Any, simulator_factory: Any
) -> None:
    """Upstream enforcing 10/s (30 in any 3 s window), SIXSENSE_RATE_LIMIT=600/minute, 2 workers:
    zero 429s, every row exact, each lead paid once, and both workers fetched (any worker takes
    any batch's misses). 3 s windows: in 1 s ones the default 3 % headroom is 30 ms, less than a
    loaded 2-core machine's jitter between a sender's wake-up and its call (one 429 in a
    clean-clone CI run); two workers that did not share the limiter would send 20/s."""
    simulator = simulator_factory(rate_limit="30/3second")
    service = service_factory(simulator.url, workers=2, env={"SIXSENSE_RATE_LIMIT": "600/minute"})
    rows = _leads(60, "rate")
    started = time.monotonic()
    values = SnowflakeCaller(service.function_url, max_batch_rows=30, parallel=2).query(rows)
    elapsed = time.monotonic() - started
    stats = simulator.stats()
    assert "429" not in stats["statuses"], stats["statuses"]
    assert stats["max_window_count"] <= 30
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert set(simulator.calls_by_email().values()) == {1}
    print(f"achieved {stats['calls'] / elapsed:.2f} calls/s against a limit of 10/s")


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize("redis_kind", ["redis_url", "redis_tls_cluster_url"])
def test_two_instances_share_one_limiter_on_redis(
    service_factory: Any, simulator_factory: Any, redis_kind: str, request: pytest.FixtureRequest
) -> None:
    """Two service instances on one Redis (plain, a three-node cluster, TLS, both): together they stay
    under the upstream's 10/s (30 in any 3 s window), every row is exact and each lead costs one
    call (1.00 per lead). Two instances that did not share the limiter would send 20/s."""
    redis_url = request.getfixturevalue(redis_kind)
    # 3 s windows and 10 % headroom: 300 ms of slack. In 1 s windows the default 3 % is 30 ms, and
    # the check between a sender's wake-up and its call (a TLS cluster's round trip on a loaded
    # 2-core machine) varied by more than 100 ms: a 429 or two in 4 of 17 full-suite runs in one
    # day, at 3 % and at 10 %. 6sense's windows are minutes: there 3 % is 1.8 s.
    simulator = simulator_factory(rate_limit="30/3second")
    env = {"SIXSENSE_RATE_LIMIT": "600/minute", "UDF_RATE_HEADROOM": "0.1"}
    services = [service_factory(simulator.url, redis_url, workers=2, env=env) for _ in range(2)]
    halves = [_leads(40, "twin-a"), _leads(40, "twin-b")]
    results: dict[int, list[Any]] = {}

    def run(index: int) -> None:
        results[index] = SnowflakeCaller(services[index].function_url, max_batch_rows=20).query(halves[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stats = simulator.stats()
    assert "429" not in stats["statuses"] and stats["max_window_count"] <= 30
    for index in range(2):
        assert [stable(v) for v in results[index]] == [expected_value(r) for r in halves[index]]
    calls = simulator.calls_by_email()
    assert len(calls) == 80 and set(calls.values()) == {1}
    per_lead = sum(calls.values()) / len(calls)
    print(f"{redis_kind}: {per_lead:.2f} upstream calls per unique lead, 0 wrong rows")
