"""The Flask app factory: routes -> wire format -> engine; errors always answered as JSON.

Served by gunicorn through `udf-service serve` as `udf_service.app:create_app()`.
"""

from __future__ import annotations

import hmac
import logging

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import logs
from .config import PRODUCTION_BASE_URL, Settings
from .errors import ConfigError, Overloaded, ProtocolError, StateError, UpstreamAuthError
from .jobs import auth_failure

log = logging.getLogger("udf_service")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def create_app(settings: Settings | None = None, start_background: bool = True) -> Flask:
    settings = settings or Settings.from_env()
    settings.validate()
    if settings.simulate and settings.base_url == PRODUCTION_BASE_URL:
        raise ConfigError(
            "SIXSENSE_SIMULATE=1 serves from the simulator that `udf-service serve` "
            "starts; set SIXSENSE_BASE_URL to a running simulator to use create_app directly"
        )
    logs.configure(settings.log_level)
    app = Flask(__name__)
    # One byte over the limit, so a chunked body longer than the limit is seen as too long
    # (werkzeug cuts such a stream at MAX_CONTENT_LENGTH instead of refusing it).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1

    from . import services
    from .routes import bigquery, ops, snowflake

    services.init_app(app, settings, start_background)
    app.register_blueprint(ops.bp)
    app.register_blueprint(snowflake.bp)
    app.register_blueprint(bigquery.bp)
    _register_auth(app, settings)
    _register_errors(app)
    log.info(
        "ready",
        extra={
            "upstream": "SIMULATOR (not 6sense)" if settings.simulate else "6sense",
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
        return json_error(f"missing or wrong {header} header", 401)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ProtocolError)
    def protocol_error(exc: ProtocolError) -> Response:
        return json_error(exc.message, exc.status)

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded) -> Response:
        log.warning("overloaded", extra={"error": str(exc)})
        return json_error(str(exc), 429)

    @app.errorhandler(StateError)
    def state_error(exc: StateError) -> Response:
        log.warning("state_unavailable", extra={"error": str(exc)[:200]})
        return json_error(f"state backend unavailable, retry later: {exc}", 503)

    @app.errorhandler(UpstreamAuthError)
    def upstream_auth(exc: UpstreamAuthError) -> Response:
        log.error("upstream_auth_rejected", extra={"upstream_status": exc.status})
        outcome = auth_failure(exc)
        return Response(outcome.body, status=outcome.status, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        messages = {413: "request body exceeds the size limit (UDF_MAX_BODY_BYTES)"}
        response = json_error(messages.get(exc.code or 500, exc.description or exc.name), exc.code or 500)
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected_error")
        return json_error(f"internal error ({type(exc).__name__}); see the service log", 500)


def json_error(message: str, status: int) -> Response:
    """Every error the service answers: `{"error": "<what is wrong>"}` with a fitting status."""
    return Response(orjson.dumps({"error": message}), status=status, mimetype="application/json")
