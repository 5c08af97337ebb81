"""Amazon Redshift Lambda UDFs: the event, the answer, and the Lambda handler.

Event:   {"request_id", "cluster", "user", "database", "external_function", "query_id",
          "num_records": n, "arguments": [[arg, ...] | null, ...]}     (Lambda Invoke, not HTTP)
Answer:  JSON text of {"success": true, "num_records": n, "results": [text | null, ...]}: one
         result per argument row, in order, each the row's value as JSON text (JSON_PARSE -> SUPER)
Failure: {"success": false, "error_msg": "..."} fails the whole query; used for batch-wide faults only.
Reference: shared/reference/protocols.md section 4.

`decode`, `encode` and `failure` are the pure codec. `handler` is the Lambda entry point
(`udf_service.protocols.redshift.handler`): it builds the engine once per Lambda container from
the environment (the same variables as the service; UDF_STATE_URL=redis://... so that every
container and the HTTP service share one cache and one rate limiter) and answers each batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import logs, metrics
from ..config import PRODUCTION_BASE_URL, Settings
from ..engine import Engine
from ..errors import ConfigError, ProtocolError, StateError, UdfError, UpstreamAuthError
from ..jobs import auth_failure
from ..leads import ARGUMENTS_HINT, MAX_ARGS, lead_from_args
from ..services import Services, build
from ..sixsense.flatten import empty_value
from ..values import Value, dumps
from .bigquery import object_from_text

MAX_RESULT_BYTES = 65535  # RETURNS VARCHAR(65535), Redshift's longest VARCHAR
MAX_ANSWER_BYTES = 6 * 1024 * 1024  # Lambda's response payload limit
RESPONSE_MARGIN_S = 2.0  # time kept back to encode and return the answer

log = logging.getLogger("udf_service.redshift")


@dataclass(frozen=True)
class Event:
    """One decoded Redshift batch: each row's arguments (a NULL row has none) and its context."""

    rows: list[list[Any]]
    request_id: str | None = None
    query_id: int | str | None = None
    function: str | None = None
    user: str | None = None


def decode(event: object) -> Event:
    """Read a Lambda UDF event; raise ProtocolError naming the first thing that is wrong."""
    if not isinstance(event, Mapping) or not isinstance(event.get("arguments"), list):
        raise ProtocolError('the event must be a JSON object with an "arguments" array')
    arguments = event["arguments"]
    count = event.get("num_records", len(arguments))
    if count != len(arguments):
        raise ProtocolError(f"num_records is {count!r:.20} but arguments has {len(arguments)} rows")
    return Event(
        rows=[_arguments(index, row) for index, row in enumerate(arguments)],
        request_id=_text(event.get("request_id")),
        query_id=event.get("query_id"),
        function=_text(event.get("external_function")),
        user=_text(event.get("user")),
    )


def _arguments(index: int, row: object) -> list[Any]:
    if row is None:
        return []  # a NULL row: no email, so the row is invalid_input
    if not isinstance(row, list):
        raise ProtocolError(f"arguments row {index} must be an array or null")
    if not 1 <= len(row) <= MAX_ARGS:
        raise ProtocolError(f"arguments row {index} has {len(row)} values; {ARGUMENTS_HINT} (as JSON text)")
    return [object_from_text(row[0])] if len(row) == 1 else row


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def encode(results: Sequence[str | None]) -> str:
    """The answer for a successful batch: one JSON text (or null) per row, in row order."""
    return orjson.dumps({"success": True, "num_records": len(results), "results": list(results)}).decode()


def failure(message: str) -> str:
    """The answer that fails the whole query, with a message Redshift shows to the user."""
    return orjson.dumps({"success": False, "error_msg": message}).decode()


# ---------------------------------------------------------------------------------------- handler


_lock = threading.Lock()
_container: Services | None = None  # this Lambda container's Services, built by the first invocation


