"""The 6sense HTTP client: kept-alive connections, timeouts, and one attempt per `send()`.

`send()` makes exactly one `POST /v2/people/full` for one lead and says what came back as an
`Answer`; deciding whether to try again, when, and under which rate-limit slot is the fetcher's
job (`udf_service.fetching`), because every attempt must be paced and re-checked before it goes
out. The transport is injectable (`httpx.BaseTransport`): production uses `Urllib3Transport`
(urllib3's pool, `udf_service.sixsense.transport`), the simulator mode and the tests pass
`SimulatorTransport` or an `httpx.MockTransport`.

httpx's transport interface was chosen for exactly that: a transport is a first-class, public
interface there (`MockTransport`, `WSGITransport`), and its exception tree separates "never
sent" from "sent, then lost" cleanly. httpx exceptions never leave this module:
`map_transport_errors` turns each into ours, and `tests/sixsense/test_client.py` fails when a new
one goes unmapped. The request goes to the transport straight, without an `httpx.Client`: the
client's layers (URL merging, cookies, auth and redirect flows, event hooks) do nothing for one
POST with fixed headers, and cost a fifth of a call's CPU.

Every fetch thread shares the one transport; its pool keeps up to `max_connections` kept-alive
connections (the upstream concurrency's ceiling, so one per call in flight).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .. import __version__
from ..errors import (
    UpstreamAuthError,
    UpstreamBadBody,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamRateLimited,
    UpstreamReadTimeout,
    UpstreamTransportError,
)
from ..leads import Lead
from .retry import parse_retry_after
from .transport import Urllib3Transport

PATH = "/v2/people/full"
USER_AGENT = f"sixsense-udf/{__version__} (+warehouse adapter)"
FINAL_OUTCOMES = {400: "invalid_input", 402: "quota_exhausted", 404: "no_match"}


@dataclass(frozen=True)
class Answer:
    """What 6sense said about one lead in one attempt.

    outcome: ok (payload holds the JSON), no_match, invalid_input, quota_exhausted or error
    (then `http_status` says which status; the fetcher decides whether it is worth another try).
    """

    outcome: str
    payload: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None


class SixsenseClient:
    """Calls `POST {base_url}/v2/people/full` for one lead at a time; thread-safe."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 15.0,
        max_connections: int = 256,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.url = httpx.URL(base_url.rstrip("/") + PATH)
        self.max_connections = max_connections
        self.injected = transport
        # The timeouts, as httpx transports read them from a request.
        self.extensions = {"timeout": httpx.Timeout(read_timeout_s, connect=connect_timeout_s).as_dict()}
        self.headers = {
            "Authorization": f"Token {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self.observe = observe or (lambda _label: None)
        self._lock = threading.Lock()
        self._transport: httpx.BaseTransport | None = transport

    @property
    def transport(self) -> httpx.BaseTransport:
        """The injected transport, or the HTTP pool (made on the first call, again after close)."""
        transport = self._transport
        if transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = Urllib3Transport(self.max_connections)
                transport = self._transport
        return transport

    def close(self) -> None:
        with self._lock:
            transport, self._transport = self._transport, self.injected
        if transport is not None and transport is not self.injected:
            transport.close()

    def send(self, lead: Lead) -> Answer:
        """One attempt. Raises UpstreamRateLimited (429), UpstreamAuthError (401/403) and
        UpstreamTransportError subclasses; every other status is an `Answer`."""
        request = httpx.Request(
            "POST", self.url, data=lead.form(), headers=self.headers, extensions=self.extensions
        )
        try:
            with map_transport_errors():
                response = self.transport.handle_request(request)
                try:
                    body = response.read()
                finally:
                    response.close()
        except UpstreamTransportError as exc:
            self.observe(f"{error_kind(exc)}_error")
            raise
        status = response.status_code
        self.observe(str(status))
        if status == 200:
            return Answer("ok", payload=_json_object(body), http_status=200)
        message = _message(body)
        if status == 429:
            raise UpstreamRateLimited(429, message, parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise UpstreamAuthError(status, message)
        outcome = FINAL_OUTCOMES.get(status, "error")
        detail = f"6sense answered HTTP {status}" + (f": {message}" if message else "")
        return Answer(outcome, error=None if outcome == "no_match" else detail, http_status=status)


def error_kind(exc: UpstreamTransportError) -> str:
    """The retry budget a transport failure spends: connect (never sent), body, or read."""
    if isinstance(exc, UpstreamConnectError):
        return "connect"
    if isinstance(exc, UpstreamBadBody):
        return "body"
    return "read"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadBody(f"answer is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise UpstreamBadBody("answer is JSON but not an object")
    return document


def _message(body: bytes) -> str:
    """The `message` of 6sense's `{"status": "error", "message": ...}` envelope, if any."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return document["message"][:300]
    return ""


@contextlib.contextmanager
def map_transport_errors() -> Iterator[None]:
    """Translate every httpx failure into an UpstreamTransportError subclass.

    The split that matters is whether 6sense can have received the request: a connect failure,
    a pool timeout or a failed write means it did not (safe to send again); a read timeout or a
    connection lost after the request went out means it may have answered, and billed.
    """
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise UpstreamConnectError("could not connect") from exc
    except (httpx.WriteError, httpx.WriteTimeout) as exc:
        raise UpstreamConnectError("the request could not be sent") from exc
    except httpx.ReadTimeout as exc:
        raise UpstreamReadTimeout("no answer within the read timeout") from exc
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.CloseError) as exc:
        raise UpstreamConnectionLost("connection lost after the request was sent") from exc
    except httpx.DecodingError as exc:
        raise UpstreamBadBody("the answer could not be decoded") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
        raise UpstreamTransportError(type(exc).__name__) from exc
