"""One table from error class to what the warehouse is told: an HTTP status and a sentence.

Every wire format encodes the same `Failure` its own way (`{"error"}` for Snowflake and the ops
routes, `{"errorMessage"}` for BigQuery, `{"success": false, "error_msg"}` for Redshift); the
decision of which status and which words lives here only. Statuses Snowflake retries (429, 5xx)
are only for faults of infrastructure; a caller's mistake is a 4xx that says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, Overloaded, ProtocolError, StateError, UpstreamAuthError

STATE_UNAVAILABLE = "state backend unavailable (UDF_STATE_URL); retry later"
AUTH_REJECTED = (
    "6sense rejected the API token{status}: check SIXSENSE_API_TOKEN. The token must be active and "
    "belong to the 'Lead Scoring API' API group with Enrichment API credits "
    "(6sense Settings > Integrations > API Token)."
)


@dataclass(frozen=True)
class Failure:
    """A whole request that cannot be answered with rows: the status and what to tell the caller."""

    status: int
    message: str


def describe(exc: BaseException) -> Failure:
    """The one place that maps an exception to a status and a sentence."""
    if isinstance(exc, ProtocolError):
        return Failure(exc.status, exc.message)
    if isinstance(exc, Overloaded):
        return Failure(429, str(exc))
    if isinstance(exc, StateError):
        return Failure(503, STATE_UNAVAILABLE)
    if isinstance(exc, UpstreamAuthError):
        return Failure(424, auth_message(exc.status))
    if isinstance(exc, ConfigError):  # a setting to fix (a Lambda container reads them per batch)
        return Failure(500, str(exc))
    return Failure(500, f"internal error ({type(exc).__name__}); see the service log")


def auth_message(status: int | None = None) -> str:
    """What to fix when 6sense rejects the token (424: Snowflake does not retry it)."""
    return AUTH_REJECTED.format(status=f" (HTTP {status})" if status else "")
