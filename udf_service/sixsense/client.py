"""The 6sense HTTP client: one pooled session, timeouts, retries by status class.

`fetch()` turns one lead into an `Answer`, spending at most the retry policy's budget and never
running past the caller's deadline. Before every attempt it waits its turn on the shared pacer, so
retries count against the rate limit like first calls. 401/403 raise `UpstreamAuthError`: the
whole batch fails with a message about the token, since every other row would fail the same way.
`requests` exceptions never leave this module: `_map_transport_errors` turns them into ours.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ..errors import (
    UpstreamAuthError,
    UpstreamBadBody,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamReadTimeout,
    UpstreamTransportError,
)
from ..leads import Lead
from .retry import RetryPolicy, parse_retry_after

log = logging.getLogger("udf_service.sixsense")

PATH = "/v2/people/full"
USER_AGENT = "sixsense-udf/0.1 (+warehouse adapter)"


class DeadlineExceeded(Exception):
    """The caller's deadline passes before the next attempt could start."""


class Pacer(Protocol):
    """Spaces upstream calls under the shared rate limit (see engine.SharedPacer)."""

    def wait_turn(self, deadline: float) -> None: ...

    def slow_down(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Answer:
    """What 6sense said about one lead, after retries.

    outcome: ok (payload holds the JSON), no_match, invalid_input, quota_exhausted or error.
    """

    outcome: str
    payload: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None
    attempts: int = 0


class SixsenseClient:
    """Calls `POST {base_url}/v2/people/full` for one lead at a time, thread-safe."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 15.0,
        pool_size: int = 8,
        policy: RetryPolicy | None = None,
        observe: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.policy = policy or RetryPolicy()
        self.observe = observe or (lambda _label: None)
        self.sleep = sleep
        self.clock = clock
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"Authorization": f"Token {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        )

    def close(self) -> None:
        self.session.close()

    def fetch(self, lead: Lead, pacer: Pacer, deadline: float) -> Answer:
        """One lead's answer. Raises UpstreamAuthError (401/403) and DeadlineExceeded."""
        policy = self.policy
        attempts = 0
        failure = ""
        while True:
            try:
                pacer.wait_turn(deadline)
            except DeadlineExceeded:
                if attempts == 0:
                    raise
                return Answer("error", error=f"{failure}; no time left to retry", attempts=attempts)
            attempts += 1
            try:
                answer = self._attempt(lead)
            except UpstreamRateLimited as exc:
                policy = policy.increment(status=exc.status)
                pause = policy.sleep_for(exc.retry_after)
                pacer.slow_down(pause)
                failure = f"6sense answered HTTP {exc.status} (rate limited)"
            except UpstreamTransportError as exc:
                kind = _error_kind(exc)
                self.observe(f"{kind}_error")
                policy = policy.increment(error=kind)
                pause = policy.sleep_for(None)
                failure = f"6sense call failed: {exc}"
            else:
                if answer.http_status is None or not policy.is_retryable_status(answer.http_status):
                    return _with_attempts(answer, attempts)
                policy = policy.increment(status=answer.http_status)
                pause = policy.sleep_for(None)
                failure = answer.error or f"6sense answered HTTP {answer.http_status}"
            if policy.is_exhausted():
                log.warning(
                    "upstream_gave_up",
                    extra={"email_hash": lead.email_hash, "attempts": attempts, "failure": failure[:200]},
                )
                return Answer(
                    "error", error=f"{failure}; gave up after {attempts} attempts", attempts=attempts
                )
            if self.clock() + pause >= deadline:
                return Answer("error", error=f"{failure}; no time left to retry", attempts=attempts)
            log.debug(
                "upstream_retry",
                extra={
                    "email_hash": lead.email_hash,
                    "attempt": attempts,
                    "failure": failure[:200],
                    "pause_s": round(pause, 3),
                },
            )
            self.sleep(pause)

    def _attempt(self, lead: Lead) -> Answer:
        with _map_transport_errors():
            response = self.session.post(self.url, data=lead.form(), timeout=self.timeout)
            body = response.content
        status = response.status_code
        self.observe(str(status))
        if status == 200:
            return Answer("ok", payload=_json_object(body), http_status=200)
        message = _message(body)
        if status == 429:
            raise UpstreamRateLimited(429, message, parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise UpstreamAuthError(status, message)
        outcome = {400: "invalid_input", 402: "quota_exhausted", 404: "no_match"}.get(status, "error")
        detail = f"6sense answered HTTP {status}" + (f": {message}" if message else "")
        return Answer(outcome, error=None if outcome == "no_match" else detail, http_status=status)


def _with_attempts(answer: Answer, attempts: int) -> Answer:
    return Answer(answer.outcome, answer.payload, answer.error, answer.http_status, attempts)


def _error_kind(exc: UpstreamError) -> str:
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
def _map_transport_errors() -> Iterator[None]:
    """Translate every `requests` failure into an UpstreamTransportError subclass."""
    try:
        yield
    except requests.exceptions.ConnectTimeout as exc:
        raise UpstreamConnectError("connect timed out") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise UpstreamReadTimeout("no answer within the read timeout") from exc
    except requests.exceptions.ConnectionError as exc:
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        if isinstance(inner, NewConnectionError | ConnectTimeoutError):
            raise UpstreamConnectError("could not connect") from exc
        raise UpstreamConnectionLost("connection lost after the request was sent") from exc
    except requests.exceptions.RequestException as exc:
        raise UpstreamTransportError(f"{type(exc).__name__}") from exc
