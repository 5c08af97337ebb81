"""Operations: liveness, readiness, Prometheus metrics, usage, and the OpenAPI document."""

from __future__ import annotations

import hmac
import logging
from importlib import resources

import orjson
from flask import Blueprint, Response, request

from .. import __version__, metrics, usage
from ..errors import StateError
from ..failures import STATE_UNAVAILABLE
from ..runtime import current

bp = Blueprint("ops", __name__)
log = logging.getLogger("udf_service.ops")


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers (and which release it runs). Touches nothing upstream or in
    the state backend."""
    return _json({"status": "ok", "version": __version__})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the state backend accepts a write (a full disk or a Redis at maxmemory still
    answers reads) and a token is configured (or the simulator)."""
    rt = current()
    try:
        rt.state.ping(write=True)
    except StateError as exc:
        log.warning("not_ready", extra={"error": str(exc)[:300]})
        document = {"status": "not_ready", "reason": STATE_UNAVAILABLE}
        if _has_secret():  # hosts, ports and the backend's words only for who holds the secret
            document["detail"] = str(exc)[:300]
        return _json(document, 503)
    upstream = "simulator" if rt.settings.simulate else "6sense"
    return _json({"status": "ready", "upstream": upstream, "state": rt.settings.state_url.split(":", 1)[0]})


def _has_secret() -> bool:
    """The request carries the shared secret (/readyz is open to probes, which do not)."""
    settings = current().settings
    if not settings.auth_header or not settings.auth_secret:
        return False
    given = request.headers.get(settings.auth_header, "").encode()
    return hmac.compare_digest(given, settings.auth_secret.encode())


@bp.get("/metrics")
def prometheus() -> Response:
    rt = current()
    try:
        usage.collect(rt)  # sets the queue, ETA, cache, budget, circuit and jobs gauges
        metrics.STATE_UP.set(1)
    except StateError:
        metrics.STATE_UP.set(0)  # the scrape still shows everything the workers counted
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/usage")
def usage_document() -> Response:
    """What this deployment spent and has left: calls, matched leads, budget, queue and its ETA,
    cache hit ratio, circuits, jobs and the last errors (docs/status.md lists every key)."""
    return _json(usage.collect(current()))


@bp.get("/openapi.json")
def openapi() -> Response:
    text = resources.files("udf_service").joinpath("openapi.json").read_bytes()
    return Response(text, mimetype="application/json")
