"""BigQuery remote functions: `/bigquery/people/full[/cached]`.

BigQuery has no asynchronous protocol, so a request answers within UDF_SYNC_BUDGET_S (plus at
most one upstream call already under way): leads not fetched by then are rows with status `error`
and a sentence saying so, never a failed request. Their fetches go on, so the next query finds
them cached.
Errors keep the statuses the app decides (400 for bad requests, 424 when 6sense rejects the
token, 503 when the state backend is down), with the body BigQuery shows: `{"errorMessage"}`
(the app's error handler picks that body for this blueprint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, request

from .. import metrics
from ..engine import Row
from ..leads import lead_from_args
from ..protocols import bigquery
from ..runtime import current
from .answers import json_answer, wire_headers

bp = Blueprint("bigquery", __name__, url_prefix="/bigquery")
log = logging.getLogger("udf_service.bigquery")


@bp.post("/people/full")
def people_full() -> Response:
    """Every call's value, fetched within the sync budget; rows past it are `error`, not a failure."""
    rt, started = current(), time.monotonic()
    call, rows = _decode()
    values = rt.engine.enrich(rows, rt.engine.deadline(rt.settings.sync_budget_s))
    return _replies(call, values, "bigquery_full", started)


@bp.post("/people/full/cached")
def people_full_cached() -> Response:
    """Never waits on 6sense: cached values now, `pending` for misses (fetched in the background)."""
    rt, started = current(), time.monotonic()
    call, rows = _decode()
    values = rt.engine.queue(rt.engine.lookup(rows))
    return _replies(call, values, "bigquery_cached", started)


def _decode() -> tuple[bigquery.Request, list[Row]]:
    settings = current().settings
    call = bigquery.decode(request.get_data(), wire_headers(request.environ), settings.max_body_bytes)
    default_country = settings.default_country
    return call, [lead_from_args(args, default_country) for args in call.calls]


def _replies(call: bigquery.Request, values: Sequence[Any], route: str, started: float) -> Response:
    encoded = bigquery.encode(values)  # 413 past the answer size limit, before anything is counted
    statuses = metrics.count_rows(route, values)
    seconds = time.monotonic() - started
    metrics.child(metrics.BATCH_SECONDS, route, "200").observe(seconds)
    log.info(
        "batch",
        extra={
            "route": route,
            "http_status": 200,
            "seconds": round(seconds, 4),
            "request_id": call.request_id,
            "job": call.caller,  # the BigQuery job's resource name; sessionUser (an email) is not logged
            "rows": len(call.calls),
            "statuses": statuses,
        },
    )
    return json_answer(encoded)
