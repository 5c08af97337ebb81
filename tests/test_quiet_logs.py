"""Issue 18, item 6: small leaks and noise, in process.

The Redshift `batch_failed` line copies nothing of the caller's event; an unauthenticated
`/readyz` names no host, port or raw error (the shared secret shows the detail); a warning
repeated within 10 s is written once, and the next one says how many were dropped.
(gunicorn's own lines as JSON, and the rate of a real flood of warnings, are checked against the
live service in tests/test_slow_clients.py.)
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from tests.fixtures import runtime_of
from tests.redshift_caller import lambda_environment
from udf_service import logs, redshift_lambda
from udf_service.errors import StateError
from udf_service.testing.clock import ManualClock

SECRET = "readyz-secret-0123456789"
BACKEND_ERROR = "Error 111 connecting to redis-prod.internal:6380. Connection refused."


class Lines(logging.Handler):
    """The JSON lines a logger writes, as the operator reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def redshift_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Lines]:
    redshift_lambda.close()
    lambda_environment(monkeypatch, None, f"sqlite:///{tmp_path}/lambda.db")
    handler = Lines()
    logger = logging.getLogger("udf_service.redshift")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        redshift_lambda.close()


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"num_records": "kate.secret@acme.com", "arguments": [["kate.secret@acme.com", "US"]]},
                     id="num-records-is-an-email"),
        pytest.param({"arguments": [["kate.secret@acme.com"] * 12]}, id="twelve-arguments"),
        pytest.param({"arguments": ["kate.secret@acme.com"]}, id="row-not-an-array"),
        pytest.param({"arguments": [[None, None]] * 5001}, id="too-many-rows"),
    ],
)  # fmt: skip
def test_redshift_batch_failed_line_copies_no_caller_input(
    redshift_lines: Lines, event: dict[str, Any]
) -> None:
    """Whatever the event, the failure line holds the error class only: no fragment of the input."""
    answer = orjson.loads(redshift_lambda.handler(event))
    assert answer["success"] is False
    failed = [line for line in redshift_lines.lines if '"batch_failed"' in line]
    assert len(failed) == 1
    for fragment in ("kate", "secret", "acme", "@"):
        assert fragment not in failed[0], failed[0]
    assert orjson.loads(failed[0])["error"] == "ProtocolError"


