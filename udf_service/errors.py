"""Every exception this package raises on purpose, as one tree.

    UdfError
    ├── ConfigError            bad or missing setting; raised at start-up, never per request
    ├── ProtocolError          a request body or header that a wire format cannot accept (-> 4xx)
    ├── Overloaded             this worker has too much in flight; the warehouse should back off (-> 429)
    ├── StateError             the state backend (SQLite, Redis) failed or is unreachable (-> 503)
    ├── WarehouseSqlError      `udf-service sql`: VariableError (render), ApplyError (apply)
    └── UpstreamError          anything that went wrong talking to 6sense
        ├── UpstreamTransportError          no usable HTTP answer
        │   ├── UpstreamConnectError        could not connect (nothing was sent: safe to retry)
        │   ├── UpstreamReadTimeout         sent, no answer in time (6sense may have billed)
        │   ├── UpstreamConnectionLost      connection reset or closed after the request went out
        │   └── UpstreamBadBody             an answer that is not the JSON we expect
        └── UpstreamStatusError(status, body)
            ├── UpstreamRateLimited(retry_after)   429
            └── UpstreamAuthError                  401, 403: the token or its API group

Foreign exceptions (requests, redis, sqlite3) are mapped to these at the boundary of the module
that uses the foreign library, so nothing above that module needs to know which library it was.
"""

from __future__ import annotations


class UdfError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(UdfError):
    """A setting is missing or invalid."""


class ProtocolError(UdfError):
    """A request that the wire format cannot accept. `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Overloaded(UdfError):
    """This worker is at capacity; answered 429 so the warehouse retries later, more slowly."""


class StateError(UdfError):
    """The state backend failed; the service answers 503 so the warehouse retries."""


class UpstreamError(UdfError):
    """Talking to 6sense failed."""


class UpstreamTransportError(UpstreamError):
    """No usable HTTP answer from 6sense."""


class UpstreamConnectError(UpstreamTransportError):
    """The connection could not be made; nothing reached 6sense."""


class UpstreamReadTimeout(UpstreamTransportError):
    """The request went out but no answer came in time; 6sense may have billed it."""


class UpstreamConnectionLost(UpstreamTransportError):
    """The connection broke after the request went out; 6sense may have billed it."""


class UpstreamBadBody(UpstreamTransportError):
    """6sense answered 2xx with a body that is not the JSON object we expect."""


class UpstreamStatusError(UpstreamError):
    """6sense answered with an error status."""

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__(f"6sense answered HTTP {status}")
        self.status = status
        self.body = body[:500]


class UpstreamRateLimited(UpstreamStatusError):
    """429: over the per-token rate limit."""

    def __init__(self, status: int = 429, body: str = "", retry_after: float | None = None) -> None:
        super().__init__(status, body)
        self.retry_after = retry_after


class UpstreamAuthError(UpstreamStatusError):
    """401/403: the token is wrong, revoked, or not in the "Lead Scoring API" group."""
