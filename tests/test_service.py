"""The service through its HTTP surface: the app in process (Flask + the simulator transport) and
a Snowflake-style caller; every value is compared with the flattening of what the upstream
answered. What needs gunicorn itself (workers, signals, start-up) is at the end, marked e2e.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures import SimulatorProcess, runtime_of
from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from udf_service.simulator import Simulator, SimulatorTransport
from udf_service.testing.snowflake import SnowflakeCaller, in_process


@pytest.mark.parametrize("compression", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("batch_rows", [1, 37, 200])
def test_rows_exact_in_any_batching(make_app: Any, batch_rows: int, compression: bool) -> None:
    """400 rows (repeats, odd spellings, invalid ones) in batches of 1/37/200, 4 in parallel: every
    row is exactly the upstream's answer, each unique lead fetched once."""
    app = make_app()
    sim = runtime_of(app).simulator
    rows = make_rows(400, seed=batch_rows)
    caller = in_process(app, max_batch_rows=batch_rows, parallel=4, compression=compression)
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    calls = sim.calls_by_email()
    assert set(calls) == unique_valid_emails(rows), "invalid rows must never reach 6sense"
    assert set(calls.values()) == {1}, "each unique lead is fetched once"
    assert caller.stats.retries == 0


def test_second_query_is_served_from_cache(caller: SnowflakeCaller, sim: Simulator) -> None:
    """A repeated query costs nothing upstream and says from_cache."""
    rows = make_rows(120, seed=5)
    first = caller.query(rows)
    calls = sim.stats()["calls"]
    second = caller.query(rows)
    assert sim.stats()["calls"] == calls
    assert [stable(v) for v in first] == [stable(v) for v in second]
    assert all(v["from_cache"] for v in second if v["status"] in ("ok", "no_match"))
    assert not any(v["from_cache"] for v in first[:1] if v["status"] == "ok")


def test_null_and_blank_emails_cost_nothing(caller: SnowflakeCaller, sim: Simulator) -> None:
    """NULL, blank and malformed emails are invalid_input rows without an upstream call."""
    rows: list[list[Any]] = [[None, "US"], ["", "US"], ["  ", None], ["nope", "US"], [None, None]]
    values = caller.query(rows)
    assert [v["status"] for v in values] == ["invalid_input"] * 5
    assert all(v["error"] for v in values)
    assert sim.stats()["calls"] == 0


def test_all_argument_shapes(caller: SnowflakeCaller) -> None:
    """Two to ten positional arguments, or one OBJECT, in one function each."""
    base = ["jane@acme.com", "US", "acme.com", "Acme", "CTO", "web", "Jane", "Doe", "IT", "Tech"]
    for count in range(2, 11):
        assert caller.query([base[:count]])[0]["status"] == "ok", count
    obj = caller.query([[{"email": base[0], "country": "US"}]])
    assert obj[0]["status"] == "ok" and obj[0]["company_domain"] == "acme.com"


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        pytest.param(b"{not json", {}, 400, "not valid JSON", id="not-json"),
        pytest.param(b'{"rows": []}', {}, 400, '"data"', id="no-data"),
        pytest.param(b'{"data": [["a", "x@y.co", "US"]]}', {}, 400, "integer", id="row-number"),
        pytest.param(orjson.dumps({"data": [[0, *range(12)]]}), {}, 400, "12 arguments", id="12-args"),
        pytest.param(b"xx", {"Content-Encoding": "br"}, 415, "Content-Encoding", id="brotli"),
        pytest.param(b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}, 400, "gzip", id="bad-gzip"),
        pytest.param(b"x" * (10 * 1024 * 1024 + 10), {}, 413, "size limit", id="over-10MB"),
        pytest.param(
            gzip.compress(b" " * (11 * 1024 * 1024)),
            {"Content-Encoding": "gzip"},
            413,
            "limit",
            id="gzip-bomb",
        ),
    ],
)
def test_malformed_requests_get_a_json_4xx(
    client: FlaskClient,
    caller: SnowflakeCaller,
    body: bytes,
    headers: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    """Each malformed request gets a 4xx JSON error naming the problem; the service stays healthy."""
    response = client.post("/snowflake/people/full", data=body, headers=headers)
    assert response.status_code == status
    assert fragment in response.get_json()["error"]
    assert client.get("/healthz").status_code == 200
    assert caller.query([["a@company1.com", "US"]])[0]["status"] in {"ok", "no_match"}


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    """404 and 405 are JSON too, the 405 with Allow."""
    assert client.get("/nope").get_json()["error"]
    response = client.put("/snowflake/people/full")
    assert (
        response.status_code == 405 and response.get_json()["error"] and "POST" in response.headers["Allow"]
    )


def test_health_ready_usage(client: FlaskClient, caller: SnowflakeCaller) -> None:
    """healthz says the version, readyz names the upstream, usage counts the calls made."""
    caller.query([["a@company1.com", "US"], [None, "US"]])
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["version"]
    ready = client.get("/readyz").get_json()
    assert ready == {"status": "ready", "upstream": "simulator", "state": "sqlite"}
    assert client.get("/usage").get_json()["calls_today"] == 1


def test_upstream_auth_failure_fails_the_batch_with_advice(make_app: Any) -> None:
    """A wrong token gets one upstream call per lead at most and a 424 that says what to fix;
    the batch after it is refused at once (the 401 opened a circuit), without a call."""
    simulator = Simulator(token="the-real-token")
    client = make_app(
        transport=SimulatorTransport(simulator), simulate=False, api_token="wrong"
    ).test_client()
    response = client.post(
        "/snowflake/people/full", data=b'{"data": [[0, "a@company1.com", "US"], [1, "b@company2.com", "US"]]}'
    )
    assert response.status_code == 424
    assert "SIXSENSE_API_TOKEN" in response.get_json()["error"]
    rejected = simulator.stats()["statuses"]["401"]
    assert 1 <= rejected <= 2
    again = client.post("/snowflake/people/full", data=b'{"data": [[0, "c@company3.com", "US"]]}')
    assert again.status_code == 424 and simulator.stats()["statuses"]["401"] == rejected


_ARG = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["jane@acme.com", "raj@globex.io", "x@gmail.com", "US", "Germany", ""]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.dictionaries(
        st.sampled_from(["email", "country", "title", "bogus"]), st.text(max_size=10), max_size=3
    ),
)
_ROWS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2**40), st.lists(_ARG, min_size=1, max_size=10)), max_size=40
)


