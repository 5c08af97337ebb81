"""The 6sense client: one attempt per `send()`, statuses and httpx failures mapped to ours.

In process through the simulator transport and httpx's MockTransport; one e2e test sends over a
real socket to the simulator process, where resets and timeouts are real.
"""

from __future__ import annotations

import inspect
import threading
import time

import httpx
import pytest

from tests.fixtures import TOKEN, SimulatorProcess
from udf_service import errors
from udf_service.leads import Lead
from udf_service.simulator import Simulator, SimulatorTransport, lead_answer
from udf_service.sixsense import client as client_module
from udf_service.sixsense.client import SixsenseClient
from udf_service.sixsense.transport import Urllib3Transport

LEAD = Lead(email="jane.doe@acme.com", country="US")


def _client(simulator: Simulator | None = None, token: str = TOKEN) -> SixsenseClient:
    return SixsenseClient("http://sim", token, transport=SimulatorTransport(simulator or Simulator()))


def _mock(handler: object) -> SixsenseClient:
    return SixsenseClient("http://mock", TOKEN, transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_ok_answer_is_the_simulators_json() -> None:
    """A matched lead comes back with the exact JSON 6sense sent, after one call."""
    simulator = Simulator()
    answer = _client(simulator).send(LEAD)
    assert answer.outcome == "ok" and answer.http_status == 200
    assert answer.payload == lead_answer(LEAD.form())[1]
    assert simulator.stats()["calls"] == 1


def test_sends_token_form_fields_and_user_agent() -> None:
    """POST /v2/people/full, form-encoded, `Authorization: Token <token>`, our User-Agent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"status": "error", "message": "No data found"})

    answer = _mock(handler).send(Lead(email="a@gmail.com", country="US", title="CTO"))
    assert answer.outcome == "no_match" and answer.error is None
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/v2/people/full")
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"].startswith("sixsense-udf/")
    assert request.read() == b"email=a%40gmail.com&country=US&title=CTO"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise(status: int) -> None:
    """401/403 raise UpstreamAuthError: every other row would fail the same way."""
    simulator = Simulator()
    simulator.set_faults([{"status": status, "times": 5}])
    with pytest.raises(errors.UpstreamAuthError) as info:
        _client(simulator).send(LEAD)
    assert info.value.status == status


def test_wrong_token_is_an_auth_failure() -> None:
    """The simulator's own token check gives 401 for a wrong token."""
    with pytest.raises(errors.UpstreamAuthError):
        _client(Simulator(token="right"), token="wrong").send(LEAD)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param(400, "invalid_input", id="400"),
        pytest.param(402, "quota_exhausted", id="402"),
        pytest.param(404, "no_match", id="404"),
        pytest.param(422, "error", id="422"),
        pytest.param(503, "error", id="503"),
    ],
)
def test_statuses_map_to_outcomes(status: int, outcome: str) -> None:
    """Each status is an answer with its outcome and the status kept (the fetcher decides retries)."""
    simulator = Simulator()
    simulator.set_faults([{"status": status, "body": {"status": "error", "message": "why"}}])
    answer = _client(simulator).send(LEAD)
    assert (answer.outcome, answer.http_status) == (outcome, status)
    assert answer.error is None if outcome == "no_match" else "why" in (answer.error or "")


def test_429_raises_with_retry_after() -> None:
    """429 raises UpstreamRateLimited carrying Retry-After (seconds) when 6sense sends one."""
    client = _mock(lambda _r: httpx.Response(429, headers={"Retry-After": "7"}, json={}))
    with pytest.raises(errors.UpstreamRateLimited) as info:
        client.send(LEAD)
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        pytest.param({"kind": "malformed"}, errors.UpstreamBadBody, id="malformed-json"),
        pytest.param({"kind": "reset"}, errors.UpstreamConnectionLost, id="connection-reset"),
    ],
)
def test_broken_answers_raise_transport_errors(rule: dict, error: type[Exception]) -> None:
    """A 2xx that is not JSON, a connection cut after sending: transport errors of the right kind."""
    simulator = Simulator()
    simulator.set_faults([rule])
    with pytest.raises(error):
        _client(simulator).send(LEAD)
    assert _client(simulator).send(LEAD).outcome == "ok"  # the fault was once


