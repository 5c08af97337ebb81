"""The Flask app factory: routes -> wire format -> engine; errors always answered as JSON.

Served by gunicorn through `udf-service serve` as `create_app(settings)`; tests call
`create_app(Settings(simulate=True, state_url=...))` and use the Flask test client; `state`
replaces the backend the URL names (the benchmark passes one that counts its calls).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import httpx
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import logs, runtime
from .clock import SYSTEM, Clock
from .config import Settings
from .errors import UdfError
from .failures import describe
from .protocols import bigquery, snowflake
from .state import State

log = logging.getLogger("udf_service")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = SYSTEM,
    background: bool = True,
    state: State | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    settings.validate()
    logs.configure(settings.log_level)
    app = Flask(__name__)
    # One byte over the limit, so a chunked body longer than the limit is seen as too long
    # (werkzeug cuts such a stream at MAX_CONTENT_LENGTH instead of refusing it).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1

    from .routes import bigquery as bigquery_routes
    from .routes import ops, snowflake, status

    runtime.init_app(
        app, runtime.build(settings, background=background, transport=transport, clock=clock, state=state)
    )
    app.register_blueprint(ops.bp)
    app.register_blueprint(snowflake.bp)
    app.register_blueprint(bigquery_routes.bp)
    app.register_blueprint(status.bp)
    _register_auth(app, settings)
    _register_errors(app)
    log.info(
        "ready",
        extra={
            "upstream": settings.upstream_label,
            "state": settings.state_url.split(":", 1)[0],
            "rate_limit": str(settings.rate_limit),
        },
    )
    return app


def _register_auth(app: Flask, settings: Settings) -> None:
    if not settings.auth_header:
        return
    header, secret = settings.auth_header, (settings.auth_secret or "").encode()

    @app.before_request
    def require_secret() -> Response | None:
        if request.path in OPEN_PATHS:
            return None
        given = request.headers.get(header, "").encode()
        if hmac.compare_digest(given, secret):
            return None
        _record_error(401, f"missing or wrong {header} header")
        return error_response(f"missing or wrong {header} header", 401)


# Each wire format's error body; the status and the sentence come from `failures.describe`.
ERROR_BODIES: dict[str | None, Callable[[str], bytes]] = {
    "bigquery": bigquery.error,
}


FAULT_EVENTS = {424: "upstream_auth_rejected", 429: "overloaded", 503: "state_unavailable"}
# The class (udf_service.recent_errors) a whole-request failure is counted under, by status.
ERROR_CLASSES = {424: "upstream_auth", 429: "overloaded", 503: "state_unavailable", 500: "internal"}


def _record_error(status: int, message: str) -> None:
    errors = runtime.current().errors
    if errors is not None:
        errors.record(ERROR_CLASSES.get(status, "bad_request" if status < 500 else "internal"), message)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(UdfError)
    def udf_error(exc: UdfError) -> Response:
        failure = describe(exc)
        _record_error(failure.status, failure.message)
        if failure.status >= 424:  # faults worth a line; a caller's 4xx is in the batch log
            event = FAULT_EVENTS.get(failure.status, "request_failed")
            level = logging.ERROR if failure.status == 424 else logging.WARNING
            log.log(level, event, extra={"error": type(exc).__name__, "http_status": failure.status})
        return error_response(failure.message, failure.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        messages = {413: "request body exceeds the size limit (UDF_MAX_BODY_BYTES)"}
        response = error_response(messages.get(exc.code or 500, exc.description or exc.name), exc.code or 500)
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected_error")
        failure = describe(exc)
        _record_error(failure.status, failure.message)
        return error_response(failure.message, failure.status)


def error_response(message: str, status: int) -> Response:
    """Every error the service answers, in the body form of the route's wire format."""
    encode = ERROR_BODIES.get(request.blueprint, snowflake.error)  # ops routes answer as Snowflake's
    return Response(encode(message), status=status, mimetype="application/json")
