"""The service end to end: `udf-service serve` under gunicorn, the simulator as 6sense, and a
Snowflake-style caller. Every value is compared with the flattening of what the upstream answered.
"""

from __future__ import annotations

import gzip
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures import Service, Simulator
from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from tests.snowflake_caller import SnowflakeCaller


@pytest.mark.parametrize("compression", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("batch_rows", [1, 37, 200])
def test_thousand_rows_exact_in_any_batching(
    service_factory: Any, simulator: Simulator, tmp_path: Path, batch_rows: int, compression: bool
) -> None:
    """1,000 rows in batches of 1/37/200, 4 in parallel: every row is exactly the upstream's answer."""
    service = service_factory(
        simulator.url,
        f"sqlite:///{tmp_path}/{batch_rows}{compression}.db",
        env={"SIXSENSE_RATE_LIMIT": "60000/minute"},
    )
    rows = make_rows(1000, seed=batch_rows)
    caller = SnowflakeCaller(
        service.function_url, max_batch_rows=batch_rows, parallel=4, compression=compression
    )
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    calls = simulator.calls_by_email()
    assert set(calls) == unique_valid_emails(rows), "invalid rows must never reach 6sense"
    assert set(calls.values()) == {1}, "each unique lead is fetched once"
    assert caller.stats.retries == 0


def test_second_query_is_served_from_cache(service: Service, simulator: Simulator) -> None:
    """A repeated query costs nothing upstream and says from_cache."""
    rows = make_rows(120, seed=5)
    caller = SnowflakeCaller(service.function_url, max_batch_rows=50)
    first = caller.query(rows)
    calls = simulator.stats()["calls"]
    second = caller.query(rows)
    assert simulator.stats()["calls"] == calls
    assert [stable(v) for v in first] == [stable(v) for v in second]
    assert all(v["from_cache"] for v in second if v["status"] in ("ok", "no_match"))
    assert not any(v["from_cache"] for v in first[:1] if v["status"] == "ok")


def test_null_and_blank_emails_cost_nothing(service: Service, simulator: Simulator) -> None:
    """NULL, blank and malformed emails are invalid_input rows without an upstream call."""
    rows: list[list[Any]] = [[None, "US"], ["", "US"], ["  ", None], ["nope", "US"], [None, None]]
    values = SnowflakeCaller(service.function_url).query(rows)
    assert [v["status"] for v in values] == ["invalid_input"] * 5
    assert all(v["error"] for v in values)
    assert simulator.stats()["calls"] == 0


def test_all_argument_shapes(service: Service) -> None:
    """Two to ten positional arguments, or one OBJECT, in one function each."""
    base = ["jane@acme.com", "US", "acme.com", "Acme", "CTO", "web", "Jane", "Doe", "IT", "Tech"]
    for count in range(2, 11):
        values = SnowflakeCaller(service.function_url).query([base[:count]])
        assert values[0]["status"] == "ok", count
    obj = SnowflakeCaller(service.function_url).query([[{"email": base[0], "country": "US"}]])
    assert obj[0]["status"] == "ok" and obj[0]["company_domain"] == "acme.com"


def _post(service: Service, body: bytes, **headers: str) -> requests.Response:
    return requests.post(service.function_url, data=body, headers=headers, timeout=10)


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
    service: Service, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    """Each malformed request gets a 4xx JSON error naming the problem; the service stays healthy."""
    response = _post(service, body, **headers)
    assert response.status_code == status
    assert fragment in response.json()["error"]
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200
    assert SnowflakeCaller(service.function_url).query([["a@company1.com", "US"]])[0]["status"] in {
        "ok",
        "no_match",
    }


def test_unknown_routes_and_methods_answer_json(service: Service) -> None:
    """404 and 405 are JSON too."""
    assert requests.get(f"{service.url}/nope", timeout=5).json()["error"]
    response = requests.put(service.function_url, timeout=5)
    assert response.status_code == 405 and response.json()["error"]


def test_poll_for_unknown_batch_is_a_retryable_503(service: Service) -> None:
    """A GET poll for an unknown batch id is a 503 (retried: the job may be re-registered), with a reason."""
    response = requests.get(
        service.function_url, headers={"sf-external-function-query-batch-id": "nope"}, timeout=5
    )
    assert response.status_code == 503 and "unknown batch id" in response.json()["error"]


def test_health_ready_metrics(service: Service) -> None:
    """healthz, readyz and metrics answer; metrics count rows across workers."""
    SnowflakeCaller(service.function_url).query([["a@company1.com", "US"], [None, "US"]])
    assert requests.get(f"{service.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{service.url}/readyz", timeout=5).json()
    assert ready["status"] == "ready" and ready["upstream"] == "6sense"
    text = requests.get(f"{service.url}/metrics", timeout=5).text
    assert 'sixsense_rows_total{route="full",status="invalid_input"} 1.0' in text
    assert "sixsense_upstream_calls_total" in text and "sixsense_batch_seconds_bucket" in text


def test_upstream_auth_failure_fails_the_batch_with_advice(
    service_factory: Any, simulator_factory: Any
) -> None:
    """A wrong token gets one upstream call and a 424 that tells the user what to fix."""
    simulator = simulator_factory(token="the-real-token")
    service = service_factory(simulator.url)
    response = _post(service, b'{"data": [[0, "a@company1.com", "US"], [1, "b@company2.com", "US"]]}')
    assert response.status_code == 424
    assert "SIXSENSE_API_TOKEN" in response.json()["error"]
    assert simulator.stats()["calls"] <= 2


def test_shared_secret_required_when_configured(service_factory: Any, simulator: Simulator) -> None:
    """With UDF_AUTH_HEADER/SECRET set, a missing or wrong secret is a 401 JSON; health stays open."""
    service = service_factory(
        simulator.url, env={"UDF_AUTH_HEADER": "sf-custom-udf-secret", "UDF_AUTH_SECRET": "s3cret-value"}
    )
    assert _post(service, b'{"data": []}').status_code == 401
    assert _post(service, b'{"data": []}', **{"sf-custom-udf-secret": "wrong"}).status_code == 401
    ok = SnowflakeCaller(service.function_url, custom_headers={"udf-secret": "s3cret-value"})
    assert ok.query([["a@company1.com", "US"]])[0]["status"] in {"ok", "no_match"}
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_refuses_to_start_without_token(tmp_path: Path) -> None:
    """No token and no simulator: the service refuses to start and says how to fix it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIXSENSE_", "UDF_"))}
    result = subprocess.run(
        [sys.executable, "-m", "udf_service.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "SIXSENSE_API_TOKEN is not set" in result.stderr


def test_sigterm_stops_cleanly(service: Service) -> None:
    """SIGTERM ends the service with exit code 0."""
    assert service.stop(signal.SIGTERM) == 0


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


def test_any_well_formed_batch_keeps_row_numbers_and_order(
    service_factory: Any, simulator: Simulator
) -> None:
    """Any well-formed batch comes back from the live service with the same row numbers, in order."""
    service = service_factory(simulator.url, env={"SIXSENSE_RATE_LIMIT": "60000/minute"})
    session = requests.Session()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_ROWS)
    def check(rows: list[tuple[int, list[Any]]]) -> None:
        body = orjson.dumps({"data": [[n, *args] for n, args in rows]})
        response = session.post(service.function_url, data=body, timeout=30)
        assert response.status_code == 200, response.text[:200]
        data = response.json()["data"]
        assert [row[0] for row in data] == [n for n, _ in rows]
        assert all(isinstance(value, dict) and value["status"] for _, value in data)

    check()