def handler(event: object, context: Any = None) -> str:
    """Lambda entry point: one Redshift batch in, its answer out (JSON text, as Redshift expects)."""
    started = time.monotonic()
    try:
        svc = container_services()
        batch = decode(event)
        values = _enrich(svc, batch, context)
    except UdfError as exc:
        log.warning("batch_failed", extra={"error": type(exc).__name__, "detail": str(exc)[:200]})
        return failure(failure_message(exc))
    except Exception as exc:  # Redshift shows error_msg; a raised exception would show a stack trace
        log.exception("unexpected_error")
        return failure(f"internal error ({type(exc).__name__}); see the Lambda function's log")
    answer = encode([result_text(value) for value in values])
    if len(answer) > MAX_ANSWER_BYTES:
        return failure("the answer exceeds Lambda's 6 MB response limit: lower MAX_BATCH_ROWS")
    _log_batch(batch, values, started)
    return answer


def container_services() -> Services:
    """The engine of this Lambda container: built on first use from the environment, then reused."""
    global _container
    with _lock:
        if _container is None:
            _container = _build()
        return _container


def close() -> None:
    """Drop this container's engine (for tests; a Lambda container keeps it until it is recycled)."""
    global _container
    with _lock:
        services, _container = _container, None
    if services is not None:
        services.shutdown(grace_s=0)


def failure_message(exc: UdfError) -> str:
    """What Redshift shows when a whole batch fails, by the kind of fault."""
    if isinstance(exc, UpstreamAuthError):
        return orjson.loads(auth_failure(exc).body or b"{}")["error"]
    if isinstance(exc, StateError):
        return f"state backend unavailable (UDF_STATE_URL), run the query again: {exc}"
    if isinstance(exc, ProtocolError):
        return f"unexpected Lambda UDF event: {exc.message}"
    return str(exc)


def deadline(context: Any, settings: Settings) -> float:
    """When to stop starting upstream calls: early enough that one already under way (connect +
    read timeout) ends before Lambda's own timeout; UDF_SYNC_BUDGET_S without a Lambda context."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return time.time() + settings.sync_budget_s
    in_flight_s = settings.connect_timeout_s + settings.read_timeout_s + RESPONSE_MARGIN_S
    return time.time() + max(remaining_ms() / 1000 - in_flight_s, 0.0)


def _build() -> Services:
    settings = Settings.from_env()
    if settings.simulate and settings.base_url == PRODUCTION_BASE_URL:
        raise ConfigError("SIXSENSE_SIMULATE=1 needs SIXSENSE_BASE_URL pointing at a running simulator")
    logs.configure(settings.log_level)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and settings.state_url.startswith("sqlite"):
        log.warning(
            "state_not_shared",
            extra={"hint": "UDF_STATE_URL is SQLite: each Lambda container has its own cache and "
                   "rate limiter; set UDF_STATE_URL=redis://host:port/db to share them"},
        )  # fmt: skip
    return build(settings, start_background=False)


def _enrich(svc: Services, batch: Event, context: Any) -> list[dict[str, Any]]:
    rows = [lead_from_args(args, svc.settings.default_country) for args in batch.rows]
    with _renewing_claims(svc.engine):
        return svc.engine.enrich(rows, deadline(context, svc.settings))


@contextlib.contextmanager
def _renewing_claims(engine: Engine, every_s: float = 10.0) -> Iterator[None]:
    """Keep this batch's claims alive while it runs: a Lambda has no background thread between
    invocations, and a claim that lapsed while we wait for a rate-limit slot would let another
    container fetch (and pay for) the same lead."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(StateError):
                engine.claims.renew_all()

    thread = threading.Thread(target=renew, name="udf-claims", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)


def result_text(value: Value) -> str:
    """One row's result: the value as JSON text, or an `error` value when it exceeds VARCHAR."""
    text = dumps(value)
    if len(text) <= MAX_RESULT_BYTES:
        return text.decode()
    too_long = empty_value("error", f"the value is longer than VARCHAR({MAX_RESULT_BYTES}) allows")
    return orjson.dumps(too_long).decode()


def _log_batch(batch: Event, values: Sequence[dict[str, Any]], started: float) -> None:
    statuses = metrics.count_rows("redshift", values)
    log.info(
        "batch",
        extra={
            "route": "redshift",
            "seconds": round(time.monotonic() - started, 4),
            "request_id": batch.request_id,
            "query_id": batch.query_id,
            "function": batch.function,
            "rows": len(batch.rows),
            "statuses": statuses,
        },
    )
