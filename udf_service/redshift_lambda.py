"""The Amazon Redshift Lambda UDF entry point: `udf_service.redshift_lambda.handler`.

It builds the engine once per Lambda container from the environment (the same variables as the
service; UDF_STATE_URL=redis://... so that every container and the HTTP service share one cache,
one fetch queue and one rate limiter) and answers each batch with the codec in
`udf_service.protocols.redshift`. A Lambda container has no life between invocations, so it runs
no background thread: it fetches only the leads its own batch asks for, on its own threads, and
writes every answer before it returns. While a batch runs, its leases are kept alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from . import logs, metrics
from .config import Settings
from .errors import ProtocolError, StateError, UdfError
from .failures import describe
from .leads import lead_from_args
from .protocols.redshift import Event, decode, encode, failure, result_text
from .runtime import Runtime, build
from .values import Value

RESPONSE_MARGIN_S = 2.0  # time kept back to encode and return the answer

log = logging.getLogger("udf_service.redshift")

_lock = threading.Lock()
_container: Runtime | None = None  # this Lambda container's runtime, built by the first invocation


def handler(event: object, context: Any = None) -> str:
    """Lambda entry point: one Redshift batch in, its answer out (JSON text, as Redshift expects)."""
    started = time.monotonic()
    try:
        rt = container_runtime()
        batch = decode(event)
        values = _enrich(rt, batch, context)
        answer = encode([result_text(value) for value in values])  # refuses past Lambda's 6 MB
    except UdfError as exc:
        # No sentence built from the caller's event reaches the log (a ProtocolError's goes to
        # Redshift in error_msg); a StateError's detail (the backend's own words) is for operators.
        detail = str(exc)[:300] if isinstance(exc, StateError) else None
        log.warning("batch_failed", extra={"error": type(exc).__name__, "detail": detail})
        return failure(failure_message(exc))
    except Exception as exc:  # Redshift shows error_msg; a raised exception would show a stack trace
        log.exception("unexpected_error")
        return failure(f"internal error ({type(exc).__name__}); see the Lambda function's log")
    _log_batch(batch, values, started)
    return answer


def container_runtime() -> Runtime:
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
        rt, _container = _container, None
    if rt is not None:
        rt.shutdown(grace_s=0)


def failure_message(exc: UdfError) -> str:
    """What Redshift shows when a whole batch fails: the one table's sentence, with context."""
    message = describe(exc).message
    if isinstance(exc, StateError):
        return f"{message}: run the query again"
    if isinstance(exc, ProtocolError) and exc.status != 413:  # 413: too many rows, or too large an answer
        return f"unexpected Lambda UDF event: {message}"
    return message


def budget_s(context: Any, settings: Settings) -> float:
    """How long to go on starting upstream calls: early enough that one already under way (connect
    + read timeout) ends before Lambda's own timeout; UDF_SYNC_BUDGET_S without a Lambda context."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return settings.sync_budget_s
    in_flight_s = settings.connect_timeout_s + settings.read_timeout_s + RESPONSE_MARGIN_S
    return max(remaining_ms() / 1000 - in_flight_s, 0.0)


def _build() -> Runtime:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and settings.state_url.startswith("sqlite"):
        log.warning(
            "state_not_shared",
            extra={"hint": "UDF_STATE_URL is SQLite: each Lambda container has its own cache and "
                   "rate limiter; set UDF_STATE_URL=redis://host:port/db to share them"},
        )  # fmt: skip
    return build(settings, background=False)


def _enrich(rt: Runtime, batch: Event, context: Any) -> list[Value]:
    rows = [lead_from_args(args, rt.settings.default_country) for args in batch.rows]
    with _renewing_leases(rt):
        values = rt.engine.enrich(rows, rt.engine.deadline(budget_s(context, rt.settings)), fetch_own=True)
        rt.completer.flush(timeout_s=5.0)  # paid answers are in the state before we return
    return values


@contextlib.contextmanager
def _renewing_leases(rt: Runtime, every_s: float | None = None) -> Iterator[None]:
    """Keep this batch's leases alive while it runs: a lease that lapsed while we wait for a
    rate-limit slot would let another container fetch (and pay for) the same lead."""
    stop = threading.Event()
    period = every_s or rt.settings.fetch_lease_s / 3

    def renew() -> None:
        while not stop.wait(period):
            with contextlib.suppress(StateError):
                rt.dispatcher.renew()

    thread = threading.Thread(target=renew, name="udf-leases", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)


def _log_batch(batch: Event, values: Sequence[Value], started: float) -> None:
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
