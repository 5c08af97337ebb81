"""The 6sense client against the simulator over real HTTP, with injected faults."""

from __future__ import annotations

import inspect
import time

import pytest
import requests

from tests.fixtures import TOKEN, Simulator
from udf_service import errors
from udf_service.leads import Lead
from udf_service.simulator import lead_answer
from udf_service.sixsense import client as client_module
from udf_service.sixsense.client import DeadlineExceeded, SixsenseClient
from udf_service.sixsense.retry import RetryPolicy


class CountingPacer:
    """A pacer that never waits but counts turns and slow-downs."""

    def __init__(self) -> None:
        self.turns = 0
        self.slowed: list[float] = []

    def wait_turn(self, deadline: float) -> None:
        if time.time() >= deadline:
            raise DeadlineExceeded("late")
        self.turns += 1

    def slow_down(self, seconds: float) -> None:
        self.slowed.append(seconds)


FAST = RetryPolicy(total=3, connect=3, read=1, status=3, backoff_factor=0.01, backoff_max=0.05)
LEAD = Lead(email="jane.doe@acme.com", country="US")


def _client(simulator: Simulator, token: str = TOKEN, **options: object) -> SixsenseClient:
    return SixsenseClient(simulator.url, token, policy=FAST, read_timeout_s=2, **options)  # type: ignore[arg-type]


def test_ok_answer_is_the_simulators_json(simulator: Simulator) -> None:
    """A matched lead comes back with the exact JSON 6sense sent, after one call."""
    pacer = CountingPacer()
    answer = _client(simulator).fetch(LEAD, pacer, time.time() + 10)
    assert answer.outcome == "ok" and answer.attempts == 1 and pacer.turns == 1
    assert answer.payload == lead_answer(LEAD.form())[1]


def test_sends_token_and_form_fields(simulator: Simulator) -> None:
    """The simulator (which checks `Authorization: Token <token>`) accepts our request."""
    answer = _client(simulator).fetch(
        Lead(email="a@gmail.com", country="US", title="CTO"), CountingPacer(), time.time() + 10
    )
    assert answer.outcome == "no_match"
    assert simulator.calls_by_email() == {"a@gmail.com": 1}


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise(simulator: Simulator, status: int) -> None:
    """401/403 raise UpstreamAuthError at once: no retry, the batch fails with advice."""
    simulator.faults([{"status": status, "times": 5}])
    with pytest.raises(errors.UpstreamAuthError):
        _client(simulator).fetch(LEAD, CountingPacer(), time.time() + 10)
    assert simulator.stats()["calls"] == 1


def test_wrong_token_is_an_auth_failure(simulator: Simulator) -> None:
    """The simulator's own token check gives 401 for a wrong token."""
    with pytest.raises(errors.UpstreamAuthError):
        _client(simulator, token="wrong").fetch(LEAD, CountingPacer(), time.time() + 10)


@pytest.mark.parametrize(
    ("rule", "outcome"),
    [
        pytest.param({"status": 400}, "invalid_input", id="400"),
        pytest.param({"status": 402}, "quota_exhausted", id="402"),
        pytest.param({"status": 404}, "no_match", id="404"),
        pytest.param({"status": 422}, "error", id="422"),
    ],
)
def test_final_statuses_are_not_retried(simulator: Simulator, rule: dict, outcome: str) -> None:
    """400, 402, 404 and other 4xx are answers: one call, mapped to a row status."""
    simulator.faults([{**rule, "times": 5}])
    answer = _client(simulator).fetch(LEAD, CountingPacer(), time.time() + 10)
    assert answer.outcome == outcome and answer.attempts == 1


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"status": 429}, id="429"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"kind": "malformed"}, id="malformed-json"),
        pytest.param({"kind": "reset"}, id="connection-reset"),
        pytest.param({"kind": "pass", "delay_ms": 2500}, id="read-timeout"),
    ],
)
def test_transient_faults_are_retried_then_answered(simulator: Simulator, rule: dict) -> None:
    """One transient fault, then the right answer: the row is exact."""
    simulator.faults([{**rule, "times": 1}])
    pacer = CountingPacer()
    answer = _client(simulator).fetch(LEAD, pacer, time.time() + 20)
    assert answer.outcome == "ok" and answer.attempts == 2 and pacer.turns == 2
    assert answer.payload == lead_answer(LEAD.form())[1]


def test_429_slows_the_shared_pacer(simulator: Simulator) -> None:
    """An upstream 429 tells the pacer to hold every worker back."""
    simulator.faults([{"status": 429, "times": 1}])
    pacer = CountingPacer()
    _client(simulator).fetch(LEAD, pacer, time.time() + 10)
    assert len(pacer.slowed) == 1


def test_persistent_faults_end_in_an_error_row(simulator: Simulator) -> None:
    """After the bounded retries the answer is `error` with the last failure, not an exception."""
    simulator.faults([{"status": 503, "times": 100}])
    answer = _client(simulator).fetch(LEAD, CountingPacer(), time.time() + 10)
    assert answer.outcome == "error" and answer.attempts == 4
    assert "503" in (answer.error or "") and "gave up after 4 attempts" in (answer.error or "")


def test_deadline_stops_retries(simulator: Simulator) -> None:
    """No retry starts once the deadline would pass."""
    simulator.faults([{"status": 503, "times": 100}])
    slow = RetryPolicy(total=10, status=10, backoff_factor=5, backoff_max=5)
    client = SixsenseClient(simulator.url, TOKEN, policy=slow)
    started = time.monotonic()
    answer = client.fetch(LEAD, CountingPacer(), time.time() + 1)
    assert answer.outcome == "error" and "no time left" in (answer.error or "")
    assert time.monotonic() - started < 1.5


def test_connect_failure_is_retried_then_reported() -> None:
    """Nothing listening: connect errors, retried, then an error row."""
    client = SixsenseClient("http://127.0.0.1:9", TOKEN, policy=FAST, connect_timeout_s=0.5)
    answer = client.fetch(LEAD, CountingPacer(), time.time() + 10)
    assert answer.outcome == "error" and "could not connect" in (answer.error or "")


def test_every_requests_exception_is_mapped() -> None:
    """No `requests` exception type can leave the client unmapped."""
    classes = [
        c
        for _, c in inspect.getmembers(requests.exceptions, inspect.isclass)
        if issubclass(c, requests.exceptions.RequestException)
    ]
    assert len(classes) > 10
    for cls in classes:
        try:
            exc = cls("boom")
        except TypeError:  # pragma: no cover - all current classes take a message
            continue
        with pytest.raises(errors.UpstreamTransportError), client_module._map_transport_errors():
            raise exc
