"""Snowflake external functions and SPCS service functions: `/snowflake/people/full[...]`.

Each view reads straight down: decode the batch, one cache read, answer (now, after waiting, or
as an async job), encode.
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
from ..leads import lead_from_args
from ..protocols import snowflake
from ..runtime import Runtime, current
from ..snowflake_jobs import Outcome
from .answers import json_answer, wire_headers

bp = Blueprint("snowflake", __name__, url_prefix="/snowflake")
log = logging.getLogger("udf_service.snowflake")


@bp.post("/people/full")
def people_full() -> Response:
    """Wait mode: 200 when the batch is done within the sync budget, else 202 and keep working."""
    rt, started = current(), time.monotonic()
    batch, rows = _decode(rt)
    lookup = rt.engine.lookup(rows)
    if not lookup.misses:
        return _data(batch, lookup.values, "full", started)  # type: ignore[arg-type]
    budget = rt.settings.sync_budget_s
    if batch.batch_id is None:  # no id to poll with: answer within the budget, whatever it takes
        return _data(batch, rt.engine.answer(lookup, rt.engine.deadline(budget)), "full", started)
    outcome = rt.jobs.submit(batch.batch_id, batch.row_numbers, rows, lookup, budget)
    return _outcome(outcome, "full", started, batch)


@bp.get("/people/full")
def people_full_poll() -> Response:
    """Snowflake's async poll: 202 while the batch runs, 200 with the data when it is done."""
    started = time.monotonic()
    batch_id = request.headers.get(snowflake.BATCH_ID_HEADER)
    if not batch_id:
        raise ProtocolError(f"a GET poll needs the {snowflake.BATCH_ID_HEADER} header")
    return _outcome(current().jobs.poll(batch_id), "poll", started)


@bp.post("/people/full/cached")
def people_full_cached() -> Response:
    """Never waits on 6sense: cached values now, `pending` for misses (fetched in the background)."""
    rt, started = current(), time.monotonic()
    batch, rows = _decode(rt)
    return _data(batch, rt.engine.queue(rt.engine.lookup(rows)), "cached", started)


@bp.post("/people/full/estimate")
def people_full_estimate() -> Response:
    """Cost preview: per row, would answering it call 6sense, and why. Calls nothing."""
    rt, started = current(), time.monotonic()
    batch, rows = _decode(rt)
    return _data(batch, rt.engine.estimate(rows), "estimate", started)


def _decode(rt: Runtime) -> tuple[snowflake.Batch, list[Row]]:
    settings = rt.settings
    batch = snowflake.decode(request.get_data(), wire_headers(request.environ), settings.max_body_bytes)
    default_country = settings.default_country
    return batch, [lead_from_args(row, default_country) for row in batch.rows]


def _data(batch: snowflake.Batch, values: Sequence[Any], route: str, started: float) -> Response:
    body = snowflake.encode(batch.row_numbers, values)
    statuses = metrics.count_rows(route, values)
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
    metrics.child(metrics.BATCH_SECONDS, route, str(outcome.status)).observe(seconds)
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
    return json_answer(outcome.body, outcome.status)