def test_any_well_formed_batch_keeps_row_numbers_and_order(client: FlaskClient) -> None:
    """Any well-formed batch comes back with the same row numbers, in order, each with a status."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_ROWS)
    def check(rows: list[tuple[int, list[Any]]]) -> None:
        body = orjson.dumps({"data": [[n, *args] for n, args in rows]})
        response = client.post("/snowflake/people/full", data=body)
        assert response.status_code == 200, response.get_data()[:200]
        data = response.get_json()["data"]
        assert [row[0] for row in data] == [n for n, _ in rows]
        assert all(isinstance(value, dict) and value["status"] for _, value in data)

    check()


# ------------------------------------------------------------------------------ under gunicorn
@pytest.mark.e2e
def test_refuses_to_start_without_token(tmp_path: Path) -> None:
    """No token and no simulator: the service refuses to start and says how to fix it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIXSENSE_", "UDF_"))}
    result = subprocess.run(
        [sys.executable, "-m", "udf_service.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "SIXSENSE_API_TOKEN is not set" in result.stderr


@pytest.mark.e2e
def test_gunicorn_workers_answer_count_and_stop_cleanly(
    service_factory: Any, simulator: SimulatorProcess
) -> None:
    """Two workers behind gunicorn: exact rows, metrics summed across workers, the shared secret
    checked, and SIGTERM ends the service with exit code 0."""
    secret = {"UDF_AUTH_HEADER": "sf-custom-udf-secret", "UDF_AUTH_SECRET": "s3cret-value"}
    service = service_factory(simulator.url, workers=2, env=secret)
    assert httpx.post(service.function_url, content=b'{"data": []}').status_code == 401
    caller = SnowflakeCaller(
        service.function_url, max_batch_rows=10, custom_headers={"udf-secret": "s3cret-value"}
    )
    rows = make_rows(60, seed=9)
    assert [stable(v) for v in caller.query(rows)] == [expected_value(r) for r in rows]
    invalid = sum(1 for r in rows if expected_value(r)["status"] == "invalid_input")
    headers = {"sf-custom-udf-secret": "s3cret-value"}
    text = httpx.get(f"{service.url}/metrics", headers=headers).text
    assert f'sixsense_rows_total{{route="full",status="invalid_input"}} {float(invalid)}' in text
    assert "sixsense_upstream_calls_total" in text and "sixsense_batch_seconds_bucket" in text
    assert set(simulator.calls_by_email().values()) == {1}
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    assert service.stop(signal.SIGTERM) == 0