def _failing_state(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def ping(write: bool = False) -> None:
        raise StateError(BACKEND_ERROR)

    monkeypatch.setattr(runtime_of(app).state, "ping", ping)


@pytest.mark.parametrize("auth", [False, True], ids=["no-secret-configured", "secret-configured"])
def test_unauthenticated_readyz_shows_no_host_port_or_raw_error(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, auth: bool
) -> None:
    """A probe without the secret learns only that the state backend is unavailable."""
    options = {"auth_header": "x-udf-secret", "auth_secret": SECRET} if auth else {}
    app = make_app(**options)
    _failing_state(app, monkeypatch)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    for leak in ("redis-prod", "6380", "111", "refused", "detail"):
        assert leak not in text, text
    assert response.get_json()["status"] == "not_ready"


def test_readyz_detail_is_behind_the_shared_secret(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the shared secret the operator sees the backend's own words; a wrong secret does not."""
    app = make_app(auth_header="x-udf-secret", auth_secret=SECRET)
    _failing_state(app, monkeypatch)
    wrong = app.test_client().get("/readyz", headers={"x-udf-secret": "nope"})
    assert "detail" not in wrong.get_json()
    right = app.test_client().get("/readyz", headers={"x-udf-secret": SECRET})
    assert right.status_code == 503 and right.get_json()["detail"] == BACKEND_ERROR


def _record(message: str, level: int = logging.WARNING, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("udf_service.test", level, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_repeated_warning_is_written_once_per_10_s_with_the_dropped_count() -> None:
    """A state outage's warnings, twice a second for a minute, are 6 lines, each after the first
    saying how many were dropped; other messages and info lines are never dropped."""
    clock = ManualClock()
    repeat = logs.RepeatFilter(every_s=10.0, clock=clock.monotonic)
    written: list[logging.LogRecord] = []
    for _ in range(120):
        record = _record("state_unavailable")
        if repeat.filter(record):
            written.append(record)
        assert repeat.filter(_record("batch", logging.INFO))
        clock.advance(0.5)
    assert len(written) == 6
    assert not hasattr(written[0], "suppressed")
    assert [r.suppressed for r in written[1:]] == [19] * 5  # type: ignore[attr-defined]
    assert repeat.filter(_record("not_ready"))
    assert repeat.filter(_record("upstream_gave_up", email_hash="a1"))
    assert repeat.filter(_record("upstream_gave_up", email_hash="b2"))  # another lead, not a repeat
    assert not repeat.filter(_record("upstream_gave_up", email_hash="a1"))


def test_the_service_log_handler_rate_limits(app: Flask) -> None:
    """The service's own JSON handler (logs.configure) carries the filter."""
    handlers = [h for h in logging.getLogger("udf_service").handlers if getattr(h, "_udf_json", False)]
    assert handlers and all(any(isinstance(f, logs.RepeatFilter) for f in h.filters) for h in handlers)


def test_raw_emails_leave_job_payloads_and_the_fetch_queue_when_the_work_is_done(app: Flask) -> None:
    """An async batch's stored rows become a digest once answered, and its leads leave the fetch
    queue once fetched: no raw email waits there for the 12 h job TTL."""
    rows = [[i, f"person{i}@company{i}.com", "US"] for i in range(20)]
    headers = {"sf-external-function-query-batch-id": "leak-check-1"}
    client = app.test_client()
    response = client.post("/snowflake/people/full", data=orjson.dumps({"data": rows}), headers=headers)
    for _ in range(200):
        if response.status_code != 202:
            break
        time.sleep(0.05)
        response = client.get("/snowflake/people/full", headers=headers)
    assert response.status_code == 200
    state = runtime_of(app).state
    for _ in range(100):  # a poll may be answered from the worker's memory just before the row is written
        job = state.job_get("leak-check-1")
        if job is not None and job.payload.startswith(b"sha256:"):
            break
        time.sleep(0.05)
    assert job is not None and job.payload.startswith(b"sha256:") and b"@" not in job.payload
    for _ in range(100):  # the last answers are written by the completer, off the request thread
        if sum(state.fetch_depth().values()) == 0:
            break
        time.sleep(0.05)
    assert sum(state.fetch_depth().values()) == 0


def test_a_state_outage_writes_its_warning_once_per_10_s(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 batches during a state outage: 50 answers of 503, one `state_unavailable` line."""

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StateError("redis down")

    state = runtime_of(app).state
    for name in ("cache_get_many", "answers_get"):
        monkeypatch.setattr(state, name, down)
    (handler,) = [h for h in logging.getLogger("udf_service").handlers if getattr(h, "_udf_json", False)]
    # A fresh filter: an earlier test in this process may have written the same warning < 10 s ago.
    fresh = [logs.RepeatFilter() if isinstance(f, logs.RepeatFilter) else f for f in handler.filters]
    monkeypatch.setattr(handler, "filters", fresh)
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        body = orjson.dumps({"data": [[0, "kate@acme.com", "US"]]})
        client = app.test_client()
        statuses = {client.post("/snowflake/people/full", data=body).status_code for _ in range(50)}
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    assert statuses == {503}
    events = [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events.count("state_unavailable") == 1, events[:10]


def test_the_json_line_carries_every_extra_field_and_the_standard_timestamp() -> None:
    """The formatter reads past the record's own attributes: every `extra=` field, and one added
    after the record was made (the repeat filter's count), is in the line; none of the record's
    own attributes is; the timestamp is what `datetime.isoformat` gives, to the millisecond."""
    logger = logging.getLogger("udf_service.test")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "batch", (), None, extra={"rows": 3})
    record.suppressed = 2
    line = orjson.loads(logs.JsonFormatter().format(record))
    assert line == {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "logger": "udf_service.test",
        "pid": record.process,
        "event": "batch",
        "rows": 3,
        "suppressed": 2,
    }
    edges = [0.0, 1.0, 1.9994999, 1.9995, 1.9999994, 1.9999996, 1_796_000_000.0005, 1_796_000_000.9999999]
    for created in edges + [time.time() + i * 0.0137 for i in range(2000)]:
        record.created = created
        assert orjson.loads(logs.JsonFormatter().format(record))["ts"] == datetime.fromtimestamp(
            created, UTC
        ).isoformat(timespec="milliseconds"), created
