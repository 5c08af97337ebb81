"""Issue 18, items 1 and 6 (gunicorn's lines): slow clients against the live service.

Real sockets against `udf-service serve` (2 workers x 8 threads): clients that dribble a request
head or body a byte at a time get a JSON 408 once UDF_CLIENT_READ_TIMEOUT_S has passed, and
meanwhile a healthy request waits at most that long plus a margin. Without the deadline, 16 such
connections held every thread and `/healthz` timed out (one socket held its thread > 300 s).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from udf_service.testing.processes import ServiceProcess, SimulatorProcess, start_service, start_simulator

pytestmark = pytest.mark.e2e  # gunicorn's own reading of sockets is the subject

READ_TIMEOUT_S = 2.0
WORKERS, THREADS = 2, 8
DRIBBLERS = WORKERS * THREADS + 8  # more than every thread of every worker
# A queued connection's deadline starts when a thread takes it. At worst one worker accepted all
# the dribblers and reads them THREADS at a time, each round ending at the deadline; a healthy
# request queued behind them waits that many rounds, and then a margin for a loaded machine.
ROUNDS = -(-DRIBBLERS // THREADS)
HEALTHY_WITHIN_S = ROUNDS * READ_TIMEOUT_S + 3.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Path]]:
    directory = tmp_path_factory.mktemp("slow")
    simulator: SimulatorProcess = start_simulator()
    log_path = directory / "service.log"
    try:
        env = {"UDF_CLIENT_READ_TIMEOUT_S": str(READ_TIMEOUT_S), "UDF_SYNC_BUDGET_S": "2"}
        service = start_service(
            simulator.url,
            f"sqlite:///{directory}/state.db",
            log_path,
            workers=WORKERS,
            threads=THREADS,
            env=env,
        )
        try:
            yield service, log_path
        finally:
            service.stop()
    finally:
        simulator.stop()


def _port(service: ServiceProcess) -> int:
    return int(service.url.rsplit(":", 1)[1])


class Dribbler:
    """One connection that sends `first`, then one byte of `rest` every `every_s` seconds."""

    def __init__(self, port: int, first: bytes, rest: bytes, every_s: float = 0.4) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(first)
        self.rest, self.every_s = rest, every_s
        self.received = b""
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(self.every_s)
        end = time.monotonic() + 30  # bounded: the test fails long before this without the fix
        for byte in self.rest:
            if time.monotonic() > end:
                break
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                chunk = None
            except OSError:
                break
            if chunk == b"":
                break
            if chunk:
                self.received += chunk
                continue
            try:
                self.sock.sendall(bytes([byte]))
            except OSError:
                break
        self.closed_at = time.monotonic()

    def close(self) -> None:
        self.thread.join(timeout=35)
        self.sock.close()


def _answers_408_json(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 408"):
        return False
    return "UDF_CLIENT_READ_TIMEOUT_S" in orjson.loads(body)["error"]


def test_dribbling_heads_get_408_and_healthz_is_answered_meanwhile(live: tuple[ServiceProcess, Path]) -> None:
    """24 connections dribbling a request head hold every thread for at most the read deadline:
    each gets a JSON 408, and /healthz sent while they dribble is answered within the bound."""
    service, _ = live
    head = b"POST /snowflake/people/full HTTP/1.1\r\nHost: x\r\n"
    dribblers = [Dribbler(_port(service), head, b"X-Slow: " + b"a" * 200) for _ in range(DRIBBLERS)]
    try:
        time.sleep(0.5)  # every thread of every worker is now reading a dribbler
        started = time.monotonic()
        response = httpx.get(f"{service.url}/healthz", timeout=HEALTHY_WITHIN_S + 30)
        waited = time.monotonic() - started
        assert response.status_code == 200
        assert waited < HEALTHY_WITHIN_S, f"/healthz waited {waited:.1f} s behind the dribblers"
    finally:
        for dribbler in dribblers:
            dribbler.close()
    answered = [d for d in dribblers if _answers_408_json(d.received)]
    assert len(answered) == DRIBBLERS, [d.received[:80] for d in dribblers if d not in answered][:3]
    closed = sorted(d.closed_at - started for d in dribblers if d.closed_at)  # type: ignore[operator]

    last = closed[-1]
    assert last < ROUNDS * READ_TIMEOUT_S + 5.0, f"the last dribbler was closed after {last:.1f} s"
    print(f"healthz waited {waited:.2f} s; last of {DRIBBLERS} dribblers closed after {last:.2f} s")


def test_dribbling_body_gets_json_408(live: tuple[ServiceProcess, Path]) -> None:
    """A complete head, then a body a byte at a time: the app's read of the body ends in 408."""
    service, _ = live
    body = orjson.dumps({"data": [[0, "kate@acme.com", "US"]]}) + b" " * 200
    head = (
        b"POST /snowflake/people/full HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    dribbler = Dribbler(_port(service), head + body[:5], body[5:])
    dribbler.close()
    assert _answers_408_json(dribbler.received), dribbler.received[:300]


def test_a_prompt_request_after_the_dribblers_is_answered_normally(live: tuple[ServiceProcess, Path]) -> None:
    """The deadline does not touch a client that sends promptly (keep-alive included)."""
    service, _ = live
    with httpx.Client(base_url=service.url, timeout=20) as client:
        for _ in range(3):
            response = client.post("/snowflake/people/full", json={"data": [[0, "kate@acme.com", "US"]]})
            assert response.status_code == 200 and response.json()["data"][0][0] == 0


def test_gunicorns_own_lines_are_json(live: tuple[ServiceProcess, Path]) -> None:
    """A request line gunicorn refuses is logged by gunicorn itself, as one JSON object per line
    with no email in it; so is every other line the service wrote (the 408s above included)."""
    service, log_path = live
    # One timed-out request of its own, so the test holds when it runs alone (or on its own xdist worker).
    dribbler = Dribbler(_port(service), b"GET /healthz HTTP/1.1\r\nHost", b": x" * 100)
    dribbler.close()
    assert _answers_408_json(dribbler.received), dribbler.received[:300]
    for line in (b"NOT A REQUEST", b"GET /?email=kate.secret@acme.com", b"GET /?e=kate.secret%40acme.com"):
        with socket.create_connection(("127.0.0.1", _port(service)), timeout=5) as sock:
            sock.sendall(line + b"\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "gunicorn.error" not in log_path.read_text():
        time.sleep(0.1)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, not_json[:3]
    assert "kate.secret" not in log_path.read_text()  # gunicorn quotes the line; emails are redacted
    records = [orjson.loads(line) for line in lines]
    assert any(r["logger"] == "gunicorn.error" and r["level"] == "warning" for r in records)
    timeouts = [r for r in records if r["event"] == "client_read_timeout"]
    assert 1 <= len(timeouts) <= WORKERS * 2  # rate-limited: once per 10 s per worker, with a count
    print(f"{len(timeouts)} client_read_timeout lines for the timed-out requests")
