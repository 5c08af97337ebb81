"""The production transport (urllib3 behind httpx's interface), against a real loopback server.

The server keeps connections alive, as 6sense does (the simulator's werkzeug server closes each
one), so connection reuse is seen on real sockets; urllib3's failures are checked to come out
as the client's own errors, classified as httpx's of the same meaning would be.
"""

from __future__ import annotations

import gzip
import inspect
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from urllib3 import exceptions as u3

from tests.fixtures import TOKEN
from udf_service import errors
from udf_service.leads import Lead
from udf_service.simulator import lead_answer
from udf_service.sixsense import client as client_module
from udf_service.sixsense.client import SixsenseClient
from udf_service.sixsense.transport import Urllib3Transport
from udf_service.testing.redis_cluster import write_test_ca

THREADS = 4
CALLS_PER_THREAD = 15


class KeptAlive(ThreadingHTTPServer):
    """Answers like 6sense on HTTP/1.1 keep-alive; counts connections and keeps each request."""

    daemon_threads = True

    def __init__(self, gzip_answers: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.gzip_answers = gzip_answers
        self.connections = 0
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KeptAlive

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        with self.server.lock:
            self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, form))
            self.server.paths.append(self.path)
        status, document = lead_answer(form)
        body = orjson.dumps(document)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.gzip_answers:
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[KeptAlive]:
    server = KeptAlive(gzip_answers=getattr(request, "param", False))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _lead(i: int) -> Lead:
    return Lead(email=f"person{i}@company{i}.com", country="US")


