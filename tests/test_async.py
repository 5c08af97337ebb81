"""Long queries: 202 + polling, joining a job by batch id, unknown batch ids, the cached route's
background fetch; then (e2e) worker death and graceful hand-off, where processes are the subject.
"""

from __future__ import annotations

import gzip
import os
import signal
import time
from typing import Any

import httpx
import orjson
import pytest
from flask.testing import FlaskClient

from tests.fixtures import ServiceProcess, SimulatorProcess, runtime_of
from tests.leadgen import expected_value, stable
from udf_service.config import RateLimit
from udf_service.testing.snowflake import SnowflakeCaller, in_process

SLOW = {"rate_limit": RateLimit(3600, 60.0), "sync_budget_s": 0.5}  # 60 calls/s, 0.5 s to answer
BATCH = "sf-external-function-query-batch-id"


def _leads(count: int, prefix: str) -> list[list[Any]]:
    return [[f"{prefix}{i}@corp{i % 50}.com", "US"] for i in range(count)]


def _body(rows: list[list[Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"data": [[n, *args] for n, args in enumerate(rows)]}))


def _post(client: FlaskClient, rows: list[list[Any]], batch_id: str, path: str = "") -> Any:
    headers = {BATCH: batch_id, "Content-Encoding": "gzip"}
    return client.post("/snowflake/people/full" + path, data=_body(rows), headers=headers)


def _poll(client: FlaskClient, batch_id: str, timeout_s: float = 60) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        response = client.get("/snowflake/people/full", headers={BATCH: batch_id})
        if response.status_code != 202:
            return response
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still 202 after {timeout_s} s")


def _values(response: Any) -> list[Any]:
    assert response.status_code == 200, response.get_data()[:300]
    return [value for _, value in response.get_json()["data"]]


def test_batch_over_the_sync_budget_goes_async(make_app: Any) -> None:
    """A batch needing 4x the sync budget answers 202 at once; polling ends in 200, every row exact."""
    app = make_app(**SLOW)
    client, sim = app.test_client(), runtime_of(app).simulator
    rows = _leads(120, "async")  # 120 calls at 60/s = 2 s = 4 x UDF_SYNC_BUDGET_S
    started = time.monotonic()
    assert _post(client, rows, "q-async:1:0:0:0").status_code == 202
    assert time.monotonic() - started < 0.5
    values = _values(_poll(client, "q-async:1:0:0:0"))
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert set(sim.calls_by_email().values()) == {1} and len(sim.calls_by_email()) == 120


def test_snowflake_caller_polls_to_completion(make_app: Any) -> None:
    """The Snowflake-style caller (POST, then GET polls) gets exact rows for async batches."""
    app = make_app(**SLOW)
    rows = _leads(100, "caller")
    caller = in_process(app, max_batch_rows=50, parallel=2)
    values = caller.query(rows)
    assert caller.stats.polls > 0
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]


def test_repeated_post_joins_the_job(make_app: Any) -> None:
    """Snowflake's retry of a batch id joins the running job: no new upstream work, then the result."""
    app = make_app(**SLOW)
    client, sim = app.test_client(), runtime_of(app).simulator
    rows = _leads(90, "join")
    assert _post(client, rows, "q-join").status_code == 202
    assert _post(client, rows, "q-join").status_code == 202
    first = _values(_poll(client, "q-join"))
    again = _values(_post(client, rows, "q-join"))  # finished: the stored result at once
    assert [stable(v) for v in again] == [stable(v) for v in first]
    assert sum(sim.calls_by_email().values()) == 90


def test_batch_id_reused_for_other_rows_is_409(make_app: Any) -> None:
    """A batch id names one batch, also after the job finished (its rows kept as a digest)."""
    client = make_app(**SLOW).test_client()
    assert _post(client, _leads(60, "a"), "q-409").status_code == 202
    assert _post(client, _leads(60, "b"), "q-409").status_code == 409
    _poll(client, "q-409")
    assert _post(client, _leads(60, "b"), "q-409").status_code == 409


def test_unknown_batch_id_is_202_for_a_grace_then_a_clear_error(make_app: Any) -> None:
    """A poll for an unknown id is 202 while its worker may put it back (2 leases), then an error
    that ends the query with a reason, instead of 600 s of waiting."""
    client = make_app(job_lease_s=0.5).test_client()
    assert client.get("/snowflake/people/full", headers={BATCH: "nope"}).status_code == 202
    time.sleep(1.1)
    response = client.get("/snowflake/people/full", headers={BATCH: "nope"})
    assert response.status_code == 503 and "unknown batch id" in response.get_json()["error"]


def test_cached_route_answers_pending_then_ok(make_app: Any) -> None:
    """40 new leads through the cached route: all pending at once, fetched in the background,
    then all ok from the cache; 40 upstream calls. (2,000 leads: `udf-service bench --only soak`.)"""
    app = make_app(rate_limit=RateLimit(1200, 60.0))
    sim = runtime_of(app).simulator
    rows = [[f"bulk{i}@bulk{i % 13}.com", "US"] for i in range(40)]
    caller = in_process(app, max_batch_rows=20, parallel=2)
    caller.url += "/cached"
    assert {v["status"] for v in caller.query(rows)} == {"pending"}
    end = time.monotonic() + 30
    while sim.stats()["calls"] < 40 and time.monotonic() < end:
        time.sleep(0.05)
    runtime_of(app).completer.flush(5)
    assert [stable(v) for v in caller.query(rows)] == [expected_value(r) for r in rows]
    assert sim.stats()["calls"] == 40 and set(sim.calls_by_email().values()) == {1}


