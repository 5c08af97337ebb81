"""Snowflake external functions and SPCS service functions: `/snowflake/people/full[...]`.

Each view reads straight down: decode the batch, ask the engine, encode the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, request

from .. import metrics
from ..engine import Row
from ..errors import ProtocolError
from ..jobs import Outcome
from ..leads import lead_from_args
from ..protocols import snowflake
from ..protocols.compression import compress
from ..services import services

bp = Blueprint("snowflake", __name__, url_prefix="/snowflake")
log = logging.getLogger("udf_service.snowflake")


@bp.post("/people/full")
def people_full() -> Response:
    """Wait mode: 200 when the batch is done within the sync budget, else 202 and keep working."""
    svc, started = services(), time.monotonic()
    batch, rows = _decode()
    values, misses = svc.engine.lookup(rows)
    if not misses:
        return _data(batch, values, "full", started)
    if batch.batch_id is None:  # no id to poll with: answer within the budget, whatever it takes
        values = svc.engine.enrich(rows, time.time() + svc.settings.sync_budget_s)
        return _data(batch, values, "full", started)
    outcome = svc.jobs.submit(
        batch.batch_id, batch.row_numbers, rows, len(misses), svc.settings.sync_budget_s
    )
    return _outcome(outcome, "full", started, batch)


@bp.get("/people/full")
def people_full_poll() -> Response:
    """Snowflake's async poll: 202 while the batch runs, 200 with the data when it is done."""
    started = time.monotonic()
    batch_id = request.headers.get(snowflake.BATCH_ID_HEADER)
    if not batch_id:
        raise ProtocolError(f"a GET poll needs the {snowflake.BATCH_ID_HEADER} header")
    outcome = services().jobs.poll(batch_id)
    if outcome is None:
        # 503, not 404: Snowflake retries it. A job that a restarted state backend lost is
        # re-registered by the worker running it within seconds; a truly unknown id (expired
        # after UDF_JOB_TTL_S) only comes from a query that was abandoned long ago.
        raise ProtocolError(
            f"unknown batch id {batch_id[:80]!r}: no such job in the state backend (it may be "
            "re-registered shortly if the backend restarted; results expire after UDF_JOB_TTL_S)",
            503,
        )
    return _outcome(outcome, "poll", started)


@bp.post("/people/full/cached")
def people_full_cached() -> Response:
    """Never waits on 6sense: cached values now, `pending` for misses (fetched in the background)."""
    svc, started = services(), time.monotonic()
    batch, rows = _decode()
    values = svc.refill.cached_or_queued(rows)
    return _data(batch, values, "cached", started)


@bp.post("/people/full/estimate")
def people_full_estimate() -> Response:
    """Cost preview: per row, would answering it call 6sense, and why. Calls nothing."""
    svc, started = services(), time.monotonic()
    batch, rows = _decode()
    return _data(batch, svc.engine.estimate(rows), "estimate", started)


def _decode() -> tuple[snowflake.Batch, list[Row]]:
    svc = services()
    batch = snowflake.decode(request.get_data(), request.headers, svc.settings.max_body_bytes)
    default_country = svc.settings.default_country
    return batch, [lead_from_args(row, default_country) for row in batch.rows]


def _data(batch: snowflake.Batch, values: Sequence[Any], route: str, started: float) -> Response:
    statuses = metrics.count_rows(route, values)
    body = snowflake.encode(batch.row_numbers, values)
    return _outcome(Outcome(200, body), route, started, batch, statuses)


def _outcome(
    outcome: Outcome,
    route: str,
    started: float,
    batch: snowflake.Batch | None = None,
    statuses: dict[str, int] | None = None,
) -> Response:
    seconds = time.monotonic() - started
    batch_id = batch.batch_id if batch else request.headers.get(snowflake.BATCH_ID_HEADER)
    metrics.BATCH_SECONDS.labels(route, str(outcome.status)).observe(seconds)
    log.info(
        "batch",
        extra={
            "route": route,
            "http_status": outcome.status,
            "seconds": round(seconds, 4),
            "batch_id": (batch_id or "")[:200],
            "query_id": (batch.query_id or "")[:200] if batch else None,
            "rows": len(batch.row_numbers) if batch else None,
            "statuses": dict(statuses) if statuses else None,
        },
    )
    if outcome.body is None:
        return Response(b"", status=outcome.status)
    body, encoding = compress(outcome.body, request.headers.get("Accept-Encoding"))
    response = Response(body, status=outcome.status, mimetype="application/json")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    return response
