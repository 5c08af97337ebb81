"""BigQuery remote functions: the codec (pure), then `/bigquery/people/full[/cached]` through the
app in process with the simulator as 6sense and a BigQuery-style caller (tests/bigquery_caller.py).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from flask import Flask

from tests.bigquery_caller import RETRIED, RemoteFunctionError, in_process
from tests.fixtures import runtime_of
from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from udf_service.config import RateLimit
from udf_service.errors import ProtocolError
from udf_service.protocols import bigquery

LIMIT = 10 * 1024 * 1024
URL = "/bigquery/people/full"


# ------------------------------------------------------------------------------------------ codec


def test_decode_reads_calls_and_context() -> None:
    """Calls, requestId, caller, sessionUser and userDefinedContext reach the request."""
    body = orjson.dumps(
        {
            "requestId": "124ab1c",
            "caller": "//bigquery.googleapis.com/projects/p/jobs/p:US.bquxjob_1",
            "sessionUser": "analyst@example.com",
            "userDefinedContext": {"mode": "full"},
            "calls": [["a@b.co", "US"], [None, None]],
        }
    )
    request = bigquery.decode(body, {}, LIMIT)
    assert request.calls == [["a@b.co", "US"], [None, None]]
    assert request.request_id == "124ab1c" and request.caller.endswith("bquxjob_1")
    assert request.session_user == "analyst@example.com" and request.context == {"mode": "full"}


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        pytest.param({"email": "a@b.co"}, {"email": "a@b.co"}, id="json-object"),
        pytest.param('{"email": "a@b.co"}', {"email": "a@b.co"}, id="json-text"),
        pytest.param(' {"email": 1}', {"email": 1}, id="json-text-leading-space"),
        pytest.param("{not json", "{not json", id="broken-text-stays"),
        pytest.param('["a@b.co"]', '["a@b.co"]', id="array-text-stays"),
        pytest.param("a@b.co", "a@b.co", id="plain-text-stays"),
    ],
)
def test_single_argument_is_a_json_object_or_its_text(argument: object, expected: object) -> None:
    """One argument that is a JSON object, or the text of one, is the OBJECT form; other text stays."""
    request = bigquery.decode(orjson.dumps({"calls": [[argument]]}), {}, LIMIT)
    assert request.calls == [[expected]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"not json", "not valid JSON", id="not-json"),
        pytest.param(b"[1, 2]", '"calls"', id="top-level-array"),
        pytest.param(b'{"requestId": "x"}', '"calls"', id="no-calls"),
        pytest.param(b'{"calls": {}}', "array of argument arrays", id="calls-not-array"),
        pytest.param(b'{"calls": ["a@b.co"]}', "call 0 must be an array", id="call-not-array"),
        pytest.param(b'{"calls": [["a@b.co", "US"], []]}', "call 1 has 0 arguments", id="zero-args"),
        pytest.param(orjson.dumps({"calls": [list(range(11))]}), "11 arguments", id="eleven-args"),
        pytest.param(b'{"calls": [], "userDefinedContext": [1]}', "userDefinedContext", id="bad-context"),
    ],
)
def test_decode_rejects_malformed_requests(body: bytes, fragment: str) -> None:
    """Each malformed request is a ProtocolError (HTTP 400) that names the problem."""
    with pytest.raises(ProtocolError) as info:
        bigquery.decode(body, {}, LIMIT)
    assert fragment in info.value.message and info.value.status == 400


def test_encode_and_error_bodies() -> None:
    """Replies keep call order; an errorMessage stays under BigQuery's 1 KB."""
    assert orjson.loads(bigquery.encode([{"status": "ok"}, None])) == {"replies": [{"status": "ok"}, None]}
    message = orjson.loads(bigquery.error("x" * 5000))["errorMessage"]
    assert len(message.encode()) < 1024 and message.endswith("...")


# ------------------------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize(
    "batching",
    [
        pytest.param({"short_circuit": True}, id="short-circuit-1"),
        pytest.param({"max_batching_rows": 50}, id="batch-50"),
        pytest.param({"max_batching_rows": 250}, id="batch-250"),
    ],
)
def test_rows_exact_in_any_batching(app: Flask, batching: dict[str, Any]) -> None:
    """400 rows in any batching, 4 requests in parallel: every reply is exactly the upstream's answer."""
    rows = make_rows(400, seed=11)
    caller = in_process(app, parallel=4, **batching)
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    calls = runtime_of(app).simulator.calls_by_email()
    assert set(calls) == unique_valid_emails(rows), "invalid rows must never reach 6sense"
    assert set(calls.values()) == {1}, "each unique lead is fetched once"
    assert caller.stats.retries == 0


def test_repeated_request_costs_nothing(app: Flask) -> None:
    """BigQuery may send the same request again after a success: it is answered from the cache."""
    caller, sim = in_process(app), runtime_of(app).simulator
    rows = make_rows(60, seed=3)
    first = caller.send(rows, "//bigquery.googleapis.com/projects/p/jobs/p:US.bquxjob_a")
    calls = sim.stats()["calls"]
    second = caller.send(rows, "//bigquery.googleapis.com/projects/p/jobs/p:US.bquxjob_a")
    assert sim.stats()["calls"] == calls
    assert [stable(v) for v in second] == [stable(v) for v in first]
    assert all(v["from_cache"] for v in second if v["status"] in ("ok", "no_match"))


