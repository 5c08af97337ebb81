"""Redshift Lambda UDFs: the codec (pure), then `udf_service.redshift_lambda.handler` invoked
in this process the way Lambda would (tests/redshift_caller.py), with the built-in simulator as
6sense (SIXSENSE_SIMULATE=1 in the container's environment).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.leadgen import expected_value, make_rows, stable, unique_valid_emails
from tests.redshift_caller import (
    ExternalFunctionError,
    LambdaContext,
    LocalLambda,
    RedshiftCaller,
    TooManyRequestsException,
    lambda_environment,
)
from udf_service import redshift_lambda
from udf_service.config import Settings
from udf_service.errors import ProtocolError
from udf_service.protocols import redshift
from udf_service.simulator import Simulator
from udf_service.sixsense.flatten import empty_value
from udf_service.testing.processes import free_port


@pytest.fixture
def container() -> Iterator[None]:
    """A fresh Lambda container for the test, dropped afterwards."""
    redshift_lambda.close()
    yield
    redshift_lambda.close()


@pytest.fixture
def lambda_env(container: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Lambda container whose environment has the built-in simulator and a SQLite state file."""
    lambda_environment(monkeypatch, None, f"sqlite:///{tmp_path}/lambda.db")


@pytest.fixture
def simulator(lambda_env: None) -> Simulator:
    """The container's simulator: its counts are the upstream's own."""
    simulator = redshift_lambda.container_runtime().simulator
    assert simulator is not None
    return simulator


def _event(arguments: list[Any]) -> dict[str, Any]:
    return {"request_id": "r1", "query_id": 5678234, "num_records": len(arguments), "arguments": arguments}


# ------------------------------------------------------------------------------------------ codec


def test_decode_reads_rows_and_context() -> None:
    """Arguments in order, a NULL row as no arguments, one JSON text as the object form."""
    event = {
        "request_id": "23FF1F97",
        "cluster": "arn:aws:redshift:xxxx",
        "user": "adminuser",
        "database": "db1",
        "external_function": "public.people_full",
        "query_id": 5678234,
        "num_records": 3,
        "arguments": [["a@b.co", "US"], None, ['{"email": "c@d.co"}']],
    }
    batch = redshift.decode(event)
    assert batch.rows == [["a@b.co", "US"], [], [{"email": "c@d.co"}]]
    assert batch.request_id == "23FF1F97" and batch.query_id == 5678234
    assert batch.function == "public.people_full" and batch.user == "adminuser"


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        pytest.param([1, 2], '"arguments"', id="not-an-object"),
        pytest.param({"num_records": 0}, '"arguments"', id="no-arguments"),
        pytest.param({"arguments": {}}, '"arguments"', id="arguments-not-array"),
        pytest.param({"num_records": 3, "arguments": [["a@b.co", "US"]]}, "num_records", id="count"),
        pytest.param({"arguments": ["a@b.co"]}, "row 0 must be an array", id="row-not-array"),
        pytest.param({"arguments": [[]]}, "0 values", id="empty-row"),
        pytest.param({"arguments": [list(range(11))]}, "11 values", id="eleven-values"),
    ],
)
def test_decode_rejects_malformed_events(event: object, fragment: str) -> None:
    """Each malformed event is a ProtocolError that names the problem."""
    with pytest.raises(ProtocolError) as info:
        redshift.decode(event)
    assert fragment in info.value.message


def test_encode_and_failure_answers() -> None:
    """A batch answer has success, num_records and the results in order; a failure has error_msg."""
    answer = orjson.loads(redshift.encode(['{"status":"ok"}', None]))
    assert answer == {"success": True, "num_records": 2, "results": ['{"status":"ok"}', None]}
    assert orjson.loads(redshift.failure("no")) == {"success": False, "error_msg": "no"}


def test_a_value_too_long_for_varchar_becomes_an_error_row() -> None:
    """A value over VARCHAR(65535) is that row's `error`, not a failed query."""
    value = empty_value("ok") | {"segment_names": ["x" * 70000]}
    result = orjson.loads(redshift.result_text(value))
    assert result["status"] == "error" and "VARCHAR(65535)" in result["error"]


def test_deadline_leaves_room_for_a_call_in_flight() -> None:
    """The budget keeps one upstream call's timeout back from Lambda's remaining time."""
    settings = Settings(simulate=True, connect_timeout_s=1.0, read_timeout_s=4.0, sync_budget_s=7.0)
    context = LambdaContext(deadline=time.monotonic() + 60)
    left = redshift_lambda.budget_s(context, settings)
    margin = redshift_lambda.RESPONSE_MARGIN_S
    assert 60 - 5 - margin - 0.5 < left <= 60 - 5 - margin
    assert redshift_lambda.budget_s(None, settings) == 7.0


# ---------------------------------------------------------------------------------------- handler


@pytest.mark.parametrize("max_batch_rows", [1, 100, 1000])
def test_rows_exact_in_any_batching(simulator: Simulator, max_batch_rows: int) -> None:
    """400 rows (NULL rows too) in any batching, 4 invocations at once: every value is exact."""
    rows: list[Any] = make_rows(400, seed=21)
    for index in range(0, 400, 37):
        rows[index] = None
    caller = RedshiftCaller(LocalLambda(redshift_lambda.handler), max_batch_rows=max_batch_rows, parallel=4)
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r if r is not None else []) for r in rows]
    calls = simulator.calls_by_email()
    assert set(calls) == unique_valid_emails([r for r in rows if r is not None])
    assert set(calls.values()) == {1}, "each unique lead is fetched once"
    assert max(caller.stats.batch_sizes) <= max_batch_rows