@pytest.mark.parametrize(
    ("raised", "error", "kind"),
    [
        pytest.param(httpx.ConnectError("refused"), errors.UpstreamConnectError, "connect", id="connect"),
        pytest.param(
            httpx.ConnectTimeout("slow"), errors.UpstreamConnectError, "connect", id="connect-timeout"
        ),
        pytest.param(httpx.PoolTimeout("pool"), errors.UpstreamConnectError, "connect", id="pool-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), errors.UpstreamReadTimeout, "read", id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("cut"), errors.UpstreamConnectionLost, "read", id="cut"),
    ],
)
def test_transport_failures_are_classified(raised: Exception, error: type[Exception], kind: str) -> None:
    """Never sent (connect: retried freely) versus sent then lost (read: may have been billed)."""

    def handler(_request: httpx.Request) -> httpx.Response:
        raise raised

    observed: list[str] = []
    client = SixsenseClient(
        "http://mock", TOKEN, transport=httpx.MockTransport(handler), observe=observed.append
    )
    with pytest.raises(error) as info:
        client.send(LEAD)
    assert client_module.error_kind(info.value) == kind and observed == [f"{kind}_error"]


def test_nothing_listening_is_a_connect_error() -> None:
    """A real connection refused (port 9 on loopback) is UpstreamConnectError."""
    client = SixsenseClient("http://127.0.0.1:9", TOKEN, connect_timeout_s=0.5)
    with pytest.raises(errors.UpstreamConnectError):
        client.send(LEAD)


def test_one_transport_for_every_thread_closed_and_opened_again() -> None:
    """The HTTP pool is made on the first call and shared; close() closes it and a call after it
    opens a new one; an injected transport is the caller's and outlives close()."""
    client = SixsenseClient("https://api.example", TOKEN)
    mine = client.transport
    theirs: list[httpx.BaseTransport] = []
    threads = [threading.Thread(target=lambda: theirs.append(client.transport)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(mine, Urllib3Transport) and all(t is mine for t in theirs)
    client.close()
    assert client.transport is not mine
    injected = SimulatorTransport(Simulator())
    client = SixsenseClient("http://sim", TOKEN, transport=injected)
    client.close()
    assert client.transport is injected and client.send(LEAD).outcome == "ok"


def test_every_httpx_exception_is_mapped() -> None:
    """No httpx exception type can leave the client unmapped (the test fails for a new one)."""
    classes = [
        c
        for _, c in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(c, Exception) and c.__module__.startswith("httpx")
    ]
    assert len(classes) > 15
    for cls in classes:
        with pytest.raises(errors.UdfError), client_module.map_transport_errors():
            raise _instance(cls)


def _instance(cls: type[Exception]) -> Exception:
    """An instance of an httpx exception, whatever its constructor wants."""
    request = httpx.Request("POST", "http://x")
    for args, kwargs in (
        (("boom",), {}),
        ((), {}),
        (("boom",), {"request": request, "response": httpx.Response(500, request=request)}),
    ):
        try:
            return cls(*args, **kwargs)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls.__name__}")


@pytest.mark.e2e
def test_real_socket_reset_and_timeout(simulator: SimulatorProcess) -> None:
    """Over a real socket: an RST after the request is a lost connection, a slow answer a timeout."""
    client = SixsenseClient(simulator.url, TOKEN, read_timeout_s=0.5)
    simulator.faults([{"kind": "reset"}])
    with pytest.raises(errors.UpstreamConnectionLost):
        client.send(LEAD)
    simulator.faults([{"kind": "pass", "delay_ms": 1500}])
    started = time.monotonic()
    with pytest.raises(errors.UpstreamReadTimeout):
        client.send(LEAD)
    assert time.monotonic() - started < 1.4
    assert client.send(LEAD).outcome == "ok"
