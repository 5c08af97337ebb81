"""Operations: liveness, readiness, Prometheus metrics, usage, and the OpenAPI document."""

from __future__ import annotations

from importlib import resources

import orjson
from flask import Blueprint, Response

from .. import metrics
from ..errors import StateError
from ..guards import LIMITER_NAME
from ..services import services

bp = Blueprint("ops", __name__)


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. Touches nothing upstream or in the state backend."""
    return _json({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the state backend answers and a token is configured (or the simulator)."""
    svc = services()
    upstream = "simulator" if svc.settings.simulate else "6sense"
    try:
        svc.state.ping()
    except StateError as exc:
        return _json({"status": "not_ready", "reason": f"state backend unavailable: {exc}"}, 503)
    return _json({"status": "ready", "upstream": upstream, "state": svc.settings.state_url.split(":", 1)[0]})


@bp.get("/metrics")
def prometheus() -> Response:
    svc = services()
    try:
        metrics.QUEUE_DEPTH.set(svc.state.queue_depth())
        metrics.CACHE_ENTRIES.set(svc.state.cache_count())
        svc.engine.guards.budget_left()
        svc.engine.guards.quota_open()
    except StateError:
        pass  # the scrape still shows everything the workers counted
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/usage")
def usage() -> Response:
    """What this deployment spent and has left: calls, matched leads, budget, queue, limiter."""
    svc = services()
    guards = svc.engine.guards
    retry_in = guards.quota_retry_in()
    document = {
        **guards.usage(),
        "daily_call_budget": svc.settings.daily_call_budget,
        "daily_budget_left": guards.budget_left(),
        "queue_depth": svc.state.queue_depth(),
        "cache_entries": svc.state.cache_count(),
        "limiter": {
            "rate_limit": f"{svc.settings.rate_limit.amount}/{svc.settings.rate_limit.per_s:g}s",
            "interval_s": round(svc.settings.upstream_interval_s, 4),
            "backlog_s": round(svc.state.slot_backlog(LIMITER_NAME), 3),
        },
        "quota_circuit": {"open": retry_in is not None, "retry_in_s": retry_in},
    }
    return _json(document)


@bp.get("/openapi.json")
def openapi() -> Response:
    text = resources.files("udf_service").joinpath("openapi.json").read_bytes()
    return Response(text, mimetype="application/json")