def test_threads_share_kept_alive_connections(server: KeptAlive) -> None:
    """4 threads x 15 calls: every answer right, and at most one connection per thread."""
    client = SixsenseClient(server.url, TOKEN)
    answers: dict[int, Any] = {}

    def calls(offset: int) -> None:
        for i in range(offset, offset + CALLS_PER_THREAD):
            answers[i] = client.send(_lead(i))

    threads = [threading.Thread(target=calls, args=(n * CALLS_PER_THREAD,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len(answers) == THREADS * CALLS_PER_THREAD
    for i, answer in answers.items():
        status, document = lead_answer(_lead(i).form())
        assert (answer.outcome, answer.payload) == (("ok", document) if status == 200 else ("no_match", None))
    assert 1 <= server.connections <= THREADS


def test_the_request_carries_the_token_the_form_and_our_user_agent(server: KeptAlive) -> None:
    SixsenseClient(server.url, TOKEN).send(_lead(1))
    [(headers, form)] = server.requests
    assert headers["authorization"] == f"Token {TOKEN}"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["user-agent"] == client_module.USER_AGENT
    assert form == _lead(1).form()


def test_the_environments_proxy_is_used_unless_no_proxy_exempts_the_host(
    server: KeptAlive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY (here the loopback server, as a forward proxy) carries the call; NO_PROXY for
    the host sends it direct (to a port where nothing listens: a connect error)."""
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert SixsenseClient("http://upstream.example:8080", TOKEN).send(_lead(4)).outcome in ("ok", "no_match")
    assert server.paths == ["http://upstream.example:8080/v2/people/full"]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(errors.UpstreamConnectError):
        SixsenseClient("http://127.0.0.1:9", TOKEN, connect_timeout_s=0.5).send(_lead(5))
    assert len(server.paths) == 1


@pytest.mark.parametrize("server", [True], indirect=True, ids=["gzip"])
def test_a_compressed_answer_is_decoded(server: KeptAlive) -> None:
    answer = SixsenseClient(server.url, TOKEN).send(_lead(2))
    assert answer.outcome == "ok" and answer.payload == lead_answer(_lead(2).form())[1]


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        pytest.param(u3.NewConnectionError(None, "refused"), errors.UpstreamConnectError, id="refused"),  # type: ignore[arg-type]
        pytest.param(u3.NameResolutionError("h", None, OSError()), errors.UpstreamConnectError, id="dns"),  # type: ignore[arg-type]
        pytest.param(u3.ConnectTimeoutError("slow"), errors.UpstreamConnectError, id="connect-timeout"),
        pytest.param(u3.SSLError("handshake"), errors.UpstreamConnectError, id="tls"),
        pytest.param(u3.EmptyPoolError(None, "empty"), errors.UpstreamConnectError, id="pool"),  # type: ignore[arg-type]
        pytest.param(u3.ReadTimeoutError(None, "/", "slow"), errors.UpstreamReadTimeout, id="read-timeout"),  # type: ignore[arg-type]
        pytest.param(u3.ProtocolError("Connection aborted."), errors.UpstreamConnectionLost, id="aborted"),
        pytest.param(u3.IncompleteRead(10, 20), errors.UpstreamConnectionLost, id="cut-short"),
        pytest.param(u3.DecodeError("bad gzip"), errors.UpstreamBadBody, id="decode"),
    ],
)
def test_urllib3_failures_are_classified_as_httpx_ones_would_be(
    monkeypatch: pytest.MonkeyPatch, raised: Exception, error: type[Exception]
) -> None:
    """Never sent (connect) against sent and then lost (read), as for every other transport."""
    transport = Urllib3Transport(4)
    monkeypatch.setattr(transport, "_pool_for", lambda _url: (FailingPool(raised), False))
    with pytest.raises(error):
        SixsenseClient("http://127.0.0.1:9", TOKEN, transport=transport).send(_lead(3))


def test_every_urllib3_exception_becomes_an_httpx_one() -> None:
    """No urllib3 exception type leaves the transport as itself (the test fails for a new one)."""
    classes = [
        c
        for _, c in inspect.getmembers(u3, inspect.isclass)
        if issubclass(c, u3.HTTPError) and not issubclass(c, Warning)
    ]
    assert len(classes) > 20
    transport = Urllib3Transport(1)
    request = httpx.Request("POST", "http://127.0.0.1:9/v2/people/full")
    for cls in classes:
        failing = (FailingPool(_instance(cls)), False)
        transport._pool_for = lambda _url, _pool=failing: _pool  # type: ignore[method-assign]
        with pytest.raises(httpx.HTTPError):
            transport.handle_request(request)


class FailingPool:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def urlopen(self, *_args: Any, **_kwargs: Any) -> Any:
        raise self.exc


def _instance(cls: type[Exception]) -> Exception:
    """An instance of a urllib3 exception, whatever its constructor wants."""
    response = type("Response", (), {"tell": lambda self: 0, "length_remaining": 1})()
    combos = (
        ("boom",),
        (None, "boom"),
        (None, "/", "boom"),
        ("h", None, OSError()),
        (1, 2),
        (response, b"x"),
        (),
    )
    for args in combos:
        try:
            exc = cls(*args)
            str(exc)  # some accept arguments they cannot format
            return exc
        except (TypeError, AttributeError):
            continue
    raise AssertionError(f"cannot build {cls.__name__}")


@pytest.mark.parametrize(
    ("names", "trusted", "sent"),
    [
        pytest.param(["127.0.0.1"], False, False, id="untrusted"),
        pytest.param(["upstream.example"], True, False, id="other-host"),
        pytest.param(["127.0.0.1"], True, True, id="trusted"),
    ],
)
def test_tls_the_token_goes_only_to_a_verified_upstream(
    server: KeptAlive, tmp_path: Path, names: list[str], trusted: bool, sent: bool
) -> None:
    """Over TLS the certificate is verified, its chain and its name, before the request (and the
    token in it) is sent: an untrusted one, or one for another host, is a connect error."""
    pytest.importorskip("cryptography")
    paths = write_test_ca(tmp_path, names)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(paths["cert"], paths["key"])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    verify = httpx.create_ssl_context()
    if trusted:
        verify.load_verify_locations(paths["ca"])
    client = SixsenseClient(
        server.url.replace("http://", "https://"), TOKEN, transport=Urllib3Transport(2, verify)
    )
    if sent:
        assert client.send(_lead(6)).outcome in ("ok", "no_match")
    else:
        with pytest.raises(errors.UpstreamConnectError):
            client.send(_lead(6))
    assert len(server.requests) == (1 if sent else 0)