def test_batches_respect_max_batch_size(lambda_env: None) -> None:
    """MAX_BATCH_SIZE bounds the argument bytes of each invocation; the values stay in order."""
    rows = make_rows(200, seed=4)
    caller = RedshiftCaller(LocalLambda(redshift_lambda.handler), max_batch_rows=1000, max_batch_size=1024)
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert len(caller.stats.batch_sizes) > 5


def test_engine_is_built_once_per_container(lambda_env: None) -> None:
    """Invocations of one container reuse one engine (one pool, one state connection)."""
    first = redshift_lambda.container_runtime()
    redshift_lambda.handler(_event([["a@company1.com", "US"]]), None)
    redshift_lambda.handler(_event([["b@company2.com", "US"]]), None)
    assert redshift_lambda.container_runtime() is first


def test_throttled_invocations_are_retried_and_pay_nothing_twice(simulator: Simulator) -> None:
    """Redshift retries a throttled Lambda; the retried batch costs no second upstream call."""
    local = LocalLambda(redshift_lambda.handler)
    throttled = {"left": 3}

    def invoke(payload: bytes) -> bytes:
        answer = local(payload)  # ran, then Lambda's answer is lost to throttling: worst case
        if throttled["left"]:
            throttled["left"] -= 1
            raise TooManyRequestsException("Rate Exceeded.")
        return answer

    rows = make_rows(150, seed=8)
    caller = RedshiftCaller(invoke, max_batch_rows=50, parallel=1)
    values = caller.query(rows)
    assert [stable(v) for v in values] == [expected_value(r) for r in rows]
    assert caller.stats.retries == 3
    assert set(simulator.calls_by_email().values()) == {1}


def test_rows_past_lambdas_time_are_error_rows(
    container: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Near Lambda's timeout the batch answers in time: rows not fetched yet are `error` rows."""
    lambda_environment(
        monkeypatch,
        None,
        f"sqlite:///{tmp_path}/slow.db",
        SIXSENSE_RATE_LIMIT="60/minute",
        SIXSENSE_CONNECT_TIMEOUT_S="0.5",
        SIXSENSE_READ_TIMEOUT_S="1",
    )
    rows = [[f"late{i}@company{i}.com", "US"] for i in range(10)]
    caller = RedshiftCaller(LocalLambda(redshift_lambda.handler, timeout_s=6.0), max_batch_rows=10)
    values = caller.query(rows)  # LocalLambda fails the query had the handler overrun 6 s
    statuses = [v["status"] for v in values]
    assert "error" in statuses and any(s in ("ok", "no_match") for s in statuses)
    assert all("within this batch's time" in v["error"] for v in values if v["status"] == "error")


def test_auth_failure_fails_the_query_with_advice(simulator: Simulator) -> None:
    """A token 6sense rejects is a whole-batch failure whose error_msg says what to fix."""
    simulator.set_faults([{"status": 401, "times": 99}])
    answer = orjson.loads(
        redshift_lambda.handler(_event([["a@company1.com", "US"], ["b@company2.com", "US"]]))
    )
    assert answer["success"] is False and "SIXSENSE_API_TOKEN" in answer["error_msg"]
    with pytest.raises(ExternalFunctionError, match="SIXSENSE_API_TOKEN"):
        RedshiftCaller(LocalLambda(redshift_lambda.handler)).query([["c@company3.com", "US"]])


def test_state_backend_down_fails_the_batch(container: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable state backend is a whole-batch failure naming UDF_STATE_URL, never a crash."""
    lambda_environment(monkeypatch, None, f"redis://127.0.0.1:{free_port()}/0")
    answer = orjson.loads(redshift_lambda.handler(_event([["a@company1.com", "US"]])))
    assert answer["success"] is False and "UDF_STATE_URL" in answer["error_msg"]
    assert redshift_lambda.container_runtime().simulator.stats()["calls"] == 0


def test_missing_token_fails_the_batch_with_the_fix(container: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container without SIXSENSE_API_TOKEN answers every batch with the configuration error."""
    lambda_environment(monkeypatch, "http://127.0.0.1:9", "sqlite:////tmp/unused.db")
    monkeypatch.delenv("SIXSENSE_API_TOKEN")
    answer = orjson.loads(redshift_lambda.handler(_event([["a@company1.com", "US"]])))
    assert answer["success"] is False and "SIXSENSE_API_TOKEN is not set" in answer["error_msg"]


def test_malformed_event_fails_the_batch(lambda_env: None) -> None:
    """An event the handler cannot read is a whole-batch failure that names the problem."""
    answer = orjson.loads(redshift_lambda.handler({"num_records": 1}))
    assert answer["success"] is False and '"arguments"' in answer["error_msg"]


def test_sqlite_in_lambda_warns_that_nothing_is_shared(
    container: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In Lambda, a SQLite UDF_STATE_URL logs that cache and limiter are per container."""
    lambda_environment(monkeypatch, None, f"sqlite:///{tmp_path}/l.db", AWS_LAMBDA_FUNCTION_NAME="sixsense")
    redshift_lambda.container_runtime()  # builds the engine, which configures the package's logger
    monkeypatch.setattr(logging.getLogger("udf_service"), "propagate", True)
    redshift_lambda.close()
    with caplog.at_level(logging.WARNING, logger="udf_service.redshift"):
        redshift_lambda.handler(_event([["a@company1.com", "US"]]))
    assert any(record.getMessage() == "state_not_shared" for record in caplog.records)