def test_waiting_query_goes_before_the_backfill(make_app: Any) -> None:
    """Leads a query waits for are fetched before queued background work: the backfill does not
    make interactive queries wait behind it."""
    app = make_app(rate_limit=RateLimit(600, 60.0), sync_budget_s=5)
    client, sim = app.test_client(), runtime_of(app).simulator
    backfill = [[f"bg{i}@bg{i}.com", "US"] for i in range(100)]
    assert client.post(
        "/snowflake/people/full/cached", data=_body(backfill), headers={"Content-Encoding": "gzip"}
    )
    time.sleep(0.3)
    values = _values(_post(client, _leads(5, "urgent"), "q-urgent"))
    assert {v["status"] for v in values} <= {"ok", "no_match"}
    assert sim.stats()["calls"] < 30  # answered in about 0.5 s at 10/s, long before the backfill


def test_too_many_async_batches_get_429_then_succeed(make_app: Any) -> None:
    """Past UDF_MAX_ASYNC_BATCHES a new batch gets 429 with a reason; Snowflake's retry then succeeds."""
    app = make_app(**SLOW, max_async_batches=1)
    client = app.test_client()
    assert _post(client, _leads(60, "busy-a"), "q-busy-a").status_code == 202
    second = _post(client, _leads(60, "busy-b"), "q-busy-b")
    assert second.status_code == 429 and "overloaded" in second.get_json()["error"]
    values = in_process(app, max_batch_rows=60, max_retry_s=60).query(_leads(60, "busy-b"))
    assert [stable(v) for v in values] == [expected_value(r) for r in _leads(60, "busy-b")]


# ------------------------------------------------------------------------------ processes
LEASES = {"UDF_JOB_LEASE_S": "1", "UDF_FETCH_LEASE_S": "1", "UDF_SYNC_BUDGET_S": "0.5"}


def _worker_of(service: ServiceProcess, batch_id: str) -> int:
    for line in service.log_text().splitlines():
        if line.startswith("{") and batch_id in line:
            record = orjson.loads(line)
            if record.get("event") == "batch" and record.get("http_status") == 202:
                return int(record["pid"])
    raise AssertionError("no 202 logged for the batch")


def _live_poll(service: ServiceProcess, batch_id: str, timeout_s: float = 60) -> list[Any]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        response = httpx.get(service.function_url, headers={BATCH: batch_id}, timeout=30)
        if response.status_code != 202:
            assert response.status_code == 200, response.text[:300]
            return [value for _, value in response.json()["data"]]
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still 202 after {timeout_s} s")


@pytest.mark.e2e
def test_kill_9_of_the_job_worker_loses_nothing(service_factory: Any, simulator: SimulatorProcess) -> None:
    """kill -9 of the worker waiting for a job midway: the other worker resumes it (1 s lease),
    polling completes exact; extra upstream calls are at most the calls in flight at the kill."""
    env = {"SIXSENSE_RATE_LIMIT": "240/minute", **LEASES}
    service = service_factory(simulator.url, workers=2, env=env)
    rows = _leads(24, "kill")  # 6 s of calls at 4/s
    body = _body(rows)
    response = httpx.post(
        service.function_url, content=body, headers={BATCH: "q-kill", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 202
    worker = _worker_of(service, "q-kill")
    end = time.monotonic() + 30
    while simulator.stats()["calls"] < 6 and time.monotonic() < end:
        time.sleep(0.02)
    os.kill(worker, signal.SIGKILL)
    values = _live_poll(service, "q-kill")
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    calls = simulator.calls_by_email()
    assert len(calls) == 24
    assert sum(calls.values()) - 24 <= 2, calls  # a call in the air when the worker died is paid again


@pytest.mark.e2e
def test_sigterm_hands_a_running_job_to_the_next_instance(
    service_factory: Any, simulator: SimulatorProcess, tmp_path: Any
) -> None:
    """SIGTERM mid-job: slot waits are given back at once, the job is handed off, and the next
    instance on the same state finishes it; no lead is paid twice."""
    env = {"SIXSENSE_RATE_LIMIT": "120/minute", "UDF_SHUTDOWN_GRACE_S": "1", **LEASES}
    state = f"sqlite:///{tmp_path}/handoff.db"
    first = service_factory(simulator.url, state, workers=1, env=env)
    rows = _leads(20, "handoff")
    headers = {BATCH: "q-handoff", "Content-Encoding": "gzip"}
    assert httpx.post(first.function_url, content=_body(rows), headers=headers).status_code == 202
    time.sleep(2)
    assert first.stop(signal.SIGTERM) == 0
    second = service_factory(simulator.url, state, workers=1, env=env)
    values = _live_poll(second, "q-handoff")
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert set(simulator.calls_by_email().values()) == {1}


@pytest.mark.e2e
def test_caller_follows_snowflakes_documented_poll_loop(service: ServiceProcess) -> None:
    """Against the live service the caller's poll loop ends on 200 only (no 5xx retried)."""
    caller = SnowflakeCaller(service.function_url, max_batch_rows=30)
    values = caller.query(_leads(30, "loop"))
    assert {v["status"] for v in values} <= {"ok", "no_match"}