@pytest.mark.parametrize("as_text", [False, True], ids=["json-value", "json-text"])
def test_all_argument_shapes(app: Flask, as_text: bool) -> None:
    """Two to ten positional arguments, or one JSON object (as a value or as its text)."""
    base = ["jane@acme.com", "US", "acme.com", "Acme", "CTO", "web", "Jane", "Doe", "IT", "Tech"]
    caller = in_process(app, json_argument_as_text=as_text)
    rows = [base[:count] for count in range(2, 11)] + [[{"email": base[0], "country": "US"}]]
    values = caller.query(rows)
    assert [v["status"] for v in values] == ["ok"] * len(rows)
    assert values[-1]["company_domain"] == "acme.com"
    odd = caller.query([[{"email": base[0], "shoe_size": 9}], ["not an object"]])
    assert [v["status"] for v in odd] == ["invalid_input", "invalid_input"], "a bad row is a row"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        pytest.param(b"{not json", 400, "not valid JSON", id="not-json"),
        pytest.param(b'{"requestId": "r1"}', 400, '"calls"', id="no-calls"),
        pytest.param(b'{"calls": [[]]}', 400, "0 arguments", id="zero-args"),
        pytest.param(orjson.dumps({"calls": [list(range(12))]}), 400, "12 arguments", id="12-args"),
        pytest.param(b"x" * (10 * 1024 * 1024 + 10), 413, "size limit", id="over-10MB"),
    ],
)
def test_caller_errors_are_not_retried_and_say_why(
    app: Flask, body: bytes, status: int, fragment: str
) -> None:
    """A bad request is a status BigQuery does not retry, with an errorMessage naming the problem."""
    response = app.test_client().post(URL, data=body)
    assert response.status_code == status and status not in RETRIED
    assert fragment in response.get_json()["errorMessage"]
    assert in_process(app).query([["a@company1.com", "US"]])[0]["status"] in {"ok", "no_match"}


def test_rows_past_the_budget_are_error_rows_then_cached(make_app: Any) -> None:
    """Leads not fetched within UDF_SYNC_BUDGET_S are per-row `error`s (the request succeeds);
    their fetches go on, so the next query answers every row, each lead paid once."""
    app = make_app(sync_budget_s=0.5, rate_limit=RateLimit(600, 60.0))
    rows = [[f"budget{i}@company{i}.com", "US"] for i in range(12)]
    started = time.monotonic()
    values = in_process(app, max_batching_rows=12).query(rows)
    assert time.monotonic() - started < 5
    statuses = [v["status"] for v in values]
    assert "error" in statuses and any(s in ("ok", "no_match") for s in statuses)
    late = [v for v in values if v["status"] == "error"]
    assert all("within this batch's time" in v["error"] and "people_full_cached" in v["error"] for v in late)
    time.sleep(1.5)
    again = in_process(app, max_batching_rows=12).query(rows)
    assert [stable(v) for v in again] == [expected_value(r) for r in rows]
    assert set(runtime_of(app).simulator.calls_by_email().values()) == {1}


def test_cached_route_answers_at_once_then_fills(app: Flask) -> None:
    """The cached function never waits: `pending` now, the values once the background fetched them."""
    rows = [[f"later{i}@company{i}.com", "US"] for i in range(5)] + [[None, "US"]]
    caller = in_process(app, cached=True)
    first = caller.query(rows)
    assert [v["status"] for v in first] == ["pending"] * 5 + ["invalid_input"]
    end = time.monotonic() + 20
    while time.monotonic() < end:
        values = caller.query(rows)
        if all(v["status"] != "pending" for v in values):
            break
        time.sleep(0.05)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]


def test_auth_failure_is_not_retried_and_says_what_to_fix(make_app: Any) -> None:
    """A token 6sense rejects fails the query with a non-retried status and advice, not 500s."""
    app = make_app()
    sim = runtime_of(app).simulator
    sim.set_faults([{"status": 401, "times": 99}])
    caller = in_process(app)
    with pytest.raises(RemoteFunctionError) as info:
        caller.query([["a@company1.com", "US"], ["b@company2.com", "US"]])
    assert info.value.status == 424 and "SIXSENSE_API_TOKEN" in str(info.value)
    assert caller.stats.retries == 0
    assert sim.stats()["statuses"]["401"] <= 2


def test_state_backend_down_is_503_which_bigquery_retries(
    make_app: Any, redis_server: Any, redis_url: str
) -> None:
    """With the state backend down the answer is 503 + errorMessage (retried), and it recovers."""
    app = make_app(state_url=redis_url)
    caller = in_process(app, max_retry_s=3)
    assert caller.query([["up@company1.com", "US"]])[0]["status"] in {"ok", "no_match"}
    redis_server.stop()
    try:
        with pytest.raises(RemoteFunctionError) as info:
            caller.query([["down@company2.com", "US"]])
        assert info.value.status == 503 and "state backend unavailable" in str(info.value)
        assert caller.stats.retries > 0
    finally:
        redis_server.start()
    assert caller.query([["back@company3.com", "US"]])[0]["status"] in {"ok", "no_match"}


def test_shared_secret_rejection_has_an_error_message(make_app: Any) -> None:
    """Errors the app answers before the view (a missing shared secret) also carry errorMessage."""
    app = make_app(auth_header="x-udf-secret", auth_secret="s3cret-value")
    response = app.test_client().post(URL, data=b'{"calls": []}')
    assert response.status_code == 401 and "x-udf-secret" in response.get_json()["errorMessage"]
